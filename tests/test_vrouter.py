"""End-to-end checks that the namespace virtual router really routes, NATs and stays quiet."""
from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

from tests.vrouter import LINKTYPE_ETHERNET, Capture, PortForward, VirtualRouter, read_pcap

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)")
REPO = Path(__file__).resolve().parent.parent
CLIENTS = [("c1", "br-lan"), ("c2", "br-lan"), ("c3", "br-guest")]


def netns_names() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def vr():
    with VirtualRouter(bridges=["br-lan", "br-guest"], clients=CLIENTS) as router:
        yield router


def test_layout(vr: VirtualRouter) -> None:
    assert [(c.mac, c.ipv4, c.ipv6, c.port) for c in vr.clients] == [
        ("02:bd:00:00:00:01", "192.168.77.11", "fd77:0:0:1::11", "p01"),
        ("02:bd:00:00:00:02", "192.168.77.12", "fd77:0:0:1::12", "p02"),
        ("02:bd:00:00:01:01", "192.168.78.11", "fd77:0:0:2::11", "p11")]
    assert vr.bridge_addresses("br-guest") == ("192.168.78.1", "fd77:0:0:2::1")
    names = netns_names()
    assert all(ns.name in names and ns.name.startswith(vr.prefix) for ns in vr.namespaces)


@pytest.mark.parametrize("idx", range(len(CLIENTS)))
@pytest.mark.parametrize("target", ["gw4", "gw6", "server4", "server6"])
def test_ping(vr: VirtualRouter, idx: int, target: str) -> None:
    c = vr.clients[idx]
    gw4, gw6 = vr.bridge_addresses(c.bridge)
    addr = {"gw4": gw4, "gw6": gw6, "server4": vr.SERVER_V4, "server6": vr.SERVER_V6}[target]
    res = c.ns.run(["ping", "-c", "1", "-W", "2", addr], check=False)
    assert res.returncode == 0, res.stdout + res.stderr


def test_nat_and_routed_v6_source_addresses(vr: VirtualRouter) -> None:
    """IPv4 arrives at the internet side masqueraded, IPv6 with the client's own address."""
    c = vr.clients[2]
    with Capture(vr.internet, vr.INET_IF) as cap:
        c.ns.run(["ping", "-c", "1", "-W", "2", vr.SERVER_V4])
        c.ns.run(["ping", "-c", "1", "-W", "2", vr.SERVER_V6])
    srcs = {(f.dst_ip, f.src_ip) for f in cap.frames() if f.l4_proto in (1, 58)}
    assert (vr.SERVER_V4, vr.WAN_V4) in srcs
    assert (vr.SERVER_V6, c.ipv6) in srcs


@pytest.mark.parametrize("server", ["SERVER_V4", "SERVER_V6"])
def test_iperf_tcp_transfer(vr: VirtualRouter, server: str) -> None:
    srv = vr.internet.popen(["iperf3", "-s", "-1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    vr.internet.wait_listening(5201)
    before = vr.router.link_stats(vr.WAN_IF)
    res = vr.clients[0].ns.run(["iperf3", "-J", "-c", getattr(vr, server), "-n", "1M"], timeout=60)
    # sum_received lags with -n (server stops counting at TEST_END), so check what was
    # sent and what actually left the router on the WAN link.
    assert json.loads(res.stdout)["end"]["sum_sent"]["bytes"] >= 1 << 20
    assert srv.wait(10) == 0
    assert vr.router.link_stats(vr.WAN_IF)["tx_bytes"] - before["tx_bytes"] > 1 << 20


def test_capture_matches_counters_exactly(vr: VirtualRouter) -> None:
    """Frames seen on br-lan account for every byte the client's eth0 sent, no more."""
    c = vr.clients[0]
    vr.wait_quiet()
    with Capture(vr.router, "br-lan") as cap:
        before = c.ns.link_stats("eth0")
        # 1000-byte payload: frames exceed the 256-byte snaplen, so orig_len matters.
        c.ns.run(["ping", "-c", "5", "-i", "0.05", "-s", "1000", "-W", "2", vr.SERVER_V4])
        after = c.ns.link_stats("eth0")
    assert cap.dropped == 0
    frames = [f for f in cap.frames() if f.src_mac == c.mac]
    pings = [f for f in frames if f.l4_proto == 1 and f.dst_ip == vr.SERVER_V4]
    assert len(pings) == 5
    assert all(f.src_ip == c.ipv4 and f.dst_mac == vr.bridge_mac("br-lan") for f in pings)
    assert all(f.wire_len == 14 + 20 + 8 + 1000 for f in pings)
    d_bytes = after["tx_bytes"] - before["tx_bytes"]
    d_pkts = after["tx_packets"] - before["tx_packets"]
    assert d_pkts == len(frames) == 5
    assert sum(f.l3_len for f in frames) == d_bytes - 14 * d_pkts


def test_port_forward_reaches_router_namespace(vr: VirtualRouter, tmp_path: Path) -> None:
    (tmp_path / "marker-bandix.txt").write_text("hello")
    probe = vr.router.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    vr.router.popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
                    cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    vr.router.wait_listening(port)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with PortForward(("127.0.0.1", 0), vr.router, ("127.0.0.1", port)) as fwd:
        for name in ("", "marker-bandix.txt"):  # two connections through one forward
            with opener.open(f"http://127.0.0.1:{fwd.port}/{name}", timeout=10) as resp:
                body = resp.read().decode()
            assert resp.status == 200
            assert ("marker-bandix.txt" if not name else "hello") in body


def test_port_forward_ipv6_target_bulk_and_half_close(vr: VirtualRouter) -> None:
    """1 MiB each way through the forward to an echo server on [::1] in the router ns."""
    srv = vr.router.socket(socket.AF_INET6)
    srv.bind(("::1", 0))
    srv.listen(1)

    def echo() -> None:
        conn, _ = srv.accept()
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)

    t = threading.Thread(target=echo, daemon=True)
    t.start()
    payload = os.urandom(1 << 20)
    with PortForward(("127.0.0.1", 0), vr.router, ("::1", srv.getsockname()[1])) as fwd, \
            socket.create_connection(("127.0.0.1", fwd.port), timeout=10) as c:
        sender = threading.Thread(target=lambda: (c.sendall(payload), c.shutdown(socket.SHUT_WR)))
        sender.start()
        received = b"".join(iter(lambda: c.recv(65536), b""))
        sender.join()
    t.join(5)
    srv.close()
    assert received == payload


def test_dynamic_neighbours() -> None:
    with VirtualRouter(clients=1, static_neighbours=False) as vr:
        c = vr.clients[0]
        for addr in (vr.SERVER_V4, vr.SERVER_V6):
            c.ns.run(["ping", "-c", "1", "-W", "3", addr])
        assert "PERMANENT" not in vr.router.ip("neigh", "show", "dev", "br-lan").stdout


def test_close_removes_namespaces_and_processes() -> None:
    vr = VirtualRouter(clients=2).start()
    procs = [vr.internet.popen(["sleep", "300"]),
             vr.clients[1].ns.popen(["sh", "-c", "sleep 300 & sleep 300"])]
    assert sum(n.startswith(vr.prefix) for n in netns_names()) == 4
    vr.close()
    vr.close()  # idempotent
    assert not [n for n in netns_names() if n.startswith(vr.prefix)]
    assert all(p.poll() is not None and not alive(p.pid) for p in procs)


def test_failed_start_cleans_up() -> None:
    vr = VirtualRouter(bridges=["br-lan", "br-name-too-long-for-linux"], clients=1)
    with pytest.raises(RuntimeError):
        vr.start()
    assert not [n for n in netns_names() if n.startswith(vr.prefix)]


def test_keyboard_interrupt_in_with_block_cleans_up() -> None:
    with pytest.raises(KeyboardInterrupt), VirtualRouter(clients=1) as vr:
        proc = vr.router.popen(["sleep", "300"])
        raise KeyboardInterrupt
    assert not [n for n in netns_names() if n.startswith(vr.prefix)]
    assert not alive(proc.pid)


def test_real_sigint_cleans_up() -> None:
    """A real Ctrl-C (SIGINT) to a process sitting in a with-block leaves nothing behind."""
    # A shell without job control starts background jobs with SIGINT ignored, and Python
    # then installs no KeyboardInterrupt handler; restore it the way a terminal would.
    script = ("import signal, time; signal.signal(signal.SIGINT, signal.default_int_handler)\n"
              "from tests.vrouter import VirtualRouter\n"
              "with VirtualRouter(clients=1) as vr:\n"
              "    p = vr.internet.popen(['sleep', '300'])\n"
              "    print(vr.prefix, p.pid, flush=True)\n"
              "    time.sleep(60)\n")
    child = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        prefix, pid = child.stdout.readline().split()
        assert any(n.startswith(prefix) for n in netns_names())
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=20)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
            VirtualRouter.remove_stale()
    assert "KeyboardInterrupt" in err
    assert not [n for n in netns_names() if n.startswith(prefix)]
    assert not alive(int(pid))


def _pcap(endian: str, linktype: int, frames: list[tuple[bytes, int]]) -> bytes:
    out = struct.pack(endian + "IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)
    for i, (data, orig) in enumerate(frames):
        out += struct.pack(endian + "IIII", 1700000000 + i, 500000, len(data), orig) + data
    return out


@pytest.mark.parametrize("endian", ["<", ">"])
def test_read_pcap_vlan_frames(tmp_path: Path, endian: str) -> None:
    """QinQ-tagged IPv4/UDP frame plus a single-tagged IPv6/TCP one, snapped short."""
    dst, src = bytes.fromhex("02bd00000001"), bytes.fromhex("02bd01000001")
    ip4 = (bytes([0x45, 0, 0, 128, 0, 0, 0, 0, 64, 17, 0, 0]) + bytes([192, 168, 77, 11])
           + bytes([198, 51, 100, 10]) + b"\0" * 8)
    qinq = dst + src + struct.pack("!HHHHH", 0x88A8, 0x2064, 0x8100, 200, 0x0800) + ip4
    ip6 = (struct.pack("!IHBB", 0x60000000, 20, 6, 64) + bytes.fromhex("fd770000000000010000000000000011")
           + bytes.fromhex("20010db8010000000000000000000010") + b"\0" * 20)
    single = dst + src + struct.pack("!HHH", 0x8100, 7, 0x86DD) + ip6
    path = tmp_path / "vlan.pcap"
    path.write_bytes(_pcap(endian, LINKTYPE_ETHERNET, [(qinq, len(qinq) + 90), (single, len(single))]))
    f1, f2 = read_pcap(path)
    assert (f1.src_mac, f1.dst_mac) == ("02:bd:01:00:00:01", "02:bd:00:00:00:01")
    assert f1.vlan_ids == [100, 200] and f1.ethertype == 0x0800
    assert f1.wire_len == len(qinq) + 90 and f1.l3_len == f1.wire_len - 14 - 8
    assert (f1.src_ip, f1.dst_ip, f1.l4_proto) == ("192.168.77.11", "198.51.100.10", 17)
    assert f2.vlan_ids == [7] and f2.ethertype == 0x86DD and f2.l3_len == 40 + 20
    assert (f2.src_ip, f2.dst_ip, f2.l4_proto) == ("fd77:0:0:1::11", "2001:db8:100::10", 6)
    assert f2.ts == pytest.approx(1700000001.5)


def test_read_pcap_linux_sll2(tmp_path: Path) -> None:
    ip4 = bytes([0x45, 0, 0, 28, 0, 0, 0, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]) + b"\0" * 8
    sll2 = struct.pack("!HHIHBB", 0x0800, 0, 3, 1, 4, 6) + bytes.fromhex("02bd0000000a0000") + ip4
    path = tmp_path / "sll2.pcap"
    path.write_bytes(_pcap("<", 276, [(sll2, len(sll2))]))
    (f,) = read_pcap(path)
    assert (f.src_mac, f.dst_mac, f.ethertype, f.l3_len) == ("02:bd:00:00:00:0a", None, 0x0800, 28)
    assert (f.src_ip, f.dst_ip, f.l4_proto) == ("10.0.0.1", "10.0.0.2", 1)
