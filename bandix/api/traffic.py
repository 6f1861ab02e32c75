"""GET /api/traffic/devices and GET /api/traffic/metrics."""

from __future__ import annotations

import itertools
import json
import socket
import time

import falcon

from ..macaddr import normalize_mac
from ..schedule import ValidationError, no_unknown, parse_mac
from ..store.traffic import DeviceView, TrafficStore
from .body import json_body
from .errors import ok
from .limits import validated


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


class DevicesResource:
    def __init__(self, ctx) -> None:
        self._ctx = ctx

    def _device(self, dev: DeviceView, ip: str, confirmed: float) -> dict:
        lrx_b, _, ltx_b, _, wrx_b, _, wtx_b, _ = dev.counters
        lrx, ltx, wrx, wtx = dev.rates
        limit_rx, limit_tx = self._ctx.limit_in_force(dev.mac)
        online, online_since = self._ctx.online(dev.mac)
        return {
            "ip": ip,
            "mac": dev.mac,
            "hostname": self._ctx.hostnames.name(dev.mac),
            "total_rx_bytes": lrx_b + wrx_b,
            "total_tx_bytes": ltx_b + wtx_b,
            "total_rx_rate": lrx + wrx,
            "total_tx_rate": ltx + wtx,
            "lan_rx_bytes": lrx_b,
            "lan_tx_bytes": ltx_b,
            "lan_rx_rate": lrx,
            "lan_tx_rate": ltx,
            "wan_rx_bytes": wrx_b,
            "wan_tx_bytes": wtx_b,
            "wan_rx_rate": wrx,
            "wan_tx_rate": wtx,
            "wan_rx_rate_limit": limit_rx,
            "wan_tx_rate_limit": limit_tx,
            "last_online_ts": max(dev.last_online_ms, int(confirmed * 1000)),
            "online": online,
            "online_since": online_since,
            **self._ctx.quota_status(dev.mac).to_json(),
        }

    def device_list(self) -> list[dict]:
        """Every device, sorted by address."""
        known = self._ctx.neighbours.summary()
        out = [self._device(dev, *known.get(dev.mac, ("", 0.0))) for dev in self._ctx.store.devices()]
        out.sort(key=lambda d: (ip_sort_key(d["ip"]), d["mac"]))
        return out

    def device(self, mac: str) -> dict | None:
        """One device as in device_list(); None when never seen."""
        dev = self._ctx.store.device(mac)
        return self._device(dev, *self._ctx.neighbours.shown(mac)) if dev else None

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = ok({"devices": self.device_list()})

    def on_delete(self, req: falcon.Request, resp: falcon.Response) -> None:
        mac, rules = validated(parse_forget, json_body(req))
        removed = self._ctx.forget_device(mac, rules)
        if removed is None:
            raise falcon.HTTPNotFound(description=f"mac: no device {mac}")
        resp.media = ok({"deleted": {"mac": mac, "rules": rules, **({"removed": removed} if rules else {})}})


def parse_forget(body: object) -> tuple[str, bool]:
    """DELETE /api/traffic/devices: {mac, rules?}."""
    if not isinstance(body, dict):
        raise ValidationError("body", "must be a JSON object")
    no_unknown(body, {"mac", "rules"})
    mac = parse_mac(body.get("mac"))
    rules = body.get("rules", False)
    if not isinstance(rules, bool):
        raise ValidationError("rules", "must be true or false")
    return mac, rules


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
        rows = self._store.level_json(self._level.name, mac, int(time.time() * 1000))
        if rows is None:
            raise falcon.HTTPNotFound(description=f"no traffic seen from device {mac}")
        # ok({..., "metrics": rows}) with the rows streamed in as the store encodes them: a year
        # of buckets is never in memory as one answer.
        head = json.dumps(ok({"retention_seconds": self._level.retention_seconds, "mac": mac or "all",
                              "metrics": None}), separators=(",", ":"))
        resp.content_type = falcon.MEDIA_JSON
        resp.stream = itertools.chain((head[: -len("null}}")].encode(),), rows, (b"}}",))
