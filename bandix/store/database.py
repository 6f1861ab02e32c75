"""The history database: one SQLite file in --data-dir, WAL, one transaction per save.

It holds what a restart needs (devices' offsets and counters, the realtime
rings, the samples of the open buckets) and every closed history bucket within
its level's retention. A database that is not bandix's is never touched; one
that SQLite finds corrupt is moved aside, never deleted.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from array import array
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from . import schema
from .levels import Level
from .traffic import DeviceRecord, SeriesRecord, Snapshot

log = logging.getLogger(__name__)

DB_NAME = "bandix.db"
LEVEL_CODES = {"day": 0, "week": 1, "month": 2, "year": 3}
_BUFFER_TYPES = ("q", "I", "I", "Q", "Q")  # History sample buffer: ts, rx, tx, rx bytes, tx bytes


class DatabaseUnavailable(Exception):
    """History cannot be kept on disk; str() says why and what to do."""


class IncompatibleDatabase(DatabaseUnavailable):
    """The file is not bandix's, or was written by a newer bandix: left untouched."""


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT on a connection in autocommit mode; rolled back on any error."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _u64s(values: list[int]) -> bytes:
    return array("Q", values).tobytes()


def _from_u64s(raw: bytes) -> list[int]:
    out = array("Q")
    out.frombytes(raw)
    return list(out)


def pack_buffer(state: tuple[bytes, ...]) -> bytes:
    return b"".join(state)


def unpack_buffer(raw: bytes) -> tuple[bytes, ...]:
    widths = [array(t).itemsize for t in _BUFFER_TYPES]
    n, rest = divmod(len(raw), sum(widths))
    if rest:
        raise ValueError("truncated sample buffer")
    out, at = [], 0
    for w in widths:
        out.append(raw[at : at + n * w])
        at += n * w
    return tuple(out)


class BandixFile:
    """bandix.db: opened, created or migrated, or moved aside when corrupt."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._db: sqlite3.Connection | None = None

    @property
    def db(self) -> sqlite3.Connection:
        assert self._db is not None, "open() first"
        return self._db

    # -- opening ----------------------------------------------------------

    def open(self) -> None:
        """Open or create the database; DatabaseUnavailable if it cannot be used."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseUnavailable(f"cannot create {self.path.parent}: {exc.strerror}") from None
        if not os.access(self.path.parent, os.W_OK):
            raise DatabaseUnavailable(f"{self.path.parent} is not writable")
        try:
            self._connect()
        except sqlite3.DatabaseError as exc:
            self.close()
            if isinstance(exc, sqlite3.OperationalError) and not self._looks_corrupt(exc):
                raise DatabaseUnavailable(f"cannot open {self.path}: {exc}") from None
            self._move_aside(str(exc))
            try:
                self._connect()
            except sqlite3.DatabaseError as again:
                self.close()
                raise DatabaseUnavailable(f"cannot create {self.path}: {again}") from None

    @staticmethod
    def _looks_corrupt(exc: sqlite3.DatabaseError) -> bool:
        text = str(exc).lower()
        return "malformed" in text or "not a database" in text or "corrupt" in text

    def _connect(self) -> None:
        db = self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=5)
        app_id = db.execute("PRAGMA application_id").fetchone()[0]
        version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if app_id != schema.APPLICATION_ID and (app_id != 0 or tables):
            self.close()
            raise IncompatibleDatabase(
                f"{self.path} is not a bandix database; it was left untouched: "
                "move it away or choose another --data-dir")
        if app_id == schema.APPLICATION_ID and version > schema.SCHEMA_VERSION:
            self.close()
            raise IncompatibleDatabase(f"{self.path} was written by a newer bandix (schema {version})")
        check = db.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise sqlite3.DatabaseError(f"database disk image is malformed ({check})")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("PRAGMA busy_timeout = 5000")  # the history and analytics writers share the file
        self._upgrade(db, version if tables else 0)
        self._opened(db)

    def _upgrade(self, db: sqlite3.Connection, version: int) -> None:
        """Create the tables of a new file, or migrate an older one, in one transaction."""
        if version == schema.SCHEMA_VERSION:
            return
        with transaction(db):
            tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if tables and db.execute("PRAGMA user_version").fetchone()[0] != version:
                return  # another process created or migrated it meanwhile
            if not version:
                script = schema.CREATE
            else:
                script = "".join(schema.MIGRATIONS[v] for v in range(version, schema.SCHEMA_VERSION))
                log.info("%s: migrating from schema %d to %d", self.path, version, schema.SCHEMA_VERSION)
            for statement in filter(str.strip, script.split(";")):
                db.execute(statement)
            db.execute(f"PRAGMA application_id = {schema.APPLICATION_ID}")
            db.execute(f"PRAGMA user_version = {schema.SCHEMA_VERSION}")

    def _opened(self, db: sqlite3.Connection) -> None:
        """Hook for what a subclass reads once the file is ready."""

    def _move_aside(self, reason: str) -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            src = Path(str(self.path) + suffix)
            if src.exists():
                os.replace(src, Path(str(target) + suffix))
        log.error("%s is corrupt (%s): moved it to %s and started a new one", self.path, reason, target)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


class HistoryDatabase(BandixFile):
    def __init__(self, data_dir: Path, levels: tuple[Level, ...]) -> None:
        super().__init__(Path(data_dir) / DB_NAME)
        self.levels = levels
        self.watermarks: dict[str, int] = {}  # level → newest bucket index on disk

    def _opened(self, db: sqlite3.Connection) -> None:
        for code, newest in db.execute("SELECT level, max(idx) FROM buckets GROUP BY level"):
            name = next((n for n, c in LEVEL_CODES.items() if c == code), None)
            if name:
                self.watermarks[name] = newest

    # -- reading ----------------------------------------------------------

    def load(self) -> tuple[Snapshot, dict[str, object]] | None:
        """The saved state and its meta data, or None for a new database."""
        db = self._db
        meta = dict(db.execute("SELECT key, value FROM meta"))
        if "wall_ms" not in meta:
            return None
        devices = [DeviceRecord(mac, _from_u64s(off), _from_u64s(kern), online, created)
                   for mac, off, kern, online, created in db.execute(
                       "SELECT mac, offsets, kernel, last_online_ms, created_ms FROM devices")]
        now_s = int(meta["wall_ms"]) // 1000
        query = (f"SELECT idx, {', '.join(schema.STAT_COLUMNS)}, rx_bytes, tx_bytes FROM buckets "
                 "WHERE series = ? AND level = ? AND idx >= ? ORDER BY idx")
        series = {}
        for sid, name, ring, buffer in db.execute("SELECT id, name, ring, buffer FROM series").fetchall():
            # Cursors, consumed by the store as it loads: no list of every bucket in between.
            rows = {level.name: db.execute(query, (sid, LEVEL_CODES[level.name],
                                                   (now_s - level.retention_seconds) // level.interval))
                    for level in self.levels if level.name in LEVEL_CODES}
            series[name] = SeriesRecord(ring, unpack_buffer(buffer), rows)
        snap = Snapshot(wall_ms=int(meta["wall_ms"]), mono=meta.get("mono"), devices=devices, series=series)
        return snap, meta

    # -- writing ----------------------------------------------------------

    def save(self, snap: Snapshot, meta: dict[str, object]) -> None:
        """Write one snapshot in one transaction; raises sqlite3/OSError errors."""
        db = self._db
        newest: dict[str, int] = {}
        with transaction(db):
            db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                           [*meta.items(), ("wall_ms", snap.wall_ms), ("mono", snap.mono)])
            if snap.rewrite_from_ms is not None:
                for level in self._coded_levels():
                    db.execute("DELETE FROM buckets WHERE level = ? AND idx >= ?",
                               (LEVEL_CODES[level.name], snap.rewrite_from_ms // 1000 // level.interval))
            for mac in snap.forgotten:
                db.execute("DELETE FROM devices WHERE mac = ?", (mac,))
                db.execute("DELETE FROM buckets WHERE series = (SELECT id FROM series WHERE name = ?)", (mac,))
                db.execute("DELETE FROM series WHERE name = ?", (mac,))
            db.executemany("INSERT OR REPLACE INTO devices VALUES (?, ?, ?, ?, ?)",
                           [(d.mac, _u64s(d.offset), _u64s(d.kernel), d.last_online_ms, d.created_ms)
                            for d in snap.devices])
            insert = (f"INSERT OR REPLACE INTO buckets ({', '.join(schema.BUCKET_COLUMNS)}) "
                      f"VALUES ({', '.join('?' * len(schema.BUCKET_COLUMNS))})")
            for name, rec in snap.series.items():
                db.execute("INSERT INTO series (name, ring, buffer) VALUES (?, ?, ?) "
                           "ON CONFLICT(name) DO UPDATE SET ring = excluded.ring, buffer = excluded.buffer",
                           (name, rec.ring, pack_buffer(rec.buffer)))
                sid = db.execute("SELECT id FROM series WHERE name = ?", (name,)).fetchone()[0]
                for level_name, records in rec.rows.items():
                    code = LEVEL_CODES.get(level_name)
                    records = list(records)
                    if code is None or not records:
                        continue
                    db.executemany(insert, [(sid, code, *r) for r in records])
                    newest[level_name] = max(newest.get(level_name, -1), records[-1][0])
            now_s = snap.wall_ms // 1000
            for level in self._coded_levels():
                db.execute("DELETE FROM buckets WHERE level = ? AND idx < ?",
                           (LEVEL_CODES[level.name], (now_s - level.retention_seconds) // level.interval))
        if snap.rewrite_from_ms is not None:
            for level in self._coded_levels():
                first_stale = snap.rewrite_from_ms // 1000 // level.interval
                if level.name in self.watermarks:
                    self.watermarks[level.name] = min(self.watermarks[level.name], first_stale - 1)
        for name, idx in newest.items():
            self.watermarks[name] = max(self.watermarks.get(name, -1), idx)

    def _coded_levels(self) -> list[Level]:
        return [level for level in self.levels if level.name in LEVEL_CODES]
