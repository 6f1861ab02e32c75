"""Write the LAN prefix table the TC programs match peer addresses against.

The table is double-buffered: the inactive slot of `lan` is written whole,
then the `control` map is pointed at it, so no packet sees half a table.
"""

from __future__ import annotations

import ctypes
import ipaddress
import struct

from . import layout
from .maps import Map

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TooManyPrefixes(ValueError):
    pass


def build_table(networks: list[Network]) -> layout.Lan:
    v4 = [n for n in networks if n.version == 4]
    v6 = [n for n in networks if n.version == 6]
    for family, nets in (("IPv4", v4), ("IPv6", v6)):
        if len(nets) > layout.MAX_PREFIXES:
            raise TooManyPrefixes(f"{len(nets)} {family} LAN prefixes, at most {layout.MAX_PREFIXES} are supported")
    table = layout.Lan(n_v4=len(v4), n_v6=len(v6))
    for i, net in enumerate(v4):
        ctypes.memmove(table.v4[i].addr, net.network_address.packed, 4)
        ctypes.memmove(table.v4[i].mask, net.netmask.packed, 4)
    for i, net in enumerate(v6):
        ctypes.memmove(table.v6[i].addr, net.network_address.packed, 16)
        ctypes.memmove(table.v6[i].mask, net.netmask.packed, 16)
    return table


def write_lan_table(lan: Map, control: Map, networks: list[Network]) -> None:
    """Install `networks` as the LAN prefixes, atomically for the programs."""
    table = bytes(build_table(networks))
    key = struct.pack("=I", layout.CONTROL_LAN_ACTIVE)
    raw = control.lookup(key)
    active = struct.unpack("=I", raw)[0] & 1 if raw else 0
    spare = active ^ 1
    lan.update(struct.pack("=I", spare), table)
    control.update(key, struct.pack("=I", spare))


def read_lan_table(lan: Map, control: Map) -> list[Network]:
    """The prefixes in force (for diagnostics and tests)."""
    raw = control.lookup(struct.pack("=I", layout.CONTROL_LAN_ACTIVE))
    active = struct.unpack("=I", raw)[0] & 1 if raw else 0
    table = layout.Lan.from_buffer_copy(lan.lookup(struct.pack("=I", active)))
    out: list[Network] = []
    for i in range(table.n_v4):
        out.append(ipaddress.ip_network((bytes(table.v4[i].addr), _prefixlen(bytes(table.v4[i].mask)))))
    for i in range(table.n_v6):
        out.append(ipaddress.ip_network((bytes(table.v6[i].addr), _prefixlen(bytes(table.v6[i].mask)))))
    return out


def _prefixlen(mask: bytes) -> int:
    return bin(int.from_bytes(mask, "big")).count("1")
