"""The IPFIX wire format (RFC 7011) of bandix's flow records.

Four templates, one per address family and direction, so that each record
carries the device's MAC in the element that is true of it: sourceMacAddress
for a flow from the device (ingress on the LAN bridge, flowDirection 0),
destinationMacAddress for a flow to it (egress, flowDirection 1). The
attributed domain is an enterprise-specific, variable-length string.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable, Iterator

from ..collect.flows import Flow

VERSION = 10
TEMPLATE_SET_ID = 2
# No Private Enterprise Number is registered for bandix: 32473 is the one RFC 5612
# reserves for documentation and examples, so it can never clash with a vendor's.
ENTERPRISE = 32473
DOMAIN_ELEMENT = 1  # bandixDomain: string, the attributed domain ("" when unknown)
VARIABLE = 0xFFFF
MAX_DOMAIN = 254  # a one-byte length prefix (RFC 7011 section 7)
MESSAGE_SIZE = 1400  # bytes at most per message: one datagram on any usual path MTU

HEADER = struct.Struct("!HHIII")  # version, length, export time, sequence, observation domain
SET_HEADER = struct.Struct("!HH")

# (element id, length): IANA's IPFIX Information Elements.
_ADDRESSES = {4: ((8, 4), (12, 4)), 6: ((27, 16), (28, 16))}  # source/destinationIPv{4,6}Address
_MIDDLE = ((7, 2), (11, 2), (4, 1), (1, 8), (2, 8), (152, 8), (153, 8))
# sourceTransportPort, destinationTransportPort, protocolIdentifier, octetDeltaCount,
# packetDeltaCount, flowStartMilliseconds, flowEndMilliseconds
_MAC = {"up": (56, 6), "down": (80, 6)}  # sourceMacAddress, destinationMacAddress
_FLOW_DIRECTION = (61, 1)
FLOW_DIRECTIONS = {"up": 0, "down": 1}  # ingress / egress at the LAN interface

TEMPLATE_IDS = {(4, "up"): 256, (4, "down"): 257, (6, "up"): 258, (6, "down"): 259}
_FIXED = {4: struct.Struct("!4s4sHHBQQQQ6sB"), 6: struct.Struct("!16s16sHHBQQQQ6sB")}


def _template(family: int, direction: str) -> bytes:
    fields = [*_ADDRESSES[family], *_MIDDLE, _MAC[direction], _FLOW_DIRECTION]
    out = struct.pack("!HH", TEMPLATE_IDS[(family, direction)], len(fields) + 1)
    out += b"".join(struct.pack("!HH", ie, size) for ie, size in fields)
    return out + struct.pack("!HHI", 0x8000 | DOMAIN_ELEMENT, VARIABLE, ENTERPRISE)


_TEMPLATES = b"".join(_template(f, d) for f, d in TEMPLATE_IDS)
TEMPLATE_SET = SET_HEADER.pack(TEMPLATE_SET_ID, SET_HEADER.size + len(_TEMPLATES)) + _TEMPLATES


def encode_record(f: Flow, octets: int, packets: int, start_ms: int, end_ms: int) -> tuple[int, bytes]:
    """(template id, data record) of one flow's counts over one export interval."""
    family, af = (6, socket.AF_INET6) if ":" in f.src else (4, socket.AF_INET)
    # Cut to the limit on a character boundary: the element stays valid UTF-8.
    domain = f.label[2].encode("utf-8", "replace")[:MAX_DOMAIN].decode("utf-8", "ignore").encode()
    mac = bytes.fromhex(f.mac.replace(":", ""))
    fixed = _FIXED[family].pack(socket.inet_pton(af, f.src), socket.inet_pton(af, f.dst), f.sport, f.dport,
                                f.proto, octets, packets, start_ms, end_ms, mac, FLOW_DIRECTIONS[f.direction])
    return TEMPLATE_IDS[(family, f.direction)], fixed + bytes([len(domain)]) + domain


def messages(records: Iterable[tuple[int, bytes]], export_time: int, sequence: int, domain_id: int,
             with_templates: bool) -> Iterator[tuple[bytes, int]]:
    """(message, data records in it) for encoded records, each message at most MESSAGE_SIZE bytes;
    the template set leads the first message (alone, when there are no records).

    `sequence` counts the data records exported before (RFC 7011 section 3.1), modulo 2**32.
    """
    pending = sorted(records, key=lambda r: r[0])
    i = 0
    body = TEMPLATE_SET if with_templates else b""
    while body or i < len(pending):
        count = 0
        while i < len(pending):
            set_id, data, n = pending[i][0], b"", 0
            room = MESSAGE_SIZE - HEADER.size - len(body) - SET_HEADER.size
            while i < len(pending) and pending[i][0] == set_id and (len(data) + len(pending[i][1]) <= room
                                                                     or not (data or body)):
                data += pending[i][1]
                i, n = i + 1, n + 1
            if not data:
                break  # the message is full
            body += SET_HEADER.pack(set_id, SET_HEADER.size + len(data)) + data
            count += n
        yield HEADER.pack(VERSION, HEADER.size + len(body), export_time, sequence % 2**32, domain_id) + body, count
        sequence += count
        body = b""
