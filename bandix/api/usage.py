"""GET /api/traffic/usage/{ranking,increments,export}: WAN, LAN or all bytes over any range, from the
history levels (bandix/store/usage.py says how a range maps to their buckets)."""

from __future__ import annotations

import csv
import io
import time

import falcon

from ..store import usage
from .errors import ok
from .traffic import int_param, mac_param, single_param

DAY_MS = 86_400_000
MAX_MS = 10**16  # as the dashboard's `since`: far beyond any clock
EXPORT_FIELDS = ("date", "ts_ms", "mac", "ip", "hostname", "rx_bytes", "tx_bytes", "total_bytes")


def choice_param(req: falcon.Request, name: str, choices: tuple[str, ...], default: str) -> str:
    value = single_param(req, name)
    if value is None:
        return default
    if value not in choices:
        raise falcon.HTTPBadRequest(description=f"{name}: one of {', '.join(choices)}")
    return value


def range_params(req: falcon.Request) -> tuple[int, int]:
    """start_ms, end_ms: the last 24 hours when omitted; the end must come after the start."""
    end = int_param(req, "end_ms", int(time.time() * 1000), 0, MAX_MS)
    start = int_param(req, "start_ms", max(0, end - DAY_MS), 0, MAX_MS)
    if end <= start:
        raise falcon.HTTPBadRequest(description="end_ms: must be after start_ms")
    return start, end


class RankingResource:
    def __init__(self, ctx) -> None:
        self._ctx = ctx

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        start, end = range_params(req)
        network_type = choice_param(req, "network_type", usage.NETWORK_TYPES, "wan")
        data = usage.ranking(self._ctx.store, start, end, network_type)
        known = self._ctx.neighbours.summary()
        for d in data["devices"]:
            d["ip"] = known.get(d["mac"], ("", 0.0))[0]
            d["hostname"] = self._ctx.hostnames.name(d["mac"])
        resp.media = ok(data)


class IncrementsResource:
    def __init__(self, ctx) -> None:
        self._ctx = ctx

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        mac = mac_param(req)
        start, end = range_params(req)
        aggregation = choice_param(req, "aggregation", usage.AGGREGATIONS, "hourly")
        network_type = choice_param(req, "network_type", usage.NETWORK_TYPES, "wan")
        data = usage.device_increments(self._ctx.store, mac, start, end, aggregation, network_type=network_type)
        if data is None:
            raise falcon.HTTPNotFound(description=f"mac: no traffic seen from device {mac}")
        resp.media = ok(data)


def _cell(value: object) -> object:
    """A text cell a spreadsheet will not run as a formula (a name like =SUM(...))."""
    return "'" + value if isinstance(value, str) and value[:1] in ("=", "+", "-", "@") else value


class ExportResource:
    """A file per download: every device's bytes per local day (or hour), as CSV or JSON."""

    def __init__(self, ctx) -> None:
        self._ctx = ctx

    def rows(self, start: int, end: int, aggregation: str, network_type: str = "wan") -> tuple[dict, list[dict]]:
        store, ctx = self._ctx.store, self._ctx
        known = ctx.neighbours.summary()
        span = usage.choose_span(store.levels, start, end, usage.newest_ms(store))  # one range for every device
        out = []
        for dev in sorted(store.devices(), key=lambda d: d.mac):
            data = usage.device_increments(store, dev.mac, start, end, aggregation, span, network_type)
            if data is None:  # forgotten meanwhile
                continue
            for inc in data["increments"]:
                if inc["total_bytes"]:
                    out.append({"date": inc["date"], "ts_ms": inc["ts_ms"], "mac": dev.mac,
                                "ip": known.get(dev.mac, ("", 0.0))[0], "hostname": ctx.hostnames.name(dev.mac),
                                "rx_bytes": inc["rx_bytes"], "tx_bytes": inc["tx_bytes"],
                                "total_bytes": inc["total_bytes"]})
        out.sort(key=lambda r: (r["ts_ms"], -r["total_bytes"], r["mac"]))
        return span.to_json(), out

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        fmt = choice_param(req, "format", ("csv", "json"), "csv")
        start, end = range_params(req)
        aggregation = choice_param(req, "aggregation", usage.AGGREGATIONS, "daily")
        network_type = choice_param(req, "network_type", usage.NETWORK_TYPES, "wan")
        span, rows = self.rows(start, end, aggregation, network_type)
        day = "%Y%m%d"
        first = time.strftime(day, time.localtime(span["start_ms"] / 1000))
        last = time.strftime(day, time.localtime(max(span["start_ms"], span["end_ms"] - 1) / 1000))
        kind = "" if network_type == "wan" else f"{network_type}-"  # wan: the name it always had
        name = f"bandix-usage-{kind}{aggregation}-{first}-{last}.{fmt}"
        resp.downloadable_as = name
        if fmt == "json":
            resp.media = ok({**span, "network_type": network_type, "aggregation": aggregation, "rows": rows})
            return
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\r\n")  # RFC 4180
        writer.writerow(EXPORT_FIELDS)
        for r in rows:
            writer.writerow([_cell(r[f]) for f in EXPORT_FIELDS])
        resp.content_type = "text/csv; charset=utf-8"
        resp.text = buf.getvalue()
