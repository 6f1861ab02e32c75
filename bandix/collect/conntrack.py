"""The kernel's conntrack table over netlink (ctnetlink), streamed.

A dump request for both address families; each datagram is decoded as it
arrives and its entries handed to the caller one by one, so a table of tens
of thousands of entries never becomes a list. Decoding reads only the
attributes asked for, with struct on the raw bytes: pyroute2's generic
netlink objects cost about ten times as much per entry, which matters on a
router with a big table (see bench/).
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass

NETLINK_NETFILTER = 12
NFNL_SUBSYS_CTNETLINK = 1
IPCTNL_MSG_CT_GET = 1
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLA_TYPE_MASK = 0x3FFF

# Attributes (linux/netfilter/nfnetlink_conntrack.h).
CTA_TUPLE_ORIG, CTA_TUPLE_REPLY, CTA_STATUS, CTA_PROTOINFO, CTA_TIMEOUT = 1, 2, 3, 4, 7
CTA_COUNTERS_ORIG, CTA_COUNTERS_REPLY, CTA_TIMESTAMP = 9, 10, 20
CTA_TUPLE_IP, CTA_TUPLE_PROTO = 1, 2
CTA_IP_V4_SRC, CTA_IP_V4_DST, CTA_IP_V6_SRC, CTA_IP_V6_DST = 1, 2, 3, 4
CTA_PROTO_NUM, CTA_PROTO_SRC_PORT, CTA_PROTO_DST_PORT = 1, 2, 3
CTA_PROTOINFO_TCP, CTA_PROTOINFO_TCP_STATE = 1, 1
CTA_COUNTERS_PACKETS, CTA_COUNTERS_BYTES = 1, 2
CTA_TIMESTAMP_START = 1

TCP, UDP = 6, 17
TCP_STATES = ("NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK",
              "TIME_WAIT", "CLOSE", "SYN_SENT2")
PROTOCOLS = {TCP: "tcp", UDP: "udp", 1: "icmp", 58: "icmpv6", 132: "sctp", 136: "udplite", 47: "gre"}

_NLMSG = struct.Struct("=IHHII")
_NLA = struct.Struct("=HH")
_U32_BE = struct.Struct(">I")
_U64_BE = struct.Struct(">Q")
_U16_BE = struct.Struct(">H")


class ConntrackUnavailable(OSError):
    pass


def _attrs(buf: memoryview, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(type, value start, value end) of the attributes in buf[start:end]."""
    unpack = _NLA.unpack_from
    while start + 4 <= end:
        length, kind = unpack(buf, start)
        if length < 4:
            return
        yield kind & NLA_TYPE_MASK, start + 4, start + length
        start += (length + 3) & ~3


def _tuple(buf: memoryview, start: int, end: int) -> tuple[bytes, bytes, int, int, int]:
    """(src, dst, protocol, sport, dport) of a CTA_TUPLE_* nest."""
    src = dst = b""
    proto = sport = dport = 0
    for kind, a, b in _attrs(buf, start, end):
        if kind == CTA_TUPLE_IP:
            for k, x, y in _attrs(buf, a, b):
                if k in (CTA_IP_V4_SRC, CTA_IP_V6_SRC):
                    src = bytes(buf[x:y])
                elif k in (CTA_IP_V4_DST, CTA_IP_V6_DST):
                    dst = bytes(buf[x:y])
        elif kind == CTA_TUPLE_PROTO:
            for k, x, _ in _attrs(buf, a, b):
                if k == CTA_PROTO_NUM:
                    proto = buf[x]
                elif k == CTA_PROTO_SRC_PORT:
                    sport = _U16_BE.unpack_from(buf, x)[0]
                elif k == CTA_PROTO_DST_PORT:
                    dport = _U16_BE.unpack_from(buf, x)[0]
    return src, dst, proto, sport, dport


def _tcp_state(buf: memoryview, start: int, end: int) -> int:
    for kind, a, b in _attrs(buf, start, end):
        if kind == CTA_PROTOINFO_TCP:
            for k, x, _ in _attrs(buf, a, b):
                if k == CTA_PROTOINFO_TCP_STATE:
                    return buf[x]
    return 0


def _counters(buf: memoryview, start: int, end: int) -> tuple[int, int]:
    """(packets, bytes) of a CTA_COUNTERS_* nest."""
    packets = octets = 0
    for kind, a, _ in _attrs(buf, start, end):
        if kind == CTA_COUNTERS_PACKETS:
            packets = _U64_BE.unpack_from(buf, a)[0]
        elif kind == CTA_COUNTERS_BYTES:
            octets = _U64_BE.unpack_from(buf, a)[0]
    return packets, octets


@dataclass(slots=True)
class Entry:
    """One conntrack entry. `brief` entries carry only what the counts need."""

    src: bytes  # original direction, packed address
    dst: bytes
    proto: int
    sport: int
    dport: int
    tcp_state: int = 0
    reply: tuple[bytes, bytes, int, int, int] | None = None
    timeout: int = 0
    counters: tuple[int, int, int, int] | None = None  # orig packets, bytes, reply packets, bytes
    start_ns: int = 0  # CLOCK_REALTIME nanoseconds, with nf_conntrack_timestamp


def parse_entry(buf: memoryview, start: int, end: int, full: bool) -> Entry | None:
    """An entry from the attributes after the nfgenmsg header; None if it has no tuple."""
    orig = None
    state = 0
    entry_reply = None
    timeout = 0
    counters = [0, 0, 0, 0]
    have_counters = False
    start_ns = 0
    for kind, a, b in _attrs(buf, start, end):
        if kind == CTA_TUPLE_ORIG:
            orig = _tuple(buf, a, b)
        elif kind == CTA_PROTOINFO:
            state = _tcp_state(buf, a, b)
        elif not full:
            continue
        elif kind == CTA_TUPLE_REPLY:
            entry_reply = _tuple(buf, a, b)
        elif kind == CTA_TIMEOUT:
            timeout = _U32_BE.unpack_from(buf, a)[0]
        elif kind in (CTA_COUNTERS_ORIG, CTA_COUNTERS_REPLY):
            at = 0 if kind == CTA_COUNTERS_ORIG else 2
            counters[at], counters[at + 1] = _counters(buf, a, b)
            have_counters = True
        elif kind == CTA_TIMESTAMP:
            for k, x, _ in _attrs(buf, a, b):
                if k == CTA_TIMESTAMP_START:
                    start_ns = _U64_BE.unpack_from(buf, x)[0]
    if orig is None:
        return None
    return Entry(*orig, tcp_state=state, reply=entry_reply, timeout=timeout,
                 counters=tuple(counters) if have_counters else None, start_ns=start_ns)


def brief(buf: memoryview, start: int, end: int) -> tuple[bytes, int, int]:
    """(original source, protocol, TCP state): all the counts need, as fast as Python goes.

    The hot path of a dump: the same walk as parse_entry, with loops written
    out and nothing else decoded.
    """
    unpack = _NLA.unpack_from
    src, proto, state = b"", 0, 0
    at = start
    while at + 4 <= end:
        length, kind = unpack(buf, at)
        if length < 4:
            break
        kind &= NLA_TYPE_MASK
        if kind == CTA_TUPLE_ORIG or kind == CTA_PROTOINFO:
            a, b = at + 4, at + length
            while a + 4 <= b:
                inner_len, inner = unpack(buf, a)
                if inner_len < 4:
                    break
                inner &= NLA_TYPE_MASK
                # CTA_TUPLE_IP and CTA_PROTOINFO_TCP are both type 1; CTA_TUPLE_PROTO is 2.
                if inner == 1 or inner == CTA_TUPLE_PROTO:
                    x, y = a + 4, a + inner_len
                    while x + 4 <= y:
                        leaf_len, leaf = unpack(buf, x)
                        if leaf_len < 4:
                            break
                        leaf &= NLA_TYPE_MASK
                        if kind == CTA_PROTOINFO:
                            if leaf == CTA_PROTOINFO_TCP_STATE:
                                state = buf[x + 4]
                                break
                        elif inner == CTA_TUPLE_PROTO:
                            if leaf == CTA_PROTO_NUM:
                                proto = buf[x + 4]
                                break
                        elif leaf == CTA_IP_V4_SRC or leaf == CTA_IP_V6_SRC:
                            src = buf[x + 4 : x + leaf_len].tobytes()
                            break
                        x += (leaf_len + 3) & ~3
                a += (inner_len + 3) & ~3
        at += (length + 3) & ~3
    return src, proto, state


def open_socket() -> socket.socket:
    try:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    except OSError as exc:
        raise ConntrackUnavailable(exc.errno, f"no netfilter netlink: {exc.strerror}") from None
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.bind((0, 0))
    return sock


def dump(sock: socket.socket, full: bool = False, limit: int | None = None) -> Iterator[Entry]:
    """Every entry of the table (IPv4 and IPv6), as the kernel sends them.

    Stops after `limit` entries; the caller then closes the socket, which ends
    the kernel's side of the dump.
    """
    yield from _dump(sock, lambda v, a, b: parse_entry(v, a, b, full), limit)


def dump_brief(sock: socket.socket, limit: int | None = None) -> Iterator[tuple[bytes, int, int]]:
    """(source, protocol, TCP state) of every entry: what the counts need."""
    yield from _dump(sock, brief, limit)


def _dump(sock: socket.socket, decode, limit: int | None) -> Iterator:
    seq = int.from_bytes(os.urandom(4), "little")
    msg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET
    request = _NLMSG.pack(_NLMSG.size + 4, msg_type, NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + bytes(4)
    sock.send(request)
    buffer = bytearray(1 << 17)
    view = memoryview(buffer)
    seen = 0
    while True:
        n = sock.recv_into(buffer)
        at = 0
        while at + _NLMSG.size <= n:
            length, kind, _flags, msg_seq, _pid = _NLMSG.unpack_from(view, at)
            if length < _NLMSG.size:
                return
            if msg_seq == seq:
                if kind == NLMSG_DONE:
                    return
                if kind == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", view, at + _NLMSG.size)[0]
                    if code:
                        raise ConntrackUnavailable(code, f"conntrack dump failed: {os.strerror(code)}")
                else:
                    # nfgenmsg (4 bytes) then the attributes.
                    entry = decode(view, at + _NLMSG.size + 4, at + length)
                    if entry is not None:
                        yield entry
                        seen += 1
                        if limit is not None and seen >= limit:
                            return
            at += (length + 3) & ~3


def address(packed: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET6 if len(packed) == 16 else socket.AF_INET, packed)

