"""History levels: buckets of one-second WAN samples with exact statistics.

Every level's interval divides the largest one, so the samples of the current
largest bucket (one hour by default) are all any open bucket needs: they are
kept in one buffer per series, and each bucket's statistics are computed from
its own samples when it closes. Closed buckets are stored compactly: 68 bytes
a bucket (its index, twelve 32-bit statistics, two 64-bit byte counts), in
arrays that grow up to the level's capacity and then wrap.

Bucket stamps come from the wall clock. A step forward leaves an empty gap.
A step backward drops the samples and buckets stamped after the new time
(they would overlap the new timeline); buckets the buffer still has samples
for are recomputed when they close again. A bucket without WAN traffic is not
stored: a missing bucket reads as zero.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .stats import summarize

STATS = 6  # avg, max, min, p90, p95, p99
U32_MAX = 0xFFFFFFFF  # rates are stored in 32 bits: 4 GB/s, beyond any router
assert array("I").itemsize == 4


@dataclass(frozen=True)
class Level:
    name: str
    interval: int  # seconds per bucket
    capacity: int  # buckets kept

    @property
    def retention_seconds(self) -> int:
        return self.interval * self.capacity


DEFAULT_LEVELS = (
    Level("day", 30, 2880),
    Level("week", 180, 3360),
    Level("month", 600, 4320),
    Level("year", 3600, 8760),
)


def check_levels(levels: tuple[Level, ...]) -> None:
    top = max(level.interval for level in levels)
    for level in levels:
        if level.interval < 1 or level.capacity < 1 or top % level.interval:
            raise ValueError(f"level {level.name}: interval {level.interval}s must divide {top}s")


class LevelRows:
    """Closed buckets of one level of one series, oldest first, at most `capacity`."""

    __slots__ = ("capacity", "_idx", "_stats", "_bytes", "_start", "_size")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._idx = array("I")  # bucket index: stamp // interval
        self._stats = array("I")  # 2 × STATS per bucket: rx then tx
        self._bytes = array("Q")  # rx, tx
        self._start = 0
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def _pos(self, k: int) -> int:
        return (self._start + k) % len(self._idx)

    def append(self, idx: int, stats: tuple[int, ...], rx_bytes: int, tx_bytes: int) -> None:
        allocated = len(self._idx)
        if self._size < allocated:  # a free slot (after a drop)
            pos = self._pos(self._size)
            self._size += 1
        elif allocated < self.capacity:  # still growing
            self._idx.append(0)
            self._stats.extend([0] * (2 * STATS))
            self._bytes.extend((0, 0))
            pos = allocated
            self._size += 1
        else:  # full: overwrite the oldest
            pos = self._start
            self._start = (self._start + 1) % allocated
        self._idx[pos] = idx
        self._stats[pos * 2 * STATS : (pos + 1) * 2 * STATS] = array("I", stats)
        self._bytes[pos * 2] = rx_bytes
        self._bytes[pos * 2 + 1] = tx_bytes

    def newest_idx(self) -> int | None:
        return self._idx[self._pos(self._size - 1)] if self._size else None

    def drop_from(self, idx: int) -> int:
        """Forget buckets with index ≥ idx (newest first); how many went."""
        dropped = 0
        while self._size and self._idx[self._pos(self._size - 1)] >= idx:
            self._size -= 1
            dropped += 1
        return dropped

    def records(self, since_idx: int = 0) -> list[tuple[int, ...]]:
        """(idx, 12 statistics, rx_bytes, tx_bytes) of buckets from since_idx on, oldest first."""
        out = []
        for k in range(self._size):
            pos = self._pos(k)
            if self._idx[pos] >= since_idx:
                out.append((self._idx[pos], *self._stats[pos * 2 * STATS : (pos + 1) * 2 * STATS],
                            self._bytes[pos * 2], self._bytes[pos * 2 + 1]))
        return out

    def load(self, records: Iterable[Sequence[int]]) -> None:
        """Bulk load of records() tuples, oldest first, into an empty level (start-up)."""
        if self._size:
            raise ValueError("load() needs an empty level")
        for r in records:
            self._idx.append(r[0])
            self._stats.extend(r[1 : 1 + 2 * STATS])
            self._bytes.extend(r[1 + 2 * STATS :])
        excess = len(self._idx) - self.capacity
        if excess > 0:
            del self._idx[:excess]
            del self._stats[: excess * 2 * STATS]
            del self._bytes[: excess * 2]
        self._size = len(self._idx)

    def rows(self, interval: int, since_idx: int = 0) -> list[list[int]]:
        """API rows: [ts_ms, rx avg max min p90 p95 p99, tx avg ... p99, rx_bytes, tx_bytes]."""
        out = []
        for k in range(self._size):
            pos = self._pos(k)
            idx = self._idx[pos]
            if idx < since_idx:
                continue
            out.append([idx * interval * 1000, *self._stats[pos * 2 * STATS : (pos + 1) * 2 * STATS],
                        self._bytes[pos * 2], self._bytes[pos * 2 + 1]])
        return out


class History:
    """All levels of one series (a device, or all devices summed)."""

    __slots__ = ("levels", "rows", "_top", "_open", "_ts", "_rx", "_tx", "_rxb", "_txb")

    def __init__(self, levels: tuple[Level, ...] = DEFAULT_LEVELS) -> None:
        self.levels = levels
        self.rows = {level.name: LevelRows(level.capacity) for level in levels}
        self._top = max(level.interval for level in levels)
        self._open: dict[str, int | None] = {level.name: None for level in levels}
        # Samples of the current largest bucket, oldest first.
        self._ts = array("q")  # seconds
        self._rx = array("I")
        self._tx = array("I")
        self._rxb = array("Q")
        self._txb = array("Q")

    def buffered(self) -> int:
        return len(self._ts)

    def add(self, ts_ms: int, rx_rate: int, tx_rate: int, rx_bytes: int, tx_bytes: int) -> None:
        """One second's WAN sample; closes the buckets it ends."""
        ts = ts_ms // 1000
        if self._ts and ts < self._ts[-1]:
            self.step_back(ts)
        for level in self.levels:
            open_idx = self._open[level.name]
            idx = ts // level.interval
            if open_idx is not None and idx != open_idx:
                self._close(level, open_idx)
            self._open[level.name] = idx
        if self._ts and ts // self._top != self._ts[-1] // self._top:
            self._clear_buffer()
        self._ts.append(ts)
        self._rx.append(min(rx_rate, U32_MAX))
        self._tx.append(min(tx_rate, U32_MAX))
        self._rxb.append(rx_bytes)
        self._txb.append(tx_bytes)

    def _clear_buffer(self) -> None:
        for a in (self._ts, self._rx, self._tx, self._rxb, self._txb):
            del a[:]

    def _close(self, level: Level, idx: int) -> None:
        lo = bisect.bisect_left(self._ts, idx * level.interval)
        hi = bisect.bisect_left(self._ts, (idx + 1) * level.interval)
        if lo == hi:
            return
        rows = self.rows[level.name]
        newest = rows.newest_idx()
        if newest is not None and newest >= idx:  # recomputed after a step back
            rows.drop_from(idx)
        stats = summarize(self._rx[lo:hi]) + summarize(self._tx[lo:hi])
        rx_bytes, tx_bytes = sum(self._rxb[lo:hi]), sum(self._txb[lo:hi])
        if rx_bytes or tx_bytes or any(stats):  # a bucket without WAN traffic costs nothing
            rows.append(idx, stats, rx_bytes, tx_bytes)

    def step_back(self, ts: int) -> int:
        """The wall clock went back to `ts`: forget what is stamped after it."""
        cut = bisect.bisect_left(self._ts, ts)
        for a in (self._ts, self._rx, self._tx, self._rxb, self._txb):
            del a[cut:]
        dropped = 0
        for level in self.levels:
            dropped += self.rows[level.name].drop_from(ts // level.interval)
            self._open[level.name] = None
        # Buckets whose samples are still buffered are open again.
        for level in self.levels:
            if self._ts:
                self._open[level.name] = self._ts[-1] // level.interval
        return dropped

    # -- persistence: the buffer is what a restart needs to lose no sample --

    def buffer_state(self) -> tuple[bytes, ...]:
        return tuple(a.tobytes() for a in (self._ts, self._rx, self._tx, self._rxb, self._txb))

    def restore_buffer(self, state: tuple[bytes, ...]) -> None:
        self._clear_buffer()
        for a, raw in zip((self._ts, self._rx, self._tx, self._rxb, self._txb), state, strict=True):
            a.frombytes(raw)
        if not len(self._ts) == len(self._rx) == len(self._tx) == len(self._rxb) == len(self._txb):
            self._clear_buffer()
            raise ValueError("inconsistent sample buffer")
        for level in self.levels:
            self._open[level.name] = self._ts[-1] // level.interval if self._ts else None
