"""GET /api/traffic/devices and GET /api/traffic/metrics."""

from __future__ import annotations

import socket
import time

import falcon

from ..macaddr import normalize_mac
from ..store.traffic import DeviceView, TrafficStore
from .errors import ok


def single_param(req: falcon.Request, name: str) -> str | None:
    """A query parameter given at most once."""
    value = req.params.get(name)
    if isinstance(value, list):
        raise falcon.HTTPBadRequest(description=f"{name}: given more than once")
    return value


def int_param(req: falcon.Request, name: str, default: int, lo: int, hi: int) -> int:
    """A whole-number query parameter within lo..hi; `default` when omitted."""
    text = single_param(req, name)
    if text is None:
        return default
    if not text.isdigit() or not lo <= int(text) <= hi:
        raise falcon.HTTPBadRequest(description=f"{name}: must be a whole number from {lo} to {hi}")
    return int(text)


def mac_param(req: falcon.Request) -> str | None:
    """The `mac` parameter: None for all devices (omitted or 'all')."""
    value = single_param(req, "mac")
    if value is None or value.lower() == "all":
        return None
    try:
        return normalize_mac(value)
    except ValueError as exc:
        raise falcon.HTTPBadRequest(description=f"mac: {exc}") from None


def ip_sort_key(ip: str) -> tuple[int, bytes]:
    """IPv4 before IPv6 before none, numerically within each."""
    if not ip:
        return (2, b"")
    return (1, socket.inet_pton(socket.AF_INET6, ip)) if ":" in ip else (0, socket.inet_pton(socket.AF_INET, ip))


# The fields of a device, in the order of its row (the dashboard's compact form).
DEVICE_FIELDS = ("ip", "mac", "hostname", "total_rx_bytes", "total_tx_bytes", "total_rx_rate", "total_tx_rate",
                 "lan_rx_bytes", "lan_tx_bytes", "lan_rx_rate", "lan_tx_rate", "wan_rx_bytes", "wan_tx_bytes",
                 "wan_rx_rate", "wan_tx_rate", "wan_rx_rate_limit", "wan_tx_rate_limit", "last_online_ts")


class DevicesResource:
    def __init__(self, ctx) -> None:
        self._ctx = ctx

    def _row(self, dev: DeviceView, ip: str, confirmed: float) -> tuple:
        lrx_b, _, ltx_b, _, wrx_b, _, wtx_b, _ = dev.counters
        lrx, ltx, wrx, wtx = dev.rates
        online = max(dev.last_online_ms, int(confirmed * 1000))
        return (ip, dev.mac, self._ctx.hostnames.name(dev.mac), lrx_b + wrx_b, ltx_b + wtx_b, lrx + wrx, ltx + wtx,
                lrx_b, ltx_b, lrx, ltx, wrx_b, wtx_b, wrx, wtx, *self._ctx.limit_in_force(dev.mac), online)

    def device_rows(self) -> list[tuple]:
        """Every device as a tuple in DEVICE_FIELDS order, sorted by address."""
        known = self._ctx.neighbours.summary()
        out = [self._row(dev, *known.get(dev.mac, ("", 0.0))) for dev in self._ctx.store.devices()]
        out.sort(key=lambda r: (ip_sort_key(r[0]), r[1]))
        return out

    def device_row(self, mac: str) -> tuple | None:
        """One device's tuple in DEVICE_FIELDS order; None when never seen."""
        dev = self._ctx.store.device(mac)
        return self._row(dev, *self._ctx.neighbours.shown(mac)) if dev else None

    def device_list(self) -> list[dict]:
        return [dict(zip(DEVICE_FIELDS, row, strict=True)) for row in self.device_rows()]

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = ok({"devices": self.device_list()})


class MetricsResource:
    def __init__(self, store: TrafficStore) -> None:
        self._store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        mac = mac_param(req)
        rows = self._store.rows(mac)
        if rows is None:
            raise falcon.HTTPNotFound(description=f"no traffic seen from device {mac}")
        resp.media = ok({"retention_seconds": self._store.retention_seconds, "mac": mac or "all", "metrics": rows})


class LevelMetricsResource:
    """GET /api/traffic/metrics/{day,week,month,year}: closed buckets with statistics."""

    def __init__(self, store: TrafficStore, level: str) -> None:
        self._store = store
        self._level = store.level_by_name[level]

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        mac = mac_param(req)
        rows = self._store.level_rows(self._level.name, mac, int(time.time() * 1000))
        if rows is None:
            raise falcon.HTTPNotFound(description=f"no traffic seen from device {mac}")
        resp.media = ok({"retention_seconds": self._level.retention_seconds, "mac": mac or "all", "metrics": rows})
