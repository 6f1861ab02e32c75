"""`bandix top`: every device live in a terminal, from the daemon's API.

The terminal half of the "dual-mode interface": what the dashboard's device
table shows, over SSH on the router.  Standard library only: curses when the
output is a terminal and Python has it (on OpenWrt it is the separate
python3-ncurses package), else plain lines, one table per refresh, as scripts
and pipes want them.  It reads nothing but GET /api/traffic/devices, so it
needs neither root nor the daemon's files.
"""

from __future__ import annotations

import argparse
import http.client
import ipaddress
import json
import sys
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import uci

# As bandix.config has them (a test checks): importing it would load the BPF binding (ctypes)
# into a command that only reads the API.
DEFAULT_CONFIG_DIR, UCI_PACKAGE, UCI_SECTION = "/etc/config", "bandix", "config"

DEVICES_PATH = "api/traffic/devices"
FETCH_TIMEOUT_S = 3.0
FIELDS = ("hostname", "ip", "mac", "total_rx_rate", "total_tx_rate", "total_rx_bytes", "total_tx_bytes",
          "wan_rx_rate_limit", "wan_tx_rate_limit", "quota_state", "quota_used_bytes", "quota_bytes", "online")

EXAMPLES = """\
keys (in a terminal):
  1 .. 0     sort by that column (numbered in the header); the same key again reverses
  < >        sort by the column left / right of the current one
  r          reverse the order
  /          type a filter (matches name, IP, MAC, quota state); Enter keeps it, Esc clears it
  q          quit (Ctrl-C too)

examples:
  bandix top                          every device, refreshed every second, busiest download first
  bandix top --sort up --filter 192.168.1.
                                      devices in 192.168.1.x, busiest upload first
  bandix top --once                   one table and exit (plain lines, for a script or a log)
  bandix top --json | jsonfilter -e '@.devices[*].mac'
                                      the same snapshot as JSON
  bandix top --count 10 > top.log     ten tables, one a second (plain lines: not a terminal)
  bandix top --url http://192.168.1.1:8686/
                                      another router's daemon (sends the UCI api_token)

The daemon is found as other commands find it: port and listen address from
`config bandix 'config'` in /etc/config/bandix (default http://127.0.0.1:8686/).
Rates and sizes are bytes (per second), K = 1024.
"""


@dataclass(frozen=True)
class Column:
    """One column: its sort name, header, width, the cell text and the sort key of a device."""

    name: str
    header: str
    width: int
    cell: Callable[[dict], str]
    key: Callable[[dict], Any]
    numeric: bool = True  # right-aligned; sorted biggest first


def compact(n: int | float) -> str:
    """Bytes in at most 6 characters: 512B, 1.5K, 12.3M, 1.1G (powers of 1024)."""
    value = float(n)
    for unit in ("B", "K", "M", "G", "T"):
        if abs(value) < 1024 or unit == "T":
            return f"{int(value)}B" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    raise AssertionError("unreachable")


def limit_text(d: dict) -> str:
    rx, tx = d.get("wan_rx_rate_limit", 0), d.get("wan_tx_rate_limit", 0)
    return f"{compact(rx) if rx else '-'}/{compact(tx) if tx else '-'}" if rx or tx else "-"


def quota_text(d: dict) -> str:
    state = d.get("quota_state", "none")
    if state == "none" or not d.get("quota_bytes"):
        return "-"
    return f"{state} {100 * d['quota_used_bytes'] // d['quota_bytes']}%"


def online_text(d: dict) -> str:
    """yes/no when the daemon reports `online`; blank for a daemon that does not."""
    return "" if "online" not in d else ("yes" if d["online"] else "no")


def _ip_key(ip: str) -> tuple[int, int]:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return (2, 0)
    return (addr.version // 6, int(addr))  # IPv4, then IPv6, then none


COLUMNS: tuple[Column, ...] = (
    Column("name", "NAME", 16, lambda d: d.get("hostname") or "-", lambda d: (d.get("hostname") or "").lower(), False),
    Column("ip", "IP", 15, lambda d: d.get("ip") or "-", lambda d: _ip_key(d.get("ip") or ""), False),
    Column("mac", "MAC", 17, lambda d: d["mac"], lambda d: d["mac"], False),
    Column("down", "DOWN/s", 9, lambda d: compact(d["total_rx_rate"]), lambda d: d["total_rx_rate"]),
    Column("up", "UP/s", 9, lambda d: compact(d["total_tx_rate"]), lambda d: d["total_tx_rate"]),
    Column("rx", "RX", 8, lambda d: compact(d["total_rx_bytes"]), lambda d: d["total_rx_bytes"]),
    Column("tx", "TX", 8, lambda d: compact(d["total_tx_bytes"]), lambda d: d["total_tx_bytes"]),
    Column("limit", "LIMIT dn/up", 15, limit_text,
           # first the limited devices, the tightest limit first
           lambda d: (bool(d.get("wan_rx_rate_limit") or d.get("wan_tx_rate_limit")),
                      -(d.get("wan_rx_rate_limit") or 1 << 62), -(d.get("wan_tx_rate_limit") or 1 << 62))),
    Column("quota", "QUOTA", 13, quota_text,
           lambda d: (d.get("quota_state") != "none", d.get("quota_used_bytes", 0) / (d.get("quota_bytes") or 1))),
    Column("online", "ONLINE", 9, online_text, lambda d: (d.get("online") is True, d.get("online") is False)),
)
SORT_NAMES = tuple(c.name for c in COLUMNS)
KEYS = "1234567890"  # KEYS[i] sorts by COLUMNS[i]


@dataclass
class View:
    """What is shown: sort column, order and filter (changed by keys or flags)."""

    sort: str = "down"
    reverse: bool = False  # from the column's natural order (biggest first for numbers)
    filter: str = ""

    def rows(self, devices: list[dict]) -> list[dict]:
        """The devices that match the filter, in the chosen order (ties: by MAC)."""
        needle = self.filter.strip().lower()
        shown = [d for d in devices if not needle or any(
            needle in str(v).lower() for v in (d.get("hostname"), d.get("ip"), d["mac"], d.get("quota_state")))]
        col = COLUMNS[SORT_NAMES.index(self.sort)]
        shown.sort(key=lambda d: d["mac"])
        shown.sort(key=col.key, reverse=col.numeric != self.reverse)
        return shown

    def key(self, ch: str) -> bool:
        """Apply a sort key; True when it was one."""
        i = SORT_NAMES.index(self.sort)
        if ch in KEYS:
            name = SORT_NAMES[KEYS.index(ch)]
            self.reverse = not self.reverse if name == self.sort else False
            self.sort = name
        elif ch in "<>":
            self.sort, self.reverse = SORT_NAMES[(i + (1 if ch == ">" else -1)) % len(SORT_NAMES)], False
        elif ch == "r":
            self.reverse = not self.reverse
        else:
            return False
        return True


def header_line(view: View, numbered: bool) -> str:
    cells = []
    for i, c in enumerate(COLUMNS):
        title = (f"{KEYS[i]}:" if numbered else "") + c.header
        if c.name == view.sort:
            title += "v" if c.numeric != view.reverse else "^"
        cells.append(title.rjust(c.width) if c.numeric else title.ljust(c.width))
    return " ".join(cells).rstrip()


def device_line(d: dict) -> str:
    cells = [c.cell(d)[:c.width] for c in COLUMNS]
    return " ".join(t.rjust(c.width) if c.numeric else t.ljust(c.width)
                    for t, c in zip(cells, COLUMNS, strict=True)).rstrip()


def total_line(rows: list[dict]) -> str:
    sums = {k: sum(d[k] for d in rows) for k in ("total_rx_rate", "total_tx_rate", "total_rx_bytes", "total_tx_bytes")}
    cells = [f"all ({len(rows)})".ljust(COLUMNS[0].width), "".ljust(COLUMNS[1].width), "".ljust(COLUMNS[2].width),
             *(compact(sums[k]).rjust(c.width) for k, c in zip(sums, COLUMNS[3:7], strict=True))]
    return " ".join(cells).rstrip()


def table(devices: list[dict], view: View, numbered: bool = False) -> list[str]:
    rows = view.rows(devices)
    return [header_line(view, numbered), *(device_line(d) for d in rows), total_line(rows)]


def status_line(url: str, devices: list[dict], shown: int, view: View, error: str | None) -> str:
    parts = [f"bandix top  {url}  {time.strftime('%H:%M:%S')}  {shown} of {len(devices)} devices"]
    if view.filter:
        parts.append(f"filter {view.filter!r}")
    if error:
        parts.append(f"API: {error}")
    return "  ".join(parts)


def snapshot(devices: list[dict], view: View) -> dict:
    """--json: the shown devices with the API's own values of every column."""
    return {"ts_ms": int(time.time() * 1000), "sort": view.sort, "reverse": view.reverse, "filter": view.filter,
            "devices": [{k: d[k] for k in FIELDS if k in d} for d in view.rows(devices)]}


class Api:
    """GET /api/traffic/devices of one daemon, straight (no proxy: the daemon is the router's).

    http.client rather than urllib.request: 2 MB less on a router, and nothing here needs more.
    """

    def __init__(self, url: str, token: str = "") -> None:
        self.url = url
        parts = urllib.parse.urlsplit(url)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._path = urllib.parse.urljoin(parts.path or "/", DEVICES_PATH)
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}

    def devices(self) -> list[dict]:
        conn = http.client.HTTPConnection(self._host, self._port, timeout=FETCH_TIMEOUT_S)
        try:
            conn.request("GET", self._path, headers=self._headers)
            resp = conn.getresponse()
            body = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            raise OSError(str(exc) or type(exc).__name__) from None
        finally:
            conn.close()
        try:
            answer = json.loads(body)
            if resp.status != 200:
                raise OSError(f"{resp.status} {answer.get('message', resp.reason)}")
            return answer["data"]["devices"]
        except (ValueError, KeyError, TypeError, AttributeError):
            raise OSError(f"{resp.status} {resp.reason}: not a bandix answer") from None


def daemon_url(config_dir: str) -> tuple[str, str]:
    """(URL, API token) of the daemon configured in UCI, as the daemon reads its options.

    Listening on every address (0.0.0.0, ::) means loopback answers too.
    """
    port, listen, token = 8686, "127.0.0.1", ""
    try:
        section = uci.load(Path(config_dir) / UCI_PACKAGE).named(UCI_SECTION)
    except (OSError, uci.UciSyntaxError):
        section = None
    if section is not None:
        if (p := section.get("port")) and p.strip().isdigit() and 1 <= int(p) <= 65535:
            port = int(p)
        listen = (section.get("listen") or listen).strip()
        token = (section.get("api_token") or "").strip()
    try:
        addr = ipaddress.ip_address(listen)
    except ValueError:
        addr = ipaddress.ip_address("127.0.0.1")
    if addr.is_unspecified:
        addr = ipaddress.ip_address("127.0.0.1" if addr.version == 4 else "::1")
    host = f"[{addr}]" if addr.version == 6 else str(addr)
    return f"http://{host}:{port}/", token


def _is_loopback(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0.2 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"{value} is outside 0.2..3600 seconds")
    return value


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bandix top", epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Every device's rates, totals, WAN limit, quota state and online state, live from the "
        "bandix daemon's API. Interactive in a terminal (sort and filter keys below); plain lines otherwise.")
    p.add_argument("--url", help="the daemon's address (default: port and listen from UCI, http://127.0.0.1:8686/)")
    p.add_argument("--port", type=int, help="the daemon's port on this router (instead of UCI's)")
    p.add_argument("--config-dir", default=DEFAULT_CONFIG_DIR, help="where the UCI file is (default /etc/config)")
    p.add_argument("-i", "--interval", type=_positive_float, default=1.0, help="seconds between refreshes (default 1)")
    p.add_argument("-n", "--count", type=_count, help="refreshes before it exits (default: until q or Ctrl-C)")
    p.add_argument("--once", action="store_true", help="one table (plain lines) and exit: --count 1 without curses")
    p.add_argument("--json", action="store_true",
                   help="JSON instead of a table: one object per refresh, one a line (once unless --count)")
    p.add_argument("-s", "--sort", choices=SORT_NAMES, default="down", help="the column to sort by (default down)")
    p.add_argument("-r", "--reverse", action="store_true", help="the other order (smallest first for numbers)")
    p.add_argument("-f", "--filter", default="", help="only devices whose name, IP, MAC or quota state contain this")
    p.add_argument("--plain", action="store_true", help="plain lines even in a terminal")
    return p


def resolve(args: argparse.Namespace) -> tuple[str, str]:
    url, token = daemon_url(args.config_dir)
    if args.port is not None:
        parts = urllib.parse.urlsplit(url)
        url = f"http://{parts.netloc.rsplit(':', 1)[0]}:{args.port}/"
    if args.url:
        url = args.url if args.url.endswith("/") else args.url + "/"
        if urllib.parse.urlsplit(url).scheme != "http":
            raise ValueError(f"--url {args.url!r}: give http://HOST:PORT/")
    # The token goes only where it is needed: the router itself is let in without one.
    return url, "" if _is_loopback(url) else token


def main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.port is not None and not 1 <= args.port <= 65535:
        parser.error("--port must be 1..65535")
    try:
        url, token = resolve(args)
    except ValueError as exc:
        parser.error(str(exc))
    api = Api(url, token)
    view = View(args.sort, args.reverse, args.filter)
    count = 1 if args.once or (args.json and args.count is None) else args.count
    try:
        if args.json or args.once or args.plain or not sys.stdout.isatty() or not sys.stdin.isatty():
            return plain(api, view, count, args.interval, args.json)
        try:
            import curses
        except ImportError:  # OpenWrt without python3-ncurses
            print("bandix top: no curses in this Python (opkg install python3-ncurses for keys); plain lines",
                  file=sys.stderr)
            return plain(api, view, count, args.interval, False)
        from .topcurses import run

        return run(curses, api, view, count, args.interval)
    except KeyboardInterrupt:
        return 0


def plain(api: Api, view: View, count: int | None, interval: float, as_json: bool) -> int:
    """A table (or JSON line) per refresh; exits 2 when the daemon does not answer at the first."""
    shown = 0
    while True:
        started = time.monotonic()
        try:
            devices = api.devices()
        except OSError as exc:
            print(f"bandix top: {api.url}: {exc}", file=sys.stderr)
            if shown == 0:
                return 2
            devices = None
        if devices is not None:
            if as_json:
                print(json.dumps(snapshot(devices, view)), flush=True)
            else:
                lines = table(devices, view)
                print("\n".join([status_line(api.url, devices, len(lines) - 2, view, None), *lines]) + "\n",
                      flush=True)
        shown += 1
        if count is not None and shown >= count:
            return 0
        time.sleep(max(0.0, interval - (time.monotonic() - started)))
