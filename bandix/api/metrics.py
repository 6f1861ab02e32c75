"""GET /metrics: Prometheus text exposition (version 0.0.4).

Per device: byte and packet counters, rates and limits, labelled by mac, zone
and direction (rx: to the device, tx: from it); connection counts; DNS
counters and a response-time summary; collector health.

Series are keyed by what does not change: a device's MAC. Its address and
name, which do change (DHCP, a renamed binding), are the labels of one
`bandix_device_info` series per device, joined in queries with
`* on(instance, mac) group_left(ip, hostname)`: a new address ends one info series and
starts another, never a whole set of counters. Every label value that can grow
is bounded: MACs by the kernel's device tables, hostnames by HOSTNAME_MAX.
"""

from __future__ import annotations

import falcon

from ..settings import HOSTNAME_MAX  # a binding's longest name; leases names are cut to it too

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# (zone, direction, index of bytes in the store's counters)
_SERIES = (("lan", "rx", 0), ("lan", "tx", 2), ("wan", "rx", 4), ("wan", "tx", 6))
HEALTH_NAMES = {0: "device_table_full", 1: "truncated_ip_header", 2: "limit_drops", 3: "dns_lost",
                4: "flows_added", 5: "flows_not_added", 6: "hello_lost"}
CONNECTION_STATES = ("tcp_connections", "udp_connections", "established_tcp", "time_wait_tcp", "close_wait_tcp")


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: object) -> str:
    return "{" + ",".join(f'{k}="{_label(str(v))}"' for k, v in labels.items()) + "}"


class Exposition:
    """Families in order, each with its HELP and TYPE once."""

    def __init__(self) -> None:
        self._families: dict[str, tuple[str, str, list[str]]] = {}

    def family(self, name: str, kind: str, help_text: str) -> None:
        self._families.setdefault(name, (kind, help_text, []))

    def add(self, family: str, value: float, labels: str = "", suffix: str = "") -> None:
        """One sample of a declared family (suffix: _sum, _count of a summary)."""
        self._families[family][2].append(f"{family}{suffix}{labels} {value}")

    def single(self, name: str, kind: str, help_text: str, value: float) -> None:
        self.family(name, kind, help_text)
        self.add(name, value)

    def render(self) -> str:
        out = []
        for name, (kind, help_text, lines) in self._families.items():
            out += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *lines]
        return "\n".join(out) + "\n"


class PrometheusResource:
    def __init__(self, ctx) -> None:
        self._ctx = ctx

    def render(self) -> str:
        ctx, e = self._ctx, Exposition()
        e.family("bandix_device_info", "gauge", "1 per device: its IPv4 address and hostname now.")
        e.family("bandix_device_bytes_total", "counter", "L3 bytes counted per device on the LAN interface.")
        e.family("bandix_device_packets_total", "counter", "Packets counted per device on the LAN interface.")
        e.family("bandix_device_rate_bytes", "gauge", "Bytes per second over the last second.")
        e.family("bandix_device_rate_limit_bytes", "gauge", "WAN rate limit in force, bytes per second; 0: none.")
        e.family("bandix_device_last_seen_seconds", "gauge", "When the device last sent or received, Unix time.")
        e.family("bandix_device_online", "gauge", "1 while the device is online (traffic or a neighbour "
                 "confirmation within offline_timeout), else 0.")
        e.family("bandix_device_quota_bytes", "gauge", "WAN bytes the device's quota allows per period; 0: none.")
        e.family("bandix_device_quota_used_bytes", "gauge", "WAN bytes counted against the quota this period.")
        e.family("bandix_device_quota_state", "gauge", "1 for the device's quota state (none, ok, blocked, throttled).")
        for dev in sorted(ctx.store.devices(), key=lambda d: d.mac):
            mac = dev.mac
            e.add("bandix_device_info", 1, _labels(mac=mac, ip=ctx.neighbours.ipv4_of(mac) or "",
                                                   hostname=ctx.hostnames.name(mac)[:HOSTNAME_MAX]))
            for k, (zone, direction, idx) in enumerate(_SERIES):
                labels = _labels(mac=mac, zone=zone, direction=direction)
                e.add("bandix_device_bytes_total", dev.counters[idx], labels)
                e.add("bandix_device_packets_total", dev.counters[idx + 1], labels)
                e.add("bandix_device_rate_bytes", dev.rates[k], labels)
            for direction, limit in zip(("rx", "tx"), ctx.limit_in_force(mac), strict=True):
                e.add("bandix_device_rate_limit_bytes", limit, _labels(mac=mac, direction=direction))
            e.add("bandix_device_last_seen_seconds", dev.last_online_ms / 1000, _labels(mac=mac))
            e.add("bandix_device_online", int(ctx.online(mac)[0]), _labels(mac=mac))
            quota = ctx.quota_status(mac)
            e.add("bandix_device_quota_bytes", quota.bytes, _labels(mac=mac))
            e.add("bandix_device_quota_used_bytes", quota.used, _labels(mac=mac))
            e.add("bandix_device_quota_state", 1, _labels(mac=mac, state=quota.state))
        self._connections(e)
        self._dns(e)
        self._health(e)
        return e.render()

    def _connections(self, e: Exposition) -> None:
        collector = self._ctx.connections
        if collector is None:
            return
        snap = collector.latest
        e.family("bandix_connections", "gauge", "Conntrack entries by protocol and TCP state.")
        e.family("bandix_device_connections", "gauge", "Conntrack entries opened by a device.")
        total = snap.total.as_json(snap.last_updated)
        for state in CONNECTION_STATES:
            e.add("bandix_connections", total[state], _labels(state=state))
        for mac, (_ip, counts) in sorted(snap.devices.items()):
            values = counts.as_json(snap.last_updated)
            for state in CONNECTION_STATES:
                e.add("bandix_device_connections", values[state], _labels(mac=mac, state=state))

    def _dns(self, e: Exposition) -> None:
        dns = self._ctx.dns
        if dns is None:
            return
        store = dns.store
        e.single("bandix_dns_queries_total", "counter", "DNS queries seen.", store.seen_queries)
        e.family("bandix_dns_responses_total", "counter", "DNS responses seen, by response code.")
        for code, n in sorted(store.seen_responses.items()):
            e.add("bandix_dns_responses_total", n, _labels(code=code))
        stats = store.stats()
        name = "bandix_dns_response_time_seconds"
        e.family(name, "summary", "Query to response; quantiles over the kept records, sum and count since start.")
        for p, q in ((50, "0.5"), (90, "0.9"), (95, "0.95"), (99, "0.99")):
            e.add(name, stats["response_time_percentiles"][f"p{p}"] / 1000, _labels(quantile=q))
        e.add(name, store.answer_ms_sum / 1000, suffix="_sum")
        e.add(name, store.answered, suffix="_count")
        e.single("bandix_dns_malformed_packets_total", "counter", "DNS packets that did not decode.", store.malformed)

    def _health(self, e: Exposition) -> None:
        e.family("bandix_collector_events_total", "counter", "Events counted by the kernel programs.")
        for slot, value in enumerate(self._ctx.health()):
            if slot in HEALTH_NAMES:
                e.add("bandix_collector_events_total", value, _labels(event=HEALTH_NAMES[slot]))
        flows = self._ctx.flows
        if flows is None:
            return
        h = flows.table.health
        e.single("bandix_flow_map_entries", "gauge", "Flows in the kernel map.", h.entries)
        e.single("bandix_flow_map_capacity", "gauge", "Entries the kernel flow map holds.", h.capacity)
        e.single("bandix_flows_evicted_total", "counter", "Flows the kernel's LRU evicted for new ones.", h.evicted)
        e.single("bandix_flows_aged_total", "counter", "Idle flows deleted by the daemon.", h.aged)
        e.family("bandix_hellos_total", "counter", "TLS/QUIC hellos read, by result (quic_unavailable: a QUIC "
                 "Initial not read because the cryptography package is not installed).")
        e.add("bandix_hellos_total", flows.hellos_parsed, _labels(result="parsed"))
        e.add("bandix_hellos_total", flows.hellos_unparsed, _labels(result="unparsed"))
        e.add("bandix_hellos_total", flows.hellos_quic_unavailable, _labels(result="quic_unavailable"))
        exporter = flows.exporter
        if exporter is not None:
            e.family("bandix_ipfix_records_total", "counter", "IPFIX data records, by whether sending worked.")
            e.add("bandix_ipfix_records_total", exporter.records_sent, _labels(result="sent"))
            e.add("bandix_ipfix_records_total", exporter.records_not_sent, _labels(result="not_sent"))
            e.single("bandix_ipfix_flows_pending", "gauge", "Flow records waiting for their timeout.",
                     len(exporter.pending))

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = CONTENT_TYPE
        resp.text = self.render()
