"""Figure 9: the footprint goals (issue 17) side by side, each with PASS/MISS.

1. Memory flat over time: the daemon with 250 simulated devices and persistence
   on, its data dir on disk (flash on a router): RSS after one minute, and after a
   restart onto a simulated year of busy history (every bucket busy), read through
   the API.
2. History per busy device-month, both sides counted: process RAM and the data
   dir's bytes (on OpenWrt /tmp/bandix is RAM too). Persistence off: the levels'
   own classes holding a month for 250 devices in a fresh process (RSS growth).
   Persistence on: the daemon restarted onto a month (RSS growth over the
   one-minute figure) plus bandix.db with its -wal and -shm.
3. and 5. are measured by bench/baseline.py (goal3(), goal5(): the current daemon
   beside the one of the commit before issue 17, on the same router, in this run).
4. Flash writes with persistence on: 30 busy devices (noisy one-second counters)
   fed to the daemon's own TrafficStore and Persistence in this process with a
   simulated clock, a save every default flush interval; bytes this process
   wrote (/proc/self/io write_bytes; the page cache is synced after each save, as
   ten real minutes would) plus the WAL still to be checkpointed, per hour.

The busy buckets are the bench's generator (bench/history.py before: random
averages, fixed shapes), WAN traffic only (LAN bytes 0, as for a device that
talks only to the Internet); goal 2 also prints, for information, the same with
LAN traffic in every bucket too (random LAN bytes: nothing predicts them), and
the cost of history computed by the level code from noisy one-second samples,
the harder case for any encoding.
"""

from __future__ import annotations

import gc
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bandix.store.database import DB_NAME, HistoryDatabase
from bandix.store.levels import DEFAULT_LEVELS, STATS, History, Level, LevelRows
from bandix.store.persistence import Persistence, boot_id
from bandix.store.realtime import Ring
from bandix.store.traffic import ALL, DeviceRecord, LevelRecord, SeriesRecord, Snapshot, TrafficStore

DEVICES = 250
FLASH_DEVICES = 30
MONTH_S = 30 * 86400
YEAR_S = 365 * 86400
PROFILES = 8  # distinct generated histories, dealt round the devices
FLAT_GOAL = 1.10
HISTORY_GOAL_KB = 200
FLASH_GOAL_MB = 2.0
FLUSH_S = 600  # the default --traffic-flush-interval-seconds
ROOT = Path(__file__).resolve().parents[1]


def mark(ok: bool) -> str:
    return "PASS" if ok else "MISS"


# -- busy history -----------------------------------------------------------


def busy_rows(rng: random.Random, level: Level, now_s: int, span_s: int, base: int,
              lan: bool = False) -> list[tuple[int, ...]]:
    """Every bucket of `span_s` (at most the level's capacity) busy: a random average, the
    other statistics in fixed proportion, WAN bytes = average × seconds (bench/history.py's);
    lan: LAN bytes too, random around `base` per second each way (else 0)."""
    count = min(level.capacity, span_s // level.interval)
    top = now_s // level.interval
    rows = []
    for idx in range(top - count, top):
        stats = []
        for _ in range(2):
            avg = int(base * rng.uniform(0.3, 1.7))
            stats += [avg, avg * 3, avg // 10, avg * 2, int(avg * 2.4), int(avg * 2.8)]
        lan_bytes = [int(base * level.interval * rng.uniform(0.3, 1.7)) if lan else 0 for _ in range(2)]
        rows.append((idx, *stats, stats[0] * level.interval, stats[STATS] * level.interval, *lan_bytes))
    return rows


def level_record(level: Level, records: list[tuple[int, ...]]) -> LevelRecord:
    rows = LevelRows(level.capacity, level.chunk)
    rows.load(records)
    return LevelRecord(rows.unsaved(), rows.tail_blob())


def write_history(data_dir: Path, macs: list[str], counters: list[list[int]], span_s: int, generation: int) -> Path:
    """bandix.db holding `span_s` of busy history for every device and for all, written with
    the daemon's own storage code (as a stop saves it)."""
    rng = random.Random(2)
    now_ms = int(time.time() * 1000)
    profiles = [{lv.name: level_record(lv, busy_rows(rng, lv, now_ms // 1000, span_s, rng.randrange(100, 500_000)))
                 for lv in DEFAULT_LEVELS} for _ in range(PROFILES)]
    ring = Ring(600)
    for k in range(600):
        ring.append(now_ms - (600 - k) * 1000, [1000] * 4, [k * 1000] * 4)
    raw_ring = ring.dump()
    db = HistoryDatabase(data_dir, DEFAULT_LEVELS)
    db.open()
    meta = {"pin_generation": f"{generation:016x}", "boot_id": boot_id()}
    names = [*macs, ALL]
    for start in range(0, len(names), 10):
        series, devices = {}, []
        for k in range(start, min(start + 10, len(names))):
            series[names[k]] = SeriesRecord(raw_ring, (b"",) * 7, profiles[k % PROFILES])
            if names[k] != ALL:
                devices.append(DeviceRecord(names[k], [0] * 8, list(counters[k]), now_ms, now_ms - span_s * 1000))
        db.save(Snapshot(now_ms, time.monotonic(), devices, series), meta)
    # Written here series by series, the chunks' pages split half full; the daemon seals
    # every device's chunk at the same save, in key order, and fills its pages.
    db.db.execute("VACUUM")
    db.close()
    return db.path


def data_dir_bytes(data_dir: Path) -> int:
    return sum(p.stat().st_size for p in data_dir.glob(f"{DB_NAME}*"))


# -- goal 2, persistence off: the levels in a process of their own --------------


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def ram_month_child(devices: int, lan: bool = False) -> None:
    """(In a fresh process) a month of busy history in `devices` series: RSS growth, bytes held."""
    from bandix.store.traffic import Series

    rng = random.Random(3)
    now_s = int(time.time())
    series = [Series(600, DEFAULT_LEVELS) for _ in range(devices)]
    gc.collect()
    before = _rss_kb()
    for s in series:
        for lv in DEFAULT_LEVELS:
            s.history.rows[lv.name].load(busy_rows(rng, lv, now_s, MONTH_S, rng.randrange(100, 500_000), lan))
    gc.collect()
    after = _rss_kb()
    held = sum(b + t for s in series for b, t in (r.stats_bytes() for r in s.history.rows.values()))
    print(json.dumps({"rss_kb": (after - before) / devices, "held_kb": held / devices / 1024}))


def ram_month(devices: int = DEVICES, lan: bool = False) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", f"from bench.footprint import ram_month_child; "
                          f"ram_month_child({devices}, {lan})"], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def noisy_month_kb(days: int = 30) -> float:
    """Bytes held per device-month when the buckets come from noisy one-second samples
    (lognormal around a drifting rate) through the level code itself."""
    rng = random.Random(4)
    h = History(DEFAULT_LEVELS)
    base = rate = 250_000
    t0 = int(time.time()) - days * 86400
    for s in range(days * 86400):
        rate = max(1000, int(rate + rng.gauss(0, base * 0.02) + (base - rate) * 0.01))
        rx = int(rng.lognormvariate(0, 0.3) * rate)
        tx = rx // 20 + rng.randrange(2000)
        h.add((t0 + s) * 1000, rx, tx, rx, tx)
    held = sum(b + t for b, t in (r.stats_bytes() for r in h.rows.values()))
    return held / 1024 * 30 / days


# -- goal 4: flash writes per hour ----------------------------------------------


def _io(field: str) -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def flash_per_hour(data_dir: Path, devices: int = FLASH_DEVICES, warm_h: int = 1, hours: int = 2) -> dict[str, float]:
    """MB written per hour by the daemon's storage code, `hours` after `warm_h` of warm-up."""
    rng = random.Random(5)
    store = TrafficStore(600, DEFAULT_LEVELS, fresh_counters=True)
    p = Persistence(store, data_dir, FLUSH_S, pin_generation=1)
    p.start()
    macs = [f"02:be:00:00:00:{k:02x}" for k in range(devices)]
    bases = [rng.randrange(50_000, 2_000_000) for _ in macs]
    totals = {m: [0] * 8 for m in macs}
    t0 = int(time.time()) // 3600 * 3600 - (warm_h + hours) * 3600
    marks: dict[str, int] = {}
    for s in range((warm_h + hours) * 3600):
        if s == warm_h * 3600:
            p._db.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the warm-up's pages are not counted
            os.sync()
            marks = {"write_bytes": _io("write_bytes"), "wchar": _io("wchar")}
        for m, base in zip(macs, bases, strict=True):
            c = totals[m]
            for k in range(0, 8, 2):
                b = int(rng.lognormvariate(0, 0.5) * base) >> (k < 4)
                c[k] += b
                c[k + 1] += b // 1000 + 1
        store.update((t0 + s) * 1000, float(s), totals)
        if s % FLUSH_S == FLUSH_S - 1:
            p._save(store.snapshot(final=False))  # what the writer thread does every interval
            os.sync()  # ten real minutes: the page cache is written back before the next save
    wal = Path(f"{data_dir / DB_NAME}-wal")
    wal_mb = (wal.stat().st_size if wal.exists() else 0) / 1e6 / hours  # appended since the mark
    p._db.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the WAL's pages into the database: counted too
    os.sync()
    out = {"write_mb": (_io("write_bytes") - marks["write_bytes"]) / 1e6 / hours,
           "wchar_mb": (_io("wchar") - marks["wchar"]) / 1e6 / hours,
           "wal_mb": wal_mb, "db_mb": data_dir_bytes(data_dir) / 1e6}
    p.close()
    return out


# -- the daemon: goals 1 and 2 (persistence on) ---------------------------------


@dataclass
class Context:
    vr: object
    pin_dir: Path
    log_dir: Path


def _read_history(d, macs: list[str], loaded: bool) -> None:
    """What a dashboard asks: every level of a few devices and of all."""
    for mac in (*macs[:5], None):
        for level in ("day", "week", "month", "year"):
            status, body = d.get(f"/api/traffic/metrics/{level}" + (f"?mac={mac}" if mac else ""))
            assert status == 200 and (body["data"]["metrics"] or not loaded), (level, mac)


def _daemon_figures(ctx: Context) -> dict[str, float]:
    from bench.history import FakeDevices, _generation, rss_mb
    from tests.bandixd import Bandix

    data_dir = ctx.log_dir / "footprint-data"
    shutil.rmtree(data_dir, ignore_errors=True)
    flags = ["--iface", "br-lan", "--enable-traffic", "--traffic-persist-history", "--data-dir", str(data_dir)]
    out: dict[str, float] = {}
    d = Bandix(ctx.vr.router, flags, ctx.pin_dir, name="bench-footprint")
    d.log_path = ctx.log_dir / "footprint-1.log"
    d.start()
    fake = FakeDevices(ctx.pin_dir)
    try:
        fake.start()
        macs = [m.hex(":") for m in fake.macs]
        time.sleep(40)
        _read_history(d, macs, loaded=False)  # the same requests as below, on a young history
        time.sleep(20)
        out["rss_minute"] = rss_mb(d.proc.pid)
        generation = _generation(ctx.pin_dir)
        for name, span in (("year", YEAR_S), ("month", MONTH_S)):
            d.stop()
            shutil.rmtree(data_dir)
            write_history(data_dir, macs, fake.counters, span, generation)
            d = Bandix(ctx.vr.router, flags, ctx.pin_dir, name="bench-footprint")
            d.log_path = ctx.log_dir / f"footprint-{name}.log"
            d.start(timeout=300)
            time.sleep(5)
            out[f"rss_{name}_loaded"] = rss_mb(d.proc.pid)  # before any request
            _read_history(d, macs, loaded=True)
            time.sleep(20)
            out[f"rss_{name}"] = rss_mb(d.proc.pid)
            out[f"db_{name}"] = data_dir_bytes(data_dir)
    finally:
        fake.stop()
        d.stop()
    return out


def footprint_figures(vr, pin_dir: Path, log_dir: Path) -> None:
    ctx = Context(vr, pin_dir, log_dir)
    print("\n9. Footprint goals (issue 17), side by side")
    daemon = _daemon_figures(ctx)
    off = ram_month()
    off_lan = ram_month(lan=True)
    noisy = noisy_month_kb()
    with tempfile.TemporaryDirectory(prefix="bandix-flash-", dir="/var/tmp") as flash_dir:
        flash = flash_per_hour(Path(flash_dir))
    from bench import baseline  # goals 3 and 5: the daemon before issue 17 beside this one

    goal3, goal5 = baseline.goal3(ctx.log_dir), baseline.goal5(ctx.log_dir)

    ratio = daemon["rss_year"] / daemon["rss_minute"]
    print(f"   1. memory flat over time, {DEVICES} devices, persistence on (data dir on disk): RSS after one minute "
          f"{daemon['rss_minute']:.1f} MB, after a simulated year of busy history {daemon['rss_year']:.1f} MB = "
          f"{ratio:.2f}x {mark(ratio <= FLAT_GOAL)} (goal <= {FLAT_GOAL:.2f}x; {daemon['rss_year_loaded']:.1f} MB "
          f"when loaded, before the history requests; data dir {daemon['db_year'] / 1e6:.1f} MB)")
    on_ram = (daemon["rss_month"] - daemon["rss_minute"]) * 1024 / DEVICES
    on_dir = daemon["db_month"] / 1024 / DEVICES
    print(f"   2. history per busy device-month (goal <= {HISTORY_GOAL_KB} KB, process RAM + data dir):")
    print(f"      persistence off: RAM {off['rss_kb']:.0f} KB (levels hold {off['held_kb']:.0f} KB) + data dir 0 KB "
          f"= {off['rss_kb']:.0f} KB {mark(off['rss_kb'] <= HISTORY_GOAL_KB)}")
    print(f"      persistence on:  RAM {on_ram:.0f} KB + data dir {on_dir:.0f} KB = {on_ram + on_dir:.0f} KB "
          f"{mark(on_ram + on_dir <= HISTORY_GOAL_KB)}")
    print(f"      for information, persistence off with LAN traffic in every bucket too (random LAN bytes): RAM "
          f"{off_lan['rss_kb']:.0f} KB (levels hold {off_lan['held_kb']:.0f} KB; "
          f"{'within' if off_lan['rss_kb'] <= HISTORY_GOAL_KB else 'above'} the goal's {HISTORY_GOAL_KB} KB)")
    print(f"      for information, buckets from noisy one-second samples (lognormal, through the level code): "
          f"levels hold {noisy:.0f} KB ({'within' if noisy <= HISTORY_GOAL_KB else 'above'} the goal's "
          f"{HISTORY_GOAL_KB} KB: every statistic exact, and noise does not compress)")
    print(f"   {goal3.line()}")
    total = flash["write_mb"]
    print(f"   4. flash, persistence on, {FLASH_DEVICES} busy devices, a save every {FLUSH_S} s: "
          f"write_bytes {total:.2f} MB/h, WAL appends and their checkpoint into bandix.db included "
          f"{mark(total <= FLASH_GOAL_MB)} (goal <= {FLASH_GOAL_MB:.1f} MB/h; {total * 24 * 365 / 1e3:.1f} GB a "
          f"year; of which WAL {flash['wal_mb']:.2f} MB/h; write() calls {flash['wchar_mb']:.2f} MB/h)")
    print(f"   {goal5.line()}")


def main() -> None:
    """Goals 2 (persistence off) and 4 without a router: `python -m bench.footprint`."""
    off = ram_month()
    print(f"persistence off: RAM {off['rss_kb']:.0f} KB per busy device-month (levels hold {off['held_kb']:.0f} KB)")
    lan = ram_month(lan=True)
    print(f"persistence off, LAN traffic in every bucket too: RAM {lan['rss_kb']:.0f} KB per busy device-month "
          f"(levels hold {lan['held_kb']:.0f} KB)")
    with tempfile.TemporaryDirectory(prefix="bandix-flash-", dir="/var/tmp") as flash_dir:
        flash = flash_per_hour(Path(flash_dir))
    print(f"flash: {flash}")


if __name__ == "__main__":
    main()
