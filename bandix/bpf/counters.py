"""Read the per-device counters and the health counters from the maps.

A device's counters are spread over every CPU's copy of dev_slots (possibly
at different slots) and over dev_overflow; they are summed here by MAC.
"""

from __future__ import annotations

import errno
import struct

from . import layout
from .maps import Map, sum_percpu_u64

# Fields of bandix_dev_stats: (bytes, packets) for lan_rx, lan_tx, wan_rx, wan_tx.
STATS_FIELDS = 8
_STATS = struct.Struct(f"={STATS_FIELDS}Q")

Counters = dict[bytes, list[int]]


def _add(totals: Counters, mac: bytes, values: tuple[int, ...]) -> None:
    acc = totals.get(mac)
    if acc is None:
        totals[mac] = list(values)
    else:
        for i, v in enumerate(values):
            acc[i] += v


def _slot_values(slots: Map) -> list[bytes]:
    """Every slot's per-CPU value, in one batch syscall where possible."""
    try:
        return [values[: count * slots.buffer_size] for _, values, count in slots.batches(layout.SLOTS)]
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, 524):
            raise
        return [value for _, value in slots.dump()]


def read_devices(slots: Map, overflow: Map) -> Counters:
    """MAC (6 raw bytes) → the 8 stats fields summed over CPUs and maps."""
    totals: Counters = {}
    stride_u64 = slots.stride // 8
    for raw in _slot_values(slots):
        words = memoryview(raw).cast("Q")
        # Each CPU copy of a slot starts with the head word (MAC + used flag);
        # zero means the slot is free on that CPU.
        for i in range(0, len(words), stride_u64):
            if words[i]:
                base = i * 8
                _add(totals, raw[base : base + 6], _STATS.unpack_from(raw, base + 8))
    for key, value in overflow.dump():
        _add(totals, key[:6], sum_percpu_u64(value, STATS_FIELDS, overflow.ncpus, overflow.stride))
    return totals


def forget_device(slots: Map, overflow: Map, mac: bytes) -> int:
    """Free a device's slots on every CPU and its overflow entry; slots freed.

    A per-CPU array is written for all CPUs at once, so the other CPUs' copies
    of a touched slot are written back as read: an increment they made in
    between is lost. Devices are forgotten after a year of silence, which
    makes that window irrelevant.
    """
    freed = 0
    for key, value in slots.dump():
        buf = bytearray(value)
        for cpu in range(slots.ncpus):
            at = cpu * slots.stride
            if buf[at : at + 8] and buf[at : at + 6] == mac and any(buf[at + 6 : at + 8]):
                buf[at : at + slots.stride] = bytes(slots.stride)
                freed += 1
        if buf != value:
            slots.update(key, bytes(buf))
    overflow.delete(mac + b"\0\0")
    return freed


def read_health(health: Map) -> list[int]:
    """The health slots summed over CPUs."""
    out = []
    for slot in range(layout.HEALTH_SLOTS):
        value = health.lookup(struct.pack("=I", slot))
        out.append(sum_percpu_u64(value, 1, health.ncpus, health.stride)[0] if value else 0)
    return out


def format_mac(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)
