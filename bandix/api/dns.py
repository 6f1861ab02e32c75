"""GET /api/dns/queries, GET /api/dns/stats, GET/POST /api/dns/config."""

from __future__ import annotations

import falcon

from .body import json_body
from .errors import ok
from .traffic import int_param, single_param

MAX_PAGE_SIZE = 1000
MAX_RECORDS = 10_000_000


def _store(ctx):
    if ctx.dns is None:
        raise falcon.HTTPServiceUnavailable(
            description="DNS monitoring is off: start bandix with --enable-dns, or POST /api/dns/config "
                        '{"enabled": true}')
    return ctx.dns.store


class DnsQueriesResource:
    def __init__(self, ctx) -> None:
        self._ctx = ctx

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        store = _store(self._ctx)
        is_query = single_param(req, "is_query")
        if is_query is not None:
            if is_query.lower() not in ("true", "false"):
                raise falcon.HTTPBadRequest(description="is_query: must be true or false")
            is_query = is_query.lower() == "true"
        for name in ("domain", "device"):
            value = single_param(req, name)
            if value is not None and len(value) > 255:
                raise falcon.HTTPBadRequest(description=f"{name}: at most 255 characters")
        resp.media = ok(store.query(single_param(req, "domain"), single_param(req, "device"), is_query,
                                    int_param(req, "page", 1, 1, 10**6),
                                    int_param(req, "page_size", 20, 1, MAX_PAGE_SIZE)))


class DnsStatsResource:
    def __init__(self, ctx) -> None:
        self._ctx = ctx

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = ok({"stats": _store(self._ctx).stats()})


def parse_config(body: object) -> dict:
    if not isinstance(body, dict) or not body:
        raise falcon.HTTPBadRequest(description="body: a JSON object with enabled and/or max_records")
    for key in body:
        if key not in ("enabled", "max_records"):
            raise falcon.HTTPBadRequest(description=f"{key}: unknown field")
    if "enabled" in body and not isinstance(body["enabled"], bool):
        raise falcon.HTTPBadRequest(description="enabled: must be true or false")
    if "max_records" in body:
        value = body["max_records"]
        if type(value) is not int or not 1 <= value <= MAX_RECORDS:
            raise falcon.HTTPBadRequest(description=f"max_records: must be a whole number from 1 to {MAX_RECORDS}")
    return body


class DnsConfigResource:
    def __init__(self, ctx) -> None:
        self._ctx = ctx

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = ok(self._ctx.dns_config())

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        change = parse_config(json_body(req))
        try:
            self._ctx.set_dns_config(change.get("enabled"), change.get("max_records"))
        except RuntimeError as exc:
            raise falcon.HTTPConflict(description=str(exc)) from None
        except OSError as exc:
            raise falcon.HTTPInternalServerError(description=f"cannot write the configuration: {exc}") from None
        resp.media = ok(self._ctx.dns_config())
