"""The daemon: the only place that knows every part and wires them together.

Start-up order matters: everything that can fail with a user-fixable error
(privileges, libbpf, kernel support, interfaces, locks, port) is checked before
the programs are attached, so a refused start leaves the datapath untouched.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import threading
import time
from pathlib import Path

from . import config, preflight, uci
from .api.app import ApiContext, create_app
from .api.guard import Access, Guard
from .api.serve import ApiServer
from .bpf import layout, loader, tc
from .bpf.counters import forget_device, read_health
from .bpf.prefixes import TooManyPrefixes, write_lan_table
from .collect.analytics import FlowAnalytics
from .collect.attribution import DomainCache
from .collect.connections import ConnectionCollector
from .collect.dns import DnsCollector
from .collect.hostnames import Hostnames
from .collect.neighbours import NeighbourTable
from .collect.netlink import NetlinkWatcher
from .collect.prefixes import LanPrefixes
from .collect.traffic import TrafficCollector
from .config import Options
from .errors import FatalError
from .instance import InstanceLocks
from .limiter import Limiter
from .localtime import setup_timezone
from .logs import set_log_level
from .presence import Presence
from .pyroute import IPRoute
from .settings import Settings
from .store.analytics import AnalyticsWriter
from .store.database import DatabaseUnavailable
from .store.dns import DnsStore
from .store.persistence import Persistence
from .store.quota_usage import QuotaUsageFile
from .store.traffic import TrafficStore

log = logging.getLogger("bandix")

TICK_SECONDS = 1.0
FILTER_CHECK_SECONDS = 5.0


class Daemon:
    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.stop_event = threading.Event()
        self.keep_attached = False  # SIGUSR2: leave the programs counting for a restart
        self._locks = InstanceLocks()
        self._ipr: IPRoute | None = None
        self._loaded: loader.LoadedObject | None = None
        self._filters: list[tc.Filter] = []
        self._ifindex: dict[str, int] = {}
        self._server: ApiServer | None = None
        self._guard: Guard | None = None
        self._watcher: NetlinkWatcher | None = None
        self._recreated_lock = threading.Lock()
        self._recreated: dict[str, int] = {}  # set by the netlink thread, handled by the main loop
        self.store: TrafficStore | None = None
        self._persistence: Persistence | None = None
        self._quota_file: QuotaUsageFile | None = None
        self._collector: TrafficCollector | None = None
        self.neighbours = NeighbourTable(set())
        self.prefixes: LanPrefixes | None = None
        self.settings = Settings(opts.uci_path)
        self.hostnames = Hostnames(self.settings, opts.leases_file)
        self.limiter: Limiter | None = None
        self.connections: ConnectionCollector | None = None
        self.dns: DnsCollector | None = None
        self.flows: FlowAnalytics | None = None
        self._inherited_tz = os.environ.get("TZ")
        self._reload = threading.Event()  # set by SIGHUP, handled by the main loop
        # Held by the main loop while it reads the counters and frees forgotten slots, and by
        # forget_device: a reading between taking a device out of the store and freeing its
        # kernel slots would bring it straight back with its old totals.
        self._counting = threading.Lock()

    # -- start-up ---------------------------------------------------------

    def _resolve_interfaces(self) -> None:
        for name in self.opts.ifaces:
            found = self._ipr.link_lookup(ifname=name)
            if not found:
                raise FatalError(
                    f"interface {name} not found: pass an existing LAN interface with --iface "
                    "(on OpenWrt: uci set bandix.config.iface=br-lan)"
                )
            self._ifindex[name] = found[0]

    def _install_prefixes(self, nets) -> None:
        if not self._loaded:
            return  # connection statistics alone read the prefixes, they need no map
        maps = self._loaded.maps
        try:
            write_lan_table(maps[layout.MAP_LAN], maps[layout.MAP_CONTROL], nets)
        except TooManyPrefixes as exc:
            log.error("%s; keeping the previous LAN prefixes", exc)

    def _dump_tables(self) -> None:
        """Read addresses and neighbours in full (start-up, or after lost events)."""
        with IPRoute() as ipr:
            for msg in ipr.get_addr():
                self.prefixes.handle(msg)
            for msg in ipr.get_neighbours():
                self.neighbours.handle(msg)
        self.prefixes.sync()

    def _on_link(self, msg) -> None:
        name = msg.get_attr("IFLA_IFNAME")
        if name not in self._ifindex:
            return
        if msg["event"] == "RTM_DELLINK":
            if msg["index"] == self._ifindex[name]:
                log.warning("interface %s went away; counting resumes when it returns", name)
            return
        if msg["index"] != self._ifindex[name]:
            with self._recreated_lock:
                self._recreated[name] = msg["index"]

    def _follow_recreated(self) -> None:
        """Adopt interfaces that came back with a new ifindex (main thread)."""
        with self._recreated_lock:
            recreated, self._recreated = self._recreated, {}
        if not recreated:
            return
        for name, ifindex in recreated.items():
            log.warning("interface %s was recreated (ifindex %d → %d): attaching again",
                        name, self._ifindex[name], ifindex)
            self._ifindex[name] = ifindex
        ifindexes = set(self._ifindex.values())
        self.neighbours.set_ifindexes(ifindexes)
        self.prefixes.set_ifindexes(ifindexes)
        self._dump_tables()
        self._ensure_attached()

    def start(self) -> None:
        o = self.opts
        if not (o.enable_traffic or o.enable_connection or o.enable_dns or o.enable_flows):
            raise FatalError("no monitoring module enabled: add --enable-traffic, --enable-dns, "
                             "--enable-flows and/or --enable-connection")
        if o.ipfix_collector and not o.enable_flows:
            raise FatalError("--ipfix-collector exports the flow table: add --enable-flows "
                             "(UCI: option flows_enabled 1)")
        preflight.check_privileges()
        if self.needs_bpf:
            preflight.check_libbpf()
            preflight.check_bpf_support()
        self._ipr = IPRoute()
        self._resolve_interfaces()
        for name in o.ifaces:
            self._locks.acquire_interface(name)
        if self.needs_bpf:
            self._locks.acquire_pin_dir(o.pin_dir)
        log.info("local time zone for schedules: %s", setup_timezone(Path(o.config_dir), self._inherited_tz))
        try:
            self.settings.load()
        except OSError as exc:
            raise FatalError(f"cannot read {self.settings.path}: {exc.strerror}") from None
        self._ensure_token(o)
        self.store = TrafficStore(o.traffic_retention_seconds, o.levels)
        self.presence = Presence(self.store.last_sent, self.neighbours.confirmed_ms, o.offline_timeout)
        self.store.add_listener(lambda: self.presence.tick(int(time.time() * 1000)))
        self._ctx = ApiContext(self.store, self.neighbours, self._health, self.settings, None, self.hostnames,
                               presence=self.presence, forget_device=self.forget_device)
        try:
            self._guard = Guard(self._access(o))
            self._server = ApiServer(create_app(self._ctx, self._guard, web_log=o.web_log), o.listen, o.port)
        except OSError as exc:
            raise FatalError(f"cannot listen on {o.listen}:{o.port}: {exc.strerror}; choose another --port") from None
        if self.needs_bpf:
            self._start_traffic()

        ifindexes = set(self._ifindex.values())
        self.neighbours.set_ifindexes(ifindexes)
        self.prefixes = LanPrefixes(ifindexes, o.additional_subnets, self._install_prefixes)
        self._watcher = NetlinkWatcher(
            {
                "RTM_NEWADDR": [self.prefixes.handle],
                "RTM_DELADDR": [self.prefixes.handle],
                "RTM_NEWNEIGH": [self.neighbours.handle],
                "RTM_DELNEIGH": [self.neighbours.handle],
                "RTM_NEWLINK": [self._on_link],
                "RTM_DELLINK": [self._on_link],
            },
            after_batch=self.prefixes.sync,
            resync=self._dump_tables,
        )
        self._watcher.start()
        self._dump_tables()  # prefixes are in place before the first packet is counted
        self._ensure_attached()
        self._ctx.dns_config, self._ctx.set_dns_config = self.dns_config, self.set_dns_config
        if o.enable_dns:
            self.dns.start()
            self._ctx.dns = self.dns
        if o.enable_flows:
            self._start_flows()
        if o.enable_connection:
            self.connections = ConnectionCollector(self.neighbours, self.prefixes.current,
                                                   o.connection_interval_seconds, o.connection_max_entries)
            self.connections.start()
            self._ctx.connections = self.connections
        self._server.start()
        host, port = self._server.address
        log.info("bandix on %s; API on http://%s:%d/", ", ".join(o.ifaces),
                 f"[{host}]" if ":" in host else host, port)

    def _start_traffic(self) -> None:
        """Load the programs and everything that reads or writes their maps."""
        o = self.opts
        try:
            obj = loader.find_object(o.bpf_object)
            self._loaded = loader.load(obj, Path(o.pin_dir), o.flow_map_size)
        except FileNotFoundError as exc:
            raise FatalError(str(exc)) from None
        except OSError as exc:
            raise FatalError(f"cannot load the eBPF programs: {exc}") from None
        state = "continue from the pins in" if self._loaded.reused_pins else "start at zero in"
        log.info("loaded %s; counters %s %s", obj, state, o.pin_dir)
        self.store.fresh_counters = not self._loaded.reused_pins
        if o.traffic_persist_history:
            self._persistence = Persistence(self.store, Path(o.data_dir), o.traffic_flush_interval_seconds,
                                            self._loaded.generation)
            self._persistence.start()
        maps = self._loaded.maps
        self._collector = TrafficCollector(maps[layout.MAP_DEV_SLOTS], maps[layout.MAP_DEV_OVERFLOW], self.store)
        self.limiter = self._ctx.limiter = Limiter(maps[layout.MAP_LIMITS], maps[layout.MAP_CONTROL], self.settings)
        if o.traffic_persist_history:
            self._quota_file = QuotaUsageFile(Path(o.data_dir), o.traffic_flush_interval_seconds)
            saved = self._quota_file.load()
            if not self._loaded.reused_pins:  # reused pins still hold the counts themselves
                self.limiter.restore_usage(saved)
        self.limiter.apply()  # in place before the programs run
        self.dns = DnsCollector(self._loaded.dns_events_fd, maps[layout.MAP_CONTROL], self._health,
                                DnsStore(o.dns_max_records, self.hostnames.name))
        self.dns.set_capture(False)  # until the DNS module starts

    def _start_flows(self) -> None:
        """Flows, hellos and DNS answers into the analytics tables of the data dir."""
        o = self.opts
        writer = AnalyticsWriter(Path(o.data_dir), o.flow_retention_days, o.flow_detail_hours)
        try:
            writer.start()
        except DatabaseUnavailable as exc:
            raise FatalError(f"--enable-flows needs its database: {exc}") from None
        def iface_of(mac: str) -> str:
            if len(o.ifaces) == 1:
                return o.ifaces[0]
            index = self.neighbours.ifindex_of(mac)  # _ifindex follows recreated interfaces
            return next((name for name, i in self._ifindex.items() if i == index), "")

        maps = self._loaded.maps
        self.flows = FlowAnalytics(maps[layout.MAP_FLOWS], self._loaded.hello_events_fd, self._health, writer,
                                   DomainCache(o.dns_ttl_cap_secs, o.sni_ttl_cap_secs), o.flow_map_size,
                                   o.flow_idle_timeout_secs, o.flush_interval_secs, iface_of,
                                   maps[layout.MAP_CONTROL])
        if o.ipfix_collector:
            from .export.exporter import IpfixExporter  # only when flows go out as IPFIX

            self.flows.exporter = IpfixExporter(o.ipfix_collector, o.ipfix_active_timeout_secs,
                                                o.ipfix_idle_timeout_secs, o.ipfix_template_refresh_secs)
            log.info("flows: IPFIX records to %s:%d", *o.ipfix_collector)
        self.dns.listeners.append(self.flows.on_dns)
        self.flows.before_labels.append(self.dns.catch_up)
        self.dns.want("flows", True)
        self.flows.start()
        self._ctx.flows_db, self._ctx.flows = writer.path, self.flows
        log.info("flows: %d entries in the kernel, analytics in %s", o.flow_map_size, writer.path)

    def _ensure_attached(self) -> None:
        """Attach where our filters are missing (start, interface recreated, removed by hand)."""
        if not self._loaded:
            return
        current = [f for f in self._filters if tc.is_attached(self._ipr, f)]
        for name, ifindex in self._ifindex.items():
            if sum(1 for f in current if f.ifindex == ifindex) == len(tc.HOOKS):
                continue
            try:
                attached = tc.attach(self._ipr, ifindex, self._loaded.prog_fds, self.opts.tc_priority)
            except Exception as exc:  # netlink errors: retried at the next check
                log.error("cannot attach to %s: %s", name, exc)
                continue
            current = [f for f in current if f.ifindex != ifindex] + attached
            log.info("attached to %s (ingress and egress, priority %d)", name, attached[0].prio)
        self._filters = current

    # Options a SIGHUP cannot change: they shape what was set up at start.
    RESTART_ONLY = ("ifaces", "port", "listen", "data_dir", "pin_dir", "tc_priority", "enable_traffic",
                    "traffic_retention_seconds", "traffic_flush_interval_seconds", "traffic_persist_history",
                    "enable_connection", "web_log", "bpf_object",
                    "connection_interval_seconds", "connection_max_entries", "enable_flows",
                    "flush_interval_secs", "flow_idle_timeout_secs", "flow_map_size", "dns_ttl_cap_secs",
                    "sni_ttl_cap_secs", "flow_retention_days", "flow_detail_hours", "ipfix_collector",
                    "ipfix_active_timeout_secs", "ipfix_idle_timeout_secs", "ipfix_template_refresh_secs")

    def reload(self) -> None:
        """SIGHUP: read the UCI file again; in-memory state is kept."""
        path = self.opts.uci_path
        try:
            new = config.merge(self.opts.cli, uci.load(path), path)
            self.settings.load()
        except (uci.UciSyntaxError, config.ConfigError, OSError) as exc:
            log.error("reload failed, keeping the previous configuration: %s", exc)
            return
        for name in self.RESTART_ONLY:
            if getattr(new, name) != getattr(self.opts, name):
                log.warning("%s changed in %s: it takes effect at the next restart", name, path)
        set_log_level(new.log_level)
        self.presence.timeout_s = new.offline_timeout
        log.debug("log level %s", new.log_level)
        self.prefixes.set_additional(new.additional_subnets)
        self.hostnames.leases_file = Path(new.leases_file)
        setup_timezone(Path(new.config_dir), self._inherited_tz)
        if self.limiter:
            self.limiter.apply()
        if self.dns and (new.enable_dns, new.dns_max_records) != (self.opts.enable_dns, self.opts.dns_max_records):
            self._apply_dns(new.enable_dns, new.dns_max_records)
        self._ensure_token(new)
        if self._guard:
            self._guard.access = self._access(new)
        self.opts = new
        log.info("reloaded %s: %d limit rules, %d quotas, %d bindings", path, len(self.settings.rules),
                 len(self.settings.quotas), len(self.settings.bindings))

    def _ensure_token(self, o: Options) -> None:
        """Without an api_token nobody off the router gets in: make one and store it in
        UCI (uci-defaults does so at install; this covers a file without one)."""
        if o.api_token:
            return
        token = secrets.token_hex(16)
        try:
            self.settings.set_options({"api_token": token})
        except (OSError, uci.UciSyntaxError) as exc:
            log.warning("no api_token in %s and none could be stored (%s): only the router itself "
                        "can use the API", self.settings.path, exc)
            return
        o.api_token = token
        log.info("made a new API token for clients off the router: uci get bandix.config.api_token")

    @staticmethod
    def _access(o: Options) -> Access:
        return Access(o.listen, o.api_token, frozenset(o.allowed_hosts), o.metrics_public)

    @property
    def needs_bpf(self) -> bool:
        """Traffic counting and DNS capture both live in the TC programs."""
        return self.opts.enable_traffic or self.opts.enable_dns or self.opts.enable_flows

    def dns_config(self) -> dict:
        return {"enabled": bool(self.dns and self.dns.running),
                "max_records": self.dns.store.max_records if self.dns else self.opts.dns_max_records}

    def set_dns_config(self, enabled: bool | None, max_records: int | None) -> None:
        """POST /api/dns/config: stored in UCI, in force at once."""
        if self.dns is None:
            raise RuntimeError("DNS monitoring needs the eBPF programs, which this bandix did not load: "
                               "restart it with --enable-dns")
        options = {}
        if enabled is not None:
            options["dns_enabled"] = "1" if enabled else "0"
        if max_records is not None:
            options["dns_max_records"] = str(max_records)
        self.settings.set_options(options)
        self._apply_dns(enabled, max_records)

    def _apply_dns(self, enabled: bool | None, max_records: int | None) -> None:
        if max_records is not None and max_records != self.dns.store.max_records:
            self.dns.store.resize(max_records)
        if enabled and not self.dns.running:
            self.dns.start()
            self._ctx.dns = self.dns
        elif enabled is False and self.dns.running:
            self.dns.stop()
        log.info("DNS monitoring %s, keeping %d records", "on" if self.dns.running else "off",
                 self.dns.store.max_records)

    def _health(self) -> list[int]:
        return read_health(self._loaded.maps[layout.MAP_HEALTH]) if self._loaded else []

    # -- running ----------------------------------------------------------

    def _forget(self) -> None:
        for mac in self.store.take_forgotten():
            self._free_slots(mac)

    def _free_slots(self, mac: str) -> None:
        maps = self._loaded.maps
        raw = bytes.fromhex(mac.replace(":", ""))
        forget_device(maps[layout.MAP_DEV_SLOTS], maps[layout.MAP_DEV_OVERFLOW], raw)
        self._collector.forget(raw)

    def forget_device(self, mac: str, rules: bool) -> dict | None:
        """DELETE /api/traffic/devices: its counters (kernel slots too), samples and history;
        with `rules`, also what the UCI file holds for it. None when the device is unknown."""
        with self._counting:
            if not self.store.remove(mac):
                return None
            if self._collector:
                self._free_slots(mac)
            self.presence.forget(mac)
        removed = self.settings.remove_device(mac) if rules else {}
        if removed and self.limiter:
            self.limiter.apply()
        log.info("forgot %s on request%s", mac, " with its rules, quota and binding" if rules else "")
        return removed

    def run(self) -> None:
        next_tick = time.monotonic()
        next_check = next_tick + FILTER_CHECK_SECONDS
        while not self.stop_event.is_set():
            if self._reload.is_set():
                self._reload.clear()
                self.reload()
            try:
                if self._collector:
                    with self._counting:
                        self._collector.tick()
                        self._forget()
                if self._persistence:
                    self._persistence.maybe_flush()
            except Exception:
                log.exception("reading the counters failed")
            try:
                if self.limiter:
                    self.limiter.apply()
                    if self._quota_file:
                        self._quota_file.maybe_save(self.limiter.usage())
                self.hostnames.refresh()
            except Exception:
                log.exception("applying the rate limits failed")
            now = time.monotonic()
            if now >= next_check or self._recreated:
                next_check = now + FILTER_CHECK_SECONDS
                try:
                    self._follow_recreated()
                    self._ensure_attached()
                except Exception:
                    log.exception("checking the filters failed")
            next_tick += TICK_SECONDS
            if next_tick < now:  # we fell behind (suspend, overload): do not burst
                next_tick = now + TICK_SECONDS
            self.stop_event.wait(next_tick - now)

    def shutdown(self) -> None:
        if self._server:
            self._server.stop()
        if self.connections:
            self.connections.stop()
        if self.flows:
            self.flows.stop()  # a final collection, written before we go
            self.dns.want("flows", False)
        if self.dns:
            if self.dns.running:
                self.dns.stop()
            self.dns.close()
        if self._watcher:
            self._watcher.stop()
        if self._quota_file and self.limiter:
            self._quota_file.maybe_save(self.limiter.usage(), force=True)
        if self._persistence and self._collector:
            try:
                self._collector.tick()  # the newest reading goes into the final save
            except Exception:
                log.exception("final reading failed")
            self._persistence.close()
        if self._ipr and self._filters:
            if self.keep_attached:
                log.info("stopping for a restart: the programs stay attached and keep counting")
            else:
                tc.detach(self._ipr, self._filters)
                log.info("filters removed; counters stay pinned in %s", self.opts.pin_dir)
        if self._loaded:
            self._loaded.close()
        if self._ipr:
            self._ipr.close()
        self._locks.release()

    def install_signal_handlers(self) -> None:
        def stop(signum, _frame) -> None:
            log.info("%s received, stopping", signal.Signals(signum).name)
            self.stop_event.set()

        def restart(signum, frame) -> None:
            self.keep_attached = True
            stop(signum, frame)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGUSR2, restart)
        signal.signal(signal.SIGHUP, lambda *_: self._reload.set())
