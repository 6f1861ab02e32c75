"""Write the WAN policies in force (rate limits, quotas) into the `limits` map the TC programs enforce.

The bucket depth decides how close TCP gets to the limit: a policer drops
what exceeds it, and TCP backs off after each loss. Too shallow and goodput
falls well short (and a 64 KB GSO packet could never pass); too deep and a
burst overshoots. BURST_SECONDS of the rate, never less than MIN_BURST, was
measured on the virtual router (tests/test_limits.py, bandix/README figures).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from . import layout
from .maps import Map

BPF_F_LOCK = 4
MIN_BURST = 128 * 1024  # bytes: two 64 KB GSO packets
BURST_SECONDS = 0.25


def burst_bytes(rate: int) -> int:
    """Bucket depth for a rate in bytes/s."""
    return max(MIN_BURST, int(rate * BURST_SECONDS))


@dataclass(frozen=True)
class Policy:
    """What the programs enforce for one device (or as the default); rates in bytes/s, 0 = none."""

    rate: tuple[int, int] = (0, 0)  # (rx, tx)
    quota_bytes: int = 0  # 0: no quota
    quota_flags: int = 0  # layout.QUOTA_RX | QUOTA_TX | QUOTA_BLOCK
    quota_rate: tuple[int, int] = (0, 0)  # in force once the quota is used up (unless it blocks)
    period_start: int = 0  # Unix seconds the quota's period began
    copy: bool = False  # the programs made it from the default entry

    def same_quota_count(self, other: Policy) -> bool:
        """Whether bytes counted under `other` still count under this one (same period and directions)."""
        mask = layout.QUOTA_RX | layout.QUOTA_TX
        return (bool(self.quota_bytes) and bool(other.quota_bytes) and self.period_start == other.period_start
                and self.quota_flags & mask == other.quota_flags & mask)


def mac_key(mac: bytes) -> bytes:
    return mac + b"\0\0"


def write_policy(limits: Map, key: bytes, policy: Policy, used: int = 0) -> None:
    """Write one entry; its buckets start full, its quota count at `used`."""
    value = layout.Limit()
    value.flags = policy.quota_flags | (layout.LIMIT_COPY if policy.copy else 0)
    for d in (0, 1):
        value.rate[d] = policy.rate[d]
        value.burst[d] = value.tokens[d] = burst_bytes(policy.rate[d]) * layout.NSEC_PER_SEC if policy.rate[d] else 0
        value.quota_rate[d] = policy.quota_rate[d]
        value.quota_burst[d] = burst_bytes(policy.quota_rate[d]) * layout.NSEC_PER_SEC if policy.quota_rate[d] else 0
    value.quota_bytes = policy.quota_bytes
    value.quota_used = used
    value.period_start = policy.period_start
    limits.update(key, bytes(value), BPF_F_LOCK)


def write_limit(limits: Map, mac: bytes, rx_rate: int, tx_rate: int) -> None:
    """Limit a device's rates alone (bytes/s per direction, 0 = none)."""
    write_policy(limits, mac_key(mac), Policy((rx_rate, tx_rate)))


def delete_entry(limits: Map, key: bytes) -> None:
    limits.delete(key)


def set_count(control: Map, count: int) -> None:
    """How many entries `limits` holds for the programs to look up: zero lets them skip the lookup."""
    control.update(struct.pack("=I", layout.CONTROL_LIMITS), struct.pack("=I", count))


def read_entry(limits: Map, key: bytes) -> tuple[Policy, int] | None:
    """(policy, quota bytes used) of one entry, None when absent."""
    raw = limits.lookup(key)
    if raw is None:
        return None
    v = layout.Limit.from_buffer_copy(raw)
    policy = Policy((v.rate[0], v.rate[1]), v.quota_bytes, v.flags & ~layout.LIMIT_COPY,
                    (v.quota_rate[0], v.quota_rate[1]), v.period_start, bool(v.flags & layout.LIMIT_COPY))
    return policy, v.quota_used


def read_entries(limits: Map) -> dict[bytes, tuple[Policy, int]]:
    """Key → (policy, quota bytes used) of every entry (the default under layout.DEFAULT_KEY)."""
    out = {}
    for key in limits.keys():
        entry = read_entry(limits, key)
        if entry is not None:
            out[bytes(key)] = entry
    return out


def read_limits(limits: Map) -> dict[bytes, tuple[int, int]]:
    """MAC → (rx, tx) bytes/s of the devices' own entries that limit a rate (for tests)."""
    return {key[:6]: p.rate for key, (p, _) in read_entries(limits).items()
            if key != layout.DEFAULT_KEY and any(p.rate)}
