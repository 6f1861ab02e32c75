"""`bandix export`: every device's WAN (or LAN, or all) bytes per local day (or hour) from the running
daemon's GET /api/traffic/usage/export, to a file or stdout.

It asks the daemon rather than reading its database: the history lives in the
daemon's memory (the database is only its periodic copy, and may be off). The
address comes from UCI (listen and port, as the LuCI plugin finds it); the API
token is sent only to a daemon off this host (loopback needs none).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlencode, urlparse

from .. import uci
from ..config import DEFAULT_CONFIG_DIR, UCI_PACKAGE, UCI_SECTION
from ..localtime import setup_timezone

EXAMPLES = """\
examples:
  bandix export                              yesterday and today, per local day, CSV on stdout
  bandix export --days 31 -o march.csv       the last 31 local days into march.csv
  bandix export --from 2026-03-01 --to 2026-04-01 --format json
                                             March (local time) as JSON
  bandix export --aggregation hourly --days 1
                                             today's hours, per device
  bandix export --network-type all --days 7  the last week's WAN + LAN bytes
  bandix export --url http://192.168.1.1:8686 --token TOKEN
                                             a router's daemon from another host
"""


def _date(text: str) -> float:
    """YYYY-MM-DD as the local midnight starting it (s since the epoch)."""
    try:
        return time.mktime(time.strptime(text, "%Y-%m-%d"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


def _days(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 3660:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days from 1 to 3660")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bandix export", epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Export every device's WAN (or LAN, or all) bytes per local day (or hour) from the running daemon, "
        "as CSV (date,ts_ms,mac,ip,hostname,rx_bytes,tx_bytes,total_bytes) or JSON.")
    p.add_argument("--format", choices=("csv", "json"), default="csv", help="csv (default) or json")
    p.add_argument("--aggregation", choices=("daily", "hourly"), default="daily",
                   help="per local day (default) or per local hour")
    p.add_argument("--network-type", choices=("wan", "lan", "all"), default="wan",
                   help="WAN bytes (default), LAN bytes, or all (both)")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--days", type=_days, default=2, help="this many local days up to now, today included "
                      "(default 2)")
    when.add_argument("--from", dest="start", type=_date, metavar="YYYY-MM-DD", help="first local day")
    p.add_argument("--to", dest="end", type=_date, metavar="YYYY-MM-DD",
                   help="the local day after the last one (default: now; with --from)")
    p.add_argument("-o", "--output", help="write to this file (default stdout)")
    p.add_argument("--url", help="the daemon (default: from UCI listen and port, http://127.0.0.1:8686)")
    p.add_argument("--token", help="API token for a daemon off this host (default: UCI api_token)")
    p.add_argument("--config-dir", default=DEFAULT_CONFIG_DIR, help=f"UCI directory (default {DEFAULT_CONFIG_DIR})")
    return p


def daemon_url(config_dir: str) -> tuple[str, str]:
    """(base URL, api_token) from UCI: loopback unless the daemon listens on one address only."""
    try:
        section = uci.load(Path(config_dir) / UCI_PACKAGE).named(UCI_SECTION)
    except (OSError, uci.UciSyntaxError):
        section = None
    port = (section.get("port") if section else None) or "8686"
    host = (section.get("listen") if section else None) or "127.0.0.1"
    try:
        addr = ipaddress.ip_address(host)
        host = "127.0.0.1" if addr.is_unspecified else (f"[{addr}]" if addr.version == 6 else str(addr))
    except ValueError:
        host = "127.0.0.1"
    return f"http://{host}:{port if port.isdigit() else '8686'}", (section.get("api_token") or "") if section else ""


def time_range(args: argparse.Namespace, now: float) -> tuple[int, int]:
    """start_ms, end_ms: local days (midnights) as asked."""
    if args.start is not None:
        end = args.end if args.end is not None else now
        return int(args.start * 1000), int(end * 1000)
    lt = time.localtime(now)
    start = time.mktime((lt.tm_year, lt.tm_mon, lt.tm_mday - args.days + 1, 0, 0, 0, 0, 0, -1))
    return int(start * 1000), int(now * 1000)


def main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.end is not None and args.start is None:
        parser.error("--to needs --from")
    setup_timezone(Path(args.config_dir), os.environ.get("TZ"))  # local days as the router counts them
    base, token = daemon_url(args.config_dir)
    base = (args.url or base).rstrip("/")
    token = args.token if args.token is not None else token
    start, end = time_range(args, time.time())
    query = urlencode({"format": args.format, "aggregation": args.aggregation, "network_type": args.network_type,
                       "start_ms": start, "end_ms": end})
    req = urllib.request.Request(f"{base}/api/traffic/usage/export?{query}")
    host = urlparse(base).hostname or ""
    if token and host not in ("127.0.0.1", "::1", "localhost"):
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            body = resp.read()
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read())["message"]
        except (ValueError, KeyError, TypeError):
            message = exc.reason
        print(f"bandix export: error: the daemon answered {exc.code}: {message}", file=sys.stderr)
        return 2
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        print(f"bandix export: error: no answer from {base} ({reason}); is bandix running?", file=sys.stderr)
        return 2
    if args.output:
        Path(args.output).write_bytes(body)
        print(f"wrote {len(body)} bytes to {args.output}", file=sys.stderr)
    else:
        sys.stdout.buffer.write(body)
        sys.stdout.flush()
    return 0
