"""A virtual OpenWrt-like router built from Linux network namespaces.

Used by end-to-end tests, the demo and benchmarks so that bandix can watch real
traffic without touching the host: every link, address, route and sysctl lives
inside namespaces created (and deleted) here.  Standard library only; drives
`ip`, `bridge`, `nft` and `sysctl` through subprocess.

Topology (bridge index i from 0, client k counted per bridge from 1):

    client ns  eth0 02:bd:00:00:0i:kk  192.168.(77+i).(10+k)/24  fd77:0:0:(i+1)::(10+k)/64
       |  veth; router side is bridge port p{i}{k}
    router ns  br-*  192.168.(77+i).1/24  fd77:0:0:(i+1)::1/64   (NAT44, routed IPv6)
       |  wan0 203.0.113.2/24 2001:db8:ff::2/64  <->  inet0 203.0.113.1/24 2001:db8:ff::1/64
    internet ns  lo: 198.51.100.10/32 2001:db8:100::10/128 (the "servers")

With dhcp=True the router runs dnsmasq as DHCP server on its bridges and every
client asks for its IPv4 address with busybox's udhcpc (OpenWrt's own client),
sending its name as option 12: addresses and hostnames then come from the
leases file (`leases_file`), as on a home router.  IPv6 stays static.
"""
from __future__ import annotations

import atexit
import contextlib
import ctypes
import itertools
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# MLDv2 sends each unsolicited report twice, the repeat after a random delay of up
# to mldv2_unsolicited_report_interval (1 s by default; lowered to 200 ms in every
# namespace here, measured: last setup frame ~0.2 s after start()).  Waiting this
# long after setup leaves links with no background traffic at all (static
# neighbours, no DAD, no RA/RS, STP off), with a wide margin for loaded machines.
QUIET_AFTER_SETUP_S = 2.0
MLD_REPORT_INTERVAL_MS = 200
CMD_TIMEOUT_S = 30.0
CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/var/run/netns")
UDHCPC_SCRIPT = Path(__file__).resolve().with_name("udhcpc.script")
DHCP_LEASE = "12h"
DHCP_WAIT_S = 20.0

_libc = ctypes.CDLL(None, use_errno=True)
_counter = itertools.count(1)


class Netns:
    """One named network namespace; runs commands and opens sockets inside it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.procs: list[subprocess.Popen] = []

    def run(self, cmd: Sequence[str], check: bool = True, capture: bool = True,
            timeout: float = CMD_TIMEOUT_S, **kw: Any) -> subprocess.CompletedProcess:
        """Run cmd inside the namespace and wait for it (text output captured)."""
        return _run(["ip", "netns", "exec", self.name, *cmd], check, capture, timeout, **kw)

    def ip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """`ip -n NAME args...` (cheaper than going through `ip netns exec`)."""
        return _run(["ip", "-n", self.name, *args], check)

    def ip_batch(self, lines: Sequence[str], tool: str = "ip") -> None:
        """Many `ip` (or `bridge`) commands in one process; fails on the first bad line."""
        if lines:
            _run([tool, "-n", self.name, "-batch", "-"], input="\n".join(lines) + "\n")

    def popen(self, cmd: Sequence[str], **kw: Any) -> subprocess.Popen:
        """Start a background process in the namespace; killed by kill_all()/close().

        It leads its own session (process group), so a terminal Ctrl-C does not
        hit it half way and we can kill it together with any children it forks.
        """
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("start_new_session", True)
        p = subprocess.Popen(["ip", "netns", "exec", self.name, *cmd], **kw)
        self.procs.append(p)
        return p

    def kill_all(self, grace: float = 3.0) -> None:
        """SIGTERM every popen() process group, SIGKILL after grace, reap them all."""
        for p in self.procs:
            if p.poll() is None:
                _signal_group(p, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for p in self.procs:
            try:
                p.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(p, signal.SIGKILL)
                p.wait()
        self.procs.clear()

    def socket(self, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM,
               proto: int = 0) -> socket.socket:
        """A socket that lives in this namespace.

        setns() switches only the calling thread, so a throw-away thread enters the
        namespace, creates the socket and exits; the socket keeps its namespace.
        """
        out: dict[str, Any] = {}

        def worker() -> None:
            try:
                fd = os.open(NETNS_DIR / self.name, os.O_RDONLY)
                try:
                    if _libc.setns(fd, CLONE_NEWNET) != 0:
                        err = ctypes.get_errno()
                        raise OSError(err, f"setns({self.name}): {os.strerror(err)}")
                finally:
                    os.close(fd)
                out["sock"] = socket.socket(family, type, proto)
            except BaseException as exc:  # re-raised in the caller's thread
                out["err"] = exc

        t = threading.Thread(target=worker, name=f"setns-{self.name}")
        t.start()
        t.join()
        if "err" in out:
            raise out["err"]
        return out["sock"]

    def link_stats(self, ifname: str) -> dict[str, int]:
        """Kernel 64-bit byte/packet counters of one interface."""
        s = json.loads(self.ip("-j", "-s", "link", "show", "dev", ifname).stdout)[0]["stats64"]
        return {f"{d}_{k}": s[d][k] for d in ("rx", "tx") for k in ("bytes", "packets")}

    def wait_listening(self, port: int, udp: bool = False, timeout: float = 10.0) -> None:
        """Block until something listens on port here (polls `ss`; no probe connection)."""
        deadline = time.monotonic() + timeout
        while not self.run(["ss", "-Hlun" if udp else "-Hltn", f"sport = :{port}"]).stdout.strip():
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listening on port {port} in {self.name}")
            time.sleep(0.05)


@dataclass
class Client:
    """A LAN host: its own namespace with eth0 plugged into a router bridge."""

    name: str
    ns: Netns
    bridge: str
    mac: str
    ipv4: str  # with dhcp: "" until start() has the lease
    ipv6: str
    port: str  # router-side bridge port (veth peer of eth0)
    ifname: str = "eth0"


class VirtualRouter:
    """Router + internet + client namespaces; a context manager that always cleans up."""

    SERVER_V4, SERVER_V6 = "198.51.100.10", "2001:db8:100::10"
    WAN_V4, WAN_GW_V4 = "203.0.113.2", "203.0.113.1"
    WAN_V6, WAN_GW_V6 = "2001:db8:ff::2", "2001:db8:ff::1"
    WAN_IF, INET_IF = "wan0", "inet0"
    WAN_MAC, INET_MAC = "02:bd:02:00:00:02", "02:bd:02:00:00:01"

    def __init__(self, bridges: Sequence[str] = ("br-lan",),
                 clients: int | Sequence[tuple[str, str]] = 3,
                 static_neighbours: bool = True, dhcp: bool = False) -> None:
        self.bridges = list(bridges)
        if dhcp and static_neighbours:
            raise ValueError("dhcp needs static_neighbours=False (addresses are not known before the leases)")
        self.dhcp = dhcp
        self.dhcp_dir: Path | None = None  # dnsmasq's lease file and the DHCP logs, with dhcp
        self.dnsmasq: subprocess.Popen | None = None
        if not 1 <= len(self.bridges) <= 10:  # one digit of i keeps port names p{i}{k} unique
            raise ValueError("need 1..10 bridges")
        if isinstance(clients, int):
            clients = [(f"c{n}", self.bridges[0]) for n in range(1, clients + 1)]
        self.static_neighbours = static_neighbours
        # "n" separates pid and counter: pid 12 + counter 34 must differ from pid 123 + 4.
        self.prefix = f"bx{os.getpid()}n{next(_counter)}-"
        self.router = Netns(self.prefix + "router")
        self.internet = Netns(self.prefix + "inet")
        self.clients: list[Client] = []
        per_bridge: dict[str, int] = {}
        for name, bridge in clients:
            if not re.fullmatch(r"[A-Za-z0-9_]{1,32}", name) or name in ("router", "inet"):
                raise ValueError(f"bad client name {name!r}")
            i = self.bridges.index(bridge)
            k = per_bridge[bridge] = per_bridge.get(bridge, 0) + 1
            if k > 200:
                raise ValueError("at most 200 clients per bridge")
            self.clients.append(Client(
                name=name, ns=Netns(self.prefix + name), bridge=bridge,
                mac=f"02:bd:00:00:{i:02x}:{k:02x}", ipv4="" if dhcp else f"192.168.{77 + i}.{10 + k}",
                ipv6=f"fd77:0:0:{i + 1}::{10 + k}", port=f"p{i}{k}"))
        if len({c.name for c in self.clients}) != len(self.clients):
            raise ValueError("duplicate client names")
        self._started = self._closed = False
        self._setup_done_at = 0.0

    def bridge_addresses(self, bridge: str) -> tuple[str, str]:
        """The router's (IPv4, IPv6) address on a bridge, without prefix length."""
        i = self.bridges.index(bridge)
        return f"192.168.{77 + i}.1", f"fd77:0:0:{i + 1}::1"

    def bridge_mac(self, bridge: str) -> str:
        """Fixed bridge MAC (set explicitly, so it never follows its ports)."""
        return f"02:bd:01:00:{self.bridges.index(bridge):02x}:01"

    def dhcp_range(self, bridge: str) -> tuple[str, str]:
        """First and last address dnsmasq hands out on a bridge (with dhcp)."""
        i = self.bridges.index(bridge)
        return f"192.168.{77 + i}.100", f"192.168.{77 + i}.199"

    @property
    def leases_file(self) -> Path | None:
        """dnsmasq's lease file (with dhcp, once started): what the daemon reads names from."""
        return self.dhcp_dir / "dhcp.leases" if self.dhcp_dir else None

    def leases(self) -> dict[str, tuple[str, str, int]]:
        """MAC → (IPv4, hostname, expiry in Unix seconds) from dnsmasq's lease file."""
        out = {}
        text = self.leases_file.read_text() if self.leases_file and self.leases_file.exists() else ""
        for line in text.splitlines():
            parts = line.split()
            if len(parts) >= 4 and parts[0].isdigit():
                out[parts[1]] = (parts[2], parts[3], int(parts[0]))
        return out

    def client(self, name: str) -> Client:
        return next(c for c in self.clients if c.name == name)

    @property
    def namespaces(self) -> list[Netns]:
        return [self.router, self.internet, *(c.ns for c in self.clients)]

    def __enter__(self) -> VirtualRouter:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def start(self) -> VirtualRouter:
        """Build the whole topology; on any failure (even Ctrl-C) undo what was built."""
        if self._started or self._closed:
            raise RuntimeError("a VirtualRouter can be started only once")
        self._started = True
        atexit.register(self.close)
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        self._setup_done_at = time.monotonic()
        return self

    def wait_quiet(self) -> None:
        """Sleep until setup-triggered MLD reports are over (only the time remaining)."""
        remaining = self._setup_done_at + QUIET_AFTER_SETUP_S - time.monotonic()
        if remaining > 0:
            time.sleep(remaining)

    def close(self) -> None:
        """Kill popen() processes, then delete our namespaces.  Idempotent.

        Keeps going through every step even if one fails or a second Ctrl-C
        arrives, then re-raises the first such interruption.
        """
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        pending: BaseException | None = None
        for step in ([lambda ns=ns: ns.kill_all() for ns in self.namespaces]
                     + [lambda ns=ns: _delete_netns(ns.name) for ns in self.namespaces]
                     + [lambda: self.dhcp_dir and shutil.rmtree(self.dhcp_dir, ignore_errors=True)]):
            try:
                step()
            except Exception:
                pass
            except BaseException as exc:  # KeyboardInterrupt: finish cleaning first
                pending = pending or exc
        if pending:
            raise pending

    @staticmethod
    def remove_stale() -> list[str]:
        """Delete namespaces (and their processes) left by dead test processes (SIGKILL)."""
        removed = []
        for name in sorted(os.listdir(NETNS_DIR)) if NETNS_DIR.is_dir() else []:
            m = re.match(r"bx(\d+)n\d+-", name)
            if m and not Path(f"/proc/{m.group(1)}").exists():
                _delete_netns(name)
                removed.append(name)
        for path in Path(tempfile.gettempdir()).glob("bx*n*-dhcp-*"):
            m = re.match(r"bx(\d+)n\d+-dhcp-", path.name)
            if m and not Path(f"/proc/{m.group(1)}").exists():
                shutil.rmtree(path, ignore_errors=True)
        return removed

    def _add_netns(self, ns: Netns, extra: dict[str, Any] | None = None) -> None:
        _run(["ip", "netns", "add", ns.name])
        # Before any link exists, so every new interface inherits the "default" values.
        values: dict[str, Any] = dict(extra or {})
        for scope in ("all", "default"):
            for key, val in (("accept_dad", 0), ("accept_ra", 0),
                             ("mldv1_unsolicited_report_interval", MLD_REPORT_INTERVAL_MS),
                             ("mldv2_unsolicited_report_interval", MLD_REPORT_INTERVAL_MS)):
                values[f"net.ipv6.conf.{scope}.{key}"] = val
        ns.run(["sysctl", "-q", "-w", *(f"{k}={v}" for k, v in values.items())])
        ns.ip("link", "set", "lo", "up")

    def _build(self) -> None:
        r, inet = self.router, self.internet
        self._add_netns(r, {"net.ipv4.ip_forward": 1, "net.ipv6.conf.all.forwarding": 1})
        # Like OpenWrt, no br_netfilter on the bridges: where the kernel has it
        # built in, it would validate and drop frames before the bridge device.
        r.run(["sysctl", "-q", "-e", "-w", *(f"net.bridge.bridge-nf-call-{t}=0" for t in
                                               ("iptables", "ip6tables", "arptables"))])
        self._add_netns(inet)
        for c in self.clients:
            self._add_netns(c.ns)

        cmds = []
        for br in self.bridges:
            v4, v6 = self.bridge_addresses(br)
            cmds += [f"link add {br} address {self.bridge_mac(br)} type bridge stp_state 0 "
                     f"forward_delay 0 mcast_snooping 0",
                     f"addr add {v4}/24 dev {br}", f"addr add {v6}/64 dev {br} nodad",
                     f"link set {br} up"]
        r.ip_batch(cmds + [
            f"link add {self.WAN_IF} address {self.WAN_MAC} type veth peer name "
            f"{self.INET_IF} address {self.INET_MAC} netns {inet.name}",
            f"addr add {self.WAN_V4}/24 dev {self.WAN_IF}",
            f"addr add {self.WAN_V6}/64 dev {self.WAN_IF} nodad",
            f"link set {self.WAN_IF} up"])
        # In `ip -batch` "-6" is not accepted per line; v6 routes use ::/0 or a v6 prefix.
        inet.ip_batch([f"addr add {self.WAN_GW_V4}/24 dev {self.INET_IF}",
                       f"addr add {self.WAN_GW_V6}/64 dev {self.INET_IF} nodad",
                       f"addr add {self.SERVER_V4}/32 dev lo",
                       f"addr add {self.SERVER_V6}/128 dev lo",
                       f"link set {self.INET_IF} up"]
                      + [f"route add fd77:0:0:{i + 1}::/64 via {self.WAN_V6}"
                         for i in range(len(self.bridges))])

        for c in self.clients:
            port_mac = "02:bd:03:00:" + c.mac[-5:]
            c.ns.ip("link", "add", c.ifname, "address", c.mac, "type", "veth", "peer",
                    "name", c.port, "address", port_mac, "netns", r.name)
            r.ip_batch([f"link set {c.port} master {c.bridge}", f"link set {c.port} up"])
            gw4, gw6 = self.bridge_addresses(c.bridge)
            v4 = [] if self.dhcp else [f"addr add {c.ipv4}/24 dev {c.ifname}"]
            c.ns.ip_batch([*v4, f"addr add {c.ipv6}/64 dev {c.ifname} nodad",
                           f"link set {c.ifname} up",
                           *([] if self.dhcp else [f"route add default via {gw4}"]), f"route add ::/0 via {gw6}"])

        r.ip_batch([f"route add default via {self.WAN_GW_V4}",
                    f"route add ::/0 via {self.WAN_GW_V6}"])
        r.run(["nft", "add", "table", "ip", "nat"])
        r.run(["nft", "add chain ip nat post { type nat hook postrouting priority 100 ; }"])
        r.run(["nft", "add", "rule", "ip", "nat", "post", "oifname", self.WAN_IF, "masquerade"])
        # A stateful rule in the inet family, as OpenWrt's firewall has: it makes the
        # kernel track IPv6 connections too (conntrack starts per family on demand).
        r.run(["nft", "add table inet filter; "
                      "add chain inet filter forwarding { type filter hook forward priority 0 ; } ; "
                      "add rule inet filter forwarding ct state established,related accept"])
        if self.static_neighbours:
            self._add_static_neighbours()
        if self.dhcp:
            self._start_dhcp()

    def _start_dhcp(self) -> None:
        """dnsmasq (DHCP only, no DNS) on the bridges, udhcpc in every client; waits for the leases."""
        self.dhcp_dir = Path(tempfile.mkdtemp(prefix=self.prefix + "dhcp-"))
        ranges = [f"--dhcp-range={','.join(self.dhcp_range(br))},255.255.255.0,{DHCP_LEASE}" for br in self.bridges]
        with open(self.dhcp_dir / "dnsmasq.log", "wb") as log:
            # --port=0: no DNS; --no-ping: offer at once (nothing else can hold an address here);
            # an empty --pid-file writes none; root, since the lease file's directory is root's.
            self.dnsmasq = self.router.popen(
                ["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--port=0", "--bind-interfaces",
                 *(f"--interface={br}" for br in self.bridges), *ranges, f"--dhcp-leasefile={self.leases_file}",
                 "--pid-file=", "--no-ping", "--dhcp-authoritative", "--user=root", "--log-facility=-",
                 "--log-dhcp"], stdout=log, stderr=subprocess.STDOUT)
        self.router.wait_listening(67, udp=True)
        for c in self.clients:
            with open(self.dhcp_dir / f"udhcpc-{c.name}.log", "wb") as log:
                # As OpenWrt's netifd runs it: foreground, the hostname as option 12, retrying forever.
                c.ns.popen(["udhcpc", "-f", "-t", "0", "-T", "1", "-i", c.ifname, "-x", f"hostname:{c.name}",
                            "-s", str(UDHCPC_SCRIPT)], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + DHCP_WAIT_S
        for c in self.clients:
            while not (addrs := _ipv4_addresses(c.ns, c.ifname)) or c.mac not in self.leases():
                if time.monotonic() > deadline:
                    log_text = (self.dhcp_dir / "dnsmasq.log").read_text(errors="replace")[-2000:]
                    raise TimeoutError(f"{c.name} got no DHCP lease within {DHCP_WAIT_S}s; dnsmasq:\n{log_text}")
                time.sleep(0.05)
            c.ipv4 = addrs[0]

    def _add_static_neighbours(self) -> None:
        """Permanent ARP/ND (and bridge FDB) entries so links stay silent after setup."""
        perm = "nud permanent"
        r_cmds = [f"neigh replace {a} lladdr {self.INET_MAC} dev {self.WAN_IF} {perm}"
                  for a in (self.WAN_GW_V4, self.WAN_GW_V6)]
        fdb = []  # known unicast destinations are never flooded to the other clients
        for c in self.clients:
            r_cmds += [f"neigh replace {a} lladdr {c.mac} dev {c.bridge} {perm}"
                       for a in (c.ipv4, c.ipv6)]
            fdb.append(f"fdb replace {c.mac} dev {c.port} master static")
            c.ns.ip_batch([f"neigh replace {a} lladdr {self.bridge_mac(c.bridge)} dev {c.ifname} "
                           f"{perm}" for a in self.bridge_addresses(c.bridge)])
        self.router.ip_batch(r_cmds)
        self.router.ip_batch(fdb, tool="bridge")
        self.internet.ip_batch([f"neigh replace {a} lladdr {self.WAN_MAC} dev {self.INET_IF} {perm}"
                                for a in (self.WAN_V4, self.WAN_V6)])


class PortForward:
    """Forward TCP from a listener in this process's namespace to `target` inside ns.

    Lets a browser or curl in the root namespace reach a daemon that listens only
    inside the router namespace.  listen=("127.0.0.1", 0) picks a free port (.port).
    """

    def __init__(self, listen: tuple[str, int], ns: Netns, target: tuple[str, int]) -> None:
        self.ns, self.target = ns, target
        self._listener = socket.socket(_family(listen[0]), socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(listen)
        self._listener.listen(64)
        self._listener.settimeout(0.2)  # accept() is not woken by close() from another thread
        self.port: int = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._socks: set[socket.socket] = set()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True, name="portfwd")
        self._thread.start()

    def __enter__(self) -> PortForward:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        """Connect into the namespace and copy both ways until both sides are done."""
        pair = {conn}
        try:
            remote = self.ns.socket(_family(self.target[0]), socket.SOCK_STREAM)
            pair.add(remote)
            with self._lock:
                if self._stop.is_set():
                    return
                self._socks |= pair
            remote.settimeout(10)
            remote.connect(self.target)
            remote.settimeout(None)
            upstream = threading.Thread(target=_pump, args=(conn, remote), daemon=True)
            upstream.start()
            _pump(remote, conn)
            upstream.join()
        except OSError:
            pass
        finally:
            with self._lock:
                self._socks -= pair
            for s in pair:
                s.close()

    def close(self) -> None:
        """Stop accepting and cut every open forwarded connection."""
        self._stop.set()
        self._listener.close()
        self._thread.join(2)
        with self._lock:
            for s in self._socks:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


class Capture:
    """tcpdump on an interface inside a namespace, for exact per-frame checks."""

    def __init__(self, ns: Netns, iface: str, path: str | os.PathLike | None = None,
                 extra_args: Sequence[str] = ()) -> None:
        self.ns, self.iface, self.extra_args = ns, iface, list(extra_args)
        self._tmpdir = None if path else tempfile.TemporaryDirectory(prefix="bx-pcap-")
        self.path = Path(path) if path else Path(self._tmpdir.name) / f"{iface}.pcap"
        self.proc: subprocess.Popen | None = None
        self.stderr_lines: list[str] = []

    def __enter__(self) -> Capture:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def start(self, timeout: float = 10.0) -> None:
        """Start tcpdump; return once it reports "listening on" (i.e. the socket is capturing)."""
        # -Z root: otherwise tcpdump drops to user "tcpdump" before opening the file.
        self.proc = self.ns.popen(
            ["tcpdump", "-i", self.iface, "-w", str(self.path), "-s", "256", "-B", "8192",
             "--immediate-mode", "-U", "-Z", "root", *self.extra_args],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        ready = threading.Event()

        def reader(stream: Any) -> None:  # keeps draining so tcpdump never blocks on stderr
            for line in stream:
                self.stderr_lines.append(line.rstrip())
                if "listening on" in line:
                    ready.set()
            ready.set()  # EOF: tcpdump exited

        self._reader = threading.Thread(target=reader, args=(self.proc.stderr,), daemon=True)
        self._reader.start()
        if not ready.wait(timeout) or self.proc.poll() is not None:
            self.stop()
            raise RuntimeError(f"tcpdump failed on {self.iface}: {self.stderr_lines}")

    def stop(self) -> None:
        """SIGINT makes tcpdump flush the file and exit cleanly."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                _signal_group(self.proc, signal.SIGKILL)
                self.proc.wait()
            self._reader.join(5)  # the final statistics lines

    @property
    def dropped(self) -> int | None:
        """Kernel drops reported by tcpdump at exit; non-zero makes byte checks meaningless."""
        found = [re.match(r"(\d+) packets? dropped by kernel", ln) for ln in self.stderr_lines]
        return next((int(m.group(1)) for m in found if m), None)

    def frames(self) -> list[Frame]:
        return read_pcap(self.path)


LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2 = 1, 113, 276
_VLAN_TPIDS = (0x8100, 0x88A8)
_IPV6_EXT_HEADERS = (0, 43, 60)  # hop-by-hop, routing, destination options


@dataclass
class Frame:
    """One captured frame, decoded just enough for byte-exact accounting."""

    wire_len: int  # pcap orig_len: length on the wire including the link header
    l3_len: int  # wire_len minus link header (14 for Ethernet) and 4 per VLAN tag
    ethertype: int | None  # after any VLAN tags
    src_mac: str | None = None
    dst_mac: str | None = None  # None for cooked (SLL/SLL2) captures
    vlan_ids: list[int] = field(default_factory=list)
    src_ip: str | None = None
    dst_ip: str | None = None
    l4_proto: int | None = None
    src_port: int = 0  # TCP/UDP, first fragments only; 0 otherwise
    dst_port: int = 0
    ts: float = 0.0


def read_pcap(path: str | os.PathLike) -> list[Frame]:
    """Parse a classic pcap file (either byte order, µs or ns timestamps; not pcapng)."""
    data = Path(path).read_bytes()
    for endian in "<>":
        magic = struct.unpack(endian + "I", data[:4])[0] if len(data) >= 24 else 0
        if magic in (0xA1B2C3D4, 0xA1B23C4D):
            break
    else:
        raise ValueError(f"{path}: not a classic pcap file")
    tsdiv = 1e6 if magic == 0xA1B2C3D4 else 1e9
    linktype = struct.unpack(endian + "I", data[20:24])[0] & 0x0FFFFFFF
    frames, off = [], 24
    while off + 16 <= len(data):
        sec, frac, incl, orig = struct.unpack(endian + "IIII", data[off:off + 16])
        frames.append(_parse_frame(data[off + 16:off + 16 + incl], orig, linktype, sec + frac / tsdiv))
        off += 16 + incl
    return frames


def _parse_frame(pkt: bytes, orig: int, linktype: int, ts: float) -> Frame:
    def u16(at: int) -> int:
        return struct.unpack("!H", pkt[at:at + 2])[0] if len(pkt) >= at + 2 else -1

    dst = src = None
    if linktype == LINKTYPE_ETHERNET:
        p, etype = 14, u16(12)
        dst, src = _mac(pkt[0:6]), _mac(pkt[6:12])
    elif linktype == LINKTYPE_LINUX_SLL:  # type, arphrd, halen, addr[8], protocol
        p, etype = 16, u16(14)
        src = _mac(pkt[6:12]) if u16(4) == 6 else None
    elif linktype == LINKTYPE_LINUX_SLL2:  # protocol, rsvd, ifindex, arphrd, type, halen, addr[8]
        p, etype = 20, u16(0)
        src = _mac(pkt[12:18]) if len(pkt) > 11 and pkt[11] == 6 else None
    else:
        raise ValueError(f"unsupported pcap link type {linktype}")
    f = Frame(wire_len=orig, l3_len=0, ethertype=etype if etype >= 0 else None,
              src_mac=src, dst_mac=dst, ts=ts)
    while f.ethertype in _VLAN_TPIDS and len(pkt) >= p + 4:
        f.vlan_ids.append(u16(p) & 0x0FFF)
        f.ethertype, p = u16(p + 2), p + 4
    f.l3_len = orig - p
    l3 = pkt[p:]
    q = -1  # L4 offset when the ports are in this frame
    if f.ethertype == 0x0800 and len(l3) >= 20:
        f.l4_proto = l3[9]
        f.src_ip, f.dst_ip = (socket.inet_ntop(socket.AF_INET, l3[a:a + 4]) for a in (12, 16))
        if not struct.unpack("!H", l3[6:8])[0] & 0x1FFF:
            q = (l3[0] & 0x0F) * 4
    elif f.ethertype == 0x86DD and len(l3) >= 40:
        f.src_ip, f.dst_ip = (socket.inet_ntop(socket.AF_INET6, l3[a:a + 16]) for a in (8, 24))
        nh, q = l3[6], 40
        while nh in _IPV6_EXT_HEADERS and len(l3) >= q + 2:
            nh, q = l3[q], q + 8 * (l3[q + 1] + 1)
        if nh == 44 and len(l3) > q:  # fragment header
            nh, q = l3[q], (q + 8 if not struct.unpack("!H", l3[q + 2:q + 4])[0] & 0xFFF8 else -1)
        f.l4_proto = nh
    if f.l4_proto in (6, 17) and q >= 0 and len(l3) >= q + 4:
        f.src_port, f.dst_port = struct.unpack("!HH", l3[q:q + 4])
    return f


def _mac(b: bytes) -> str | None:
    return ":".join(f"{x:02x}" for x in b) if len(b) == 6 else None


def _family(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _pump(src: socket.socket, dst: socket.socket) -> None:
    """Copy src to dst until EOF, then half-close dst so the peer sees EOF too."""
    with contextlib.suppress(OSError):
        while data := src.recv(65536):
            dst.sendall(data)
        dst.shutdown(socket.SHUT_WR)


def _run(cmd: Sequence[str], check: bool = True, capture: bool = True,
         timeout: float = CMD_TIMEOUT_S, **kw: Any) -> subprocess.CompletedProcess:
    """subprocess.run with text I/O and an error that includes the command's stderr."""
    kw.setdefault("text", True)
    if capture:
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
    res = subprocess.run(list(cmd), timeout=timeout, **kw)
    if check and res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({res.returncode}): {(res.stderr or '').strip()}")
    return res


def _ipv4_addresses(ns: Netns, ifname: str) -> list[str]:
    info = json.loads(ns.ip("-j", "-4", "addr", "show", "dev", ifname).stdout)
    return [a["local"] for i in info for a in i.get("addr_info", [])]


def _delete_netns(name: str) -> None:
    """SIGKILL anything still inside (not started by us via popen), then delete it."""
    if not (NETNS_DIR / name).exists():
        return
    pids = _run(["ip", "netns", "pids", name], check=False).stdout.split()
    for pid in {int(p) for p in pids if p.isdigit()} - {os.getpid()}:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _run(["ip", "netns", "del", name], check=False)


def _signal_group(p: subprocess.Popen, sig: int) -> None:
    """Signal p's process group (p leads its own session), or just p if it does not."""
    with contextlib.suppress(ProcessLookupError):
        if os.getpgid(p.pid) == p.pid:
            os.killpg(p.pid, sig)
        else:
            p.send_signal(sig)
