"""The history database: one SQLite file in --data-dir, WAL, one transaction per save.

It holds what a restart needs (devices' offsets and counters; the realtime
rings and the samples of the open buckets, as of the last stop) and every
closed history bucket within its level's retention, in compact chunks. A
database that is not bandix's is never touched; one that SQLite finds corrupt is moved aside, never deleted.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
import zlib
from array import array
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from . import schema
from .levels import Level, LevelRows, Sealed
from .schema import chunk_key, tail_key
from .traffic import DeviceRecord, LevelRecord, SeriesRecord, Snapshot

log = logging.getLogger(__name__)

DB_NAME = "bandix.db"
LEVEL_CODES = {"day": 0, "week": 1, "month": 2, "year": 3}
CHUNK_MAX = (1 << 34) - 1  # the largest chunk number a key holds
SERIES_MASK = (1 << 24) - 1
# History sample buffer: ts, WAN rx, tx rates, WAN rx, tx bytes, LAN rx, tx bytes (these two since
# schema 5: a version-4 buffer is widened with zeros when the file is migrated).
_BUFFER_TYPES = ("q", "I", "I", "Q", "Q", "Q", "Q")
_BUFFER_TYPES_4 = _BUFFER_TYPES[:5]


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


def unpack_buffer(raw: bytes, types: tuple[str, ...] = _BUFFER_TYPES) -> tuple[bytes, ...]:
    widths = [array(t).itemsize for t in types]
    n, rest = divmod(len(raw), sum(widths))
    if rest:
        raise ValueError("truncated sample buffer")
    out, at = [], 0
    for w in widths:
        out.append(raw[at : at + n * w])
        at += n * w
    return tuple(out)


def _inflate(raw: bytes) -> bytes:
    """A ring or buffer as saved: deflated since version 3, raw before."""
    try:
        return zlib.decompress(raw)
    except zlib.error:
        return raw


def _widen_buffers(db: sqlite3.Connection) -> None:
    """Schema 4 → 5: every saved sample buffer gets its LAN byte arrays, zeros (the samples
    were taken before LAN bytes were kept). A buffer that does not parse is emptied, as
    loading would reject it anyway. Chunks need nothing: their format byte tells."""
    for sid, raw in db.execute("SELECT id, buffer FROM series").fetchall():
        data = _inflate(raw)
        if not data:
            continue
        try:
            state = unpack_buffer(data, _BUFFER_TYPES_4)
        except ValueError:
            state = ()
        n = len(state[0]) // 8 if state else 0
        wide = pack_buffer((*state, bytes(8 * n), bytes(8 * n))) if n else b""
        db.execute("UPDATE series SET buffer = ? WHERE id = ?", (zlib.compress(wide, 6), sid))


class _Lazy:
    """snap.series of a load: each series' record built when restore reaches it, so only one
    ring is in memory at a time (a month of 250 devices' rings at once is 11 MB of RSS that
    stays with the process)."""

    def __init__(self, ids: list[tuple[int, str]], build) -> None:
        self._ids, self._build = ids, build

    def __len__(self) -> int:
        return len(self._ids)

    def items(self):
        for sid, name in self._ids:
            yield name, self._build(sid)


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
            if 0 < version < 5:
                _widen_buffers(db)
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
    """Devices, closed history in compact chunks, and what a restart needs.

    A save writes the sealed chunks the database does not have yet and every open
    chunk (`tails`, a few hundred bytes a level); rings and sample buffers only at a
    stop (final snapshot). read_chunk() serves sealed chunks to the store through a
    second connection (its page cache is the only cache), so the store need not keep them.
    """

    PAGE_CACHE_KB = 512  # SQLite's page cache per connection (its default is 2 MB)

    def __init__(self, data_dir: Path, levels: tuple[Level, ...]) -> None:
        super().__init__(Path(data_dir) / DB_NAME)
        self.levels = levels
        self._sids: dict[str, int] = {}  # series name → id
        self._reader: sqlite3.Connection | None = None
        self._reader_lock = threading.Lock()
        self._legacy = False  # a version-2 `buckets` table still to drop

    def _opened(self, db: sqlite3.Connection) -> None:
        db.execute(f"PRAGMA cache_size = -{self.PAGE_CACHE_KB}")
        self._sids = {name: sid for sid, name in db.execute("SELECT id, name FROM series")}
        self._legacy = bool(db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'buckets'").fetchone()[0])
        # The reading connection now, not at the first read: what it allocates then would
        # sit among the many short-lived objects of a large answer and keep their memory.
        if self._reader is not None:
            self._reader.close()
        self._reader = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=5)
        self._reader.execute(f"PRAGMA cache_size = -{self.PAGE_CACHE_KB}")
        self._reader.execute("SELECT data FROM chunks WHERE key = 0").fetchall()  # the statement, compiled

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        super().close()

    # -- reading ----------------------------------------------------------

    def load(self) -> tuple[Snapshot, dict[str, object]] | None:
        """The saved state and its meta data, or None for a new database."""
        db = self.db
        meta = dict(db.execute("SELECT key, value FROM meta"))
        if "wall_ms" not in meta:
            return None
        clean = meta.get("clean", 1) == 1  # files before version 3 saved rings at every flush
        devices = [DeviceRecord(mac, _from_u64s(off), _from_u64s(kern), online, created)
                   for mac, off, kern, online, created in db.execute(
                       "SELECT mac, offsets, kernel, last_online_ms, created_ms FROM devices")]
        now_s = int(meta["wall_ms"]) // 1000
        sealed = {level.name: self._sealed(level, now_s) for level in self._coded_levels()}

        def record(sid: int) -> SeriesRecord:
            ring, buffer = db.execute("SELECT ring, buffer FROM series WHERE id = ?", (sid,)).fetchone()
            levels = {level.name: self._load_level(sid, level, now_s, sealed[level.name])
                      for level in self._coded_levels()}
            if not clean:
                return SeriesRecord(None, None, levels)
            return SeriesRecord(_inflate(ring), unpack_buffer(_inflate(buffer)), levels)

        series = _Lazy(db.execute("SELECT id, name FROM series").fetchall(), record)
        snap = Snapshot(wall_ms=int(meta["wall_ms"]), mono=meta.get("mono"), devices=devices,
                        series=series)  # type: ignore[arg-type]
        return snap, meta

    def _sealed(self, level: Level, now_s: int) -> dict[int, Sealed]:
        """Series id → the sealed chunks of one level within its retention, in one pass over
        the level's keys, in LevelRows' own arrays (no tuple per chunk)."""
        if self._legacy:
            return {}
        code = LEVEL_CODES[level.name]
        first = max(0, (now_s - level.retention_seconds) // level.interval // level.chunk)
        out: dict[int, Sealed] = {}
        for key, n, last in self.db.execute("SELECT key, buckets, newest FROM chunks WHERE key BETWEEN ? AND ? "
                                            "ORDER BY key", (chunk_key(0, code, first),
                                                             chunk_key(SERIES_MASK, code, CHUNK_MAX))):
            nos, ns, lasts = out.get(key & SERIES_MASK) or out.setdefault(key & SERIES_MASK, Sealed.empty())
            no = (key >> 24) & CHUNK_MAX
            nos.append(no)
            ns.append(n)
            lasts.append(last - no * level.chunk)
        return out

    def _load_level(self, sid: int, level: Level, now_s: int, sealed: dict[int, Sealed]) -> LevelRecord:
        code = LEVEL_CODES[level.name]
        first = (now_s - level.retention_seconds) // level.interval
        if self._legacy:  # version 2: one row per bucket, sealed into chunks here
            rows = LevelRows(level.capacity, level.chunk)
            rows.load(self.db.execute(
                f"SELECT idx, {', '.join(schema.STAT_COLUMNS)}, rx_bytes, tx_bytes FROM buckets "
                "WHERE series = ? AND level = ? AND idx >= ? ORDER BY idx", (sid, code, first)))
            return LevelRecord(list(rows.unsaved()), rows.tail_blob())
        tail = self.db.execute("SELECT data FROM tails WHERE key = ?", (tail_key(sid, code),)).fetchone()
        # Only numbers and sizes, no blobs: the store reads those through read_chunk().
        return LevelRecord(sealed.pop(sid, Sealed.empty()), tail[0] if tail else b"")  # type: ignore[arg-type]

    def read_chunk(self, name: str, level: str, no: int) -> bytes | None:
        """A sealed chunk of series `name`, or None if the database does not have it."""
        sid, code = self._sids.get(name), LEVEL_CODES.get(level)
        if sid is None or code is None:
            return None
        with self._reader_lock:
            if self._reader is None:
                return None
            row = self._reader.execute("SELECT data FROM chunks WHERE key = ?", (chunk_key(sid, code, no),)).fetchone()
            return row[0] if row else None

    # -- writing ----------------------------------------------------------

    def _sid(self, name: str) -> int:
        sid = self._sids.get(name)
        if sid is None:
            self.db.execute("INSERT OR IGNORE INTO series (name, ring, buffer) VALUES (?, x'', x'')", (name,))
            sid = self.db.execute("SELECT id FROM series WHERE name = ?", (name,)).fetchone()[0]
        return sid

    def save(self, snap: Snapshot, meta: dict[str, object]) -> None:
        """Write one snapshot in one transaction; raises sqlite3/OSError errors."""
        db = self.db
        sids = dict(self._sids)
        levels = self._coded_levels()
        with transaction(db):
            db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                           [*meta.items(), ("wall_ms", snap.wall_ms), ("mono", snap.mono),
                            ("clean", int(snap.final))])
            if snap.rewrite_from_ms is not None:
                for level in levels:
                    first_stale = snap.rewrite_from_ms // 1000 // level.interval // level.chunk
                    code = LEVEL_CODES[level.name]
                    db.execute("DELETE FROM chunks WHERE key BETWEEN ? AND ?",
                               (chunk_key(0, code, first_stale), chunk_key(SERIES_MASK, code, CHUNK_MAX)))
            for mac in snap.forgotten:
                db.execute("DELETE FROM devices WHERE mac = ?", (mac,))
                sid = sids.pop(mac, None)
                if sid is not None:
                    db.execute("DELETE FROM chunks WHERE key & ? = ?", (SERIES_MASK, sid))  # rare: a scan
                    db.execute("DELETE FROM tails WHERE key BETWEEN ? AND ?", (tail_key(sid, 0), tail_key(sid, 7)))
                    db.execute("DELETE FROM series WHERE id = ?", (sid,))
            db.executemany("INSERT OR REPLACE INTO devices VALUES (?, ?, ?, ?, ?)",
                           [(d.mac, _u64s(d.offset), _u64s(d.kernel), d.last_online_ms, d.created_ms)
                            for d in snap.devices])
            now_s = snap.wall_ms // 1000
            for name, rec in snap.series.items():
                sid = sids[name] = sids.get(name) or self._sid(name)
                if rec.ring is not None and rec.buffer is not None:
                    db.execute("UPDATE series SET ring = ?, buffer = ? WHERE id = ?",
                               (zlib.compress(rec.ring, 6), zlib.compress(pack_buffer(rec.buffer), 6), sid))
                for level in levels:
                    lrec = rec.levels.get(level.name)
                    if lrec is None:
                        continue
                    code = LEVEL_CODES[level.name]
                    sealed = [(no, n, last, blob) for no, n, last, blob in lrec.sealed if blob is not None]
                    db.executemany("INSERT OR REPLACE INTO chunks VALUES (?, ?, ?, ?)",
                                   [(chunk_key(sid, code, no), n, last, blob) for no, n, last, blob in sealed])
                    if lrec.tail is not None:
                        db.execute("INSERT OR REPLACE INTO tails VALUES (?, ?)", (tail_key(sid, code), lrec.tail))

            for level in levels:  # beyond retention, for every series at once
                first = max(0, (now_s - level.retention_seconds) // level.interval // level.chunk)
                code = LEVEL_CODES[level.name]
                db.execute("DELETE FROM chunks WHERE key BETWEEN ? AND ?",
                           (chunk_key(0, code, 0), chunk_key(0, code, first) - 1))
            if self._legacy:
                db.execute("DROP TABLE buckets")
        self._sids = sids
        if self._legacy:
            self._legacy = False
            db.execute("VACUUM")  # give the version-2 rows' pages back

    def _coded_levels(self) -> list[Level]:
        return [level for level in self.levels if level.name in LEVEL_CODES]
