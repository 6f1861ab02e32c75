"""Python mirror of bpf/bandix.h: map names, struct layouts, constants.

tests/test_layout.py checks these against the BTF of the built object, so the
two cannot drift apart silently.
"""

from __future__ import annotations

import ctypes
import struct

LAYOUT_VERSION = 3

SLOTS = 1024
OVERFLOW = 2048
MAX_PREFIXES = 32

PROG_INGRESS = "bandix_ingress"
PROG_EGRESS = "bandix_egress"

MAP_DEV_SLOTS = "dev_slots"
MAP_DEV_OVERFLOW = "dev_overflow"
MAP_LAN = "lan"
MAP_CONTROL = "control"
MAP_HEALTH = "health"
MAP_LIMITS = "limits"
PINNED_MAPS = (MAP_DEV_SLOTS, MAP_DEV_OVERFLOW, MAP_LAN, MAP_CONTROL, MAP_HEALTH, MAP_LIMITS)
# Per daemon, not pinned: a ring buffer only means something to its reader.
MAP_DNS_EVENTS = "dns_events"
MAP_HELLO_EVENTS = "hello_events"
MAP_EVENT_SCRATCH = "event_scratch"
# Flows are per daemon too: only the reader knows which deltas it has counted.
MAP_FLOWS = "flows"
ALL_MAPS = (*PINNED_MAPS, MAP_DNS_EVENTS, MAP_HELLO_EVENTS, MAP_EVENT_SCRATCH, MAP_FLOWS)

CONTROL_LAYOUT = 0
CONTROL_LAN_ACTIVE = 1
CONTROL_GENERATION = (2, 3)  # low and high half of a random id, new with every set of pins
CONTROL_LIMITS = 4  # entries in the limits map; 0 lets the programs skip the lookup
CONTROL_DNS = 5  # 1: the programs copy DNS packets into dns_events
CONTROL_FLOWS = 6  # 1: the programs count flows and copy hellos into hello_events
CONTROL_SLOTS = 8

MAX_LIMITS = 1024
LIMIT_COPY = 1  # made by the programs from the default entry
QUOTA_RX = 2  # the quota counts WAN bytes to the device
QUOTA_TX = 4  # ... and/or from it
QUOTA_BLOCK = 8  # used up: WAN traffic dropped (else held to quota_rate)
DEFAULT_KEY = bytes(6) + struct.pack("=H", 1)  # the default entry's key: MAC zero, pad 1 (native order)
DNS_CAPTURE = 2048
FLOWS = 16384  # default entries of the flows map
HELLO_PACKETS = 8
NSEC_PER_SEC = 1_000_000_000

HEALTH_DEV_MAP_FULL = 0
HEALTH_TRUNCATED = 1
HEALTH_LIMIT_DROPS = 2
HEALTH_DNS_LOST = 3
HEALTH_FLOW_NEW = 4
HEALTH_FLOW_FAILED = 5
HEALTH_HELLO_LOST = 6
HEALTH_SLOTS = 8

# Order of bandix_dev_stats.c: index = (zone << 1) | direction.
DIR_RX = 0  # to the device
DIR_TX = 1  # from the device
COUNTER_NAMES = ("lan_rx", "lan_tx", "wan_rx", "wan_tx")


class MacKey(ctypes.Structure):
    _fields_ = [("mac", ctypes.c_uint8 * 6), ("pad", ctypes.c_uint16)]


class Counter(ctypes.Structure):
    _fields_ = [("bytes", ctypes.c_uint64), ("packets", ctypes.c_uint64)]


class DevStats(ctypes.Structure):
    _fields_ = [("c", Counter * 4)]


class Slot(ctypes.Structure):
    _fields_ = [("mac", ctypes.c_uint8 * 6), ("used", ctypes.c_uint16), ("stats", DevStats)]


class PrefixV4(ctypes.Structure):
    """Address and mask as raw network-order bytes (the packet's order)."""

    _fields_ = [("addr", ctypes.c_uint8 * 4), ("mask", ctypes.c_uint8 * 4)]


class PrefixV6(ctypes.Structure):
    _fields_ = [("addr", ctypes.c_uint8 * 16), ("mask", ctypes.c_uint8 * 16)]


class Lan(ctypes.Structure):
    _fields_ = [
        ("n_v4", ctypes.c_uint32),
        ("n_v6", ctypes.c_uint32),
        ("v4", PrefixV4 * MAX_PREFIXES),
        ("v6", PrefixV6 * MAX_PREFIXES),
    ]


class Limit(ctypes.Structure):
    """A device's WAN policy: token buckets and quota; [0] is rx (download), [1] tx (upload)."""

    _fields_ = [
        ("lock", ctypes.c_uint32),  # struct bpf_spin_lock
        ("flags", ctypes.c_uint32),
        ("rate", ctypes.c_uint64 * 2),
        ("burst", ctypes.c_uint64 * 2),
        ("tokens", ctypes.c_uint64 * 2),
        ("stamp", ctypes.c_uint64 * 2),
        ("quota_bytes", ctypes.c_uint64),
        ("quota_used", ctypes.c_uint64),
        ("quota_rate", ctypes.c_uint64 * 2),
        ("quota_burst", ctypes.c_uint64 * 2),
        ("period_start", ctypes.c_uint64),
    ]


class PacketEvent(ctypes.Structure):
    """The header of a packet event (DNS or hello); `len` bytes of the packet follow it."""

    _fields_ = [
        ("ts_ns", ctypes.c_uint64),
        ("ifindex", ctypes.c_uint32),
        ("len", ctypes.c_uint16),
        ("orig_len", ctypes.c_uint16),
        ("dir", ctypes.c_uint8),
        ("family", ctypes.c_uint8),
        ("mac", ctypes.c_uint8 * 6),
        ("data", ctypes.c_uint8 * DNS_CAPTURE),
    ]


class FlowKey(ctypes.Structure):
    _fields_ = [
        ("family", ctypes.c_uint8),
        ("proto", ctypes.c_uint8),
        ("dir", ctypes.c_uint8),
        ("pad", ctypes.c_uint8),
        ("sport", ctypes.c_uint16),  # network order
        ("dport", ctypes.c_uint16),
        ("saddr", ctypes.c_uint32 * 4),
        ("daddr", ctypes.c_uint32 * 4),
    ]


class Flow(ctypes.Structure):
    _fields_ = [
        ("bytes", ctypes.c_uint64),
        ("packets", ctypes.c_uint64),
        ("mac", ctypes.c_uint8 * 6),
        ("pad", ctypes.c_uint16),
    ]
