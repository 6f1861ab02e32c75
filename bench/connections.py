"""Figure 4: dumping and counting a big conntrack table.

Entries are created for real in the router: a raw socket in a client sends
one UDP datagram per source port to the internet server, each of which the
router tracks (and NATs). The dump and the counting are the daemon's own
code, run in this process on a netlink socket inside the router.
"""

from __future__ import annotations

import ipaddress
import socket
import statistics
import struct
import time
import tracemalloc

from bandix.collect import conntrack
from bandix.collect.connections import Attribution, classify
from bandix.collect.neighbours import NeighbourTable
from bandix.collect.prefixes import ALWAYS_LAN
from tests.vrouter import VirtualRouter

SIZES = (10_000, 50_000)
TARGET_S = 0.5  # CPU seconds for 50,000 entries


def _udp_packet(src: str, dst: str, sport: int) -> bytes:
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28 + 4, 0, 0, 64, 17, 0,
                         socket.inet_aton(src), socket.inet_aton(dst))
    return header + struct.pack("!HHHH", sport, 9, 12, 0) + b"bndx"


def fill(vr: VirtualRouter, count: int, first_port: int) -> None:
    """`count` new UDP entries in the router's table."""
    c1 = vr.clients[0]
    raw = c1.ns.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    try:
        for i in range(count):
            port = first_port + i
            src = f"192.168.77.{11 + (port >> 16)}" if port >> 16 else c1.ipv4
            raw.sendto(_udp_packet(src, vr.SERVER_V4, port & 0xFFFF or 1), (vr.SERVER_V4, 0))
    finally:
        raw.close()


def measure(vr: VirtualRouter, neighbours: NeighbourTable, trace: bool = False) -> tuple[float, float, int, int]:
    """(CPU seconds, wall seconds, peak bytes, entries) of one dump and count.

    Peak memory comes from a separate run under tracemalloc, which slows
    every allocation down and would spoil the times.
    """
    prefixes = [*ALWAYS_LAN, ipaddress.ip_network("192.168.77.0/24")]
    sock = vr.router.socket(socket.AF_NETLINK, socket.SOCK_RAW, conntrack.NETLINK_NETFILTER)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.bind((0, 0))
    if trace:
        tracemalloc.start()
    cpu, wall = time.process_time(), time.perf_counter()
    try:
        snap = classify(conntrack.dump_brief(sock), Attribution(neighbours, prefixes), neighbours)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        peak = tracemalloc.get_traced_memory()[1] if trace else 0
    finally:
        tracemalloc.stop()
        sock.close()
    return cpu, wall, peak, snap.entries


def conntrack_figures(vr: VirtualRouter) -> None:
    print("\n4. Connection statistics: dump and count the router's conntrack table (the daemon's code, "
          "median of 3)")
    vr.router.run(["sysctl", "-qw", "net.netfilter.nf_conntrack_udp_timeout=600"])
    neighbours = NeighbourTable(set())
    for c in vr.clients:
        neighbours._learn(c.mac, c.ipv4, time.time(), 0.0)  # as a neighbour event would
    print(f"   {'entries':>9} {'CPU s':>7} {'wall s':>7} {'µs/entry':>9} {'peak KB':>8}")
    made = 0
    for size in SIZES:
        fill(vr, size - made, 1024 + made)
        made = size
        time.sleep(0.5)
        runs = [measure(vr, neighbours) for _ in range(3)]
        cpu = statistics.median(r[0] for r in runs)
        wall = statistics.median(r[1] for r in runs)
        peak = measure(vr, neighbours, trace=True)[2]
        entries = runs[-1][3]
        verdict = f"  target < {TARGET_S} s: {'PASS' if cpu < TARGET_S else 'MISS'}" if size == SIZES[-1] else ""
        print(f"   {entries:9d} {cpu:7.3f} {wall:7.3f} {cpu / entries * 1e6:9.2f} {peak / 1024:8.0f}{verdict}")
