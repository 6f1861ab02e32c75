"""GET /api/connection/devices and GET /api/connection/flows."""

from __future__ import annotations

import math
import time

import falcon

from ..collect import conntrack
from ..collect.connections import ConnectionCollector
from .errors import ok
from .traffic import int_param, mac_param, single_param

MAX_PAGE_SIZE = 1000
STATES = {name.lower(): number for number, name in enumerate(conntrack.TCP_STATES)}
PROTOCOL_NUMBERS = {name: number for number, name in conntrack.PROTOCOLS.items()}


def _collector(collector: ConnectionCollector | None) -> ConnectionCollector:
    if collector is None:
        raise falcon.HTTPServiceUnavailable(
            description="connection statistics are off: start bandix with --enable-connection "
                        "(UCI: option connection_enabled '1')")
    return collector


class ConnectionDevicesResource:
    def __init__(self, ctx) -> None:
        self._ctx = ctx  # its collector appears once the daemon has started it

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        snap = _collector(self._ctx.connections).latest
        devices = [{"mac_address": mac, "ip_address": ip,
                    **{k: v for k, v in counts.as_json(snap.last_updated).items() if k != "total_connections"},
                    "total_connections": counts.tcp + counts.udp}
                   for mac, (ip, counts) in sorted(snap.devices.items())]
        resp.media = ok({"global_stats": snap.total.as_json(snap.last_updated), "devices": devices,
                         "total_devices": len(devices), "last_updated": snap.last_updated,
                         "partial": snap.partial})


def _tuple_json(t: tuple[bytes, bytes, int, int, int] | None) -> dict | None:
    if t is None:
        return None
    src, dst, _proto, sport, dport = t
    return {"src": conntrack.address(src) if src else "", "dst": conntrack.address(dst) if dst else "",
            "sport": sport, "dport": dport}


def flow_json(e: conntrack.Entry, now_ns: int) -> dict:
    counters = e.counters
    return {
        "protocol": conntrack.PROTOCOLS.get(e.proto, str(e.proto)),
        "state": conntrack.TCP_STATES[e.tcp_state] if e.proto == conntrack.TCP and e.tcp_state < 10 else "",
        "original": _tuple_json((e.src, e.dst, e.proto, e.sport, e.dport)),
        "reply": _tuple_json(e.reply),
        "age_seconds": max(0, (now_ns - e.start_ns) // 1_000_000_000) if e.start_ns else None,
        "timeout_seconds": e.timeout,
        "orig_packets": counters[0] if counters else None, "orig_bytes": counters[1] if counters else None,
        "reply_packets": counters[2] if counters else None, "reply_bytes": counters[3] if counters else None,
    }


class ConnectionFlowsResource:
    def __init__(self, ctx) -> None:
        self._ctx = ctx

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        collector = _collector(self._ctx.connections)
        mac = mac_param(req)
        if mac is None:
            raise falcon.HTTPBadRequest(description="mac: required (the device whose connections to list)")
        proto = single_param(req, "proto")
        if proto is not None and proto.lower() not in PROTOCOL_NUMBERS:
            raise falcon.HTTPBadRequest(description=f"proto: one of {', '.join(sorted(PROTOCOL_NUMBERS))}")
        state = single_param(req, "state")
        if state is not None and state.lower() not in STATES:
            raise falcon.HTTPBadRequest(description=f"state: one of {', '.join(STATES)} (TCP states)")
        page = int_param(req, "page", 1, 1, 10**6)
        page_size = int_param(req, "page_size", 50, 1, MAX_PAGE_SIZE)
        try:
            entries, partial = collector.flows(mac)
        except OSError as exc:
            raise falcon.HTTPServiceUnavailable(description=f"cannot read the conntrack table: {exc}") from None
        if proto is not None:
            entries = [e for e in entries if e.proto == PROTOCOL_NUMBERS[proto.lower()]]
        if state is not None:
            entries = [e for e in entries if e.proto == conntrack.TCP and e.tcp_state == STATES[state.lower()]]
        entries.sort(key=lambda e: (e.proto, e.tcp_state, e.dst, e.dport, e.sport))
        now_ns = time.time_ns()
        chunk = entries[(page - 1) * page_size : page * page_size]
        resp.media = ok({"mac": mac, "flows": [flow_json(e, now_ns) for e in chunk], "total": len(entries),
                         "page": page, "page_size": page_size,
                         "total_pages": math.ceil(len(entries) / page_size), "partial": partial})
