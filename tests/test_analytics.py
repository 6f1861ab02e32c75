"""The analytics tables and reports on their own: schema migration, upserts,
the hourly rollup against a recomputation from the minute rows, prune, the
domain cache, and the report commands' handling of bad input."""

import json
import random
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from bandix.collect.attribution import DomainCache
from bandix.store import reports, schema
from bandix.store.analytics import Batch, prune, write_batch
from bandix.store.database import BandixFile, DatabaseUnavailable, HistoryDatabase
from bandix.store.levels import DEFAULT_LEVELS

ROOT = Path(__file__).resolve().parents[1]
T0 = 1_790_000_000 // 86400 * 86400  # a midnight, UTC


def open_file(path: Path) -> sqlite3.Connection:
    f = BandixFile(path)
    f.open()
    return f.db


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bandix", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


def test_a_version_1_file_is_migrated_and_keeps_its_history(tmp_path):
    db = sqlite3.connect(tmp_path / "bandix.db")
    db.executescript(schema.HISTORY + f"PRAGMA application_id = {schema.APPLICATION_ID}; PRAGMA user_version = 1;")
    db.execute("INSERT INTO meta VALUES ('wall_ms', 1234)")
    db.execute("INSERT INTO series (name, ring, buffer) VALUES ('all', x'00', x'')")
    db.commit()
    db.close()
    history = HistoryDatabase(tmp_path, DEFAULT_LEVELS)
    history.open()
    assert history.db.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
    assert history.db.execute("SELECT value FROM meta WHERE key = 'wall_ms'").fetchone()[0] == 1234
    assert history.db.execute("SELECT name FROM series").fetchall() == [("all",)]
    tables = {r[0] for r in history.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert set(schema.ANALYTICS_TABLES) <= tables
    history.close()
    again = open_file(tmp_path / "bandix.db")  # nothing left to migrate
    assert again.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION


def test_a_version_2_file_gains_the_quic_unavailable_column_and_keeps_its_rows(tmp_path):
    """Schema 4 and later: collector-health counts the QUIC Initials read without cryptography; older minutes say 0."""
    db = sqlite3.connect(tmp_path / "bandix.db")
    db.executescript(schema.HISTORY + schema.ANALYTICS +
                     f"PRAGMA application_id = {schema.APPLICATION_ID}; PRAGMA user_version = 2;")
    db.execute("INSERT INTO health_1m VALUES (600, 5, 16384, 1, 0, 0, 0, 0, 0, 3, 1, 7, 0.5)")
    db.commit()
    db.close()
    again = open_file(tmp_path / "bandix.db")
    assert again.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
    assert again.execute("SELECT hellos_parsed, hellos_unparsed, hellos_quic_unavailable FROM health_1m"
                         ).fetchall() == [(3, 1, 0)]


def test_files_that_are_not_ours_or_newer_are_left_alone(tmp_path):
    foreign = tmp_path / "foreign.db"
    sqlite3.connect(foreign).executescript("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
    before = foreign.read_bytes()
    with pytest.raises(DatabaseUnavailable, match="not a bandix database"):
        open_file(foreign)
    assert foreign.read_bytes() == before
    out = cli("top-domain", "--db", str(foreign))
    assert out.returncode == 2 and "not a bandix database" in out.stderr
    newer = tmp_path / "newer.db"
    sqlite3.connect(newer).executescript(
        f"PRAGMA application_id = {schema.APPLICATION_ID}; PRAGMA user_version = 99; CREATE TABLE t (x);")
    with pytest.raises(DatabaseUnavailable, match="newer bandix"):
        open_file(newer)
    missing = cli("top-ip", "--db", str(tmp_path / "none.db"))
    assert missing.returncode == 2 and "no database" in missing.stderr
    assert not (tmp_path / "none.db").exists()


def flow(batch: Batch, minute: int, src: str, sport: int, dst: str, dport: int, label=("unknown", "", ""),
         nbytes: int = 100, direction: str = "up", mac: str = "02:00:00:00:00:01", proto: int = 6) -> None:
    batch.add_flow(minute, "br-lan", mac, direction, proto, src, sport, dst, dport, label[2], label[0], label[1],
                   nbytes, 1)


def test_upserts_add_bytes_and_labels_only_get_better(tmp_path):
    db = open_file(tmp_path / "bandix.db")
    m = T0 + 600
    for label, nbytes in ((("unknown", "", ""), 10), (("exact", "sni", "a.test"), 20), (("unknown", "", ""), 30),
                          (("ambiguous", "dns", "b.test"), 40)):
        b = Batch()
        flow(b, m, "192.168.1.2", 40000, "198.51.100.1", 443, label, nbytes)
        write_batch(db, b)
    assert db.execute("SELECT bytes, packets, domain, attribution, source FROM flow_1m_5t").fetchall() == [
        (100, 4, "a.test", "exact", "sni")]
    # The hourly rollup keeps each label's share.
    assert sorted(db.execute("SELECT domain, attribution, bytes FROM flow_1h").fetchall()) == [
        ("", "unknown", 40), ("a.test", "exact", 20), ("b.test", "ambiguous", 40)]


def synthetic(db: sqlite3.Connection, days: int, seed: int = 7) -> list[tuple]:
    """Random flows of 6 devices over `days` days, written a minute per batch; the minute rows as written."""
    rnd = random.Random(seed)
    domains = [("exact", "dns", "a.test"), ("exact", "sni", "b.test"), ("ambiguous", "dns", "c.test"),
               ("unknown", "", "")]
    rows = []
    for minute in range(T0, T0 + days * 86400, 60 * 7):  # every 7th minute: hour edges fall mid-hour
        b = Batch()
        for _ in range(rnd.randint(1, 4)):
            dev = rnd.randint(1, 6)
            lan, peer = f"192.168.1.{dev}", f"198.51.100.{rnd.randint(1, 9)}"
            port, label = rnd.choice((80, 443, 853)), rnd.choice(domains)
            direction, nbytes = rnd.choice(("up", "down")), rnd.randint(1, 10**6)
            src, sport, dst, dport = ((lan, 50000 + dev, peer, port) if direction == "up"
                                      else (peer, port, lan, 50000 + dev))
            flow(b, minute, src, sport, dst, dport, label, nbytes, direction, f"02:00:00:00:00:0{dev}")
            rows.append((minute, direction, lan, peer, port, label, nbytes))
        write_batch(db, b)
    return rows


@pytest.mark.parametrize("lookback", [1, 59, 60, 61, 125, 1440, 2000, 4320])
def test_reports_over_the_rollup_equal_a_recount_of_the_minutes(tmp_path, lookback):
    db = open_file(tmp_path / "bandix.db")
    rows = synthetic(db, 3)
    now = T0 + 2 * 86400 + 5 * 3600 + 17 * 60 + 42
    w = reports.Window(now, lookback, 1000)
    inside = [r for r in rows if w.first_minute <= r[0] <= w.last_minute]
    by_domain, by_ip, by_label = defaultdict(int), defaultdict(int), defaultdict(int)
    for _minute, _direction, _lan, peer, _port, label, nbytes in inside:
        by_domain[label[2] or "(unknown)"] += nbytes
        by_ip[peer] += nbytes
        by_label[label[:2]] += nbytes
    assert {r["domain"]: r["total"] for r in reports.top_domain(db, w).rows} == by_domain
    assert {r["ip"]: r["total"] for r in reports.top_ip(db, w).rows} == by_ip
    assert {(r["attribution"], r["source"]): r["bytes"] for r in reports.attribution_coverage(db, w).rows} == by_label
    detail = reports.domain_detail(db, w, "a.test").rows
    assert sum(r["bytes"] for r in detail) == by_domain.get("a.test", 0)
    top = reports.top_domain(db, reports.Window(now, lookback, 2)).rows
    assert [r["total"] for r in top] == sorted(by_domain.values(), reverse=True)[:2]


def test_prune_deletes_only_what_is_older(tmp_path):
    path = tmp_path / "bandix.db"
    db = open_file(path)
    rows = synthetic(db, 3)
    now = T0 + 3 * 86400
    deleted = prune(db, 1, now)
    left = db.execute("SELECT min(ts_minute), count(*) FROM flow_1m_5t").fetchone()
    keys = {r[:5] for r in rows}  # flows met twice in a minute share a row
    assert left[0] >= now - 86400 and left[1] == sum(1 for k in keys if k[0] >= now - 86400)
    assert deleted["flow_1m_5t"] == sum(1 for k in keys if k[0] < now - 86400)
    assert db.execute("SELECT min(ts_hour) FROM flow_1h").fetchone()[0] >= now - 86400
    # The 5-tuple minutes can go sooner than the rest.
    prune(db, 1, now, detail_hours=6)
    assert db.execute("SELECT min(ts_minute) FROM flow_1m_5t").fetchone()[0] >= now - 6 * 3600
    assert db.execute("SELECT min(ts_hour) FROM flow_1h").fetchone()[0] < now - 6 * 3600
    db.close()
    out = cli("prune", "--db", str(path), "--retention-days", "1")
    assert out.returncode == 0 and out.stdout.startswith("deleted ")
    for bad in (["--retention-days", "0"], ["--retention-days", "x"], []):
        out = cli("prune", "--db", str(path), *bad)
        assert out.returncode == 2 and "error" in out.stderr


def test_report_commands_reject_bad_flags_and_print_json(tmp_path):
    path = tmp_path / "bandix.db"
    db = open_file(path)
    b = Batch()
    flow(b, int(time.time()) // 60 * 60, "192.168.1.2", 1234, "198.51.100.1", 443,
         ("exact", "sni", "a.test"), 777)
    write_batch(db, b)
    db.close()
    for args in (["top-ip", "--limit", "0"], ["top-ip", "--lookback-minutes", "abc"], ["domain-detail"],
                 ["top-ip", "--bogus"], ["nothing"]):
        out = cli(*args, "--db", str(path))
        assert out.returncode == 2 and out.stderr, args
    out = cli("top-domain", "--db", str(path), "--json")
    assert out.returncode == 0
    body = json.loads(out.stdout)
    assert body["title"] == "Top domains" and body["rows"][0]["domain"] == "a.test"
    assert body["rows"][0]["total"] == body["rows"][0]["up"] == 777
    assert json.loads(cli("top-domain", "--db", str(path), "--json", "--mac", "02:00:00:00:00:09").stdout)[
        "rows"] == []
    text = cli("top-lan", "--db", str(path))
    assert text.returncode == 0 and "192.168.1.2" in text.stdout and "777 B" in text.stdout


def test_domain_cache_caps_ttls_expires_and_prefers_the_devices_own_name():
    cache = DomainCache(dns_ttl_cap=60, sni_ttl_cap=30, max_addresses=3)
    cache.learn("198.51.100.1", "a.test", 3600, "dns", "m1", now=0)
    assert cache.attribute("198.51.100.1", "m2", 59.9) == ("exact", "dns", "a.test")
    assert cache.attribute("198.51.100.1", "m2", 60.0) == ("unknown", "", "")  # capped at 60 s
    cache.learn("198.51.100.2", "b.test", 300, "dns", "m1", now=100)
    cache.learn("198.51.100.2", "c.test", 300, "dns", "m2", now=101)
    assert cache.attribute("198.51.100.2", "m1", 102) == ("ambiguous", "dns", "b.test")
    assert cache.attribute("198.51.100.2", "m2", 102) == ("ambiguous", "dns", "c.test")
    assert cache.attribute("198.51.100.2", "m3", 102)[0] == "ambiguous"
    cache.learn("198.51.100.2", "b.test", 300, "sni", "m1", now=103)  # refreshed, not a new name
    counts = {(s, d): (learned, refreshed, expired) for s, d, learned, refreshed, expired, _ in cache.take_counts()}
    assert counts[("dns", "a.test")] == (1, 0, 1) and counts[("sni", "b.test")] == (0, 1, 0)
    for i in range(3, 7):
        cache.learn(f"198.51.100.{i}", "d.test", 10, "sni", "m1", now=200)
    assert len(cache) == 3  # the oldest addresses make room
