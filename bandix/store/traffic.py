"""Per-device traffic state: cumulative counters, rates, last-online time, rings.

Fed once a second with the kernel's cumulative counters. Rates come from
counter deltas over monotonic time (a wall-clock step never makes a rate
spike); sample stamps are wall-clock milliseconds, as the API reports them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from .realtime import COUNTERS, Ring

# The kernel's counter fields, in bandix_dev_stats order.
FIELDS = (
    "lan_rx_bytes", "lan_rx_packets", "lan_tx_bytes", "lan_tx_packets",
    "wan_rx_bytes", "wan_rx_packets", "wan_tx_bytes", "wan_tx_packets",
)
BYTE_FIELDS = (0, 2, 4, 6)  # lan_rx, lan_tx, wan_rx, wan_tx bytes


@dataclass
class Device:
    mac: str
    ring: Ring
    counters: list[int] = field(default_factory=lambda: [0] * len(FIELDS))
    rates: list[int] = field(default_factory=lambda: [0] * COUNTERS)  # bytes/s, lan_rx lan_tx wan_rx wan_tx
    last_online_ms: int = 0


@dataclass(frozen=True)
class DeviceView:
    """A consistent copy of one device for readers outside the lock."""

    mac: str
    counters: tuple[int, ...]
    rates: tuple[int, ...]
    last_online_ms: int


class TrafficStore:
    """All devices plus the all-devices aggregate; safe to read from API threads."""

    def __init__(self, retention_seconds: int) -> None:
        self.retention_seconds = retention_seconds
        self._lock = threading.Lock()
        self._devices: dict[str, Device] = {}
        self._aggregate = Ring(retention_seconds)
        self._last_mono: float | None = None

    def update(self, ts_ms: int, mono: float, counters: dict[str, list[int]]) -> None:
        """Take one reading of every device's cumulative counters."""
        with self._lock:
            dt = None if self._last_mono is None else mono - self._last_mono
            self._last_mono = mono
            agg_rates = [0] * COUNTERS
            agg_totals = [0] * COUNTERS
            for mac, values in counters.items():
                dev = self._devices.get(mac)
                if dev is None:
                    dev = self._devices[mac] = Device(mac, Ring(self.retention_seconds))
                    # A device first seen after the first reading started from
                    # zero within this interval; at the first reading its
                    # history (pinned counters) is unknown.
                    previous = [0] * len(FIELDS) if dt is not None else list(values)
                else:
                    previous = dev.counters
                if any(v < p for v, p in zip(values, previous, strict=False)):
                    previous = [0] * len(FIELDS)  # the kernel's counters restarted
                if values != previous:
                    dev.last_online_ms = ts_ms
                dev.rates = [
                    round((values[f] - previous[f]) / dt) if dt and dt > 0 else 0 for f in BYTE_FIELDS
                ]
                dev.counters = list(values)
            for mac, dev in self._devices.items():
                if mac not in counters:
                    dev.rates = [0] * COUNTERS
                totals = [dev.counters[f] for f in BYTE_FIELDS]
                dev.ring.append(ts_ms, dev.rates, totals)
                for i in range(COUNTERS):
                    agg_rates[i] += dev.rates[i]
                    agg_totals[i] += totals[i]
            self._aggregate.append(ts_ms, agg_rates, agg_totals)

    def devices(self) -> list[DeviceView]:
        with self._lock:
            return [
                DeviceView(d.mac, tuple(d.counters), tuple(d.rates), d.last_online_ms)
                for d in self._devices.values()
            ]

    def known(self, mac: str) -> bool:
        with self._lock:
            return mac in self._devices

    def rows(self, mac: str | None) -> list[list[int]] | None:
        """Realtime rows of one device (None if unknown) or of all (mac None)."""
        with self._lock:
            if mac is None:
                return self._aggregate.rows()
            dev = self._devices.get(mac)
            return dev.ring.rows() if dev else None
