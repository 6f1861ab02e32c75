"""The report queries over the analytics tables, shared by the report commands
and the API.

A window is the last `lookback_minutes` minutes, the current one included.
Flow reports read whole hours inside the window from the hourly rollup and
only the edges from the minute table, so a week costs about what an hour does.
"""

from __future__ import annotations

import functools
import sqlite3
import time
from dataclasses import dataclass
from importlib import resources

BYTES, INT, TEXT, PCT, MS = "bytes", "int", "text", "pct", "ms"


@dataclass(frozen=True)
class Window:
    now: int  # Unix seconds
    lookback_minutes: int
    limit: int
    mac: str | None = None
    iface: str | None = None
    rollup: bool = True  # False: minutes only (the bench compares the two)

    @property
    def first_minute(self) -> int:
        return self.now // 60 * 60 - (self.lookback_minutes - 1) * 60

    @property
    def last_minute(self) -> int:
        return self.now // 60 * 60


@dataclass
class Report:
    title: str
    columns: list[tuple[str, str, str]]  # (key, header, kind)
    rows: list[dict]


def _filters(w: Window, params: dict, has_iface: bool = True) -> str:
    out = ""
    if w.mac:
        out += " AND mac = :mac"
        params["mac"] = w.mac
    if w.iface and has_iface:
        out += " AND iface = :iface"
        params["iface"] = w.iface
    return out


def flow_rows(w: Window, params: dict) -> str:
    """A subquery of flows in the window: iface, mac, direction, proto, lan_ip,
    peer_ip, peer_port, domain, attribution, source, bytes, packets."""
    lo, hi = w.first_minute, w.last_minute
    h0, h1 = -(-lo // 3600) * 3600, hi // 3600 * 3600  # whole hours inside [lo, hi]
    where = _filters(w, params)
    minute = (
        "SELECT iface, mac, direction, proto, "
        "CASE direction WHEN 'up' THEN src_ip ELSE dst_ip END AS lan_ip, "
        "CASE direction WHEN 'up' THEN dst_ip ELSE src_ip END AS peer_ip, "
        "CASE direction WHEN 'up' THEN dst_port ELSE src_port END AS peer_port, "
        "domain, attribution, source, bytes, packets FROM flow_1m_5t WHERE "
    )
    params.update(lo=lo, hi=hi, h0=h0, h1=h1)
    if h1 <= h0 or not w.rollup:
        return f"({minute} ts_minute BETWEEN :lo AND :hi{where})"
    hour = ("SELECT iface, mac, direction, proto, lan_ip, peer_ip, peer_port, domain, attribution, source, "
            f"bytes, packets FROM flow_1h WHERE ts_hour >= :h0 AND ts_hour < :h1{where}")
    return (f"({minute} ((ts_minute >= :lo AND ts_minute < :h0) OR (ts_minute >= :h1 AND ts_minute <= :hi)){where}"
            f" UNION ALL {hour})")


_UPDOWN = ("SUM(CASE direction WHEN 'down' THEN bytes ELSE 0 END) AS down, "
           "SUM(CASE direction WHEN 'up' THEN bytes ELSE 0 END) AS up, SUM(bytes) AS total, "
           "SUM(packets) AS packets")
_UPDOWN_COLUMNS = [("down", "download", BYTES), ("up", "upload", BYTES), ("total", "total", BYTES),
                   ("packets", "packets", INT)]


def _rows(db: sqlite3.Connection, sql: str, params: dict) -> list[dict]:
    cur = db.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur]


def _named(rows: list[dict]) -> list[dict]:
    """Rows whose domain is "" say so."""
    for r in rows:
        r["domain"] = r["domain"] or "(unknown)"
    return rows


def top_ip(db: sqlite3.Connection, w: Window) -> Report:
    params: dict = {"limit": w.limit}
    sql = (f"SELECT peer_ip AS ip, {_UPDOWN}, group_concat(DISTINCT NULLIF(domain, '')) AS domains "
           f"FROM {flow_rows(w, params)} GROUP BY peer_ip ORDER BY total DESC, ip LIMIT :limit")
    return Report("Top remote addresses", [("ip", "remote ip", TEXT), *_UPDOWN_COLUMNS, ("domains", "domains", TEXT)],
                  _rows(db, sql, params))


def top_lan(db: sqlite3.Connection, w: Window) -> Report:
    params: dict = {"limit": w.limit}
    sql = (f"SELECT lan_ip AS ip, mac, {_UPDOWN}, count(DISTINCT peer_ip) AS peers "
           f"FROM {flow_rows(w, params)} GROUP BY lan_ip, mac ORDER BY total DESC, ip LIMIT :limit")
    return Report("Top LAN addresses", [("ip", "lan ip", TEXT), ("mac", "mac", TEXT), *_UPDOWN_COLUMNS,
                                        ("peers", "remote ips", INT)], _rows(db, sql, params))


def top_flow(db: sqlite3.Connection, w: Window) -> Report:
    """By 5-tuple and direction: the minute table only (the rollup drops the LAN port)."""
    params: dict = {"limit": w.limit, "lo": w.first_minute, "hi": w.last_minute}
    sql = ("SELECT src_ip, src_port, dst_ip, dst_port, proto, direction, mac, max(domain) AS domain, "
           "SUM(bytes) AS bytes, SUM(packets) AS packets FROM flow_1m_5t "
           f"WHERE ts_minute BETWEEN :lo AND :hi{_filters(w, params)} "
           "GROUP BY direction, proto, src_ip, src_port, dst_ip, dst_port ORDER BY bytes DESC LIMIT :limit")
    rows = _rows(db, sql, params)
    for r in rows:
        r["flow"] = f"{_hostport(r['src_ip'], r['src_port'])} -> {_hostport(r['dst_ip'], r['dst_port'])}"
        r["proto"] = PROTOCOLS.get(r["proto"], str(r["proto"]))
    return Report("Top flows", [("flow", "flow", TEXT), ("proto", "proto", TEXT), ("direction", "dir", TEXT),
                                ("domain", "domain", TEXT), ("bytes", "bytes", BYTES), ("packets", "packets", INT)],
                  rows)


def top_domain(db: sqlite3.Connection, w: Window) -> Report:
    params: dict = {"limit": w.limit}
    sql = (f"SELECT domain, {_UPDOWN}, count(DISTINCT mac) AS devices, count(DISTINCT peer_ip) AS ips, "
           "100.0 * SUM(CASE attribution WHEN 'exact' THEN bytes ELSE 0 END) / max(SUM(bytes), 1) AS exact_pct "
           f"FROM {flow_rows(w, params)} GROUP BY domain ORDER BY total DESC, domain LIMIT :limit")
    rows = _named(_rows(db, sql, params))
    return Report("Top domains", [("domain", "domain", TEXT), *_UPDOWN_COLUMNS, ("devices", "devices", INT),
                                 ("ips", "ips", INT), ("exact_pct", "exact", PCT)], rows)


def top_dns(db: sqlite3.Connection, w: Window) -> Report:
    params: dict = {"limit": w.limit, "lo": w.first_minute, "hi": w.last_minute}
    sql = ("SELECT qname, SUM(queries) AS queries, SUM(responses) AS responses, SUM(nxdomain) AS nxdomain, "
           "SUM(failures) AS failures, count(DISTINCT mac) AS devices FROM dns_1m "
           f"WHERE ts_minute BETWEEN :lo AND :hi{_filters(w, params, has_iface=False)} "
           "GROUP BY qname ORDER BY queries DESC, qname LIMIT :limit")
    return Report("Top DNS names", [("qname", "name", TEXT), ("queries", "queries", INT),
                                    ("responses", "responses", INT), ("nxdomain", "nxdomain", INT),
                                    ("failures", "failures", INT), ("devices", "devices", INT)],
                  _rows(db, sql, params))


def top_sni(db: sqlite3.Connection, w: Window) -> Report:
    params: dict = {"limit": w.limit, "lo": w.first_minute, "hi": w.last_minute}
    sql = ("SELECT sni, kind, SUM(hellos) AS hellos, count(DISTINCT mac) AS devices FROM sni_1m "
           f"WHERE ts_minute BETWEEN :lo AND :hi{_filters(w, params, False)} "
           "GROUP BY sni, kind ORDER BY hellos DESC, sni LIMIT :limit")
    return Report("Top TLS/QUIC server names", [("sni", "server name", TEXT), ("kind", "kind", TEXT),
                                                ("hellos", "hellos", INT), ("devices", "devices", INT)],
                  _rows(db, sql, params))


def top_quic(db: sqlite3.Connection, w: Window) -> Report:
    params: dict = {"limit": w.limit}
    sql = (f"SELECT domain, peer_ip AS ip, {_UPDOWN}, count(DISTINCT mac) AS devices "
           f"FROM {flow_rows(w, params)} WHERE proto = 17 AND peer_port = 443 "
           "GROUP BY domain, peer_ip ORDER BY total DESC LIMIT :limit")
    rows = _named(_rows(db, sql, params))
    return Report("Top QUIC (UDP 443)", [("domain", "domain", TEXT), ("ip", "remote ip", TEXT), *_UPDOWN_COLUMNS,
                                         ("devices", "devices", INT)], rows)


def domain_detail(db: sqlite3.Connection, w: Window, domain: str) -> Report:
    params: dict = {"limit": w.limit, "domain": domain.rstrip(".").lower()}
    sql = ("SELECT direction, proto, peer_port AS port, SUM(bytes) AS bytes, SUM(packets) AS packets, "
           "count(DISTINCT peer_ip) AS ips, count(DISTINCT mac) AS devices, group_concat(DISTINCT attribution) "
           f"AS attribution FROM {flow_rows(w, params)} WHERE domain = :domain "
           "GROUP BY direction, proto, peer_port ORDER BY bytes DESC LIMIT :limit")
    rows = _rows(db, sql, params)
    for r in rows:
        r["proto"] = PROTOCOLS.get(r["proto"], str(r["proto"]))
    return Report(f"Traffic of {params['domain']}", [
        ("direction", "dir", TEXT), ("proto", "proto", TEXT), ("port", "port", INT), ("bytes", "bytes", BYTES),
        ("packets", "packets", INT), ("ips", "ips", INT), ("devices", "devices", INT),
        ("attribution", "attribution", TEXT)], rows)


def attribution_coverage(db: sqlite3.Connection, w: Window) -> Report:
    params: dict = {}
    sql = ("SELECT attribution, source, SUM(bytes) AS bytes, SUM(packets) AS packets "
           f"FROM {flow_rows(w, params)} GROUP BY attribution, source")
    rows = _rows(db, sql, params)
    total = sum(r["bytes"] for r in rows) or 1
    order = {"exact": 0, "ambiguous": 1, "unknown": 2}
    rows.sort(key=lambda r: (order.get(r["attribution"], 3), r["source"]))
    for r in rows:
        r["share"] = 100.0 * r["bytes"] / total
    return Report("Attribution coverage", [("attribution", "attribution", TEXT), ("source", "source", TEXT),
                                           ("bytes", "bytes", BYTES), ("packets", "packets", INT),
                                           ("share", "share of bytes", PCT)], rows)


def dns_cache_inspect(db: sqlite3.Connection, w: Window) -> Report:
    params: dict = {"limit": w.limit, "lo": w.first_minute, "hi": w.last_minute}
    sql = ("SELECT domain, source, SUM(learned) AS learned, SUM(refreshed) AS refreshed, SUM(expired) AS expired, "
           "max(ips) AS ips FROM dns_cache_1m WHERE ts_minute BETWEEN :lo AND :hi "
           "GROUP BY domain, source ORDER BY learned + refreshed DESC, domain LIMIT :limit")
    return Report("Domain cache (DNS answers and server names)", [
        ("domain", "domain", TEXT), ("source", "source", TEXT), ("learned", "learned", INT),
        ("refreshed", "refreshed", INT), ("expired", "expired", INT), ("ips", "ips/minute", INT)],
        _rows(db, sql, params))


def collector_health(db: sqlite3.Connection, w: Window) -> Report:
    params: dict = {"limit": w.limit, "lo": w.first_minute, "hi": w.last_minute}
    sql = ("SELECT ts_minute, flow_entries, flow_capacity, 100.0 * flow_entries / max(flow_capacity, 1) AS pressure, "
           "flows_added, flows_failed, flows_evicted, flows_aged, dns_lost, hello_lost, hellos_parsed, "
           "hellos_unparsed, hellos_quic_unavailable, cache_entries, read_ms FROM health_1m "
           "WHERE ts_minute BETWEEN :lo AND :hi "
           "ORDER BY ts_minute DESC LIMIT :limit")
    rows = _rows(db, sql, params)
    for r in rows:
        r["minute"] = time.strftime("%Y-%m-%d %H:%M", time.localtime(r["ts_minute"]))
    return Report("Collector health per minute", [
        ("minute", "minute", TEXT), ("flow_entries", "flows", INT), ("pressure", "map used", PCT),
        ("flows_added", "added", INT), ("flows_evicted", "evicted", INT), ("flows_failed", "failed", INT),
        ("flows_aged", "aged", INT), ("dns_lost", "dns lost", INT), ("hello_lost", "hello lost", INT),
        ("hellos_parsed", "hellos", INT), ("hellos_unparsed", "unparsed", INT),
        ("hellos_quic_unavailable", "quic n/a", INT), ("cache_entries", "cache", INT), ("read_ms", "read", MS)], rows)


@functools.cache
def doh_resolvers() -> tuple[frozenset[str], frozenset[str]]:
    """Names and addresses of public DNS-over-HTTPS resolvers, from the shipped list
    (read once: the dashboard and `bandix ui` ask again every few seconds)."""
    names: set[str] = set()
    ips: set[str] = set()
    text = resources.files("bandix").joinpath("data/doh-resolvers.txt").read_text()
    for line in text.splitlines():
        entry = line.split("#", 1)[0].strip().lower()
        if entry:
            (ips if entry[0].isdigit() or ":" in entry else names).add(entry)
    return frozenset(names), frozenset(ips)


def top_dohdot(db: sqlite3.Connection, w: Window) -> Report:
    """Encrypted DNS that bypasses the router: DoH by known resolver, DoT/DoQ by port 853."""
    names, ips = doh_resolvers()
    params: dict = {"limit": w.limit}
    name_marks = ", ".join(f":n{i}" for i in range(len(names)))
    ip_marks = ", ".join(f":i{i}" for i in range(len(ips)))
    params.update({f"n{i}": n for i, n in enumerate(sorted(names))})
    params.update({f"i{i}": a for i, a in enumerate(sorted(ips))})
    kind = ("CASE WHEN peer_port = 853 THEN (CASE proto WHEN 6 THEN 'DoT' ELSE 'DoQ' END) ELSE 'DoH' END")
    sql = (f"SELECT {kind} AS kind, domain, peer_ip AS ip, mac, {_UPDOWN} FROM {flow_rows(w, params)} "
           f"WHERE peer_port = 853 OR (peer_port = 443 AND (domain IN ({name_marks}) OR peer_ip IN ({ip_marks}))) "
           "GROUP BY kind, domain, peer_ip, mac ORDER BY total DESC LIMIT :limit")
    rows = _named(_rows(db, sql, params))
    return Report("Encrypted DNS (DoH, DoT, DoQ)", [
        ("kind", "kind", TEXT), ("domain", "domain", TEXT), ("ip", "remote ip", TEXT), ("mac", "device", TEXT),
        *_UPDOWN_COLUMNS], rows)


PROTOCOLS = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6"}


def _hostport(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


REPORTS = {
    "top-ip": top_ip, "top-lan": top_lan, "top-flow": top_flow, "top-domain": top_domain, "top-dns": top_dns,
    "top-sni": top_sni, "top-quic": top_quic, "domain-detail": domain_detail,
    "attribution-coverage": attribution_coverage, "dns-cache-inspect": dns_cache_inspect,
    "collector-health": collector_health, "top-dohdot": top_dohdot,
}
