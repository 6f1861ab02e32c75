"""The history database with compact chunks: a store saved periodically and at a
stop reads back exactly, sealed chunks leave memory once saved and are read back
from the file, a crash restores closed buckets without stale rings, and a
version-2 file (one row per bucket) is converted losslessly, and a version-4 file
(buckets without LAN bytes) reads with LAN bytes 0, its open buckets' samples kept."""

import random
import sqlite3
import zlib
from array import array

from bandix.store import chunks, schema
from bandix.store.database import HistoryDatabase, pack_buffer, unpack_buffer
from bandix.store.levels import Level
from bandix.store.persistence import Persistence
from bandix.store.traffic import ALL, TrafficStore

LEVELS = (Level("day", 2, 40, 4), Level("week", 4, 30, 4), Level("month", 10, 20, 2), Level("year", 20, 10, 3))
A, B = "02:00:00:00:00:0a", "02:00:00:00:00:0b"
T0 = 1_790_000_000


def feed(store: TrafficStore, seconds: range, rng: random.Random, totals: dict[str, list[int]]) -> None:
    for s in seconds:
        for mac in (A, B):
            c = totals.setdefault(mac, [0] * 8)
            for k in range(8):
                c[k] += rng.randrange(0, 5000)
        store.update(s * 1000, float(s), {m: list(c) for m, c in totals.items()})


def levels_of(store: TrafficStore, now_s: int) -> dict:
    """The API's rows and usage's rows (with the LAN bytes) of every level and series."""
    return {(lv.name, mac, kind): getattr(store, kind)(lv.name, mac, now_s * 1000)
            for lv in LEVELS for mac in (A, B, None) for kind in ("level_rows", "level_usage")}


def test_periodic_saves_move_history_out_of_memory_and_read_back_exactly(tmp_path):
    rng, totals = random.Random(5), {}
    store = TrafficStore(10, LEVELS)
    p = Persistence(store, tmp_path, 600, pin_generation=1)
    p.start()
    feed(store, range(T0, T0 + 300), rng, totals)
    p._save(store.snapshot(final=False))
    held = [rows.stats_bytes()[0] for rows in store._devices[A].series.history.rows.values()]
    assert held == [0, 0, 0, 0]  # every sealed chunk is in the file only
    feed(store, range(T0 + 300, T0 + 400), rng, totals)
    expected = levels_of(store, T0 + 400)
    assert len(expected[("day", A, "level_rows")]) >= 35  # most of the retention
    assert len(expected[("year", None, "level_rows")]) >= 8
    assert all(r[3] and r[4] for r in expected[("day", A, "level_usage")])  # LAN bytes kept too
    p._save(store.snapshot(final=False))
    assert levels_of(store, T0 + 400) == expected  # read back through the file
    ring = store.rows(A)
    p.close()

    again = TrafficStore(10, LEVELS)
    p2 = Persistence(again, tmp_path, 600, pin_generation=1)
    p2.start()
    assert levels_of(again, T0 + 400) == expected
    assert again.rows(A) == ring  # a stop saves the rings
    p2.close()


def test_a_crash_restores_closed_buckets_but_no_stale_ring(tmp_path):
    rng, totals = random.Random(6), {}
    store = TrafficStore(10, LEVELS)
    p = Persistence(store, tmp_path, 600, pin_generation=1)
    p.start()
    feed(store, range(T0, T0 + 100), rng, totals)
    p.close()  # a clean stop: rings saved
    store = TrafficStore(10, LEVELS)
    p = Persistence(store, tmp_path, 600, pin_generation=1)
    p.start()
    feed(store, range(T0 + 100, T0 + 200), rng, totals)
    p._save(store.snapshot(final=False))
    expected = levels_of(store, T0 + 200)
    # SIGKILL here: no final save.
    again = TrafficStore(10, LEVELS)
    p2 = Persistence(again, tmp_path, 600, pin_generation=1)
    p2.start()
    assert levels_of(again, T0 + 200) == expected
    assert again.rows(A) == []  # the ring saved at the earlier stop is older than the history
    assert again.device(A).counters == tuple(totals[A])


def test_a_version_2_file_is_converted_losslessly(tmp_path):
    rng = random.Random(7)
    path = tmp_path / "bandix.db"
    db = sqlite3.connect(path)
    db.executescript(schema.HISTORY + schema.ANALYTICS
                     + f"PRAGMA application_id = {schema.APPLICATION_ID}; PRAGMA user_version = 2;")
    now_s = T0 + 1000
    db.execute("INSERT INTO meta VALUES ('wall_ms', ?)", (now_s * 1000,))
    db.execute("INSERT INTO series (id, name, ring, buffer) VALUES (1, ?, x'', x'')", (ALL,))
    expected = {}
    for code, lv in enumerate(LEVELS):
        top = now_s // lv.interval
        rows = []
        for idx in range(top - lv.capacity - 5, top):
            if rng.random() < 0.2:
                continue  # an empty bucket
            stats = [rng.randrange(2**32) for _ in range(12)]
            rows.append((1, code, idx, *stats, rng.randrange(2**40), rng.randrange(2**40)))
        db.executemany(f"INSERT INTO buckets VALUES ({', '.join('?' * 17)})", rows)
        since = top - lv.capacity + 1
        expected[lv.name] = [[r[2] * lv.interval * 1000, *r[3:]] for r in rows if r[2] >= since]
    db.commit()
    db.close()

    def read(tmp_path):
        store = TrafficStore(10, LEVELS)
        p = Persistence(store, tmp_path, 600, pin_generation=1)
        p.start()
        got = {lv.name: store.level_rows(lv.name, None, now_s * 1000) for lv in LEVELS}
        return store, p, got

    store, p, got = read(tmp_path)
    assert got == expected
    p._save(store.snapshot(final=False))  # writes chunks, drops the old table
    p.close()
    tables = {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "buckets" not in tables and {"chunks", "tails"} <= tables
    _, p, got = read(tmp_path)
    assert got == expected
    p.close()
    assert HistoryDatabase(tmp_path, LEVELS).path == path


def test_level_bytes_counts_buckets_whose_start_is_in_the_range(tmp_path):
    rng, totals = random.Random(8), {}
    store = TrafficStore(10, LEVELS)
    p = Persistence(store, tmp_path, 600, pin_generation=1)
    p.start()
    feed(store, range(T0, T0 + 120), rng, totals)
    p._save(store.snapshot(final=False))  # sealed chunks now read from the file
    rows = {mac: store.level_rows("week", mac, (T0 + 120) * 1000) for mac in (A, B, None)}
    got = store.level_bytes("week", (T0 + 20) * 1000, (T0 + 60) * 1000 + 1)
    assert set(got) == {ALL, A, B}
    for mac, key in ((A, A), (B, B), (None, ALL)):
        assert got[key] == [(r[0], r[13], r[14]) for r in rows[mac] if (T0 + 20) * 1000 <= r[0] <= (T0 + 60) * 1000]
        assert len(got[key]) == 11
    first = store.level_bytes("week", T0 * 1000, (T0 + 8) * 1000, macs=[A, "02:00:00:00:00:ff"])
    assert list(first) == [A] and [r[0] for r in first[A]] == [T0 * 1000, (T0 + 4) * 1000]
    assert first[A][1] == (rows[A][0][0], rows[A][0][13], rows[A][0][14])
    p.close()


def wan_only_blob(blob: bytes) -> bytes:
    """A chunk as schema 4 wrote it (format 0: no LAN columns), with the same WAN buckets."""
    records = [(*r[:15], 0, 0) for r in chunks.decode(blob)]
    new = chunks.encode(records)
    body = zlib.decompress(new[1:]) if new[0] & chunks.DEFLATED else new[1:]
    return bytes([chunks.RAW]) + body[: len(body) - 2 * len(records)]


def test_a_version_4_file_reads_with_lan_bytes_0_and_keeps_its_open_samples(tmp_path):
    rng, totals = random.Random(9), {}
    store = TrafficStore(10, LEVELS)
    p = Persistence(store, tmp_path, 600, pin_generation=1)
    p.start()
    feed(store, range(T0, T0 + 300), rng, totals)
    p._save(store.snapshot(final=False))
    feed(store, range(T0 + 300, T0 + 333), rng, totals)  # open buckets: samples in the buffers
    expected = levels_of(store, T0 + 333)
    buffers = {m: store._series(m).history.buffer_state() for m in (A, B, None)}
    p.close()
    # The file as bandix with schema 4 left it: chunks and tails of format 0, 5-array buffers.
    db = sqlite3.connect(tmp_path / "bandix.db")
    for table in ("chunks", "tails"):
        db.executemany(f"UPDATE {table} SET data = ? WHERE key = ?",
                       [(wan_only_blob(data), key) for key, data in db.execute(f"SELECT key, data FROM {table}")])
    old = [(zlib.compress(pack_buffer(unpack_buffer(zlib.decompress(buf))[:5])), sid)
           for sid, buf in db.execute("SELECT id, buffer FROM series")]
    db.executemany("UPDATE series SET buffer = ? WHERE id = ?", old)
    db.execute("PRAGMA user_version = 4")
    db.commit()
    db.close()

    again = TrafficStore(10, LEVELS)
    p2 = Persistence(again, tmp_path, 600, pin_generation=1)
    p2.start()
    assert sqlite3.connect(tmp_path / "bandix.db").execute("PRAGMA user_version").fetchone()[0] == 5
    got = levels_of(again, T0 + 333)
    for key, rows in expected.items():
        if key[2] == "level_rows":
            assert got[key] == rows  # the API's rows: unchanged
        else:
            assert got[key] == [[*r[:3], 0, 0] for r in rows]  # WAN bytes kept, LAN bytes 0
    for mac, state in buffers.items():
        n = len(state[0]) // 8
        assert n > 0
        assert again._series(mac).history.buffer_state() == (*state[:5], bytes(8 * n), bytes(8 * n))
    # The next samples close the open year bucket [T0 + 320, T0 + 340): its WAN bytes are the
    # migrated samples' and the new ones', its LAN bytes the new ones' only.
    before = list(totals[A])
    feed(again, range(T0 + 333, T0 + 340), rng, totals)
    after = list(totals[A])
    feed(again, range(T0 + 340, T0 + 345), rng, totals)
    closed = [r for r in again.level_usage("year", A, (T0 + 345) * 1000) if r[0] == (T0 + 320) * 1000]
    buffered = array("Q", buffers[A][3])
    assert closed == [[(T0 + 320) * 1000, sum(buffered) + after[4] - before[4],
                       sum(array("Q", buffers[A][4])) + after[6] - before[6],
                       after[0] - before[0], after[2] - before[2]]]
    p2.close()
