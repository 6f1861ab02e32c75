"""GET /metrics: Prometheus text exposition (version 0.0.4)."""

from __future__ import annotations

from collections.abc import Callable

import falcon

from ..collect.neighbours import NeighbourTable
from ..store.traffic import TrafficStore

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# (zone, direction, index of bytes in the store's counters)
_SERIES = (("lan", "rx", 0), ("lan", "tx", 2), ("wan", "rx", 4), ("wan", "tx", 6))
HEALTH_NAMES = {0: "device_table_full", 1: "truncated_ip_header"}


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class PrometheusResource:
    def __init__(
        self, store: TrafficStore, neighbours: NeighbourTable, health: Callable[[], list[int]]
    ) -> None:
        self._store = store
        self._neighbours = neighbours
        self._health = health

    def render(self) -> str:
        lines = [
            "# HELP bandix_device_bytes_total L3 bytes counted per device on the LAN interface.",
            "# TYPE bandix_device_bytes_total counter",
        ]
        packets = [
            "# HELP bandix_device_packets_total Packets counted per device on the LAN interface.",
            "# TYPE bandix_device_packets_total counter",
        ]
        rates = [
            "# HELP bandix_device_rate_bytes Bytes per second over the last second.",
            "# TYPE bandix_device_rate_bytes gauge",
        ]
        for dev in sorted(self._store.devices(), key=lambda d: d.mac):
            ip = _label(self._neighbours.ipv4_of(dev.mac) or "")
            for k, (zone, direction, idx) in enumerate(_SERIES):
                labels = f'mac="{dev.mac}",ip="{ip}",zone="{zone}",direction="{direction}"'
                lines.append(f"bandix_device_bytes_total{{{labels}}} {dev.counters[idx]}")
                packets.append(f"bandix_device_packets_total{{{labels}}} {dev.counters[idx + 1]}")
                rates.append(f"bandix_device_rate_bytes{{{labels}}} {dev.rates[k]}")
        health = [
            "# HELP bandix_collector_events_total Events counted by the kernel programs.",
            "# TYPE bandix_collector_events_total counter",
        ]
        for slot, value in enumerate(self._health()):
            if slot in HEALTH_NAMES:
                health.append(f'bandix_collector_events_total{{event="{HEALTH_NAMES[slot]}"}} {value}')
        return "\n".join(lines + packets + rates + health) + "\n"

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = CONTENT_TYPE
        resp.text = self.render()
