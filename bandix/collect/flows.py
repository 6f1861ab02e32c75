"""Flows: the kernel counts bytes and packets per 5-tuple and direction in an
LRU hash; this module reads the deltas, ages out idle flows and says how full
the map is and how many flows the LRU evicted.

Evictions are not reported by the kernel one by one. They follow from three
counts: flows the programs added (health slot FLOW_NEW), flows found in the map
and flows deleted here. Every added flow is in exactly one of those places or
was evicted.
"""

from __future__ import annotations

import ctypes
import socket
import struct
from dataclasses import dataclass

from ..bpf import layout
from ..bpf.maps import Map
from .attribution import NO_LABEL, Label

VALUE = struct.Struct("=QQ6s2x")  # bandix_flow
assert VALUE.size == ctypes.sizeof(layout.Flow), "bandix_flow changed: update VALUE"


@dataclass(slots=True)
class Flow:
    """What the daemon knows of one entry of the kernel's flow map."""

    direction: str  # "up": from the device, "down": to it
    proto: int
    src: str
    sport: int
    dst: str
    dport: int
    mac: str
    bytes: int = 0  # as last read
    packets: int = 0
    moved_ns: int = 0  # monotonic time of the read that last saw new packets
    label: Label = NO_LABEL

    @property
    def lan(self) -> tuple[str, int]:
        return (self.src, self.sport) if self.direction == "up" else (self.dst, self.dport)

    @property
    def peer(self) -> tuple[str, int]:
        return (self.dst, self.dport) if self.direction == "up" else (self.src, self.sport)

    @property
    def conversation(self) -> tuple[int, str, int, str, int]:
        """The same for both directions: (proto, lan ip, lan port, peer ip, peer port)."""
        return (self.proto, *self.lan, *self.peer)


def decode_key(key: bytes) -> tuple[str, int, str, int, str, int]:
    """(direction, proto, src, sport, dst, dport) of a bandix_flow_key."""
    family, proto, direction = key[0], key[1], key[2]
    sport, dport = int.from_bytes(key[4:6], "big"), int.from_bytes(key[6:8], "big")
    if family == 4:
        src, dst = socket.inet_ntop(socket.AF_INET, key[8:12]), socket.inet_ntop(socket.AF_INET, key[24:28])
    else:
        src, dst = socket.inet_ntop(socket.AF_INET6, key[8:24]), socket.inet_ntop(socket.AF_INET6, key[24:40])
    return ("up" if direction == layout.DIR_TX else "down", proto, src, sport, dst, dport)


@dataclass
class MapHealth:
    entries: int = 0
    capacity: int = 0
    added: int = 0  # since this daemon started, from the kernel
    failed: int = 0
    aged: int = 0  # deleted here for being idle
    evicted: int = 0  # derived, see the module docstring


class FlowTable:
    """The delta reader. One instance per loaded map; not thread-safe."""

    def __init__(self, flows: Map, capacity: int, idle_timeout_s: int) -> None:
        self._map = flows
        self.flows: dict[bytes, Flow] = {}
        self.idle_ns = idle_timeout_s * 1_000_000_000
        self.health = MapHealth(capacity=capacity)

    def read(self, now_ns: int) -> list[tuple[Flow, int, int]]:
        """(flow, new bytes, new packets) of every flow that moved since the last read."""
        seen: dict[bytes, Flow] = {}
        moved: list[tuple[Flow, int, int]] = []
        idle: list[bytes] = []
        key_size, value_size = self._map.key_size, self._map.value_size
        for keys, values, count in self._map.batches(1024):
            for i in range(count):
                key = keys[i * key_size : (i + 1) * key_size]
                nbytes, npackets, mac = VALUE.unpack_from(values, i * value_size)
                flow = self.flows.get(key)
                if flow is None or npackets < flow.packets:  # new, or evicted and added again
                    direction, proto, src, sport, dst, dport = decode_key(key)
                    flow = Flow(direction, proto, src, sport, dst, dport, mac.hex(":"))
                if npackets != flow.packets:
                    moved.append((flow, nbytes - flow.bytes, npackets - flow.packets))
                    flow.bytes, flow.packets, flow.moved_ns = nbytes, npackets, now_ns
                elif now_ns - flow.moved_ns > self.idle_ns:
                    idle.append(key)
                seen[key] = flow
        for key in idle:
            # A packet arriving between the read and the delete is lost with the
            # entry; after idle_timeout of silence that is as rare as it gets.
            if self._map.delete(key):
                self.health.aged += 1
            del seen[key]
        self.flows = seen
        self.health.entries = len(seen)
        return moved

    def account(self, added: int, failed: int) -> None:
        """Kernel counts since this daemon started, read before the map: evictions follow.

        Flows added between that read and the map read make the difference
        too small for a moment, never too large; it only ever grows.
        """
        h = self.health
        h.added, h.failed = added, failed
        h.evicted = max(h.evicted, added - h.aged - h.entries)
