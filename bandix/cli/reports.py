"""`bandix top-domain` and the other report commands: read the analytics
tables a daemon with --enable-flows writes, print tables or JSON.

They need neither root nor a running daemon, only the database file.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from pathlib import Path

from .. import uci
from ..config import DEFAULT_CONFIG_DIR, UCI_PACKAGE, UCI_SECTION, Options
from ..store import reports
from ..store.analytics import prune
from ..store.database import DB_NAME, BandixFile, DatabaseUnavailable, IncompatibleDatabase
from .units import human_bytes

COMMANDS = (*reports.REPORTS, "ui", "prune")
UI_REPORTS = ("top-domain", "top-ip", "top-lan", "top-dns", "top-sni", "top-quic", "top-dohdot",
              "attribution-coverage")

HELP = {
    "top-ip": "remote addresses by bytes (the peer of each flow)",
    "top-lan": "LAN addresses (devices) by bytes",
    "top-flow": "5-tuple flows by bytes: src:port -> dst:port",
    "top-domain": "domains by bytes, from DNS answers and TLS/QUIC server names",
    "top-dns": "DNS names by queries, with answers, NXDOMAIN and failures",
    "top-sni": "TLS and QUIC server names by hellos",
    "top-quic": "QUIC (UDP 443) traffic by domain and address",
    "domain-detail": "one domain's traffic by direction, protocol and port",
    "attribution-coverage": "bytes with an exact, ambiguous or no domain",
    "dns-cache-inspect": "what the domain cache learned, refreshed and let expire, by domain",
    "collector-health": "flow map use, evictions, lost events, per minute",
    "top-dohdot": "encrypted DNS past the router: DoH to known resolvers, DoT/DoQ on port 853",
    "ui": "a live panel of the main reports",
    "prune": "delete analytics older than --retention-days",
}

EXAMPLES = """\
examples:
  bandix top-domain                       where the last hour's traffic went, by domain
  bandix top-lan --lookback-minutes 1440  the busiest devices of the last day
  bandix top-ip --mac 02:00:00:00:00:01   remote addresses one device talked to
  bandix domain-detail --domain example.com
  bandix attribution-coverage --json      how much traffic has a domain, as JSON
  bandix ui --refresh-secs 2              a live panel (Ctrl-C ends it)
  bandix prune --retention-days 30        delete what is older than 30 days
"""


def default_db() -> str:
    """bandix.db in the data dir of /etc/config/bandix, as the daemon uses it."""
    data_dir = Options().data_dir
    try:
        section = uci.load(Path(DEFAULT_CONFIG_DIR) / UCI_PACKAGE).named(UCI_SECTION)
        data_dir = (section.get("data_dir") if section else None) or data_dir
    except (OSError, uci.UciSyntaxError):
        pass
    return str(Path(data_dir) / DB_NAME)


def _positive(hi: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not 1 <= value <= hi:
            raise argparse.ArgumentTypeError(f"{value} is outside 1..{hi}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bandix", description="Reports over the flow analytics of bandix.db.",
                                epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        c = sub.add_parser(name, help=HELP[name], description=HELP[name], epilog=EXAMPLES,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        c.add_argument("--db", default=None, help="the database (default: bandix.db in the UCI data_dir)")
        if name == "prune":
            c.add_argument("--retention-days", type=_positive(36500), required=True,
                           help="keep this many days, delete the rest")
            continue
        c.add_argument("--iface", help="only traffic of devices on this interface")
        c.add_argument("--mac", type=str.lower, help="only this device")
        c.add_argument("--lookback-minutes", type=_positive(60 * 24 * 3650), default=60,
                       help="minutes back from now, this one included (default 60)")
        c.add_argument("--limit", type=_positive(100_000), default=20 if name != "ui" else 10,
                       help="rows at most (default 20; 10 per panel in ui)")
        c.add_argument("--json", action="store_true", help="print JSON instead of a table")
        if name == "domain-detail":
            c.add_argument("--domain", required=True, help="the domain, e.g. example.com")
        if name == "ui":
            c.add_argument("--refresh-secs", type=_positive(3600), default=2, help="seconds between refreshes")
            c.add_argument("--count", type=int, default=0, help="refreshes before it exits (default: until Ctrl-C)")
    return p


def open_db(path: str) -> sqlite3.Connection:
    """Writable when possible (so an old file is migrated), else read-only."""
    if not Path(path).is_file():
        raise DatabaseUnavailable(f"no database at {path}: start the daemon with --enable-flows, or give --db")
    file = BandixFile(Path(path))
    try:
        file.open()
        return file.db
    except IncompatibleDatabase:
        raise
    except DatabaseUnavailable:
        pass  # e.g. a directory this user may not write to
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    db.execute("SELECT count(*) FROM flow_1m_5t")  # fails clearly on a file never migrated
    return db


def render(report: reports.Report) -> str:
    headers = [h for _, h, _ in report.columns]
    cells = [[_cell(row.get(key), kind) for key, _, kind in report.columns] for row in report.rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    right = [kind != reports.TEXT for _, _, kind in report.columns]

    def line(values: list[str]) -> str:
        padded = (v.rjust(w) if r else v.ljust(w) for v, w, r in zip(values, widths, right, strict=True))
        return "  ".join(padded).rstrip()

    out = [report.title, line(headers)]
    out += [line(r) for r in cells] or ["(no data in this window)"]
    return "\n".join(out)


def _cell(value, kind: str) -> str:
    if value is None:
        return "-"
    if kind == reports.BYTES:
        return human_bytes(value)
    if kind == reports.PCT:
        return f"{value:.1f}%"
    if kind == reports.MS:
        return f"{value:.1f} ms"
    return str(value)


def run_report(db: sqlite3.Connection, args: argparse.Namespace, name: str, now: int) -> reports.Report:
    window = reports.Window(now, args.lookback_minutes, args.limit, args.mac, args.iface)
    if name == "domain-detail":
        return reports.domain_detail(db, window, args.domain)
    return reports.REPORTS[name](db, window)


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    path = args.db or default_db()
    try:
        db = open_db(path)
    except (DatabaseUnavailable, sqlite3.Error) as exc:
        print(f"bandix {args.command}: error: {exc}", file=sys.stderr)
        return 2
    try:
        if args.command == "prune":
            deleted = prune(db, args.retention_days)
            print(f"deleted {sum(deleted.values())} rows older than {args.retention_days} days from {path}")
            return 0
        if args.command == "ui":
            return _ui(db, args)
        report = run_report(db, args, args.command, int(time.time()))
        if args.json:
            print(json.dumps({"title": report.title, "rows": report.rows}, indent=2))
        else:
            print(render(report))
        return 0
    except sqlite3.Error as exc:
        print(f"bandix {args.command}: error: {path}: {exc}", file=sys.stderr)
        return 2
    finally:
        db.close()


def _ui(db: sqlite3.Connection, args: argparse.Namespace) -> int:
    shown = 0
    try:
        while True:
            now = int(time.time())
            panels = [render(run_report(db, args, name, now)) for name in UI_REPORTS]
            header = (f"bandix · last {args.lookback_minutes} min · {time.strftime('%H:%M:%S')} · "
                      f"every {args.refresh_secs} s (Ctrl-C ends)")
            sys.stdout.write("\x1b[H\x1b[2J" if sys.stdout.isatty() else "")
            print(header, *panels, sep="\n\n", flush=True)
            shown += 1
            if args.count and shown >= args.count:
                return 0
            time.sleep(args.refresh_secs)
    except KeyboardInterrupt:
        return 0
