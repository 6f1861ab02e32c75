"""Figure 6: flow analytics.

a. Reading a flow map of 65,536 entries: the daemon's whole read (batch
   lookups, deltas, new-flow decoding) beside the bare batch-lookup syscalls.
b. Flows per second the collector sustains: one collection (read, attribution,
   minute and hour rows) plus the writer's transaction, with every flow moving.
c. Report latency over a simulated week of 50 devices, each report over the
   last hour, day and week; the week also without the hourly rollup.

The object is loaded into a private pin directory and never attached: the
map is filled from userspace, so no traffic is needed.
"""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import statistics
import struct
import tempfile
import time
from pathlib import Path

from bandix.bpf import layout, loader
from bandix.collect.analytics import FlowAnalytics
from bandix.collect.attribution import DomainCache
from bandix.collect.flows import VALUE
from bandix.store import reports
from bandix.store.analytics import Batch, write_batch
from bandix.store.database import BandixFile

ENTRIES = 65536
DEVICES = 50
FLOWS_PER_DEVICE_MINUTE = 4  # distinct 5-tuples per device and minute, all week
WEEK_MIN = 7 * 1440


class _Writer:
    """Stands in for AnalyticsWriter's queue: the bench times the write itself."""

    def __init__(self) -> None:
        self.batches: list[Batch] = []

    def put(self, batch: Batch) -> None:
        self.batches.append(batch)


def _key(i: int) -> bytes:
    dev, port = divmod(i, 1024)
    src = bytes([192, 168, 1, dev % 250 + 2]) + bytes(12)
    dst = bytes([198, 51, 100, port % 200 + 1]) + bytes(12)
    return struct.pack("=BBBx", 4, 6, 1) + struct.pack("!HH", 40000 + port, 443) + src + dst


def _fill(flows, moved: int) -> None:
    for i in range(ENTRIES):
        flows.update(_key(i), VALUE.pack(1000 * (moved + 1), moved + 1, bytes([2, 0, 0, 0, 0, i % 50])))


def _timed(fn, n: int = 5) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def map_figures(obj: Path, data_dir: Path) -> None:
    pin_dir = Path(f"/sys/fs/bpf/bandix-bench-flows-{os.getpid()}")
    loaded = loader.load(obj, pin_dir, ENTRIES)
    try:
        flows = loaded.maps[layout.MAP_FLOWS]
        writer = _Writer()
        cache = DomainCache(600, 300)
        for i in range(200):  # every remote address has a name, as after DNS answers
            cache.learn(f"198.51.100.{i + 1}", f"site{i}.test", 600, "dns", "02:00:00:00:00:01", time.monotonic())
        fa = FlowAnalytics(flows, loaded.hello_events_fd, lambda: [0] * layout.HEALTH_SLOTS, writer, cache,
                           ENTRIES, 900, 1, lambda mac: "br-lan", loaded.maps[layout.MAP_CONTROL])
        _fill(flows, 0)
        syscalls = _timed(lambda: sum(c for _, _, c in flows.batches(1024)))
        start = time.perf_counter()
        fa.collect()
        first = time.perf_counter() - start
        steady = _timed(lambda: fa.table.read(time.monotonic_ns()))
        moving = []
        for round_ in range(1, 4):
            _fill(flows, round_)  # every flow moved since the last read
            start = time.perf_counter()
            fa.collect()
            moving.append(time.perf_counter() - start)
        collect_s = statistics.median(moving)
        db = BandixFile(data_dir / "bandix.db")
        db.open()
        start = time.perf_counter()
        write_batch(db.db, writer.batches[-1])
        write_s = time.perf_counter() - start
        db.close()
        print(f"\n6a. Reading a flow map of {ENTRIES} entries (median of 5; ms)")
        print(f"   batch lookups alone        {syscalls * 1e3:7.1f}")
        print(f"   daemon read, none moved    {steady * 1e3:7.1f}   {steady / syscalls:5.2f}x the lookups")
        print(f"   first read (all new)       {first * 1e3:7.1f}   (decoding every key, labelling, rows)")
        print(f"6b. Collector throughput, every one of {ENTRIES} flows moving")
        print(f"   collect (read, attribute, minute+hour rows) {collect_s * 1e3:7.1f} ms; "
              f"writer transaction {write_s * 1e3:7.1f} ms")
        print(f"   sustained: {ENTRIES / (collect_s + write_s):,.0f} flows/s "
              f"({ENTRIES / (collect_s + write_s) / ENTRIES:.2f}x a full map per second)")
    finally:
        loaded.close()
        shutil.rmtree(pin_dir, ignore_errors=True)


def simulate_week(path: Path, now: int) -> int:
    """50 devices for a week, each minute 4 flows per device; rows written.

    Each device talks to a working set of 30 of 300 remote addresses (one
    name each, a tenth without), most of it to the first few, as browsing and
    streaming do; every flow in a minute has a new local port.
    """
    rnd = random.Random(1)
    file = BandixFile(path)
    file.open()
    names = [f"site{i}.test" if i % 10 else "" for i in range(300)]
    peers = [rnd.sample(range(300), 30) for _ in range(DEVICES)]
    weights = [1 / (k + 1) for k in range(30)]
    rows = 0
    first = now // 60 * 60 - (WEEK_MIN - 1) * 60
    for minute in range(first, now + 1, 60):
        batch = Batch()
        for dev in range(DEVICES):
            mac = f"02:00:00:00:00:{dev:02x}"
            for peer in rnd.choices(peers[dev], weights, k=FLOWS_PER_DEVICE_MINUTE):
                domain = names[peer]
                label = ("exact", "dns") if domain else ("unknown", "")
                batch.add_flow(minute, "br-lan", mac, "down", 6, f"198.51.{peer // 250}.{peer % 250 + 1}", 443,
                               f"192.168.1.{dev + 2}", 40000 + rows % 20000, domain, *label,
                               rnd.randint(100, 10**7), rnd.randint(1, 10**4))
                rows += 1
        write_batch(file.db, batch)
    file.close()
    return rows


def report_figures(data_dir: Path) -> None:
    path = data_dir / "week.db"
    now = int(time.time())
    start = time.perf_counter()
    rows = simulate_week(path, now)
    built = time.perf_counter() - start
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    pages = {name: n for name, n in db.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name")} \
        if _has_dbstat(db) else {}
    hours = db.execute("SELECT count(*) FROM flow_1h").fetchone()[0]
    db.close()
    size_mb = path.stat().st_size / 2**20
    print(f"6c. Report latency over a simulated week: {DEVICES} devices, {rows:,} minute rows and {hours:,} hourly "
          f"rows, {size_mb:.0f} MB (built in {built:.0f} s); median of 3, ms")
    if pages:
        minute_mb, hour_mb = pages.get("flow_1m_5t", 0) / 2**20, pages.get("flow_1h", 0) / 2**20
        print(f"   on disk: minutes {minute_mb:.0f} MB ({minute_mb / 7:.0f} MB per day, what --flow-detail-hours 24 "
              f"keeps), hourly rollup {hour_mb:.1f} MB for the week")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    names = ("top-ip", "top-lan", "top-domain", "top-quic", "attribution-coverage", "top-dohdot", "top-flow")
    print(f"   {'report':22} {'1 hour':>8} {'1 day':>8} {'1 week':>8} {'week, minutes only':>19}")
    for name in names:
        fn = reports.REPORTS[name]
        cells = [_timed(lambda fn=fn, lb=lb: fn(db, reports.Window(now, lb, 20)), 3) * 1e3
                 for lb in (60, 1440, WEEK_MIN)]
        slow = _timed(lambda fn=fn: fn(db, reports.Window(now, WEEK_MIN, 20, rollup=False)), 3) * 1e3
        ratio = f"{slow:10.0f} ({slow / cells[2]:4.1f}x)" if name != "top-flow" else f"{'(minutes only)':>19}"
        print(f"   {name:22} {cells[0]:8.0f} {cells[1]:8.0f} {cells[2]:8.0f} {ratio:>19}")
    detail = _timed(lambda: reports.domain_detail(db, reports.Window(now, WEEK_MIN, 20), "site7.test"), 3) * 1e3
    print(f"   {'domain-detail':22} {'':8} {'':8} {detail:8.0f}")
    db.close()


def flow_figures() -> None:
    obj = loader.find_object(None)
    with tempfile.TemporaryDirectory(prefix="bandix-bench-flows-") as tmp:
        map_figures(obj, Path(tmp))
        report_figures(Path(tmp))


def _has_dbstat(db: sqlite3.Connection) -> bool:
    try:
        db.execute("SELECT 1 FROM dbstat LIMIT 1")
        return True
    except sqlite3.Error:
        return False
