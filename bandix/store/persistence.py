"""--traffic-persist-history: restore at start, save every flush interval and at stop.

A periodic save writes what changed: devices' counters, newly sealed history
chunks and each level's open chunk (a few KB a device); realtime rings and
sample buffers are written at a stop only, so a crash or power cut loses them
(and with them the samples of the open buckets), never a closed bucket older
than one flush interval. Sealed chunks the database has are dropped from
memory and read back from it on request: history costs flash, not RAM.

Saves run in a writer thread so a slow flash never delays the once-a-second
reading; a save still running when the next is due makes that one wait for
the following interval. Any failure is logged and the daemon keeps serving
from memory; the next interval tries again.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from pathlib import Path

from .database import DatabaseUnavailable, HistoryDatabase
from .traffic import Snapshot, TrafficStore

log = logging.getLogger(__name__)


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


class Persistence:
    def __init__(self, store: TrafficStore, data_dir: Path, interval_s: int, pin_generation: int) -> None:
        self._store = store
        self._db = HistoryDatabase(data_dir, store.levels)
        self._interval = interval_s
        self._meta = {"pin_generation": f"{pin_generation:016x}", "boot_id": boot_id()}
        self._next = time.monotonic() + interval_s
        self._queue: queue.Queue[Snapshot | None] = queue.Queue(maxsize=1)
        self._thread: threading.Thread | None = None
        self._failing: str | None = None
        self.available = False

    def start(self) -> None:
        """Open the database and restore from it; on any problem, memory only."""
        try:
            self._db.open()
        except DatabaseUnavailable as exc:
            log.error("history is kept in memory only: %s", exc)
            return
        self._store.fetch_chunk = self._db.read_chunk
        try:
            loaded = self._db.load()
            if loaded:
                snap, meta = loaded
                same_counters = meta.get("pin_generation") == self._meta["pin_generation"]
                same_boot = meta.get("boot_id") == self._meta["boot_id"]
                self._store.restore(snap, same_counters=same_counters, same_boot=same_boot)
                log.info("restored history of %d devices from %s (%s)", len(snap.devices), self._db.path,
                         "counters continue" if same_counters else "pinned counters were lost: totals carried over")
        except (sqlite3.DatabaseError, ValueError) as exc:
            log.error("cannot read the saved history in %s (%s): starting without it", self._db.path, exc)
            self._store.reset()
        self.available = True
        self._thread = threading.Thread(target=self._writer, name="history-writer", daemon=True)
        self._thread.start()

    def maybe_flush(self) -> None:
        """Called every tick: hand a snapshot to the writer when a flush is due."""
        if not self.available or time.monotonic() < self._next:
            return
        self._next = time.monotonic() + self._interval
        try:
            self._queue.put_nowait(self._store.snapshot(final=False))
        except queue.Full:
            log.warning("the previous history save is still running; skipping this one")

    def close(self) -> None:
        """Final save, in this thread, after the writer has finished."""
        if not self.available:
            return
        self._queue.put(None)
        self._thread.join()
        self._save(self._store.snapshot(final=True))
        self._store.fetch_chunk = None
        self._db.close()

    def _writer(self) -> None:
        while (snap := self._queue.get()) is not None:
            self._save(snap)

    def _save(self, snap: Snapshot) -> None:
        started = time.monotonic()
        try:
            self._db.save(snap, self._meta)
        except (sqlite3.Error, OSError) as exc:
            if str(exc) != self._failing:
                log.error("saving history to %s failed (%s); keeping it in memory and retrying", self._db.path, exc)
            self._failing = str(exc)
            return
        except Exception:  # a bug must not end the writer: the next save may work
            log.exception("saving history to %s failed", self._db.path)
            self._failing = "bug"
            return
        self._store.saved(snap)
        if self._failing:
            log.info("saving history to %s works again", self._db.path)
            self._failing = None
        log.debug("saved history of %d devices in %.0f ms", len(snap.devices), (time.monotonic() - started) * 1000)
