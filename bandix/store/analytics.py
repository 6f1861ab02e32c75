"""The analytics tables of bandix.db: one writer thread applies batches of
per-minute upserts, one transaction per batch, and prunes old rows hourly.

The collector never waits for the disk: it hands a batch over and goes on. A
batch that cannot be written is logged and dropped; the queue is bounded so a
stalled disk costs memory only up to that bound.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .database import DB_NAME, BandixFile, transaction

log = logging.getLogger(__name__)

DAY = 86400
PRUNE_EVERY_S = 3600  # a delete by time range on the primary key: cheap, and keeps the file small
_RANK = "(CASE {t}attribution WHEN 'exact' THEN 2 WHEN 'ambiguous' THEN 1 ELSE 0 END)"

UPSERTS = {
    "flow_1m_5t": (
        "INSERT INTO flow_1m_5t VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
        "ON CONFLICT (ts_minute, direction, proto, src_ip, src_port, dst_ip, dst_port) DO UPDATE SET "
        "bytes = bytes + excluded.bytes, packets = packets + excluded.packets, "
        "mac = excluded.mac, iface = excluded.iface, "
        # A label only ever gets better within a minute (e.g. the SNI arrives
        # a moment after the first bytes were read).
        f"domain = CASE WHEN {_RANK.format(t='excluded.')} >= {_RANK.format(t='')} "
        "THEN excluded.domain ELSE domain END, "
        f"source = CASE WHEN {_RANK.format(t='excluded.')} >= {_RANK.format(t='')} "
        "THEN excluded.source ELSE source END, "
        f"attribution = CASE WHEN {_RANK.format(t='excluded.')} >= {_RANK.format(t='')} "
        "THEN excluded.attribution ELSE attribution END"
    ),
    "flow_1h": (
        "INSERT INTO flow_1h VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) "
        "ON CONFLICT DO UPDATE SET bytes = bytes + excluded.bytes, packets = packets + excluded.packets"
    ),
    "dns_1m": (
        "INSERT INTO dns_1m VALUES (?,?,?,?,?,?,?,?) ON CONFLICT DO UPDATE SET "
        "queries = queries + excluded.queries, responses = responses + excluded.responses, "
        "nxdomain = nxdomain + excluded.nxdomain, failures = failures + excluded.failures"
    ),
    "sni_1m": "INSERT INTO sni_1m VALUES (?,?,?,?,?,?) ON CONFLICT DO UPDATE SET hellos = hellos + excluded.hellos",
    "dns_cache_1m": (
        "INSERT INTO dns_cache_1m VALUES (?,?,?,?,?,?,?) ON CONFLICT DO UPDATE SET "
        "learned = learned + excluded.learned, refreshed = refreshed + excluded.refreshed, "
        "expired = expired + excluded.expired, ips = max(ips, excluded.ips)"
    ),
    "health_1m": (
        "INSERT INTO health_1m VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO UPDATE SET "
        "flow_entries = excluded.flow_entries, flow_capacity = excluded.flow_capacity, "
        "flows_added = flows_added + excluded.flows_added, flows_failed = flows_failed + excluded.flows_failed, "
        "flows_evicted = flows_evicted + excluded.flows_evicted, flows_aged = flows_aged + excluded.flows_aged, "
        "dns_lost = dns_lost + excluded.dns_lost, hello_lost = hello_lost + excluded.hello_lost, "
        "hellos_parsed = hellos_parsed + excluded.hellos_parsed, "
        "hellos_unparsed = hellos_unparsed + excluded.hellos_unparsed, "
        "cache_entries = excluded.cache_entries, read_ms = max(read_ms, excluded.read_ms), "
        "hellos_quic_unavailable = hellos_quic_unavailable + excluded.hellos_quic_unavailable"
    ),
}
_TIME_COLUMN = {"flow_1h": "ts_hour", "health_1m": "ts_minute"}


@dataclass
class Batch:
    """Rows for each table, in the column order of its CREATE TABLE. Flow rows
    go through add_flow, which also sums them into their hour's rollup rows."""

    rows: dict[str, list[tuple]] = field(default_factory=lambda: {t: [] for t in UPSERTS})
    _hours: dict[tuple, list[int]] = field(default_factory=dict)

    def add_flow(self, minute: int, iface: str, mac: str, direction: str, proto: int, src: str, sport: int,
                 dst: str, dport: int, domain: str, attribution: str, source: str, nbytes: int,
                 npackets: int) -> None:
        self.rows["flow_1m_5t"].append((minute, iface, mac, direction, proto, src, sport, dst, dport, domain,
                                        attribution, source, nbytes, npackets))
        lan, peer, peer_port = (src, dst, dport) if direction == "up" else (dst, src, sport)
        key = (minute // 3600 * 3600, iface, mac, direction, proto, lan, peer, peer_port, domain, attribution,
               source)
        counts = self._hours.setdefault(key, [0, 0])
        counts[0] += nbytes
        counts[1] += npackets

    def tables(self) -> dict[str, list[tuple]]:
        return {**self.rows, "flow_1h": [(*k, b, p) for k, (b, p) in self._hours.items()]}


def write_batch(db: sqlite3.Connection, batch: Batch) -> None:
    with transaction(db):
        for table, rows in batch.tables().items():
            if rows:
                db.executemany(UPSERTS[table], rows)


def prune(db: sqlite3.Connection, retention_days: int, now: float | None = None,
          detail_hours: int | None = None) -> dict[str, int]:
    """Delete what is older than `retention_days`, and 5-tuple minutes older
    than `detail_hours` if given: rows deleted per table."""
    now = int(now if now is not None else time.time())
    deleted = {}
    with transaction(db):
        for table in UPSERTS:
            column = _TIME_COLUMN.get(table, "ts_minute")
            cutoff = now - retention_days * DAY
            if table == "flow_1m_5t" and detail_hours is not None:
                cutoff = max(cutoff, now - detail_hours * 3600)
            deleted[table] = db.execute(f"DELETE FROM {table} WHERE {column} < ?", (cutoff,)).rowcount
    return deleted


class AnalyticsWriter:
    """The one thread that writes analytics rows."""

    def __init__(self, data_dir: Path, retention_days: int, detail_hours: int, max_pending: int = 600) -> None:
        self.file = BandixFile(Path(data_dir) / DB_NAME)
        self.retention_days = retention_days
        self.detail_hours = detail_hours
        self._queue: queue.Queue[Batch | None] = queue.Queue(max_pending)
        self._thread: threading.Thread | None = None
        self.dropped = 0  # batches lost to a full queue or a failed write

    @property
    def path(self) -> Path:
        return self.file.path

    def start(self) -> None:
        """Open (create, migrate) the file now, so errors show at start."""
        self.file.open()
        self._thread = threading.Thread(target=self._run, name="analytics-writer", daemon=True)
        self._thread.start()

    def put(self, batch: Batch) -> None:
        try:
            self._queue.put_nowait(batch)
        except queue.Full:
            self.dropped += 1
            log.warning("the analytics writer is behind: a batch was dropped (%d so far)", self.dropped)

    def close(self) -> None:
        """Write what is queued, then stop."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(30)
            self._thread = None
        self.file.close()

    def _run(self) -> None:
        next_prune = 0.0
        while True:
            batch = self._queue.get()
            if batch is None:
                return
            try:
                write_batch(self.file.db, batch)
                if time.monotonic() >= next_prune:
                    next_prune = time.monotonic() + PRUNE_EVERY_S
                    prune(self.file.db, self.retention_days, detail_hours=self.detail_hours)
            except (sqlite3.Error, OSError) as exc:
                self.dropped += 1
                log.error("writing analytics to %s failed: %s", self.path, exc)
