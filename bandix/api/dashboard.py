"""One request per page refresh for the dashboard: exactly what a page shows.

The device page polls every second; it asks for the realtime samples it has
not seen (`since`), and only now and then for a history level or the
device's domains and connections, so a second's answer stays small.
"""

from __future__ import annotations

import json
import sqlite3
import time

import falcon

from ..store import reports
from .dns import DnsQueriesResource
from .errors import ok
from .traffic import DEVICE_FIELDS, DevicesResource, int_param, mac_param, single_param

LEVELS = ("day", "week", "month", "year")


class DashboardDevicesResource:
    """The devices page: each device as a row of values in DEVICE_FIELDS order.

    Built once per reading of the counters however many pages poll, and
    serialized compactly: about half the bytes and a fraction of the CPU of
    /api/traffic/devices's objects.
    """

    def __init__(self, ctx, devices: DevicesResource) -> None:
        self._ctx = ctx
        self._devices = devices
        self._cached: tuple[int, bytes] = (-1, b"")

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        readings, body = self._cached
        if readings != self._ctx.store.readings or not body:
            readings = self._ctx.store.readings
            body = json.dumps({"status": "success", "data": {"fields": DEVICE_FIELDS,
                                                             "rows": self._devices.device_rows()}},
                              separators=(",", ":"), ensure_ascii=False).encode()
            self._cached = (readings, body)
        resp.content_type = falcon.MEDIA_JSON
        resp.data = body


class DashboardDeviceResource:
    def __init__(self, ctx, devices) -> None:
        self._ctx = ctx
        self._devices = devices  # DevicesResource: the same device object as /api/traffic/devices

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        mac = mac_param(req)
        if mac is None:
            raise falcon.HTTPBadRequest(description="mac: required (the device to show)")
        since = int_param(req, "since", 0, 0, 10**16)  # ms since the epoch
        level = single_param(req, "level")
        if level is not None and level not in LEVELS:
            raise falcon.HTTPBadRequest(description=f"level: one of {', '.join(LEVELS)}")
        extras = single_param(req, "extras") in ("1", "true")
        store = self._ctx.store
        row = next((r for r in self._devices.device_rows() if r[1] == mac), None)
        device = dict(zip(DEVICE_FIELDS, row, strict=True)) if row else None
        rows = store.rows(mac)
        if device is None or rows is None:
            raise falcon.HTTPNotFound(description=f"no traffic seen from device {mac}")
        data: dict = {"device": device, "retention_seconds": store.retention_seconds,
                      "metrics": [r for r in rows if r[0] > since]}
        if level is not None:
            data["level"] = {"name": level, "metrics": store.level_rows(level, mac, int(time.time() * 1000)) or []}
        if extras:
            data["domains"] = self._domains(mac)
            data["connections"] = self._connections(mac)
        resp.media = ok(data)

    def _domains(self, mac: str) -> list[dict] | None:
        if self._ctx.flows_db is None:
            return None
        db = sqlite3.connect(f"file:{self._ctx.flows_db}?mode=ro", uri=True, timeout=5)
        try:
            return reports.top_domain(db, reports.Window(int(time.time()), 60, 10, mac)).rows
        finally:
            db.close()

    def _connections(self, mac: str) -> dict | None:
        if self._ctx.connections is None:
            return None
        snap = self._ctx.connections.latest
        found = snap.devices.get(mac)
        return found[1].as_json(snap.last_updated) if found else None


class DashboardDnsResource:
    """The DNS page: a page of queries with its filters, and the statistics."""

    def __init__(self, ctx) -> None:
        self._ctx = ctx
        self._queries = DnsQueriesResource(ctx)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._queries.on_get(req, resp)  # validates the filters; 503 when DNS monitoring is off
        queries = resp.media["data"]
        resp.media = ok({**queries, "stats": self._ctx.dns.store.stats()})
