"""Connection statistics per device from the conntrack table.

Every few seconds the table is dumped (streamed, see conntrack.py) and each
entry counted: globally, and for the device that opened it, which is the
original direction's source when that address is in a LAN prefix and the
neighbour table knows its MAC. State classes (TCP, conntrack's states):
established = ESTABLISHED; time_wait = FIN_WAIT, LAST_ACK, TIME_WAIT, CLOSE;
close_wait = CLOSE_WAIT; SYN_SENT, SYN_RECV and the rest count only in the
TCP total. Totals count TCP and UDP; other protocols (ICMP, GRE, ...) are in
the flows listing only.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from . import conntrack
from .conntrack import TCP, UDP, Entry
from .neighbours import NeighbourTable

log = logging.getLogger(__name__)

ESTABLISHED, FIN_WAIT, CLOSE_WAIT, LAST_ACK, TIME_WAIT, CLOSE = 3, 4, 5, 6, 7, 8
TIME_WAIT_CLASS = frozenset((FIN_WAIT, LAST_ACK, TIME_WAIT, CLOSE))
SYSCTLS = ("nf_conntrack_acct", "nf_conntrack_timestamp")  # byte counters, and start times for ages
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass
class Counts:
    tcp: int = 0
    udp: int = 0
    established: int = 0
    time_wait: int = 0
    close_wait: int = 0

    def add(self, proto: int, state: int, n: int = 1) -> None:
        if proto == TCP:
            self.tcp += n
            if state == ESTABLISHED:
                self.established += n
            elif state in TIME_WAIT_CLASS:
                self.time_wait += n
            elif state == CLOSE_WAIT:
                self.close_wait += n
        elif proto == UDP:
            self.udp += n

    def as_json(self, last_updated: int) -> dict:
        return {"total_connections": self.tcp + self.udp, "tcp_connections": self.tcp,
                "udp_connections": self.udp, "established_tcp": self.established,
                "time_wait_tcp": self.time_wait, "close_wait_tcp": self.close_wait,
                "last_updated": last_updated}


@dataclass
class Snapshot:
    last_updated: int = 0  # seconds since the epoch
    total: Counts = field(default_factory=Counts)
    devices: dict[str, tuple[str, Counts]] = field(default_factory=dict)  # mac → (ip, counts)
    partial: bool = False
    entries: int = 0
    cpu_seconds: float = 0.0


def enable_accounting(proc_sys: Path = Path("/proc/sys/net/netfilter")) -> None:
    """Turn on conntrack's byte counters and timestamps in our namespace, saying so."""
    for name in SYSCTLS:
        path = proc_sys / name
        try:
            if path.read_text().strip() == "0":
                path.write_text("1\n")
                log.info("turned on net.netfilter.%s so connections get %s (new connections only)", name,
                         "byte and packet counters" if name.endswith("acct") else "start times")
        except OSError as exc:
            log.warning("cannot turn on net.netfilter.%s: %s", name, exc.strerror or exc)


class Attribution:
    """Which device opened a connection: LAN prefix plus neighbour table, cached per address."""

    def __init__(self, neighbours: NeighbourTable, prefixes: Iterable[Network]) -> None:
        self._neighbours = neighbours
        self._prefixes = list(prefixes)
        self._cache: dict[bytes, str | None] = {}

    def mac_of(self, src: bytes) -> str | None:
        try:
            return self._cache[src]
        except KeyError:
            pass
        mac = None
        if src:
            addr = ipaddress.ip_address(src)
            if any(addr in net for net in self._prefixes):
                mac = self._neighbours.mac_of(str(addr))
        self._cache[src] = mac
        return mac


def classify(entries: Iterable[tuple[bytes, int, int]], attribution: Attribution,
             neighbours: NeighbourTable) -> Snapshot:
    """Count (source, protocol, TCP state) triples, as conntrack.dump_brief yields them.

    Equal triples are tallied first, by Counter in C: a big table has only a
    few distinct ones (devices × protocols × states), so the Python work
    below is per distinct triple, not per entry.
    """
    snap = Snapshot(last_updated=int(time.time()))
    devices: dict[str, Counts] = {}
    first_ip: dict[str, bytes] = {}
    for (src, proto, state), n in Counter(entries).items():
        snap.entries += n
        snap.total.add(proto, state, n)
        mac = attribution.mac_of(src)
        if mac is not None:
            if mac not in devices:
                devices[mac] = Counts()
                first_ip[mac] = src
            devices[mac].add(proto, state, n)
    snap.devices = {mac: (neighbours.ipv4_of(mac) or conntrack.address(first_ip[mac]), counts)
                    for mac, counts in devices.items()}
    return snap


class ConnectionCollector:
    """Dumps and counts in a thread; the API reads the latest snapshot."""

    def __init__(self, neighbours: NeighbourTable, prefixes: Callable[[], list[Network]],
                 interval: float, max_entries: int) -> None:
        self._neighbours = neighbours
        self._prefixes = prefixes
        self.interval = interval
        self.max_entries = max_entries
        self.latest = Snapshot()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="conntrack", daemon=True)
        self._failing = False

    def start(self) -> None:
        enable_accounting()
        self.refresh()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.refresh()

    def refresh(self) -> None:
        started = time.process_time()
        try:
            with conntrack.open_socket() as sock:
                entries = conntrack.dump_brief(sock, limit=self.max_entries)
                snap = classify(entries, Attribution(self._neighbours, self._prefixes()), self._neighbours)
        except OSError as exc:
            if not self._failing:
                log.error("reading the conntrack table failed: %s", exc)
            self._failing = True
            return
        self._failing = False
        snap.partial = snap.entries >= self.max_entries
        snap.cpu_seconds = time.process_time() - started
        if snap.partial and not self.latest.partial:
            log.warning("the conntrack table holds more than %d entries: counting only the first ones",
                        self.max_entries)
        self.latest = snap

    def flows(self, mac: str) -> tuple[list[Entry], bool]:
        """A fresh, full listing of the connections `mac` opened; (entries, partial)."""
        attribution = Attribution(self._neighbours, self._prefixes())
        out, seen = [], 0
        with conntrack.open_socket() as sock:
            for entry in conntrack.dump(sock, full=True, limit=self.max_entries):
                seen += 1
                if attribution.mac_of(entry.src) == mac:
                    out.append(entry)
        return out, seen >= self.max_entries
