"""Decode captured DNS packets: IP, UDP or TCP (with DNS's length framing), and
the DNS header, question and answer addresses.

This runs for every DNS packet, so it is a small walker over the wire format
with struct: it checks the whole message's structure (a malformed or
truncated packet raises Malformed and is counted, never half-used) and keeps
what the records, filters and statistics need. The full record list is
rendered by dnslib, from the kept bytes, only for the records an API answer
shows.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass, field

_HEADER = struct.Struct("!HHHHHH")
_RR_FIXED = struct.Struct("!HHIH")
_U16 = struct.Struct("!H")
MAX_POINTER_JUMPS = 32
TCP_STREAM_LIMIT = 65535 + 2


class Malformed(ValueError):
    pass


@dataclass(slots=True)
class Segment:
    """A UDP datagram or TCP segment carrying DNS."""

    src: str
    dst: str
    sport: int
    dport: int
    transport: str  # "udp" or "tcp"
    payload: bytes


@dataclass(slots=True)
class Message:
    txid: int
    is_response: bool
    opcode: int
    rcode: int
    qname: str
    qtype: int
    response_ips: list[str] = field(default_factory=list)
    response_ttls: list[int] = field(default_factory=list)  # of each address, in order


def parse_l3(data: bytes, family: int) -> Segment:
    """The UDP/TCP segment inside an IPv4 or IPv6 packet (extension headers skipped)."""
    if family == 4:
        if len(data) < 20 or data[0] >> 4 != 4:
            raise Malformed("not an IPv4 header")
        ihl = (data[0] & 0x0F) * 4
        total = _U16.unpack_from(data, 2)[0]
        if ihl < 20 or total < ihl or len(data) < ihl:
            raise Malformed("bad IPv4 header length")
        proto, start, end = data[9], ihl, min(total, len(data))
        src, dst = socket.inet_ntop(socket.AF_INET, data[12:16]), socket.inet_ntop(socket.AF_INET, data[16:20])
    elif family == 6:
        if len(data) < 40 or data[0] >> 4 != 6:
            raise Malformed("not an IPv6 header")
        end = min(40 + _U16.unpack_from(data, 4)[0], len(data))
        proto, start = data[6], 40
        for _ in range(8):  # extension headers: hop-by-hop, routing, fragment, destination options
            if proto not in (0, 43, 44, 60):
                break
            if start + 8 > end:
                raise Malformed("truncated IPv6 extension header")
            proto, ext_len = data[start], (8 if proto == 44 else (data[start + 1] + 1) * 8)
            start += ext_len
        src, dst = socket.inet_ntop(socket.AF_INET6, data[8:24]), socket.inet_ntop(socket.AF_INET6, data[24:40])
    else:
        raise Malformed(f"address family {family}")
    if proto == 17:
        if start + 8 > end:
            raise Malformed("truncated UDP header")
        sport, dport, length = struct.unpack_from("!HHH", data, start)
        if length < 8 or start + length > end:
            raise Malformed("UDP length beyond the packet (truncated capture?)")
        return Segment(src, dst, sport, dport, "udp", bytes(data[start + 8 : start + length]))
    if proto == 6:
        if start + 20 > end:
            raise Malformed("truncated TCP header")
        sport, dport = struct.unpack_from("!HH", data, start)
        offset = (data[start + 12] >> 4) * 4
        if offset < 20 or start + offset > end:
            raise Malformed("bad TCP header length")
        return Segment(src, dst, sport, dport, "tcp", bytes(data[start + offset : end]))
    raise Malformed(f"IP protocol {proto} is neither UDP nor TCP")


def _name(buf: bytes, at: int) -> tuple[str, int]:
    """A possibly compressed name at `at`: (text with a trailing dot, offset after it)."""
    labels: list[str] = []
    end = None
    jumps = 0
    total = 0
    while True:
        if at >= len(buf):
            raise Malformed("name runs past the message")
        length = buf[at]
        if length & 0xC0 == 0xC0:
            if at + 1 >= len(buf):
                raise Malformed("truncated compression pointer")
            if end is None:
                end = at + 2
            jumps += 1
            if jumps > MAX_POINTER_JUMPS:
                raise Malformed("compression pointer loop")
            at = ((length & 0x3F) << 8) | buf[at + 1]
            continue
        if length & 0xC0:
            raise Malformed("reserved label type")
        at += 1
        if length == 0:
            break
        if at + length > len(buf):
            raise Malformed("label runs past the message")
        total += length + 1
        if total > 255:
            raise Malformed("name longer than 255 bytes")
        labels.append(buf[at : at + length].decode("ascii", "backslashreplace").replace(".", "\\."))
        at += length
    return ".".join(labels) + ".", end if end is not None else at


def parse_dns(buf: bytes) -> Message:
    """Header, first question and answer addresses; the whole structure is checked."""
    if len(buf) < 12:
        raise Malformed("shorter than a DNS header")
    txid, flags, qd, an, ns, ar = _HEADER.unpack_from(buf)
    if qd < 1:
        raise Malformed("no question")
    at = 12
    qname, qtype = "", 0
    for i in range(qd):
        name, at = _name(buf, at)
        if at + 4 > len(buf):
            raise Malformed("truncated question")
        if i == 0:
            qname, qtype = name, _U16.unpack_from(buf, at)[0]
        at += 4
    ips: list[str] = []
    ttls: list[int] = []
    for i in range(an + ns + ar):
        _, at = _name(buf, at)
        if at + 10 > len(buf):
            raise Malformed("truncated resource record")
        rtype, _rclass, ttl, rdlength = _RR_FIXED.unpack_from(buf, at)
        at += 10
        if at + rdlength > len(buf):
            raise Malformed("record data runs past the message")
        if i < an:
            if rtype == 1 and rdlength == 4:
                ips.append(socket.inet_ntop(socket.AF_INET, buf[at : at + 4]))
                ttls.append(ttl)
            elif rtype == 28 and rdlength == 16:
                ips.append(socket.inet_ntop(socket.AF_INET6, buf[at : at + 16]))
                ttls.append(ttl)
        at += rdlength
    return Message(txid, bool(flags & 0x8000), (flags >> 11) & 0xF, flags & 0xF, qname, qtype, ips, ttls)


class TcpStreams:
    """DNS over TCP: each message is preceded by its 2-byte length and may span
    segments (or share one). Segments are joined per connection and direction."""

    def __init__(self, max_streams: int = 1024) -> None:
        self._buffers: dict[tuple, bytearray] = {}
        self._max = max_streams

    def feed(self, seg: Segment) -> list[bytes]:
        key = (seg.src, seg.sport, seg.dst, seg.dport)
        buf = self._buffers.pop(key, None) or bytearray()
        buf += seg.payload
        messages = []
        while len(buf) >= 2:
            length = _U16.unpack_from(buf)[0]
            if len(buf) < 2 + length:
                break
            messages.append(bytes(buf[2 : 2 + length]))
            del buf[: 2 + length]
        if buf:
            if len(buf) > TCP_STREAM_LIMIT:
                raise Malformed("TCP DNS stream out of step")
            if len(self._buffers) >= self._max:  # forget the oldest unfinished stream
                self._buffers.pop(next(iter(self._buffers)))
            self._buffers[key] = buf
        return messages
