"""Usage over a range: what a ranking costs when every bucket of every level is busy.

In-process (no router): a TrafficStore restored, as at start-up, with a full
history for 250 devices, then the ranking and the increments of bandix/store/usage.py
over growing ranges, each the median of a few runs.
"""

from __future__ import annotations

import random
import statistics
import time

from bandix.store import usage
from bandix.store.levels import DEFAULT_LEVELS, STATS, LevelRows
from bandix.store.traffic import DeviceRecord, LevelRecord, SeriesRecord, Snapshot, TrafficStore

DEVICES = 250
EMPTY_BUFFER = (b"",) * 7  # History.buffer_state(): nothing buffered


def full_store(now_s: int) -> TrafficStore:
    rng = random.Random(1)
    store = TrafficStore(600)
    macs = [f"02:00:00:00:{i // 256:02x}:{i % 256:02x}" for i in range(DEVICES)]
    series = {}
    for mac in macs:
        rows = {}
        for lv in DEFAULT_LEVELS:
            top = now_s // lv.interval
            level = LevelRows(lv.capacity, lv.chunk)  # sealed in chunks, as a restore gets them
            level.load([(idx, *(rng.randrange(1 << 20) for _ in range(2 * STATS)),
                         rng.randrange(1 << 30), rng.randrange(1 << 28))
                        for idx in range(top - lv.capacity + 1, top)])
            rows[lv.name] = LevelRecord(level.unsaved(), level.tail_blob())
        series[mac] = SeriesRecord(b"", EMPTY_BUFFER, rows)
    devices = [DeviceRecord(mac, [0] * 8, [0] * 8, now_s * 1000, 0) for mac in macs]
    store.restore(Snapshot(now_s * 1000, None, devices, series), same_counters=True, same_boot=False)
    return store


def _ms(fn, n: int = 3) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def usage_figures() -> None:
    now_s = int(time.time())
    store = full_store(now_s)
    print(f"\n8. Usage over a range, {DEVICES} devices with every history bucket busy (in-process, median of 3)")
    for label, days in (("1 day", 1), ("7 days", 7), ("30 days", 30), ("a year", 364)):
        start = (now_s - days * 86400) * 1000
        answer = usage.ranking(store, start, now_s * 1000)
        ms = _ms(lambda start=start: usage.ranking(store, start, now_s * 1000))
        print(f"   ranking over {label:8}: {ms:7.0f} ms ({answer['level']} level, "
              f"{answer['resolution_seconds']} s buckets)")
    mac = "02:00:00:00:00:01"
    ms = _ms(lambda: usage.device_increments(store, mac, (now_s - 30 * 86400) * 1000, now_s * 1000, "daily"))
    print(f"   one device's daily increments over 30 days: {ms:.1f} ms")


if __name__ == "__main__":
    usage_figures()
