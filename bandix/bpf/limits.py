"""Write the rate limits in force into the `limits` map the TC programs enforce.

The bucket depth decides how close TCP gets to the limit: a policer drops
what exceeds it, and TCP backs off after each loss. Too shallow and goodput
falls well short (and a 64 KB GSO packet could never pass); too deep and a
burst overshoots. BURST_SECONDS of the rate, never less than MIN_BURST, was
measured on the virtual router (tests/test_limits.py, bandix/README figures).
"""

from __future__ import annotations

import struct

from . import layout
from .maps import Map

BPF_F_LOCK = 4
MIN_BURST = 128 * 1024  # bytes: two 64 KB GSO packets
BURST_SECONDS = 0.25


def burst_bytes(rate: int) -> int:
    """Bucket depth for a rate in bytes/s."""
    return max(MIN_BURST, int(rate * BURST_SECONDS))


def _key(mac: bytes) -> bytes:
    return mac + b"\0\0"


def write_limit(limits: Map, mac: bytes, rx_rate: int, tx_rate: int) -> None:
    """Limit a device (bytes/s per direction, 0 = none); its buckets start full."""
    value = layout.Limit()
    for d, rate in enumerate((rx_rate, tx_rate)):
        value.rate[d] = rate
        value.burst[d] = value.tokens[d] = burst_bytes(rate) * layout.NSEC_PER_SEC if rate else 0
    limits.update(_key(mac), bytes(value), BPF_F_LOCK)


def delete_limit(limits: Map, mac: bytes) -> None:
    limits.delete(_key(mac))


def set_count(control: Map, count: int) -> None:
    """How many devices are limited: zero lets the programs skip the lookup."""
    control.update(struct.pack("=I", layout.CONTROL_LIMITS), struct.pack("=I", count))


def read_limits(limits: Map) -> dict[bytes, tuple[int, int]]:
    """MAC → (rx, tx) bytes/s in the map (for the daemon's start-up and tests)."""
    out = {}
    for key in limits.keys():
        raw = limits.lookup(key)
        if raw is not None:
            value = layout.Limit.from_buffer_copy(raw)
            out[key[:6]] = (value.rate[0], value.rate[1])
    return out

