"""One request per page refresh for the dashboard: exactly what a page shows.

The device page polls every second; it asks for the realtime samples it has
not seen (`since`), and only now and then for a history level or the
device's domains and connections, so a second's answer stays small.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time

import falcon

from ..store.traffic import LIVE_FIELDS
from .dns import DnsQueriesResource
from .errors import ok
from .traffic import DevicesResource, int_param, mac_param, single_param

IDENTITY_FIELDS = ("mac", "ip", "hostname", "wan_rx_rate_limit", "wan_tx_rate_limit", "online", "online_since")
_IDENTITY_FIELDS_JSON = json.dumps(IDENTITY_FIELDS, separators=(",", ":")).encode()
_LIVE_FIELDS_JSON = json.dumps(LIVE_FIELDS, separators=(",", ":")).encode()
WANTED_S = 3.0  # a page polls every second: after this long without a poll, none is open


class DashboardDevicesResource:
    """The devices page, split by how often its cells change.

    Who the devices are (MAC, address, name, limit in force, online) changes seldom:
    it is sent only when it differs from the `known` version the page holds.
    What moves every second (rates, totals, last seen) is one flat list of
    numbers in the same device order (the store's: the page sorts), taken from
    the store in one pass, `value_fields` per device.
    Both parts are encoded once per change however many pages poll, and while
    a page is polling, right after each reading in the reading thread: the
    request then only sends bytes that are ready.
    """

    def __init__(self, ctx) -> None:
        self._ctx = ctx
        self._lock = threading.Lock()
        self._wanted_until = 0.0  # monotonic time until which a page is taken to be polling
        self._boot = secrets.token_hex(4)  # a version from before a restart never matches
        self._generation = 0
        self._state: tuple | None = None  # what the identity part was built from
        self._macs: list[str] = []  # the devices, in the order of both parts
        self._identity = b"[]"
        self._confirmed: tuple[int, dict[str, int]] = (-1, {})  # the neighbours' version, their times
        self._values_reading = -1
        self._values = b"[]"
        ctx.store.add_listener(self._after_reading)

    def _current_state(self) -> tuple:
        """Everything the identity part depends on besides the devices themselves; each
        piece is a counter or a dict that is replaced, never changed in place, so ==
        tells a change cheaply."""
        ctx = self._ctx
        online = ctx.presence.states() if ctx.presence else {}
        return (ctx.neighbours.addresses_version, *ctx.hostnames.sources(), ctx.limits_in_force(), online)

    def _build_identity(self) -> None:
        ctx = self._ctx
        known = ctx.neighbours.summary()
        rows = [(mac, known.get(mac, ("", 0.0))[0], ctx.hostnames.name(mac), *ctx.limit_in_force(mac),
                 *ctx.online(mac)) for mac in self._macs]
        self._identity = json.dumps(rows, separators=(",", ":"), ensure_ascii=False).encode()
        self._generation += 1

    def _confirmed_ms(self) -> dict[str, int]:
        """The neighbour table's confirmation times, copied only when they changed."""
        neighbours = self._ctx.neighbours
        version = neighbours.confirmed_version
        if version != self._confirmed[0]:
            self._confirmed = (version, neighbours.confirmed_ms())
        return self._confirmed[1]

    def _refresh(self) -> None:
        """Bring both parts up to date (under self._lock)."""
        reading = self._ctx.store.readings
        state = self._current_state()
        if reading == self._values_reading and state == self._state:
            return
        macs, numbers = self._ctx.store.live_numbers(self._confirmed_ms())
        self._values = json.dumps(numbers, separators=(",", ":")).encode()
        self._values_reading = reading
        if macs != self._macs or state != self._state:
            self._macs, self._state = macs, state
            self._build_identity()

    def _after_reading(self) -> None:
        if time.monotonic() < self._wanted_until:
            with self._lock:
                self._refresh()

    def answer(self, known: str | None) -> bytes:
        """The JSON body for a page holding version `known` (None: none yet)."""
        self._wanted_until = time.monotonic() + WANTED_S
        with self._lock:
            self._refresh()  # nothing left to do when the reading thread was first
            version = f"{self._boot}-{self._generation}".encode()
            identity, values = self._identity, self._values
        parts = [b'{"status":"success","data":{"version":"', version, b'",']
        if known is None or known.encode() != version:
            parts += [b'"device_fields":', _IDENTITY_FIELDS_JSON, b',"devices":', identity, b","]
        parts += [b'"value_fields":', _LIVE_FIELDS_JSON, b',"values":', values, b'}}']
        return b"".join(parts)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_JSON
        resp.data = self.answer(single_param(req, "known"))


class DashboardDeviceResource:
    def __init__(self, ctx, devices: DevicesResource) -> None:
        self._ctx = ctx
        self._devices = devices  # the same device object as /api/traffic/devices

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        mac = mac_param(req)
        if mac is None:
            raise falcon.HTTPBadRequest(description="mac: required (the device to show)")
        since = int_param(req, "since", 0, 0, 10**16)  # ms since the epoch
        store = self._ctx.store
        level = single_param(req, "level")
        if level is not None and level not in store.level_by_name:
            raise falcon.HTTPBadRequest(description=f"level: one of {', '.join(store.level_by_name)}")
        extras = single_param(req, "extras") in ("1", "true")
        device = self._devices.device(mac)
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
        from ..store import reports  # only when a report is asked for

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
