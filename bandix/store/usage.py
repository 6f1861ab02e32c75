"""Usage over a range: devices ranked by bytes, and bytes per local hour or day.

Answered from the history levels through TrafficStore.level_usage (closed
buckets: each holds the exact sum of its one-second samples' WAN and LAN
bytes; network_type `all` is their sum), so a
range is answered in whole buckets of one level: of those whose retention
still reaches back to the range's start, the coarsest whose bucket is at
most 1 % of the range (fewer rows to add up: a month of 250 busy devices is
180,000 hourly rows instead of 1,080,000 ten-minute ones), else the finest.
The range is narrowed to that level's
bucket edges (start rounded up, end rounded down, and never past the newest
bucket that can be closed) and the answer says which range it covers: the
bytes are then exactly those of the one-second samples stamped in it.

Hours and days are the router's local time (TZ, as the schedules use), so a
day is 23 or 25 hours across a DST change. A bucket belongs to the hour or
day its start lies in; all levels' intervals divide 30 minutes or an hour, so
a bucket straddles a boundary only for the year level (1 h) in a zone offset
by half an hour.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from .levels import Level
from .traffic import TrafficStore

NETWORK_TYPES = ("wan", "lan", "all")
AGGREGATIONS = ("hourly", "daily")
# A level_usage row: [ts_ms, WAN rx, WAN tx, LAN rx, LAN tx]; the columns each type adds up.
COLUMNS = {"wan": ((1,), (2,)), "lan": ((3,), (4,)), "all": ((1, 3), (2, 4))}
EDGE_SHARE = 100  # a level answers when the range holds at least this many of its buckets


@dataclass(frozen=True)
class Span:
    """The range an answer covers, in whole buckets of one level."""

    level: Level
    start_ms: int  # inclusive
    end_ms: int  # exclusive; == start_ms: empty

    def to_json(self) -> dict:
        return {"start_ms": self.start_ms, "end_ms": self.end_ms, "level": self.level.name,
                "resolution_seconds": self.level.interval}


def choose_span(levels: tuple[Level, ...], start_ms: int, end_ms: int, now_ms: int) -> Span:
    """The level to answer from (see the module's doc; the longest when none reaches back to
    start_ms), and the range in its buckets.
    now_ms: the newest sample's stamp (the bucket holding it is still open)."""
    by_interval = sorted(levels, key=lambda lv: lv.interval)
    reaching = [lv for lv in by_interval
                if start_ms >= (now_ms // 1000 // lv.interval - lv.capacity + 1) * lv.interval * 1000]
    coarse = [lv for lv in reaching if lv.interval * 1000 * EDGE_SHARE <= min(end_ms, now_ms) - start_ms]
    level = coarse[-1] if coarse else reaching[0] if reaching else by_interval[-1]
    step = level.interval * 1000
    start = -(-start_ms // step) * step
    end = min(end_ms, now_ms) // step * step
    oldest = (now_ms // step - level.capacity + 1) * step
    start = max(start, oldest)
    return Span(level, start, max(start, end))


def _bytes_in(rows: list[list[int]], span: Span, network_type: str) -> Iterator[tuple[int, int, int]]:
    """(bucket start ms, rx, tx) of the rows inside the span, counting `network_type`."""
    rx_cols, tx_cols = COLUMNS[network_type]
    for row in rows:
        if span.start_ms <= row[0] < span.end_ms:
            yield row[0], sum(row[c] for c in rx_cols), sum(row[c] for c in tx_cols)


def newest_ms(store: TrafficStore) -> int:
    """What the levels are complete up to: the newest sample (0 before the first)."""
    return store.last_reading_ms or 0


def ranking(store: TrafficStore, start_ms: int, end_ms: int, network_type: str = "wan") -> dict:
    """Devices with traffic (of `network_type`) in the range, most bytes first, each with its
    share of them all."""
    now_ms = newest_ms(store)
    span = choose_span(store.levels, start_ms, end_ms, now_ms)
    out = []
    for dev in store.devices():
        rows = store.level_usage(span.level.name, dev.mac, now_ms, span.start_ms) or []
        rx = tx = 0
        for _, r, t in _bytes_in(rows, span, network_type):
            rx += r
            tx += t
        if rx or tx:
            out.append({"mac": dev.mac, "rx_bytes": rx, "tx_bytes": tx, "total_bytes": rx + tx})
    total = sum(d["total_bytes"] for d in out)
    for d in out:
        d["share"] = d["total_bytes"] / total
    out.sort(key=lambda d: (-d["total_bytes"], d["mac"]))
    return {**span.to_json(), "network_type": network_type, "total_bytes": total,
            "rx_bytes": sum(d["rx_bytes"] for d in out), "tx_bytes": sum(d["tx_bytes"] for d in out),
            "devices": out}


def period_start(t: int, aggregation: str) -> int:
    """Start (s) of the local hour or day holding the instant t (s)."""
    lt = time.localtime(t)
    if aggregation == "hourly":
        return t - lt.tm_min * 60 - lt.tm_sec
    return int(time.mktime((lt.tm_year, lt.tm_mon, lt.tm_mday, 0, 0, 0, 0, 0, -1)))


def next_period(t: int, aggregation: str) -> int:
    """Start (s) of the local hour or day after the one starting at t."""
    if aggregation == "hourly":
        return period_start(t + 3600, aggregation)
    lt = time.localtime(t)
    return int(time.mktime((lt.tm_year, lt.tm_mon, lt.tm_mday + 1, 0, 0, 0, 0, 0, -1)))


def periods(span: Span, aggregation: str) -> list[int]:
    """Starts (s) of the local hours or days the span touches, oldest first."""
    if span.end_ms <= span.start_ms:
        return []
    out = [period_start(span.start_ms // 1000, aggregation)]
    while True:
        nxt = next_period(out[-1], aggregation)
        if nxt * 1000 >= span.end_ms:
            return out
        out.append(nxt)


def increments(rows: list[list[int]], span: Span, aggregation: str, network_type: str = "wan") -> list[dict]:
    """Bytes per local hour or day of the span (zeros included), from one series' level_usage rows."""
    starts = periods(span, aggregation)
    sums = {s: [0, 0] for s in starts}
    for ts_ms, rx, tx in _bytes_in(rows, span, network_type):
        acc = sums[period_start(ts_ms // 1000, aggregation)]
        acc[0] += rx
        acc[1] += tx
    out = []
    for s in starts:
        rx, tx = sums[s]
        out.append({"ts_ms": s * 1000, "date": time.strftime("%Y-%m-%d" if aggregation == "daily"
                                                              else "%Y-%m-%d %H:00", time.localtime(s)),
                    "rx_bytes": rx, "tx_bytes": tx, "total_bytes": rx + tx})
    return out


def device_increments(store: TrafficStore, mac: str | None, start_ms: int, end_ms: int,
                      aggregation: str, span: Span | None = None, network_type: str = "wan") -> dict | None:
    """increments() of one device (None when unknown) or of all devices summed (mac None);
    `span`: one chosen already, so that every device of an export covers the same range."""
    now_ms = newest_ms(store)
    span = span or choose_span(store.levels, start_ms, end_ms, now_ms)
    rows = store.level_usage(span.level.name, mac, now_ms, span.start_ms)
    if rows is None:
        return None
    inc = increments(rows, span, aggregation, network_type)
    return {**span.to_json(), "mac": mac or "all", "network_type": network_type, "aggregation": aggregation,
            "rx_bytes": sum(i["rx_bytes"] for i in inc), "tx_bytes": sum(i["tx_bytes"] for i in inc),
            "increments": inc}
