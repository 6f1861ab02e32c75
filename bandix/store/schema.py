"""The tables of bandix.db and how an older file becomes the current one.

Every daemon part that writes the file and every report command opens it
through `BandixFile`, so whoever comes first creates or migrates it and no one
touches a file that is not bandix's.
"""

from __future__ import annotations

APPLICATION_ID = 0x62616E64  # "band"
SCHEMA_VERSION = 5

STAT_COLUMNS = [f"{d}_{s}" for d in ("rx", "tx") for s in ("avg", "max", "min", "p90", "p95", "p99")]
BUCKET_COLUMNS = ["series", "level", "idx", *STAT_COLUMNS, "rx_bytes", "tx_bytes"]  # idx = stamp // interval

# Version 1: traffic history, one row per closed bucket (`buckets`). Rings and sample
# buffers in `series` are what a restart needs; since version 3 they are written at a
# stop only (meta "clean" = 1 says they are current).
BASE = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE devices (mac TEXT PRIMARY KEY, offsets BLOB NOT NULL, kernel BLOB NOT NULL,
                      last_online_ms INTEGER NOT NULL, created_ms INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE series (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, ring BLOB NOT NULL, buffer BLOB NOT NULL);
"""
BUCKETS = f"""
CREATE TABLE buckets ({", ".join(f"{c} INTEGER NOT NULL" for c in BUCKET_COLUMNS)},
                      PRIMARY KEY (series, level, idx)) WITHOUT ROWID;
"""
HISTORY = BASE + BUCKETS

# Version 2: flow analytics. Minutes are Unix seconds at the start of the
# minute (hour); "" stands for no domain, so keys never hold NULL.
ANALYTICS = """
CREATE TABLE flow_1m_5t (
    ts_minute INTEGER NOT NULL, iface TEXT NOT NULL, mac TEXT NOT NULL, direction TEXT NOT NULL,
    proto INTEGER NOT NULL, src_ip TEXT NOT NULL, src_port INTEGER NOT NULL,
    dst_ip TEXT NOT NULL, dst_port INTEGER NOT NULL,
    domain TEXT NOT NULL, attribution TEXT NOT NULL, source TEXT NOT NULL,
    bytes INTEGER NOT NULL, packets INTEGER NOT NULL,
    PRIMARY KEY (ts_minute, direction, proto, src_ip, src_port, dst_ip, dst_port)) WITHOUT ROWID;
CREATE TABLE flow_1h (
    ts_hour INTEGER NOT NULL, iface TEXT NOT NULL, mac TEXT NOT NULL, direction TEXT NOT NULL,
    proto INTEGER NOT NULL, lan_ip TEXT NOT NULL, peer_ip TEXT NOT NULL, peer_port INTEGER NOT NULL,
    domain TEXT NOT NULL, attribution TEXT NOT NULL, source TEXT NOT NULL,
    bytes INTEGER NOT NULL, packets INTEGER NOT NULL,
    PRIMARY KEY (ts_hour, mac, direction, proto, lan_ip, peer_ip, peer_port, domain, attribution, source, iface)
) WITHOUT ROWID;
CREATE TABLE dns_1m (
    ts_minute INTEGER NOT NULL, mac TEXT NOT NULL, qname TEXT NOT NULL, qtype INTEGER NOT NULL,
    queries INTEGER NOT NULL, responses INTEGER NOT NULL, nxdomain INTEGER NOT NULL, failures INTEGER NOT NULL,
    PRIMARY KEY (ts_minute, mac, qname, qtype)) WITHOUT ROWID;
CREATE TABLE sni_1m (
    ts_minute INTEGER NOT NULL, mac TEXT NOT NULL, sni TEXT NOT NULL, kind TEXT NOT NULL,
    dst_port INTEGER NOT NULL, hellos INTEGER NOT NULL,
    PRIMARY KEY (ts_minute, mac, sni, kind, dst_port)) WITHOUT ROWID;
CREATE TABLE dns_cache_1m (
    ts_minute INTEGER NOT NULL, source TEXT NOT NULL, domain TEXT NOT NULL,
    learned INTEGER NOT NULL, refreshed INTEGER NOT NULL, expired INTEGER NOT NULL, ips INTEGER NOT NULL,
    PRIMARY KEY (ts_minute, source, domain)) WITHOUT ROWID;
CREATE TABLE health_1m (
    ts_minute INTEGER PRIMARY KEY, flow_entries INTEGER NOT NULL, flow_capacity INTEGER NOT NULL,
    flows_added INTEGER NOT NULL, flows_failed INTEGER NOT NULL, flows_evicted INTEGER NOT NULL,
    flows_aged INTEGER NOT NULL, dns_lost INTEGER NOT NULL, hello_lost INTEGER NOT NULL,
    hellos_parsed INTEGER NOT NULL, hellos_unparsed INTEGER NOT NULL, cache_entries INTEGER NOT NULL,
    read_ms REAL NOT NULL);
"""

# Version 3: closed buckets in compact chunks (bandix.store.chunks), one row per chunk,
# and the open chunk of each level in `tails`. Keys are rowids (no index, blobs up to
# ~4 KB stay in their page): chunk key = level << 58 | chunk number << 24 | series, the
# chunk number being idx // the level's chunk size (every device seals the same chunk at
# the same save: one run of pages, not one page a device); tail key = series << 3 | level.
# A version-2 file's `buckets` are converted by the history database when it loads
# them, and the table dropped at its next save.
CHUNKS = """
CREATE TABLE chunks (key INTEGER PRIMARY KEY, buckets INTEGER NOT NULL, newest INTEGER NOT NULL,
                     data BLOB NOT NULL);
CREATE TABLE tails (key INTEGER PRIMARY KEY, data BLOB NOT NULL);
"""


def chunk_key(series: int, level: int, chunk: int) -> int:
    return level << 58 | chunk << 24 | series


def tail_key(series: int, level: int) -> int:
    return series << 3 | level


# Version 4: QUIC Initials that could not be read because cryptography is not installed.
QUIC_UNAVAILABLE = """
ALTER TABLE health_1m ADD COLUMN hellos_quic_unavailable INTEGER NOT NULL DEFAULT 0;
"""

# Version 5: history buckets keep the LAN rx and tx bytes too (for usage with network_type
# lan and all). Nothing in SQL: chunks written before say so in their format byte and decode
# with LAN bytes 0; the saved sample buffers get their LAN arrays (zeros) from
# database._widen_buffers, run by the migration.
LAN_BYTES = ""

CREATE = BASE + CHUNKS + ANALYTICS + QUIC_UNAVAILABLE + LAN_BYTES
# MIGRATIONS[v] turns a version-v file into version v + 1 (and for 4 → 5 see LAN_BYTES).
MIGRATIONS = {1: ANALYTICS, 2: CHUNKS, 3: QUIC_UNAVAILABLE, 4: LAN_BYTES}
ANALYTICS_TABLES = ("flow_1m_5t", "flow_1h", "dns_1m", "sni_1m", "dns_cache_1m", "health_1m")
