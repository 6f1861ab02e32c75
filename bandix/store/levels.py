"""History levels: buckets of one-second samples: exact statistics of the WAN rates, and the
exact WAN and LAN bytes.

Every level's interval divides the largest one, so the samples of the current
largest bucket (one hour by default) are all any open bucket needs: they are
kept in one buffer per series, and each bucket's statistics are computed from
its own samples when it closes.

Closed buckets are kept compactly, integers exact: the newest in an open chunk
(the tail) of varints appended row by row (15–45 bytes a busy bucket), the
rest sealed, `Level.chunk` buckets of consecutive indexes at a time, into one
blob each (bandix.store.chunks: 5–30 bytes a busy bucket). With persistence,
sealed blobs the database has leave memory and are read back through
`LevelRows.fetch` when asked for, so memory does not grow with history.

Bucket stamps come from the wall clock. A step forward leaves an empty gap.
A step backward drops the samples and buckets stamped after the new time
(they would overlap the new timeline); buckets the buffer still has samples
for are recomputed when they close again. A bucket without traffic is not
stored: a missing bucket reads as zero.

The LAN bytes are for usage (bandix.store.usage) only: the API's level rows
(`rows`, `json_stream`) are the spec's, WAN only, and leave out the buckets
that had LAN traffic only.

Queries (TrafficStore holds the lock and the series):
- `TrafficStore.level_rows(level, mac, now_ms)`: the API's rows of one level;
- `TrafficStore.level_usage(level, mac, now_ms, since_ms)`: [bucket start ms,
  WAN rx, WAN tx, LAN rx, LAN tx bytes] of one level;
- `TrafficStore.level_bytes(level, start_ms, end_ms, macs=None)`: bytes per
  device per bucket in [start, end): mac (or "all") → [(bucket start ms, rx
  bytes, tx bytes)], for usage rankings and increments;
- `LevelRows.records(since_idx)`: (idx, 12 statistics, WAN rx, WAN tx, LAN rx,
  LAN tx bytes).
"""

from __future__ import annotations

import bisect
import json
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from . import chunks
from .stats import summarize

STATS = 6  # avg, max, min, p90, p95, p99
API_WIDTH = 1 + 2 * STATS + 2  # an API row: ts, the statistics, WAN rx and tx bytes
U32_MAX = 0xFFFFFFFF  # rates are stored in 32 bits: 4 GB/s, beyond any router
assert array("I").itemsize == 4


@dataclass(frozen=True)
class Level:
    name: str
    interval: int  # seconds per bucket
    capacity: int  # buckets kept
    chunk: int = 64  # buckets of consecutive indexes sealed into one blob

    @property
    def retention_seconds(self) -> int:
        return self.interval * self.capacity


DEFAULT_LEVELS = (
    Level("day", 30, 2880, 64),  # a chunk: 32 minutes
    Level("week", 180, 3360, 32),  # 96 minutes
    Level("month", 600, 4320, 32),  # 5 h 20
    Level("year", 3600, 8760, 48),  # 2 days
)


def check_levels(levels: tuple[Level, ...]) -> None:
    top = max(level.interval for level in levels)
    for level in levels:
        if not 1 <= level.chunk <= 0xFFFF:
            raise ValueError(f"level {level.name}: chunk {level.chunk} must be 1..65535 buckets")
        if level.interval < 1 or level.capacity < 1 or top % level.interval:
            raise ValueError(f"level {level.name}: interval {level.interval}s must divide {top}s")


class Sealed(NamedTuple):
    """Sealed chunks only the database has, in LevelRows' own layout (for restore)."""

    nos: array  # "I": chunk numbers, oldest first
    ns: array  # "H": bucket counts
    last: array  # "H": newest index - number × chunk

    @classmethod
    def empty(cls) -> Sealed:
        return cls(array("I"), array("H"), array("H"))


class LevelRows:
    """Closed buckets of one level of one series, oldest first, at most `capacity`.

    The buckets of chunk number idx // chunk are appended to the open chunk (the
    tail: varints row by row, chunks.append_row, 15–45 bytes a busy bucket, plus
    the newest bucket as fixed-width integers to append the next after); when a
    bucket of a later chunk arrives, the tail is sealed into one compact blob
    (chunks.seal). Sealed blobs stay in memory until the database has them
    (saved(): then only their number, bucket count and newest index stay, 8 bytes,
    and reads fetch them through `fetch`). Capacity hides the oldest buckets
    (`_skip` of the oldest chunk) and drops chunks that are hidden whole.
    """

    __slots__ = ("capacity", "chunk", "fetch", "_nos", "_ns", "_last", "_held", "_ends", "_mem", "_skip", "_size",
                 "_tail", "_tail_n", "_prev", "tail_version", "_tail_saved")

    def __init__(self, capacity: int, chunk: int = 64) -> None:
        self.capacity = capacity
        self.chunk = chunk
        self.fetch: Callable[[int], bytes | None] | None = None  # sealed chunk from the database
        # 8 bytes a sealed chunk (a year of a device: ~470 chunks, 3.7 KB).
        self._nos = array("I")  # sealed chunks' numbers, oldest first
        self._ns = array("H")  # their bucket counts (at most `chunk`)
        self._last = array("H")  # their newest bucket index - number × chunk
        # Blobs held in memory, one after the other in chunk order in _mem: their chunk
        # numbers and where each ends. No object per chunk, nothing for those only the
        # database has.
        self._held = array("I")
        self._ends = array("I")
        self._mem = bytearray()
        self._skip = 0  # oldest buckets hidden by capacity (of the oldest chunk, or of the tail)
        self._size = 0  # buckets visible
        self._tail = bytearray()  # the open chunk's buckets, chunks.append_row
        self._tail_n = 0
        self._prev: array | None = None  # "Q": its newest bucket, what the next is encoded after
        self.tail_version = 0  # counts changes of the tail, so unchanged tails are not saved again
        self._tail_saved = 0

    def __len__(self) -> int:
        return self._size

    def append(self, idx: int, stats: tuple[int, ...], rx_bytes: int, tx_bytes: int,
               lan_rx_bytes: int = 0, lan_tx_bytes: int = 0) -> None:
        """A closed bucket, newer than every bucket held (History drops first when recomputing)."""
        no = idx // self.chunk
        if self._prev is not None and self._prev[0] // self.chunk != no:
            self._seal()
        elif self._prev is None and self._nos and self._nos[-1] == no:
            self._unseal_newest()  # after a step back: the chunk continues
        record = (idx, *stats, rx_bytes, tx_bytes, lan_rx_bytes, lan_tx_bytes)
        chunks.append_row(self._tail, self._prev, record)
        self._prev = array("Q", record)
        self._tail_n += 1
        self._size += 1
        self.tail_version += 1
        self._trim()

    def _tail_records(self) -> list[list[int]]:
        return chunks.decode_rows(self._tail)

    def _set_tail(self, records: list[list[int]]) -> None:
        self._tail, prev = bytearray(), None
        for r in records:
            chunks.append_row(self._tail, prev, r)
            prev = r
        self._tail_n = len(records)
        self._prev = array("Q", records[-1]) if records else None

    def _seal(self) -> None:
        assert self._prev is not None
        no = self._prev[0] // self.chunk
        self._add_sealed(no, self._tail_n, self._prev[0], chunks.seal(self._tail))
        self._set_tail([])

    def _trim(self) -> None:
        while self._size > self.capacity:
            oldest = (self._ns[0] if self._nos else self._tail_n) - self._skip
            excess = self._size - self.capacity
            if excess < oldest:
                self._skip += excess
                self._size -= excess
                return
            self._size -= oldest
            self._skip = 0
            if self._nos:
                self._remove_sealed(0)
            else:
                self._set_tail([])

    def _add_sealed(self, no: int, n: int, last: int, blob: bytes | None) -> None:
        """A sealed chunk newer than every one held."""
        self._nos.append(no)
        self._ns.append(n)
        self._last.append(last - no * self.chunk)
        if blob is not None:
            self._mem += blob
            self._held.append(no)
            self._ends.append(len(self._mem))

    def _held_at(self, no: int) -> int | None:
        """Where chunk `no` is in _held, if its blob is in memory."""
        j = bisect.bisect_left(self._held, no)
        return j if j < len(self._held) and self._held[j] == no else None

    def _held_blob(self, j: int) -> bytes:
        return bytes(self._mem[self._ends[j - 1] if j else 0 : self._ends[j]])

    def _forget_blob(self, k: int) -> None:
        """Sealed chunk k's blob out of memory (the database has it, or it goes)."""
        j = self._held_at(self._nos[k])
        if j is None:
            return
        at = self._ends[j - 1] if j else 0
        n = self._ends[j] - at
        del self._held[j]
        del self._ends[j]
        if not self._held:
            self._mem = bytearray()
            return
        del self._mem[at : at + n]
        for i in range(j, len(self._ends)):
            self._ends[i] -= n

    def _remove_sealed(self, k: int) -> None:
        self._forget_blob(k)
        for a in (self._nos, self._ns, self._last):
            del a[k]

    def _blob_at(self, k: int) -> bytes | None:
        j = self._held_at(self._nos[k])
        if j is not None:
            return self._held_blob(j)
        return self.fetch(self._nos[k]) if self.fetch is not None else None

    def _unseal_newest(self) -> None:
        """The newest sealed chunk back into the (empty) tail, to drop from it."""
        blob = self._blob_at(len(self._nos) - 1)
        self._remove_sealed(len(self._nos) - 1)
        self.tail_version += 1
        self._set_tail(chunks.decode_lists(blob) if blob else [])

    def newest_idx(self) -> int | None:
        if not self._size:
            return None
        return self._prev[0] if self._prev is not None else self._newest(-1)

    def _newest(self, k: int) -> int:
        return self._nos[k] * self.chunk + self._last[k]

    def drop_from(self, idx: int) -> int:
        """Forget buckets with index ≥ idx; how many went."""
        dropped = 0
        while self._size:
            if self._prev is None:
                if self._newest(-1) < idx:
                    break
                self._unseal_newest()
                continue
            if self._prev[0] < idx:
                break
            records = self._tail_records()
            kept = [r for r in records if r[0] < idx]
            gone = min(len(records) - len(kept), self._size)  # the rest were hidden by capacity
            self._set_tail(kept)
            self._size -= gone
            self.tail_version += 1
            dropped += gone
        if not self._size:  # what is left was hidden by capacity
            self._clear()
        elif dropped and self._skip:
            self._forget_hidden()
        return dropped

    def _forget_hidden(self) -> None:
        """Really remove the buckets capacity hides (after a drop they would otherwise come back
        at the next restore, which counts capacity afresh): rare, so the re-encoding is fine."""
        skip, self._skip = self._skip, 0
        if not self._nos:
            self._set_tail(self._tail_records()[skip:])
            self.tail_version += 1
            return
        blob = self._blob_at(0)
        kept = chunks.decode_lists(blob)[skip:] if blob else []
        no, last = self._nos[0], self._newest(0)
        self._remove_sealed(0)
        # Back in front (even empty), in memory: the next save writes it over the database's.
        self._nos.insert(0, no)
        self._ns.insert(0, len(kept))
        self._last.insert(0, (kept[-1][0] if kept else last) - no * self.chunk)
        new = chunks.encode(kept)
        self._mem[0:0] = new
        for i in range(len(self._ends)):
            self._ends[i] += len(new)
        self._held.insert(0, no)
        self._ends.insert(0, len(new))

    def _clear(self) -> None:
        for a in (self._nos, self._ns, self._last, self._held, self._ends):
            del a[:]
        self._mem = bytearray()
        self._set_tail([])
        self._skip = 0
        self.tail_version += 1

    def records(self, since_idx: int = 0) -> list[tuple[int, ...]]:
        """(idx, 12 statistics, WAN rx, WAN tx, LAN rx, LAN tx bytes) of buckets from since_idx on,
        oldest first."""
        return [tuple(r) for r in self._lists(since_idx)]

    def _taken(self, since_idx: int) -> tuple[list[tuple[bytes | None, int]], list[list[int]]]:
        """What reading from since_idx on needs, copied: (blob, buckets to skip) of each sealed
        chunk concerned, and the tail's rows. Blobs are fetched now, before any decoding: what
        fetching keeps (SQLite's cache) is not allocated among the many short-lived numbers."""
        blobs = [(self._blob_at(k), self._skip if k == 0 else 0) for k, no in enumerate(self._nos)
                 if (no + 1) * self.chunk > since_idx]
        skip = self._skip if not self._nos else 0
        return blobs, [r for r in self._tail_records()[skip:] if r[0] >= since_idx]

    def _pieces(self, since_idx: int) -> Iterator[list[list[int]]]:
        """The buckets from since_idx on as lists, a chunk at a time, oldest first."""
        return _decoded(*self._taken(since_idx), since_idx)

    def _lists(self, since_idx: int) -> list[list[int]]:
        out: list[list[int]] = []
        for piece in self._pieces(since_idx):
            out += piece
        return out

    def json_stream(self, interval: int, since_idx: int = 0) -> Iterator[bytes]:
        """rows() as JSON, in pieces of a chunk: what they need is copied now (call this under the
        store's lock), the decoding happens as the pieces are taken, outside it. A year of
        buckets never exists as Python lists, nor as one string."""
        ms = interval * 1000
        blobs, tail = self._taken(since_idx)

        def pieces() -> Iterator[bytes]:
            yield b"["
            sep = b""
            for piece in _decoded(blobs, tail, since_idx):
                piece = _api(piece, ms)
                if piece:
                    yield sep + json.dumps(piece, separators=(",", ":"))[1:-1].encode()
                    sep = b","
            yield b"]"

        return pieces()

    def json_rows(self, interval: int, since_idx: int = 0) -> bytes:
        return b"".join(self.json_stream(interval, since_idx))

    def load(self, records: Iterable[Sequence[int]]) -> None:
        """Bulk load of records() tuples, oldest first, into an empty level (start-up)."""
        if self._size or self._nos:
            raise ValueError("load() needs an empty level")
        for r in records:  # (records of 15 integers: without LAN bytes, as before schema 5)
            self.append(r[0], tuple(r[1 : 1 + 2 * STATS]), *r[1 + 2 * STATS :])

    def rows(self, interval: int, since_idx: int = 0) -> list[list[int]]:
        """API rows: [ts_ms, rx avg max min p90 p95 p99, tx avg ... p99, rx_bytes, tx_bytes] (WAN;
        buckets with LAN traffic only left out)."""
        return _api(self._lists(since_idx), interval * 1000)

    def usage(self, interval: int, since_idx: int = 0) -> list[list[int]]:
        """[ts_ms, WAN rx, WAN tx, LAN rx, LAN tx bytes] of buckets from since_idx on."""
        ms = interval * 1000
        out = []
        for piece in self._pieces(since_idx):
            out += [[r[0] * ms, *r[1 + 2 * STATS :]] for r in piece]
        return out

    # -- persistence ---------------------------------------------------------

    def unsaved(self) -> list[tuple[int, int, int, bytes]]:
        """(number, buckets, newest index, blob) of sealed chunks held only in memory."""
        out = []
        for j, no in enumerate(self._held):
            k = bisect.bisect_left(self._nos, no)
            out.append((no, self._ns[k], self._newest(k), self._held_blob(j)))
        return out

    def saved(self, no: int, blob: bytes) -> None:
        """The database has chunk `no` as `blob`: read it from there from now on."""
        j = self._held_at(no)
        if self.fetch is not None and j is not None and self._held_blob(j) == blob:
            self._forget_blob(bisect.bisect_left(self._nos, no))

    def tail_blob(self) -> bytes:
        return chunks.seal(self._tail)

    def tail_unsaved(self) -> bool:
        return self.tail_version != self._tail_saved

    def saved_tail(self, version: int) -> None:
        """The database has the tail as of `version`."""
        self._tail_saved = version

    def restore(self, sealed: Iterable[tuple[int, int, int, bytes | None]] | Sealed, tail: bytes) -> None:
        """Sealed chunks (number, buckets, newest index, blob or None when `fetch` has it), oldest
        first, or a Sealed of those `fetch` has, and the tail, into an empty level."""
        if self._size or self._nos:
            raise ValueError("restore() needs an empty level")
        if isinstance(sealed, Sealed):  # taken over as they are: no copy, no growing arrays
            self._nos, self._ns, self._last = sealed.nos, sealed.ns, sealed.last
            self._size = sum(sealed.ns)
            sealed = ()
        for no, n, last, blob in sealed:
            self._add_sealed(no, n, last, blob)
            self._size += n
        for r in chunks.decode(tail):
            if self._nos and r[0] // self.chunk <= self._nos[-1]:
                continue  # already sealed
            self.append(r[0], tuple(r[1 : 1 + 2 * STATS]), *r[1 + 2 * STATS :])
        self._trim()

    def stats_bytes(self) -> tuple[int, int]:
        """(bytes of sealed blobs in memory, bytes of the tail): for the bench."""
        prev = len(self._prev) * self._prev.itemsize if self._prev is not None else 0
        return len(self._mem), len(self._tail) + prev


def _api(rows: list[list[int]], ms: int) -> list[list[int]]:
    """Records as the API's rows (in place): stamps in ms, without the LAN columns, without
    the buckets that had LAN traffic only (the spec's rows are WAN history)."""
    out = []
    for r in rows:
        del r[API_WIDTH:]
        if any(r[1:]):
            r[0] *= ms
            out.append(r)
    return out


def _decoded(blobs: list[tuple[bytes | None, int]], tail: list[list[int]],
             since_idx: int) -> Iterator[list[list[int]]]:
    for blob, cut in blobs:
        recs = chunks.decode_lists(blob)[cut:] if blob else []
        yield [r for r in recs if r[0] >= since_idx]
    yield tail


class History:
    """All levels of one series (a device, or all devices summed)."""

    __slots__ = ("levels", "rows", "_top", "_open", "_ts", "_rx", "_tx", "_rxb", "_txb", "_lrxb", "_ltxb")

    def __init__(self, levels: tuple[Level, ...] = DEFAULT_LEVELS) -> None:
        self.levels = levels
        self.rows = {level.name: LevelRows(level.capacity, level.chunk) for level in levels}
        self._top = max(level.interval for level in levels)
        self._open: dict[str, int | None] = {level.name: None for level in levels}
        # Samples of the current largest bucket, oldest first.
        self._ts = array("q")  # seconds
        self._rx = array("I")
        self._tx = array("I")
        self._rxb = array("Q")
        self._txb = array("Q")
        self._lrxb = array("Q")  # LAN bytes
        self._ltxb = array("Q")

    def _buffers(self) -> tuple[array, ...]:
        return (self._ts, self._rx, self._tx, self._rxb, self._txb, self._lrxb, self._ltxb)

    def buffered(self) -> int:
        return len(self._ts)

    def add(self, ts_ms: int, rx_rate: int, tx_rate: int, rx_bytes: int, tx_bytes: int,
            lan_rx_bytes: int = 0, lan_tx_bytes: int = 0) -> None:
        """One second's sample (WAN rates, WAN and LAN bytes); closes the buckets it ends."""
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
        self._lrxb.append(lan_rx_bytes)
        self._ltxb.append(lan_tx_bytes)

    def _clear_buffer(self) -> None:
        for a in self._buffers():
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
        counted = [sum(a[lo:hi]) for a in (self._rxb, self._txb, self._lrxb, self._ltxb)]
        if any(counted) or any(stats):  # a bucket without traffic costs nothing
            rows.append(idx, stats, *counted)

    def step_back(self, ts: int) -> int:
        """The wall clock went back to `ts`: forget what is stamped after it."""
        cut = bisect.bisect_left(self._ts, ts)
        for a in self._buffers():
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
        return tuple(a.tobytes() for a in self._buffers())

    def restore_buffer(self, state: tuple[bytes, ...]) -> None:
        self._clear_buffer()
        for a, raw in zip(self._buffers(), state, strict=True):
            a.frombytes(raw)
        if len({len(a) for a in self._buffers()}) != 1:
            self._clear_buffer()
            raise ValueError("inconsistent sample buffer")
        for level in self.levels:
            self._open[level.name] = self._ts[-1] // level.interval if self._ts else None
