"""Where the traffic goes: flow deltas attributed to domains and summed per
minute into the analytics tables.

Three inputs feed one domain cache: DNS answers (from the DNS collector's
thread), TLS ClientHello and QUIC Initial server names (from the hello ring,
read by a thread here), and the flow map (read every flush interval by
another thread here, which also hands the minute rows to the writer).
"""

from __future__ import annotations

import logging
import struct
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable

from ..bpf import layout
from ..bpf.maps import Map
from ..store.analytics import AnalyticsWriter, Batch
from . import tls
from .attribution import EXACT, DomainCache, Label, better
from .dnsparse import Malformed, Message, Segment
from .flows import Flow, FlowTable
from .packets import RingReader, decode

log = logging.getLogger(__name__)

MAX_NAMED_FLOWS = 65536


def minute_of(ts: float) -> int:
    return int(ts) // 60 * 60


class FlowAnalytics:
    def __init__(self, flows: Map, hello_fd: int, health: Callable[[], list[int]], writer: AnalyticsWriter,
                 cache: DomainCache, capacity: int, idle_timeout_s: int, interval_s: int,
                 iface_of: Callable[[str], str], control: Map) -> None:
        self.table = FlowTable(flows, capacity, idle_timeout_s)
        self.cache = cache
        self.writer = writer
        self.interval_s = interval_s
        self._hellos = RingReader(hello_fd, lambda events: [self.on_hello(raw) for raw in events],
                                  "reading TLS/QUIC hellos")
        self.before_labels: list[Callable[[], None]] = [self._hellos.catch_up]  # see collect()
        self._health = health
        self._iface_of = iface_of
        self._control = control
        self._lock = threading.Lock()  # guards the counters below, shared by the three threads
        self._named: OrderedDict[tuple, str] = OrderedDict()  # conversation → server name of its hello
        self._sni: Counter = Counter()  # (minute, mac, sni, kind, port) → hellos
        self._dns: dict[tuple, list[int]] = {}  # (minute, mac, qname, qtype) → [queries, responses, nx, fail]
        self.hellos_parsed = self.hellos_unparsed = 0
        self._reported = Counter()  # health figures already written
        self._health_minute = 0  # the minute of the newest health row written
        self._base = self._kernel_health()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._quic = None  # quic.InitialAssembler, made on the first QUIC Initial
        self._quic_missing = False  # cryptography is not installed: QUIC names are off
        self.exporter = None  # export.exporter.IpfixExporter, when flows also go out as IPFIX

    # -- life ---------------------------------------------------------------

    def start(self) -> None:
        self._set_capture(True)
        for name, target in (("flows", self._run_flows), ("hellos", self._run_hellos)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """A final collection, then the writer drains its queue."""
        self._set_capture(False)
        self._stop.set()
        for thread in self._threads:
            thread.join(10)
        self._threads = []
        try:
            self.collect()
        except Exception:
            log.exception("the final flow collection failed")
        if self.exporter is not None:
            self.exporter.close()  # every pending record, before we go
        self._hellos.close()
        self.writer.close()

    def _set_capture(self, on: bool) -> None:
        self._control.update(struct.pack("=I", layout.CONTROL_FLOWS), struct.pack("=I", 1 if on else 0))

    def _kernel_health(self) -> Counter:
        values = self._health()
        names = {"added": layout.HEALTH_FLOW_NEW, "failed": layout.HEALTH_FLOW_FAILED,
                 "dns_lost": layout.HEALTH_DNS_LOST, "hello_lost": layout.HEALTH_HELLO_LOST}
        return Counter({k: values[slot] for k, slot in names.items() if slot < len(values)})

    # -- DNS answers (called on the DNS collector's thread) -------------------

    def on_dns(self, ts_ns: int, mac: str, seg: Segment, msg: Message) -> None:
        ts = ts_ns / 1e9
        name = msg.qname.rstrip(".").lower()
        if not name:
            return
        # A query's device is its source; a response goes to the device.
        key = (minute_of(ts), mac, name, msg.qtype)
        with self._lock:
            counts = self._dns.setdefault(key, [0, 0, 0, 0])
            if not msg.is_response:
                counts[0] += 1
                return
            counts[1] += 1
            counts[2] += msg.rcode == 3
            counts[3] += msg.rcode not in (0, 3)
        # Every address of the answer, CNAME chain or not, serves the name asked for.
        now = time.monotonic()
        for ip, ttl in zip(msg.response_ips, msg.response_ttls, strict=False):
            self.cache.learn(ip, name, ttl, "dns", mac, now)

    # -- hellos -----------------------------------------------------------------

    def _run_hellos(self) -> None:
        self._hellos.run(self._stop)

    def _load_quic(self) -> bool:
        """Import the QUIC parser (and with it cryptography) once QUIC is seen.

        cryptography is optional (some architectures have no wheel of it): without
        it QUIC Initials are skipped, said once in the log, and everything else
        (the flows of those packets included) goes on being counted.
        """
        if self._quic_missing:
            return False
        try:
            from . import quic
        except ImportError as exc:
            self._quic_missing = True
            log.warning("QUIC server names are off: %s (install cryptography to name QUIC flows)", exc)
            return False
        self._quic = quic.InitialAssembler()
        return True

    def on_hello(self, raw: bytes) -> None:
        """One event of the hello ring: learn the server name it carries, if any."""
        try:
            _ts, mac_text, seg = decode(raw)
            if seg.transport == "tcp":
                kind, sni = "tls", tls.client_hello_sni(seg.payload)
            else:
                if self._quic is None and not self._load_quic():
                    return
                from . import quic

                if not quic.is_client_initial(seg.payload):
                    return
                kind, sni = "quic", self._quic.feed((seg.src, seg.sport), seg.payload)
        except tls.Incomplete:
            if seg.transport == "tcp":  # QUIC may complete with the next Initial
                self.hellos_unparsed += 1
            return
        except (Malformed, ValueError, struct.error):
            self.hellos_unparsed += 1
            return
        self.hellos_parsed += 1
        if sni is None:  # a complete hello without a name
            return
        self.cache.learn(seg.dst, sni, self.cache.caps["sni"], "sni", mac_text, time.monotonic())
        with self._lock:
            self._named[(6 if kind == "tls" else 17, seg.src, seg.sport, seg.dst, seg.dport)] = sni
            while len(self._named) > MAX_NAMED_FLOWS:
                self._named.popitem(last=False)
            self._sni[(minute_of(time.time()), mac_text, sni, kind, seg.dport)] += 1

    # -- flows -----------------------------------------------------------------

    def _run_flows(self) -> None:
        next_sweep = 0.0
        while not self._stop.wait(self.interval_s):
            try:
                self.collect()
                if time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + 60
                    self.cache.sweep(time.monotonic())
            except Exception:
                log.exception("collecting flows failed")

    def label_of(self, flow: Flow, now: float) -> Label:
        with self._lock:
            sni = self._named.get(flow.conversation)
        if sni is not None:
            return (EXACT, "sni", sni)
        return self.cache.attribute(flow.peer[0], flow.mac, now)

    def collect(self) -> Batch:
        """Read the flow map once and queue what moved, with DNS, SNI, cache and health rows."""
        started = time.perf_counter()
        wall, mono = time.time(), time.monotonic()
        minute = minute_of(wall)
        batch = Batch()
        kernel = self._kernel_health() - self._base  # before the map: see FlowTable.account
        moved = self.table.read(time.monotonic_ns())
        # A flow's first packets reach the map before the program copies its hello (or before the DNS
        # answer's thread has run), so the names those carry are taken in only now, after the map was
        # read: a flow is never written unnamed because its name was still waiting in a ring.
        for catch_up in self.before_labels:
            catch_up()
        for flow, nbytes, npackets in moved:
            if flow.label[0] != EXACT:
                label = self.label_of(flow, mono)
                if better(label, flow.label):
                    flow.label = label
            batch.add_flow(minute, self._iface_of(flow.mac), flow.mac, flow.direction, flow.proto, flow.src,
                           flow.sport, flow.dst, flow.dport, flow.label[2], flow.label[0], flow.label[1],
                           nbytes, npackets)
        if self.exporter is not None:
            self.exporter.update(moved, int(wall * 1000))
        with self._lock:
            dns, self._dns = self._dns, {}
            sni, self._sni = self._sni, Counter()
        batch.rows["dns_1m"] = [(*k, *v) for k, v in dns.items()]
        batch.rows["sni_1m"] = [(*k, n) for k, n in sni.items()]
        batch.rows["dns_cache_1m"] = [(minute, *c) for c in self.cache.take_counts()]
        health = self._health_row(minute, kernel, (time.perf_counter() - started) * 1000)
        # An idle network writes one health row a minute, not a transaction a second.
        if any(batch.rows.values()) or any(health[3:11]) or minute != self._health_minute:
            batch.rows["health_1m"] = [health]
            self._health_minute = minute
            self.writer.put(batch)
        return batch

    def _health_row(self, minute: int, kernel: Counter, read_ms: float) -> tuple:
        self.table.account(kernel["added"], kernel["failed"])
        h = self.table.health
        now = Counter(added=h.added, failed=h.failed, evicted=h.evicted, aged=h.aged, dns_lost=kernel["dns_lost"],
                      hello_lost=kernel["hello_lost"], parsed=self.hellos_parsed, unparsed=self.hellos_unparsed)
        delta = {k: now[k] - self._reported[k] for k in now}
        self._reported = now
        return (minute, h.entries, h.capacity, delta["added"], delta["failed"], delta["evicted"], delta["aged"],
                delta["dns_lost"], delta["hello_lost"], delta["parsed"], delta["unparsed"], len(self.cache), read_ms)
