"""The realtime ring: one sample per second, for a fixed number of seconds.

A sample holds the wall-clock stamp, four rates and four cumulative byte
counters (lan_rx, lan_tx, wan_rx, wan_tx); the totals of the API rows are
sums of those. Storage is flat typed arrays: 56 bytes per sample, so a device
costs 33.6 KB at the default 600 seconds whatever its traffic.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence

COUNTERS = 4  # lan_rx, lan_tx, wan_rx, wan_tx


class Ring:
    """Fixed-capacity ring of samples, oldest overwritten first."""

    __slots__ = ("capacity", "_ts", "_rates", "_totals", "_next", "_size")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._ts = array("q", bytes(8 * capacity))
        self._rates = array("Q", bytes(8 * COUNTERS * capacity))
        self._totals = array("Q", bytes(8 * COUNTERS * capacity))
        self._next = 0
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def append(self, ts_ms: int, rates: Sequence[int], totals: Sequence[int]) -> None:
        i = self._next
        self._ts[i] = ts_ms
        base = i * COUNTERS
        self._rates[base : base + COUNTERS] = array("Q", rates)
        self._totals[base : base + COUNTERS] = array("Q", totals)
        self._next = (i + 1) % self.capacity
        self._size = min(self._size + 1, self.capacity)

    def rows(self) -> list[list[int]]:
        """Samples oldest first, as the API's 13-value rows:
        [ts_ms, total_rx_rate, total_tx_rate, lan_rx_rate, lan_tx_rate, wan_rx_rate,
        wan_tx_rate, total_rx_bytes, total_tx_bytes, lan_rx_bytes, lan_tx_bytes,
        wan_rx_bytes, wan_tx_bytes]."""
        out = []
        start = (self._next - self._size) % self.capacity
        for k in range(self._size):
            i = (start + k) % self.capacity
            b = i * COUNTERS
            lrx, ltx, wrx, wtx = self._rates[b : b + COUNTERS]
            blrx, bltx, bwrx, bwtx = self._totals[b : b + COUNTERS]
            out.append(
                [self._ts[i], lrx + wrx, ltx + wtx, lrx, ltx, wrx, wtx,
                 blrx + bwrx, bltx + bwtx, blrx, bltx, bwrx, bwtx]
            )
        return out

    def drop_from(self, ts_ms: int) -> int:
        """Forget samples stamped at or after ts_ms (the wall clock went back)."""
        dropped = 0
        while self._size:
            newest = (self._next - 1) % self.capacity
            if self._ts[newest] < ts_ms:
                break
            self._next = newest
            self._size -= 1
            dropped += 1
        return dropped

    def dump(self) -> bytes:
        """The samples, oldest first, as bytes (for the database)."""
        out = array("Q")
        start = (self._next - self._size) % self.capacity
        for k in range(self._size):
            i = (start + k) % self.capacity
            b = i * COUNTERS
            out.append(max(0, self._ts[i]))
            out.extend(self._rates[b : b + COUNTERS])
            out.extend(self._totals[b : b + COUNTERS])
        return out.tobytes()

    def load(self, raw: bytes) -> None:
        """Append samples from dump(); the newest win if they exceed capacity."""
        values = array("Q")
        values.frombytes(raw)
        width = 1 + 2 * COUNTERS
        if len(values) % width:
            raise ValueError("truncated realtime samples")
        for k in range(0, len(values), width):
            row = values[k : k + width]
            self.append(row[0], row[1 : 1 + COUNTERS], row[1 + COUNTERS :])
