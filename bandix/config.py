"""Daemon options: defaults, then `config bandix 'config'` in the UCI file, then
command-line flags, each overriding the one before.

The flags follow the upstream bandix command line so that scripts written for
it keep working; bandix adds --listen, --bpf-object, --config-dir,
--additional-subnets, --leases-file and --pin-dir.
"""

from __future__ import annotations

import argparse
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from . import uci
from .bpf.loader import DEFAULT_PIN_DIR
from .store.levels import DEFAULT_LEVELS, Level, check_levels

LOG_LEVELS = ("trace", "debug", "info", "warn", "error")
TRACE = 5
LOG_LEVEL_NUMBERS = {"trace": TRACE, "debug": 10, "info": 20, "warn": 30, "error": 40}
DEFAULT_CONFIG_DIR = "/etc/config"
UCI_PACKAGE = "bandix"
UCI_SECTION = "config"
TOKEN_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/="
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass
class Options:
    ifaces: list[str] = field(default_factory=list)
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
    enable_flows: bool = False
    flush_interval_secs: int = 1
    flow_idle_timeout_secs: int = 900
    flow_map_size: int = 16384
    dns_ttl_cap_secs: int = 600
    sni_ttl_cap_secs: int = 300
    flow_retention_days: int = 7
    flow_detail_hours: int = 24
    ipfix_collector: tuple[str, int] | None = None
    ipfix_active_timeout_secs: int = 60
    ipfix_idle_timeout_secs: int = 15
    ipfix_template_refresh_secs: int = 60
    enable_connection: bool = False
    connection_interval_seconds: int = 5
    offline_timeout: int = 300
    connection_max_entries: int = 100_000
    bpf_object: str | None = None
    config_dir: str = DEFAULT_CONFIG_DIR
    additional_subnets: list[Network] = field(default_factory=list)
    leases_file: str = "/tmp/dhcp.leases"
    allowed_hosts: list[str] = field(default_factory=list)
    metrics_public: bool = False
    api_token: str = field(default="", repr=False)  # UCI only: a flag would show in `ps`
    pin_dir: str = DEFAULT_PIN_DIR
    levels: tuple[Level, ...] = DEFAULT_LEVELS
    cli: dict[str, Any] = field(default_factory=dict, repr=False)  # set on the command line: wins over UCI

    @property
    def uci_path(self) -> Path:
        return Path(self.config_dir) / UCI_PACKAGE


class ConfigError(ValueError):
    """A bad value in the UCI file; str() names the file and option."""


def _int_range(lo: int, hi: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text.strip(), 10)
        except ValueError:
            raise ValueError(f"{text!r} is not a whole number") from None
        if not lo <= value <= hi:
            raise ValueError(f"{value} is outside {lo}..{hi}")
        return value

    return parse


def _iface(text: str) -> str:
    # Linux interface names: 1..15 bytes, no '/', no whitespace.
    if not 0 < len(text.encode()) <= 15 or "/" in text or any(c.isspace() for c in text) or text in (".", ".."):
        raise ValueError(f"{text!r} is not a valid interface name")
    return text


def _subnets(text: str) -> list[Network]:
    out = []
    for part in filter(None, (p.strip() for p in text.replace(" ", ",").split(","))):
        try:
            out.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ValueError(f"{part!r} is not an IPv4 or IPv6 prefix (e.g. 10.8.0.0/24)") from None
    return out


def _address(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ValueError(f"{text!r} is not an IP address") from None


def _collector(text: str) -> tuple[str, int] | None:
    """'192.0.2.7:4739' or '[2001:db8::7]:4739' -> (address, port); '' -> None (no export)."""
    if not text.strip():
        return None
    host, sep, port = text.strip().rpartition(":")
    if not sep:
        raise ValueError(f"{text!r} is not HOST:PORT (e.g. 192.0.2.7:4739 or [2001:db8::7]:4739)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"{text!r}: write an IPv6 collector in brackets, e.g. [2001:db8::7]:4739")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{host!r} is not an IPv4 or IPv6 address (names are not resolved)") from None
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{port!r} is not a port (1..65535)")
    return str(address), int(port)


def _host_name(text: str) -> str:
    name = text.strip().lower().rstrip(".")
    if not 0 < len(name) <= 253 or not set(name) <= set("abcdefghijklmnopqrstuvwxyz0123456789.-_"):
        raise ValueError(f"{text!r} is not a host name (e.g. router.lan)")
    return name


def _token(text: str) -> str:
    if not 16 <= len(text) <= 128 or not set(text) <= set(TOKEN_CHARS):
        raise ValueError("not a token: 16 to 128 letters, digits or -._~+/=")
    return text


def _log_level(text: str) -> str:
    if text not in LOG_LEVELS:
        raise ValueError(f"{text!r} is not one of {', '.join(LOG_LEVELS)}")
    return text


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "yes", "on", "true", "enabled"):
        return True
    if value in ("0", "no", "off", "false", "disabled"):
        return False
    raise ValueError(f"{text!r} is not a boolean (0 or 1)")


def _level_seconds(text: str) -> tuple[Level, ...]:
    """Test-only: short buckets, e.g. 2,4,10,20 or with capacities 1:5,2:5,4:5,8:2."""
    parts = text.split(",")
    if len(parts) != len(DEFAULT_LEVELS):
        raise ValueError(f"give {len(DEFAULT_LEVELS)} intervals")
    levels = []
    for lv, part in zip(DEFAULT_LEVELS, parts, strict=True):
        seconds, _, capacity = part.partition(":")
        # Chunks of 4 buckets: tests seal them, save them and read them back within seconds.
        levels.append(Level(lv.name, int(seconds), int(capacity) if capacity else lv.capacity, 4))
    check_levels(tuple(levels))
    return tuple(levels)


# field: (UCI option or None, parser of one UCI/flag string)
_UCI: dict[str, tuple[str | None, Callable[[str], Any]]] = {
    "ifaces": ("iface", _iface),  # a list; each value parsed
    "port": ("port", _int_range(1, 65535)),
    "listen": ("listen", _address),
    "data_dir": ("data_dir", str),
    "log_level": ("log_level", _log_level),
    "tc_priority": ("tc_priority", _int_range(0, 65535)),
    "web_log": ("web_log", _bool),
    "enable_traffic": ("traffic_enabled", _bool),
    "traffic_retention_seconds": ("traffic_retention_seconds", _int_range(1, 86400)),
    "traffic_flush_interval_seconds": ("traffic_flush_interval_seconds", _int_range(1, 86400)),
    "traffic_persist_history": ("traffic_persist_history", _bool),
    "enable_dns": ("dns_enabled", _bool),
    "dns_max_records": ("dns_max_records", _int_range(1, 10_000_000)),
    "enable_flows": ("flows_enabled", _bool),
    "flush_interval_secs": ("flow_flush_interval_secs", _int_range(1, 60)),
    "flow_idle_timeout_secs": ("flow_idle_timeout_secs", _int_range(10, 86400)),
    "flow_map_size": ("flow_map_size", _int_range(1024, 1_048_576)),
    "dns_ttl_cap_secs": ("dns_ttl_cap_secs", _int_range(1, 604800)),
    "sni_ttl_cap_secs": ("sni_ttl_cap_secs", _int_range(1, 604800)),
    "flow_retention_days": ("flow_retention_days", _int_range(1, 3650)),
    "flow_detail_hours": ("flow_detail_hours", _int_range(1, 87600)),
    "ipfix_collector": ("ipfix_collector", _collector),
    "enable_connection": ("connection_enabled", _bool),
    "connection_interval_seconds": ("connection_interval_seconds", _int_range(1, 3600)),
    "connection_max_entries": ("connection_max_entries", _int_range(100, 10_000_000)),
    "offline_timeout": ("offline_timeout", _int_range(1, 86400 * 30)),
    "additional_subnets": ("additional_subnets", _subnets),
    "leases_file": ("leases_file", str),
    "allowed_hosts": ("allowed_host", _host_name),  # a list; each value parsed
    "metrics_public": ("metrics_public", _bool),
    "api_token": ("api_token", _token),
}
LIST_OPTIONS = {"ifaces", "additional_subnets", "allowed_hosts"}


def from_uci(section: uci.Section | None, path: Path) -> dict[str, Any]:
    """The daemon options a `config bandix 'config'` section sets."""
    out: dict[str, Any] = {}
    if section is None:
        return out
    for name, (option, parse) in _UCI.items():
        if option is None or section.get(option) is None:
            continue
        try:
            if name in ("ifaces", "allowed_hosts"):
                out[name] = [parse(v) for v in section.get_list(option)]
            elif name == "additional_subnets":
                out[name] = [n for v in section.get_list(option) for n in parse(v)]
            else:
                out[name] = parse(section.get(option))
        except ValueError as exc:  # the message never repeats a token's value
            raise ConfigError(f"{path}: option {option}: {exc}") from None
    return out


def merge(cli: dict[str, Any], uci_file: uci.UciFile | None, path: Path) -> Options:
    """Defaults < UCI < command line."""
    section = uci_file.named(UCI_SECTION) if uci_file else None
    values = {**from_uci(section, path), **cli}
    known = {f.name for f in fields(Options)}
    return Options(**{k: v for k, v in values.items() if k in known}, cli=dict(cli))


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
  bandix --iface br-lan --enable-flows --data-dir /tmp/bandix
        where the traffic goes: flows by domain, for `bandix top-domain` and the API
  bandix --iface br-lan --enable-flows --ipfix-collector 192.0.2.7:4739
        flows also go out as IPFIX records to a collector (nfcapd -p 4739)
  bandix --iface br-lan --enable-traffic --listen 192.168.1.1 --allowed-host router.lan
        the dashboard on the LAN at http://router.lan:8686/ (log in with UCI api_token)
  bandix --config-dir /etc/config
        everything from `config bandix 'config'` in /etc/config/bandix (flags win)

usage from the running daemon: bandix export [--days N | --from DAY --to DAY] [--format csv|json]
  (bandix export --help)
live view of every device (from the running daemon): bandix top;  bandix top --help
reports (no daemon needed): bandix top-domain | top-ip | top-lan | top-flow | top-dns | top-sni |
  top-quic | domain-detail | attribution-coverage | dns-cache-inspect | collector-health |
  top-dohdot | ui | prune;  bandix COMMAND --help for each

signals: SIGTERM/SIGINT stop (filters removed, counters kept pinned);
SIGUSR2 stops for a restart (programs stay attached and keep counting);
SIGHUP reads the UCI file again (limits, bindings, log level, subnets, leases).
"""


def _flag(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    def wrapped(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return wrapped


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bandix", argument_default=argparse.SUPPRESS,
        description="Per-device traffic monitor for routers: eBPF counters on the LAN interface, "
        "served as a JSON API. Options come from the UCI file, flags override them.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--iface", dest="ifaces", action="append", type=_flag(_iface), metavar="IFACE",
                   help="LAN interface to monitor; repeat for several bridges (UCI: list iface)")
    p.add_argument("--port", type=_flag(_int_range(1, 65535)), help="API port (default 8686)")
    p.add_argument("--listen", type=_flag(_address),
                   help="API address (default 127.0.0.1; LuCI reaches it through rpcd)")
    p.add_argument("--data-dir", help="data directory (default bandix-data)")
    p.add_argument("--log-level", type=_flag(_log_level), help="trace, debug, info, warn or error (default info)")
    p.add_argument("--syslog", nargs="?", const="/dev/log", metavar="SOCKET",
                   help="log to syslog (default socket /dev/log; the OpenWrt init script sets it) "
                   "with its priorities and no timestamp of its own, instead of stderr")
    p.add_argument("--tc-priority", type=_flag(_int_range(0, 65535)),
                   help="TC filter priority, lower runs first; 0 lets the kernel choose (default 0)")
    p.add_argument("--web-log", action="store_true", help="log every API request")
    p.add_argument("--enable-traffic", action="store_true", help="enable per-device traffic accounting")
    p.add_argument("--traffic-retention-seconds", type=_flag(_int_range(1, 86400)),
                   help="seconds of one-second samples kept for /api/traffic/metrics (default 600)")
    p.add_argument("--traffic-flush-interval-seconds", type=_flag(_int_range(1, 86400)),
                   help="how often history is written to disk (default 600)")
    p.add_argument("--traffic-persist-history", action="store_true", help="keep traffic history on disk")
    p.add_argument("--enable-dns", action="store_true", help="enable DNS monitoring")
    p.add_argument("--dns-max-records", type=_flag(_int_range(1, 10_000_000)),
                   help="DNS records kept in memory (default 10000)")
    p.add_argument("--enable-flows", action="store_true",
                   help="count 5-tuple flows and attribute them to domains (DNS answers, TLS/QUIC SNI); "
                   "kept per minute in the SQLite database of --data-dir for the report commands")
    p.add_argument("--flush-interval-secs", type=_flag(_int_range(1, 60)),
                   help="how often flow counters are read and written (default 1)")
    p.add_argument("--flow-idle-timeout-secs", type=_flag(_int_range(10, 86400)),
                   help="a flow without packets for this long leaves the kernel map (default 900)")
    p.add_argument("--flow-map-size", type=_flag(_int_range(1024, 1_048_576)),
                   help="flows the kernel tracks at once; the idlest is evicted beyond (default 16384)")
    p.add_argument("--dns-ttl-cap-secs", type=_flag(_int_range(1, 604800)),
                   help="longest a DNS answer names an address for attribution (default 600)")
    p.add_argument("--sni-ttl-cap-secs", type=_flag(_int_range(1, 604800)),
                   help="how long a TLS/QUIC server name names its address (default 300)")
    p.add_argument("--flow-retention-days", type=_flag(_int_range(1, 3650)),
                   help="days of flow analytics kept (hourly flows, DNS, server names, health; default 7)")
    p.add_argument("--flow-detail-hours", type=_flag(_int_range(1, 87600)),
                   help="hours of per-minute 5-tuple flows kept, the bulk of the database (default 24)")
    p.add_argument("--ipfix-collector", type=_flag(_collector), metavar="HOST:PORT",
                   help="send flow records to this IPFIX collector over UDP (needs --enable-flows), "
                   "e.g. 192.0.2.7:4739 or [2001:db8::7]:4739")
    p.add_argument("--ipfix-active-timeout-secs", type=_flag(_int_range(1, 3600)),
                   help="a flow still moving sends a record this often (default 60)")
    p.add_argument("--ipfix-idle-timeout-secs", type=_flag(_int_range(1, 3600)),
                   help="a flow without packets for this long sends its last record (default 15)")
    p.add_argument("--ipfix-template-refresh-secs", type=_flag(_int_range(1, 86400)),
                   help="how often the templates are sent again (default 60)")
    p.add_argument("--enable-connection", action="store_true", help="enable connection statistics")
    p.add_argument("--connection-interval-seconds", type=_flag(_int_range(1, 3600)),
                   help="how often the conntrack table is read (default 5)")
    p.add_argument("--connection-max-entries", type=_flag(_int_range(100, 10_000_000)),
                   help="conntrack entries read at most; beyond, answers say they are partial (default 100000)")
    p.add_argument("--offline-timeout", type=_flag(_int_range(1, 86400 * 30)), metavar="SECONDS",
                   help="a device without traffic and unconfirmed by the neighbour table for this long "
                   "is offline (default 300; UCI: offline_timeout, applied on SIGHUP)")
    p.add_argument("--bpf-object", help="BPF object to load (default /lib/bpf/bandix.o, then the build tree)")
    p.add_argument("--config-dir", help=f"directory of the UCI file 'bandix' (default {DEFAULT_CONFIG_DIR})")
    p.add_argument("--additional-subnets", type=_flag(_subnets), metavar="PREFIX[,PREFIX...]",
                   help="extra prefixes counted as LAN, comma-separated")
    p.add_argument("--leases-file", help="dnsmasq leases for hostnames (default /tmp/dhcp.leases)")
    p.add_argument("--allowed-host", dest="allowed_hosts", action="append", type=_flag(_host_name), metavar="NAME",
                   help="a name besides loopback and the listen address that the API answers to, as in "
                   "http://NAME:8686/ (DNS rebinding protection; UCI: list allowed_host)")
    p.add_argument("--metrics-public", action="store_true",
                   help="let scrapers off the router read /metrics without the API token (UCI: metrics_public)")
    p.add_argument("--pin-dir", help=f"where the counter maps are pinned (default {DEFAULT_PIN_DIR})")
    # Tests only: history levels with short buckets so rollups happen in seconds.
    p.add_argument("--test-level-seconds", dest="levels", type=_flag(_level_seconds), help=argparse.SUPPRESS)
    return p


def parse_args(argv: list[str] | None = None) -> Options:
    """Flags plus the UCI file; exits 2 with a message on a bad value in either."""
    parser = build_parser()
    cli = vars(parser.parse_args(argv))
    config_dir = cli.get("config_dir", DEFAULT_CONFIG_DIR)
    path = Path(config_dir) / UCI_PACKAGE
    try:
        opts = merge(cli, uci.load(path), path)
    except (uci.UciSyntaxError, ConfigError) as exc:
        parser.exit(2, f"bandix: error: {exc}\n")
    except OSError as exc:
        parser.exit(2, f"bandix: error: cannot read {path}: {exc.strerror}\n")
    if not opts.ifaces:
        parser.error("no LAN interface: pass --iface or set it in UCI (uci add_list bandix.config.iface=br-lan)")
    return opts
