"""The checks inside a VM (Debian's python3; run by tests/arch/guest.sh).

The same ground truth as the host's end-to-end tests, on this machine's
kernel, byte order and word size: the project's loader and tc attach, exact
per-device bytes and packets (tests/test_accounting.py's recipe against the
client interface's kernel counters), /api/traffic/devices, DNS events through
the ring buffer, and flows through the flow map to the database. Each check
prints `PASS name` or `FAIL name: why`; the last line is `N passed, N failed`,
also written to /out/results.txt for the host.
"""

from __future__ import annotations

import ctypes
import ipaddress
import os
import platform
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path

import tests.bandixd
from tests.bandixd import Bandix, http_get, remove_state
from tests.traffic import Flow, counters, delta, iperf3, l3_truth, settle
from tests.vrouter import VirtualRouter

OUT = Path(os.environ.get("BANDIX_ARCH_OUT", "/out"))
ROOT = Path(__file__).resolve().parents[2]
DAEMON_START_S = 300.0  # imports and compiles under TCG take a while
RESULTS: list[tuple[str, str | None]] = []


def check(name: str, fn: Callable[[], object]) -> bool:
    """Run one check; record and print its outcome (and the note it returns, if any)."""
    started = time.monotonic()
    note = None
    try:
        note = fn()
        error = None
    except Exception as exc:  # every failure is reported, then the next check runs
        error = f"{type(exc).__name__}: {exc}".replace("\n", " | ")[:2000]
        traceback.print_exc()
    RESULTS.append((name, error))
    took = f"({time.monotonic() - started:.1f} s{'; ' + note if isinstance(note, str) else ''})"
    print(f"PASS {name} {took}" if error is None else f"FAIL {name} {took}: {error}", flush=True)
    return error is None


def expect(got: object, want: object, what: str) -> None:
    if got != want:
        raise AssertionError(f"{what}: got {got!r}, want {want!r}")


# --- the loader on its own: object choice, map layouts, attach, LAN table -------------------------

def check_loader() -> None:
    from pyroute2 import IPRoute

    from bandix.bpf import layout, loader, prefixes, tc
    from bandix.bpf.libbpf import lib

    obj = loader.find_object(None)
    expect(obj.name, "bandix.bpfeb.o" if sys.byteorder == "big" else "bandix.bpfel.o", "object for this byte order")
    pin_dir = Path("/sys/fs/bpf") / f"bandix-arch-{uuid.uuid4().hex[:8]}"
    libbpf = lib()
    for fn in ("bpf_map__key_size", "bpf_map__value_size"):
        getattr(libbpf, fn).restype = ctypes.c_uint32
        getattr(libbpf, fn).argtypes = [ctypes.c_void_p]
    loaded = loader.load(obj, pin_dir)
    ipr = IPRoute()
    try:
        # ctypes sizes on this ABI against the sizes in the object's BTF, as libbpf reads them.
        for name, m in loaded.maps.items():
            handle = libbpf.bpf_object__find_map_by_name(loaded._obj, name.encode())
            expect((libbpf.bpf_map__key_size(handle), libbpf.bpf_map__value_size(handle)),
                   (m.key_size, m.value_size), f"map {name} key/value size")
        expect(sorted(p.name for p in pin_dir.iterdir()), sorted(layout.PINNED_MAPS), "pins")
        ipr.link("add", ifname="bxarch0", kind="veth", peer={"ifname": "bxarch1"})
        idx = ipr.link_lookup(ifname="bxarch0")[0]
        filters = tc.attach(ipr, idx, loaded.prog_fds, 7)
        expect(sorted(f.name for f in filters), sorted((layout.PROG_INGRESS, layout.PROG_EGRESS)), "filters")
        expect(all(tc.is_attached(ipr, f) for f in filters), True, "filters listed by the kernel")
        nets = [ipaddress.ip_network(n) for n in ("192.168.77.0/24", "10.0.0.0/8", "fd77:0:0:1::/64")]
        prefixes.write_lan_table(loaded.maps[layout.MAP_LAN], loaded.maps[layout.MAP_CONTROL], nets)
        expect(prefixes.read_lan_table(loaded.maps[layout.MAP_LAN], loaded.maps[layout.MAP_CONTROL]), nets,
               "LAN table read back")
        tc.detach(ipr, filters)
        expect(tc.our_filters(ipr, idx), [], "filters after detach")
    finally:
        if ipr.link_lookup(ifname="bxarch0"):
            ipr.link("del", ifname="bxarch0")
        ipr.close()
        loaded.close()
        remove_state(pin_dir)


# --- the daemon on a virtual router ----------------------------------------------------------------

CASES = {"ipv4-wan": (4, "wan"), "ipv6-wan": (6, "wan"), "ipv4-lan": (4, "lan"), "ipv6-lan": (6, "lan")}


def accounting(vr: VirtualRouter, daemon: Bandix, family: int, zone: str) -> None:
    """tests/test_accounting.py: one window of one kind of traffic, exact against the interface."""
    other = "lan" if zone == "wan" else "wan"
    c1, c2 = vr.clients[0], vr.clients[1]
    if zone == "wan":
        server_ns, server_ip = vr.internet, vr.SERVER_V4 if family == 4 else vr.SERVER_V6
    else:
        v4, v6 = vr.bridge_addresses("br-lan")
        server_ns, server_ip = vr.router, v4 if family == 4 else v6
    settle(daemon)
    before, link_before = counters(daemon), c1.ns.link_stats("eth0")
    iperf3(c1, server_ns, server_ip, "-n", "300K", timeout=240)
    iperf3(c1, server_ns, server_ip, "-n", "300K", "-R", timeout=240)
    iperf3(c1, server_ns, server_ip, "-u", "-b", "2M", "-n", "50K", "-l", "700", timeout=240)
    c1.ns.run(["ping", f"-{family}", "-c", "3", "-i", "0.05", "-s", "1000", server_ip])
    settle(daemon)
    after, link_after = counters(daemon), c1.ns.link_stats("eth0")
    truth = l3_truth(c1, link_before, link_after)
    if not (truth["tx"].bytes > 100_000 and truth["rx"].bytes > 100_000):
        raise AssertionError(f"too little traffic crossed: {truth}")
    for direction in ("rx", "tx"):
        expect(delta(after, before, (c1.mac, zone, direction)), truth[direction], f"{zone} {direction}")
        expect(delta(after, before, (c1.mac, other, direction)), Flow(0, 0), f"{other} {direction}")
    for key in after:
        if key[0] == c2.mac:
            expect(delta(after, before, key), Flow(0, 0), f"idle device {key}")


def api_devices(vr: VirtualRouter, daemon: Bandix) -> None:
    """/api/traffic/devices says what /metrics says, for every zone and direction."""
    c1 = vr.clients[0]
    settle(daemon)
    flows = counters(daemon)
    dev = daemon.devices()[c1.mac]
    for zone in ("lan", "wan"):
        for direction in ("rx", "tx"):
            expect(dev[f"{zone}_{direction}_bytes"], flows[(c1.mac, zone, direction)].bytes, f"{zone}_{direction}")
    expect(dev["total_rx_bytes"], dev["lan_rx_bytes"] + dev["wan_rx_bytes"], "total_rx_bytes")
    expect(dev["total_tx_bytes"], dev["lan_tx_bytes"] + dev["wan_tx_bytes"], "total_tx_bytes")
    expect(dev["ip"], c1.ipv4, "ip")
    if dev["wan_tx_bytes"] < 300_000:
        raise AssertionError(f"wan_tx_bytes {dev['wan_tx_bytes']}: the accounting traffic is missing")


def dns(vr: VirtualRouter, daemon: Bandix) -> None:
    """A query and its answer over IPv4 and IPv6 reach /api/dns/queries through the ring buffer."""
    from dnslib import DNSRecord

    server = vr.internet.popen([sys.executable, "-m", "tests.dnsserver", vr.SERVER_V4, vr.SERVER_V6], cwd=ROOT,
                               stdout=subprocess.PIPE)
    if server.stdout.readline().strip() != b"listening":
        raise AssertionError("the DNS server did not start")
    asked = []
    for client, server_ip, name, qtype, want in ((vr.clients[0], vr.SERVER_V4, "a.test", "A", ["10.1.1.1"]),
                                                  (vr.clients[1], vr.SERVER_V6, "a.test", "AAAA", ["2001:db8::1"])):
        family = socket.AF_INET6 if ":" in server_ip else socket.AF_INET
        sock = client.ns.socket(family, socket.SOCK_DGRAM)
        try:
            sock.settimeout(30)
            question = DNSRecord.question(name, qtype)
            sock.sendto(question.pack(), (server_ip, 53))
            answer = DNSRecord.parse(sock.recv(4096))
            port = sock.getsockname()[1]
        finally:
            sock.close()
        expect([str(r.rdata) for r in answer.rr], want, f"answer to {name} {qtype}")
        asked.append((client, server_ip, name, qtype, question.header.id, port, want))
    deadline = time.monotonic() + 60
    while True:
        status, body = daemon.get("/api/dns/queries?page_size=100")
        expect(status, 200, "status of /api/dns/queries")
        got = body["data"]["queries"]
        if len(got) >= 2 * len(asked) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    expect(len(got), 2 * len(asked), "DNS records")
    for client, server_ip, name, qtype, txid, port, want in asked:
        pair = [r for r in got if r["transaction_id"] == txid and r["domain"] == name + "."]
        query = next(r for r in pair if r["is_query"])
        response = next(r for r in pair if not r["is_query"])
        expect((query["source_ip"], query["source_port"], query["destination_ip"], query["destination_port"]),
               (client.ipv6 if ":" in server_ip else client.ipv4, port, server_ip, 53), f"query {name} {qtype}")
        expect((response["source_port"], response["destination_port"]), (53, port), f"response ports {name}")
        expect((query["device_mac"], response["device_mac"]), (client.mac, client.mac), "device_mac")
        expect((query["query_type"], response["response_code"], response["response_ips"]),
               (qtype, "Success", want), f"response {name} {qtype}")
        expect(query["transport"], "udp", "transport")


def quic_without_cryptography(vr: VirtualRouter, daemon: Bandix) -> None:
    """A QUIC Initial reaches a daemon that has no `cryptography` (as here: no s390x wheel).

    Only QUIC server names need it: the daemon says so once and goes on.
    """
    try:
        import cryptography  # noqa: F401
    except ImportError:
        pass
    else:
        raise AssertionError("cryptography is importable in the guest: this check needs it absent")
    # A long-header Initial of QUIC v1 (type 0), padded as clients pad it; it is never decrypted.
    initial = bytes([0xC3, 0, 0, 0, 1, 8]) + bytes(range(8)) + b"\x00\x00" + bytes(1200 - 16)
    for _ in range(2):
        sock = vr.clients[0].ns.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.sendto(initial, (vr.SERVER_V4, 443))
        finally:
            sock.close()
    settle(daemon)
    expect(daemon.devices()[vr.clients[0].mac]["ip"], vr.clients[0].ipv4, "the daemon still answers")
    log = daemon.log()
    expect("Traceback" in log, False, "a traceback in the daemon log")
    expect(log.count("QUIC server names are unavailable"), 1, "the daemon says once that QUIC names are off")
    status, _type, body = http_get(daemon.ns, "/metrics", daemon.port, daemon.host)
    expect(status, 200, "/metrics")
    expect('bandix_hellos_total{result="quic_unavailable"} 2' in body, True,
           "both Initials counted as quic_unavailable in /metrics")


def rate_limit(vr: VirtualRouter, daemon: Bandix, pin_dir: Path) -> str:
    """tests/test_limits.py's check at one rate: the rule reaches the kernel's map and holds TCP downloads."""
    from bandix.bpf import layout
    from bandix.bpf.limits import read_limits
    from bandix.bpf.maps import open_pinned

    c2, rate = vr.clients[1], 4 * 125_000
    rule = {"mac": c2.mac, "time_slot": {"start": "00:00", "end": "24:00", "days": [1, 2, 3, 4, 5, 6, 7]},
            "wan_rx_rate_limit": rate, "wan_tx_rate_limit": rate}
    expect(daemon.send("POST", "/api/traffic/limits/schedule", rule)[0], 200, "POST of the limit")
    limits = open_pinned(str(pin_dir / layout.MAP_LIMITS), layout.MAP_LIMITS, ctypes.sizeof(layout.MacKey),
                         ctypes.sizeof(layout.Limit))
    try:
        expect({mac.hex(":"): rates for mac, rates in read_limits(limits).items()}, {c2.mac: (rate, rate)},
               "the limits map")
    finally:
        limits.close()
    report = iperf3(c2, vr.internet, vr.SERVER_V4, "-t", "4", "-O", "1", "-R", timeout=240)
    got = report["end"]["sum_received"]["bits_per_second"] / 8
    if not 0.85 * rate <= got <= 1.05 * rate:
        raise AssertionError(f"download goodput {got / rate:.1%} of the limit")
    return f"goodput {got / rate:.1%} of the limit"


def tcp_exchange(vr: VirtualRouter, family: int, up: int, down: int, port: int) -> tuple[int, dict[str, Flow]]:
    """One TCP connection from client 1 to the internet server: `up` bytes sent, `down` received.

    Returns the client's local port and what crossed its interface meanwhile
    (nothing else does: static neighbours, no other traffic).
    """
    c1 = vr.clients[0]
    af = socket.AF_INET6 if family == 6 else socket.AF_INET
    server_ip = vr.SERVER_V6 if family == 6 else vr.SERVER_V4
    listener = vr.internet.socket(af, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((server_ip, port))
    listener.listen(1)
    listener.settimeout(60)
    received: list[int] = []

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(60)
            n = 0
            while data := conn.recv(65536):
                n += len(data)
            received.append(n)
            conn.sendall(b"d" * down)

    thread = threading.Thread(target=serve, daemon=True)
    before = c1.ns.link_stats("eth0")
    thread.start()
    sock = c1.ns.socket(af, socket.SOCK_STREAM)
    try:
        sock.settimeout(60)
        sock.connect((server_ip, port))
        local_port = sock.getsockname()[1]
        sock.sendall(b"u" * up)
        sock.shutdown(socket.SHUT_WR)
        got = 0
        while data := sock.recv(65536):
            got += len(data)
    finally:
        sock.close()
        thread.join(60)
        listener.close()
    expect((received, got), ([up], down), "bytes through the connection")
    time.sleep(1.0)  # the last ACK
    return local_port, l3_truth(c1, before, c1.ns.link_stats("eth0"))


def flow_rows(db: Path, proto: int, lan: tuple[str, int], peer: tuple[str, int]) -> dict[str, Flow]:
    """Bytes and packets the flow table holds for one connection, per direction."""
    out = {}
    with sqlite3.connect(db) as conn:
        for direction, src, dst in (("up", lan, peer), ("down", peer, lan)):
            row = conn.execute("SELECT coalesce(sum(bytes), 0), coalesce(sum(packets), 0) FROM flow_1m_5t "
                               "WHERE direction = ? AND proto = ? AND src_ip = ? AND src_port = ? AND dst_ip = ? "
                               "AND dst_port = ?", (direction, proto, *src, *dst)).fetchone()
            out[direction] = Flow(*row)
    return out


# --- the run ---------------------------------------------------------------------------------------

def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    tests.bandixd.ARTIFACTS = OUT  # the daemon's log goes to the host; the checkout is read-only
    print(f"bandix-arch guest: {platform.machine()} {sys.byteorder}-endian, {ctypes.sizeof(ctypes.c_void_p) * 8}-bit "
          f"pointers, kernel {platform.release()}, Python {platform.python_version()}", flush=True)
    check("loader: object, map layouts, tc attach, LAN table", check_loader)
    VirtualRouter.remove_stale()
    data = Path("/tmp/bandix-data")
    pin_dir = Path("/sys/fs/bpf") / f"bandix-arch-{uuid.uuid4().hex[:8]}"
    flows: list[tuple[str, int, tuple[str, int], tuple[str, int], dict[str, Flow]]] = []
    daemon = None
    try:
        with VirtualRouter(clients=2) as vr:
            vr.wait_quiet()
            daemon = Bandix(vr.router, ["--iface", "br-lan", "--enable-traffic", "--enable-dns", "--enable-flows",
                                        "--data-dir", str(data)], pin_dir)
            if check("daemon starts and answers", lambda: daemon.start(timeout=DAEMON_START_S)):
                for case, (family, zone) in CASES.items():
                    check(f"exact bytes and packets {case}", lambda f=family, z=zone: accounting(vr, daemon, f, z))
                check("/api/traffic/devices", lambda: api_devices(vr, daemon))
                check("DNS events through the ring buffer", lambda: dns(vr, daemon))
                check("QUIC Initial without cryptography", lambda: quic_without_cryptography(vr, daemon))
                check("rate limit 4 Mbit/s through the limits map", lambda: rate_limit(vr, daemon, pin_dir))
                for family, port in ((4, 8080), (6, 8081)):
                    def run(family: int = family, port: int = port) -> None:
                        server = vr.SERVER_V6 if family == 6 else vr.SERVER_V4
                        c1 = vr.clients[0]
                        lport, truth = tcp_exchange(vr, family, 120_000, 80_000, port)
                        flows.append((f"IPv{family}", 6, (c1.ipv6 if family == 6 else c1.ipv4, lport),
                                      (server, port), truth))
                    check(f"TCP exchange IPv{family} for the flow map", run)
            if daemon.proc is not None:
                daemon.stop()  # the last flow readings are written before it exits
            for name, proto, lan, peer, truth in flows:
                check(f"flows through the flow map {name}", lambda p=proto, lan=lan, peer=peer, t=truth: expect(
                    flow_rows(data / "bandix.db", p, lan, peer), {"up": t["tx"], "down": t["rx"]}, "flow rows"))
            if daemon.proc is not None:
                check("daemon log has no traceback", lambda: expect("Traceback" in daemon.log(), False, "traceback"))
    finally:
        if daemon is not None:
            daemon.stop()
        remove_state(pin_dir)
    passed = sum(1 for _, error in RESULTS if error is None)
    summary = f"{passed} passed, {len(RESULTS) - passed} failed"
    lines = [f"PASS {n}" if e is None else f"FAIL {n}: {e}" for n, e in RESULTS]
    (OUT / "results.txt").write_text("\n".join([*lines, summary]) + "\n")
    print(summary, flush=True)
    return 0 if passed == len(RESULTS) else 1


if __name__ == "__main__":
    sys.exit(main())
