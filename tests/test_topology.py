"""Counting across the shapes a real LAN takes: several bridges, VLAN tags,
IPv6 extension headers, renumbered prefixes, and frames that are not IP."""

import ipaddress
import socket
import struct
import time

import pytest

from bandix.bpf import layout
from bandix.bpf.counters import read_health
from bandix.bpf.maps import open_pinned
from bandix.bpf.prefixes import read_lan_table
from tests.traffic import Flow, counters, delta, iperf3, l3_truth, settle

TWO_BRIDGES = {"bridges": ["br-lan", "br-guest"], "clients": [("c1", "br-lan"), ("c2", "br-guest")]}


@pytest.mark.parametrize("vrouter", [TWO_BRIDGES], indirect=True)
def test_two_bridges_are_both_counted(vrouter, bandix):
    daemon = bandix(ifaces=("br-lan", "br-guest"))
    c1, c2 = vrouter.client("c1"), vrouter.client("c2")
    settle(daemon)
    before = counters(daemon)
    links = {c.name: c.ns.link_stats("eth0") for c in (c1, c2)}
    iperf3(c1, vrouter.internet, vrouter.SERVER_V4, "-n", "200K")
    iperf3(c2, vrouter.internet, vrouter.SERVER_V6, "-n", "200K", "-R")
    settle(daemon)
    after = counters(daemon)
    for c in (c1, c2):
        truth = l3_truth(c, links[c.name], c.ns.link_stats("eth0"))
        assert delta(after, before, (c.mac, "wan", "tx")) == truth["tx"]
        assert delta(after, before, (c.mac, "wan", "rx")) == truth["rx"]

    # Between the two bridges the router routes: LAN traffic for both devices.
    settle(daemon)
    before = counters(daemon)
    c2.ns.popen(["iperf3", "-s", "-1", "-B", c2.ipv4])
    c2.ns.wait_listening(5201)
    c1.ns.run(["iperf3", "-c", c2.ipv4, "-n", "100K"])
    settle(daemon)
    after = counters(daemon)
    assert delta(after, before, (c1.mac, "lan", "tx")).bytes > 50_000
    assert delta(after, before, (c2.mac, "lan", "rx")) == delta(after, before, (c1.mac, "lan", "tx"))
    assert delta(after, before, (c1.mac, "wan", "tx")) == Flow(0, 0)


def raw_mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def _checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    total = (total >> 16) + (total & 0xFFFF)
    return ~(total + (total >> 16)) & 0xFFFF


def ipv4_udp(src: str, dst: str, payload: int) -> bytes:
    """A well-formed IPv4/UDP packet (L3 bytes = 28 + payload)."""
    length = 28 + payload
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, length, 1, 0, 64, 17, 0,
                         socket.inet_aton(src), socket.inet_aton(dst))
    header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
    return header + struct.pack("!HHHH", 4000, 9, 8 + payload, 0) + b"v" * payload


def ipv6_udp(src: str, dst: str, payload: int) -> bytes:
    """An IPv6/UDP packet (L3 bytes = 48 + payload)."""
    header = struct.pack("!IHBB16s16s", 6 << 28, 8 + payload, 17, 64,
                         socket.inet_pton(socket.AF_INET6, src), socket.inet_pton(socket.AF_INET6, dst))
    return header + struct.pack("!HHHH", 4000, 9, 8 + payload, 0) + b"v" * payload


def tags(*vlans: tuple[int, int]) -> bytes:
    """802.1Q/802.1ad tags: (TPID, VLAN id) pairs, outermost first."""
    return b"".join(struct.pack("!HH", tpid, vid) for tpid, vid in vlans)


def test_vlan_tagged_frames_count_l3_bytes(vrouter, bandix):
    """Tags sent by a device arrive offloaded (the kernel strips them into the
    skb); tags the router sends stay in the data, one or two deep. Either way
    only the IP packet counts."""
    c1 = vrouter.clients[0]
    daemon = bandix()
    settle(daemon)
    before = counters(daemon)
    router_mac, device_mac = raw_mac(vrouter.bridge_mac("br-lan")), raw_mac(c1.mac)
    lan_v4 = vrouter.bridge_addresses("br-lan")[0]

    up = c1.ns.socket(socket.AF_PACKET, socket.SOCK_RAW)
    up.bind(("eth0", 0))
    uploads = {"lan": [ipv4_udp(c1.ipv4, lan_v4, n) for n in (10, 700, 1400)],
               "wan": [ipv4_udp(c1.ipv4, vrouter.SERVER_V4, n) for n in (100, 200)]}
    for packet in uploads["lan"] + uploads["wan"]:
        up.send(router_mac + device_mac + tags((0x8100, 10)) + struct.pack("!H", 0x0800) + packet)

    down = vrouter.router.socket(socket.AF_PACKET, socket.SOCK_RAW)
    down.bind(("br-lan", 0))
    downloads = {"lan": [ipv4_udp(lan_v4, c1.ipv4, 300)],
                 "wan": [ipv6_udp(vrouter.SERVER_V6, c1.ipv6, 500), ipv4_udp(vrouter.SERVER_V4, c1.ipv4, 50)]}
    down.send(device_mac + router_mac + tags((0x8100, 10)) + struct.pack("!H", 0x0800) + downloads["lan"][0])
    down.send(device_mac + router_mac + tags((0x88A8, 20), (0x8100, 10)) + struct.pack("!H", 0x86DD)
              + downloads["wan"][0])
    down.send(device_mac + router_mac + tags((0x88A8, 20), (0x8100, 10)) + struct.pack("!H", 0x0800)
              + downloads["wan"][1])
    up.close()
    down.close()

    settle(daemon)
    after = counters(daemon)
    for zone in ("lan", "wan"):
        sent_up, sent_down = uploads[zone], downloads[zone]
        assert delta(after, before, (c1.mac, zone, "tx")) == Flow(sum(map(len, sent_up)), len(sent_up)), zone
        assert delta(after, before, (c1.mac, zone, "rx")) == Flow(sum(map(len, sent_down)), len(sent_down)), zone


def test_ipv6_extension_headers_do_not_change_the_count(vrouter, bandix):
    c1 = vrouter.clients[0]
    router_v6 = vrouter.bridge_addresses("br-lan")[1]
    daemon = bandix()
    settle(daemon)
    before, link_before = counters(daemon), c1.ns.link_stats("eth0")
    sock = c1.ns.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    # Hop-by-hop options header (PadN) and a destination options header.
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_HOPOPTS, bytes([0, 0, 1, 4, 0, 0, 0, 0]))
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_DSTOPTS, bytes([0, 0, 1, 4, 0, 0, 0, 0]))
    for size in (10, 500, 1200):
        sock.sendto(b"x" * size, (router_v6, 9))
    sock.close()
    settle(daemon)
    truth = l3_truth(c1, link_before, c1.ns.link_stats("eth0"))
    assert truth["tx"].packets == 3 and truth["tx"].bytes == 3 * (40 + 8 + 8 + 8) + 1710
    assert delta(counters(daemon), before, (c1.mac, "lan", "tx")) == truth["tx"]


def _packet_socket(ns, ethertype: int):
    sock = ns.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ethertype))
    sock.settimeout(2)
    return sock


def test_frames_that_are_not_ip_pass_uncounted(vrouter, bandix, tmp_pin_dir):
    c1 = vrouter.clients[0]
    daemon = bandix()
    settle(daemon)
    before = counters(daemon)
    router_mac, own_mac = raw_mac(vrouter.bridge_mac("br-lan")), raw_mac(c1.mac)
    # Receivers bound to an ethertype get frames after TC ingress: proof nothing was dropped.
    experimental = _packet_socket(vrouter.router, 0x88B5)
    experimental.bind(("br-lan", 0))
    ip_rx = _packet_socket(vrouter.router, 0x0800)
    ip_rx.bind(("br-lan", 0))
    sender = c1.ns.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sender.bind(("eth0", 0))
    for _ in range(5):
        sender.send(router_mac + own_mac + struct.pack("!H", 0x88B5) + b"\0" * 100)
    truncated = router_mac + own_mac + struct.pack("!H", 0x0800) + b"\x45\0\0\x14" + b"\0" * 6  # 10-byte "IP header"
    sender.send(truncated)
    received = [experimental.recv(2048) for _ in range(5)]
    assert all(len(f) == 114 for f in received)
    got = ip_rx.recv(2048)
    assert got.startswith(truncated)  # delivered as sent (padded to the Ethernet minimum)
    settle(daemon)
    after = counters(daemon)
    for key in after:
        if key[0] == c1.mac:
            assert delta(after, before, key) == Flow(0, 0), key
    health = open_pinned(str(tmp_pin_dir / layout.MAP_HEALTH), layout.MAP_HEALTH, 4, 8, percpu=True)
    try:
        assert read_health(health)[layout.HEALTH_TRUNCATED] == 1
    finally:
        health.close()


def test_renumbered_ipv6_prefix_is_followed_without_restart(vrouter, bandix, tmp_pin_dir):
    c1 = vrouter.clients[0]
    r = vrouter.router
    daemon = bandix()
    old = ipaddress.ip_network("fd77:0:0:1::/64")
    new = ipaddress.ip_network("fd99:0:0:1::/64")

    def lan_table():
        lan = open_pinned(str(tmp_pin_dir / layout.MAP_LAN), layout.MAP_LAN, 4, 1288)
        control = open_pinned(str(tmp_pin_dir / layout.MAP_CONTROL), layout.MAP_CONTROL, 4, 4)
        try:
            return read_lan_table(lan, control)
        finally:
            lan.close()
            control.close()

    assert old in lan_table() and new not in lan_table()
    # The delegated prefix changes: the router and the device move to fd99::/64.
    r.run(["ip", "-6", "addr", "add", "fd99:0:0:1::1/64", "dev", "br-lan", "nodad"])
    r.run(["ip", "-6", "addr", "del", "fd77:0:0:1::1/64", "dev", "br-lan"])
    c1.ns.run(["ip", "-6", "addr", "add", "fd99:0:0:1::11/64", "dev", "eth0", "nodad"])
    c1.ns.run(["ip", "-6", "route", "replace", "default", "via", "fd99:0:0:1::1"])
    r.run(["ip", "-6", "neigh", "replace", "fd99:0:0:1::11", "lladdr", c1.mac, "dev", "br-lan", "nud", "permanent"])
    c1.ns.run(["ip", "-6", "neigh", "replace", "fd99:0:0:1::1", "lladdr", vrouter.bridge_mac("br-lan"),
               "dev", "eth0", "nud", "permanent"])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and new not in lan_table():
        time.sleep(0.1)
    assert new in lan_table() and old not in lan_table()

    settle(daemon)
    before, link_before = counters(daemon), c1.ns.link_stats("eth0")
    iperf3(c1, r, "fd99:0:0:1::1", "-n", "100K")
    settle(daemon)
    truth = l3_truth(c1, link_before, c1.ns.link_stats("eth0"))
    assert delta(counters(daemon), before, (c1.mac, "lan", "tx")) == truth["tx"]
    assert delta(counters(daemon), before, (c1.mac, "wan", "tx")) == Flow(0, 0)
