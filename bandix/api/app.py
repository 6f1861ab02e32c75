"""The falcon application: routes, error envelope, optional request log."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import falcon

from ..collect.analytics import FlowAnalytics
from ..collect.connections import ConnectionCollector
from ..collect.dns import DnsCollector
from ..collect.hostnames import Hostnames
from ..collect.neighbours import NeighbourTable
from ..limiter import NO_QUOTA, Limiter, QuotaStatus
from ..presence import Presence
from ..settings import Settings
from ..store.traffic import TrafficStore
from .connections import ConnectionDevicesResource, ConnectionFlowsResource
from .dashboard import DashboardDeviceResource, DashboardDevicesResource, DashboardDnsResource
from .dns import DnsConfigResource, DnsQueriesResource, DnsStatsResource
from .errors import handle_unexpected, serialize_error
from .flows import FlowsTopResource
from .guard import Guard
from .limits import (
    BindingsResource,
    DefaultLimitResource,
    ScheduleResource,
    WhitelistEnabledResource,
    WhitelistResource,
)
from .login import LoginResource, LogoutResource
from .metrics import PrometheusResource
from .quotas import QuotasResource
from .rpc import RpcResource
from .traffic import DevicesResource, LevelMetricsResource, MetricsResource
from .usage import ExportResource, IncrementsResource, RankingResource
from .web import WebResource

log = logging.getLogger("bandix.web")


class RequestLog:
    """--web-log: one line per request with status and duration."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.started = time.monotonic()

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource, req_succeeded: bool) -> None:
        ms = (time.monotonic() - req.context.get("started", time.monotonic())) * 1000
        log.info("%s %s %s %s %.1fms", req.remote_addr, req.method, req.relative_uri, resp.status, ms)


class OpenApiResource:
    """The OpenAPI document, read from the package on each request and sent as it is:
    asked for by tools, rarely, so it is not kept in memory (76 KB of JSON, several
    times that as Python objects)."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_JSON
        resp.data = resources.files(__package__).joinpath("openapi.json").read_bytes()


@dataclass
class ApiContext:
    """What the resources read from and act on."""

    store: TrafficStore
    neighbours: NeighbourTable
    health: Callable[[], list[int]]
    settings: Settings
    limiter: Limiter | None  # None until the maps are loaded
    hostnames: Hostnames
    connections: ConnectionCollector | None = None  # None: --enable-connection is off
    dns: DnsCollector | None = None  # None: DNS monitoring was never on
    flows_db: Path | None = None  # the analytics database; None: --enable-flows is off
    flows: FlowAnalytics | None = None
    dns_config: Callable[[], dict] = lambda: {"enabled": False, "max_records": 0}
    set_dns_config: Callable[[bool | None, int | None], None] = lambda enabled, max_records: None
    presence: Presence | None = None  # None: nobody tracks it (every device offline)
    # DELETE /api/traffic/devices: (mac, rules too) -> what went from UCI, None for an unknown device
    forget_device: Callable[[str, bool], dict | None] = lambda mac, rules: None

    def online(self, mac: str) -> tuple[bool, int]:
        return self.presence.state(mac) if self.presence else (False, 0)

    def limit_in_force(self, mac: str) -> tuple[int, int]:
        return self.limiter.in_force(mac) if self.limiter else (0, 0)

    def limits_in_force(self) -> dict[str, tuple[int, int]]:
        return self.limiter.all_in_force() if self.limiter else {}

    def quota_status(self, mac: str) -> QuotaStatus:
        return self.limiter.quota_status(mac) if self.limiter else NO_QUOTA

    def limits_changed(self) -> None:
        if self.limiter:
            self.limiter.apply()


def create_app(ctx: ApiContext, guard: Guard, web_log: bool = False) -> falcon.App:
    """The falcon app; `guard` decides who may ask (its access settings change on SIGHUP)."""
    app = falcon.App(middleware=[RequestLog(), guard] if web_log else [guard], cors_enable=False)
    app.set_error_serializer(serialize_error)
    app.add_error_handler(Exception, handle_unexpected)
    app.req_options.strip_url_path_trailing_slash = True
    devices = DevicesResource(ctx)
    app.add_route("/api/traffic/devices", devices)
    app.add_route("/api/traffic/metrics", MetricsResource(ctx.store))
    for level in ctx.store.levels:
        app.add_route(f"/api/traffic/metrics/{level.name}", LevelMetricsResource(ctx.store, level.name))
    app.add_route("/api/traffic/usage/ranking", RankingResource(ctx))
    app.add_route("/api/traffic/usage/increments", IncrementsResource(ctx))
    app.add_route("/api/traffic/usage/export", ExportResource(ctx))
    app.add_route("/api/traffic/limits/schedule", ScheduleResource(ctx.settings, ctx.limits_changed))
    app.add_route("/api/traffic/rate_limit/default", DefaultLimitResource(ctx.settings, ctx.limits_changed))
    app.add_route("/api/traffic/rate_limit/whitelist", WhitelistResource(ctx.settings, ctx.limits_changed))
    app.add_route("/api/traffic/rate_limit/whitelist/enabled",
                  WhitelistEnabledResource(ctx.settings, ctx.limits_changed))
    app.add_route("/api/traffic/quotas", QuotasResource(ctx.settings, ctx.limits_changed))
    app.add_route("/api/traffic/bindings", BindingsResource(ctx.settings))
    app.add_route("/api/connection/devices", ConnectionDevicesResource(ctx))
    app.add_route("/api/connection/flows", ConnectionFlowsResource(ctx))
    app.add_route("/api/dns/queries", DnsQueriesResource(ctx))
    app.add_route("/api/dns/stats", DnsStatsResource(ctx))
    app.add_route("/api/dns/config", DnsConfigResource(ctx))
    app.add_route("/api/flows/top", FlowsTopResource(ctx))
    app.add_route("/api/dashboard/devices", DashboardDevicesResource(ctx))
    app.add_route("/api/dashboard/device", DashboardDeviceResource(ctx, devices))
    app.add_route("/api/dashboard/dns", DashboardDnsResource(ctx))
    app.add_route("/api/rpc", RpcResource(app))
    app.add_route("/api/openapi.json", OpenApiResource())
    app.add_route("/api/login", LoginResource(guard))
    app.add_route("/api/logout", LogoutResource())
    app.add_route("/metrics", PrometheusResource(ctx))
    web = WebResource()
    app.add_route("/", web)
    app.add_route("/{filename}", web)
    return app
