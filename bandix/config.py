"""Daemon options: their defaults, their validation, and the argument parser.

The flags follow the upstream bandix command line so that scripts and init
files written for it keep working; bandix adds --listen, --bpf-object,
--config-dir, --additional-subnets and --pin-dir.
"""

from __future__ import annotations

import argparse
import ipaddress
from dataclasses import dataclass, field

from .bpf.loader import DEFAULT_PIN_DIR
from .store.levels import DEFAULT_LEVELS, Level, check_levels

LOG_LEVELS = ("trace", "debug", "info", "warn", "error")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass
class Options:
    ifaces: list[str]
    port: int = 8686
    listen: str = "127.0.0.1"
    data_dir: str = "bandix-data"
    log_level: str = "info"
    tc_priority: int = 0
    web_log: bool = False
    enable_traffic: bool = False
    traffic_retention_seconds: int = 600
    traffic_flush_interval_seconds: int = 600
    traffic_persist_history: bool = False
    enable_dns: bool = False
    dns_max_records: int = 10000
    enable_connection: bool = False
    bpf_object: str | None = None
    config_dir: str | None = None
    additional_subnets: list[Network] = field(default_factory=list)
    pin_dir: str = DEFAULT_PIN_DIR
    levels: tuple[Level, ...] = DEFAULT_LEVELS


def _int_range(lo: int, hi: int):
    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{value} is outside {lo}..{hi}")
        return value

    return parse


def _iface(text: str) -> str:
    # Linux interface names: 1..15 bytes, no '/', no whitespace.
    if not 0 < len(text.encode()) <= 15 or "/" in text or any(c.isspace() for c in text) or text in (".", ".."):
        raise argparse.ArgumentTypeError(f"{text!r} is not a valid interface name")
    return text


def _subnets(text: str) -> list[Network]:
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        try:
            out.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part!r} is not an IPv4 or IPv6 prefix (e.g. 10.8.0.0/24)") from None
    return out


def _level_seconds(text: str) -> tuple[Level, ...]:
    """Test-only: short buckets, e.g. 2,4,10,20 or with capacities 1:5,2:5,4:5,8:2."""
    try:
        parts = text.split(",")
        if len(parts) != len(DEFAULT_LEVELS):
            raise ValueError(f"give {len(DEFAULT_LEVELS)} intervals")
        levels = []
        for lv, part in zip(DEFAULT_LEVELS, parts, strict=True):
            seconds, _, capacity = part.partition(":")
            levels.append(Level(lv.name, int(seconds), int(capacity) if capacity else lv.capacity))
        levels = tuple(levels)
        check_levels(levels)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return levels


def _address(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IP address") from None


EXAMPLES = """\
examples:
  bandix --iface br-lan --enable-traffic
        count every device on br-lan; API on http://127.0.0.1:8686/
  bandix --iface br-lan --iface br-guest --enable-traffic
        two LAN bridges at once
  bandix --iface br-lan --enable-traffic --listen 0.0.0.0 --port 8080
        expose the API on every address (the default is loopback only)
  bandix --iface br-lan --enable-traffic --additional-subnets 10.8.0.0/24,fd00:8::/64
        count traffic to a VPN subnet as LAN, not WAN
  bandix --iface br-lan --enable-traffic --tc-priority 1
        run before other TC programs on the interface (0 = kernel picks)

signals: SIGTERM/SIGINT stop (filters removed, counters kept pinned);
SIGUSR2 stops for a restart (programs stay attached and keep counting).
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bandix",
        description="Per-device traffic monitor for routers: eBPF counters on the LAN interface, "
        "served as a JSON API.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--iface", dest="ifaces", action="append", type=_iface, required=True, metavar="IFACE",
                   help="LAN interface to monitor; repeat for several bridges")
    p.add_argument("--port", type=_int_range(1, 65535), default=8686, help="API port (default 8686)")
    p.add_argument("--listen", type=_address, default="127.0.0.1",
                   help="API address (default 127.0.0.1; LuCI reaches it through rpcd)")
    p.add_argument("--data-dir", default="bandix-data", help="data directory (default bandix-data)")
    p.add_argument("--log-level", choices=LOG_LEVELS, default="info", help="log level (default info)")
    p.add_argument("--tc-priority", type=_int_range(0, 65535), default=0,
                   help="TC filter priority, lower runs first; 0 lets the kernel choose (default 0)")
    p.add_argument("--web-log", action="store_true", help="log every API request")
    p.add_argument("--enable-traffic", action="store_true", help="enable per-device traffic accounting")
    p.add_argument("--traffic-retention-seconds", type=_int_range(1, 86400), default=600,
                   help="seconds of one-second samples kept for /api/traffic/metrics (default 600)")
    p.add_argument("--traffic-flush-interval-seconds", type=_int_range(1, 86400), default=600,
                   help="how often history is written to disk (default 600)")
    p.add_argument("--traffic-persist-history", action="store_true", help="keep traffic history on disk")
    p.add_argument("--enable-dns", action="store_true", help="enable DNS monitoring")
    p.add_argument("--dns-max-records", type=_int_range(1, 10_000_000), default=10000,
                   help="DNS records kept in memory (default 10000)")
    p.add_argument("--enable-connection", action="store_true", help="enable connection statistics")
    p.add_argument("--bpf-object", help="BPF object to load (default /lib/bpf/bandix.o, then the build tree)")
    p.add_argument("--config-dir",
                   help="directory of the UCI file 'bandix' (accepted; UCI configuration is not read yet)")
    p.add_argument("--additional-subnets", type=_subnets, default=[], metavar="PREFIX[,PREFIX...]",
                   help="extra prefixes counted as LAN, comma-separated")
    p.add_argument("--pin-dir", default=DEFAULT_PIN_DIR,
                   help=f"where the counter maps are pinned (default {DEFAULT_PIN_DIR})")
    # Tests only: history levels with short buckets so rollups happen in seconds.
    p.add_argument("--test-level-seconds", dest="levels", type=_level_seconds, default=DEFAULT_LEVELS,
                   help=argparse.SUPPRESS)
    return p


def parse_args(argv: list[str] | None = None) -> Options:
    ns = build_parser().parse_args(argv)
    return Options(**vars(ns))
