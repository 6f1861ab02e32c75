"""The WAN limits: schedule rules (GET/POST/PUT/DELETE /api/traffic/limits/schedule), the
default limit and its whitelist (/api/traffic/rate_limit/...), and GET/POST /api/traffic/bindings."""

from __future__ import annotations

import logging
from collections.abc import Callable

import falcon

from .. import uci
from ..schedule import ValidationError, no_unknown, parse_mac, parse_rate, parse_rule, parse_rule_key
from ..settings import Settings, parse_hostname
from .body import json_body
from .errors import ok

log = logging.getLogger(__name__)


def validated(parse: Callable[[object], object], body: object) -> object:
    try:
        return parse(body)
    except ValidationError as exc:
        raise falcon.HTTPBadRequest(description=str(exc)) from None


def write_change(settings: Settings, change: Callable[[], object]) -> object:
    """Run a change of the UCI file; its failures are the server's, 500 with the reason."""
    try:
        return change()
    except uci.UciSyntaxError as exc:
        raise falcon.HTTPInternalServerError(description=f"cannot change {settings.path}: {exc}") from None
    except OSError as exc:
        raise falcon.HTTPInternalServerError(
            description=f"cannot write {settings.path}: {exc.strerror or exc}") from None


class ScheduleResource:
    def __init__(self, settings: Settings, changed: Callable[[], None]) -> None:
        self._settings = settings
        self._changed = changed  # re-evaluate the limits now, not at the next tick

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = ok({"limits": [r.to_json() for r in self._settings.rules]})

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        rule = validated(parse_rule, json_body(req))
        stored = write_change(self._settings, lambda: self._settings.upsert_rule(rule))
        self._changed()
        resp.media = ok({"limit": stored.to_json()})

    def on_put(self, req: falcon.Request, resp: falcon.Response) -> None:
        rule = validated(lambda body: parse_rule(body, with_id=True), json_body(req))
        if not write_change(self._settings, lambda: self._settings.update_rule(rule)):
            raise falcon.HTTPNotFound(description=f"id: no rule {rule.id!r}")
        self._changed()
        resp.media = ok({"limit": rule.to_json()})

    def on_delete(self, req: falcon.Request, resp: falcon.Response) -> None:
        key = validated(parse_rule_key, json_body(req))
        if not write_change(self._settings, lambda: self._settings.delete_rule(key)):
            if isinstance(key, str):
                raise falcon.HTTPNotFound(description=f"id: no rule {key!r}")
            raise falcon.HTTPNotFound(description=f"no limit for {key[0]} in the slot {key[1].to_json()}")
        self._changed()
        deleted = {"id": key} if isinstance(key, str) else {"mac": key[0], "time_slot": key[1].to_json()}
        resp.media = ok({"deleted": deleted})


def _object(body: object, fields: set[str]) -> dict:
    """A JSON object with these fields, all required."""
    if not isinstance(body, dict):
        raise ValidationError("body", "must be a JSON object")
    no_unknown(body, fields)
    for name in sorted(fields):
        if name not in body:
            raise ValidationError(name, "required")
    return body


def _default_rates(body: object) -> tuple[int, int]:
    body = _object(body, {"wan_rx_rate_limit", "wan_tx_rate_limit"})
    return (parse_rate(body["wan_rx_rate_limit"], "wan_rx_rate_limit"),
            parse_rate(body["wan_tx_rate_limit"], "wan_tx_rate_limit"))


def _enabled(body: object) -> bool:
    value = _object(body, {"enabled"})["enabled"]
    if not isinstance(value, bool):
        raise ValidationError("enabled", "must be true or false")
    return value


class DefaultLimitResource:
    """GET/POST /api/traffic/rate_limit/default: the limit of every device not on the whitelist."""

    def __init__(self, settings: Settings, changed: Callable[[], None]) -> None:
        self._settings = settings
        self._changed = changed

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        d = self._settings.default_limit
        resp.media = ok({"wan_rx_rate_limit": d.wan_rx_rate_limit, "wan_tx_rate_limit": d.wan_tx_rate_limit,
                         "enabled": d.enabled})

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        rx, tx = validated(_default_rates, json_body(req))
        write_change(self._settings, lambda: self._settings.set_default_rates(rx, tx))
        self._changed()
        self.on_get(req, resp)


class WhitelistResource:
    """GET/POST/DELETE /api/traffic/rate_limit/whitelist: the devices exempt from the defaults."""

    def __init__(self, settings: Settings, changed: Callable[[], None]) -> None:
        self._settings = settings
        self._changed = changed

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        d = self._settings.default_limit
        resp.media = ok({"enabled": d.enabled, "macs": sorted(d.whitelist)})

    def _mac(self, req: falcon.Request) -> str:
        return validated(lambda body: parse_mac(_object(body, {"mac"})["mac"]), json_body(req))

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        mac = self._mac(req)
        write_change(self._settings, lambda: self._settings.set_whitelisted(mac, True))
        self._changed()
        self.on_get(req, resp)

    def on_delete(self, req: falcon.Request, resp: falcon.Response) -> None:
        mac = self._mac(req)
        if not write_change(self._settings, lambda: self._settings.set_whitelisted(mac, False)):
            raise falcon.HTTPNotFound(description=f"mac: {mac} is not on the whitelist")
        self._changed()
        self.on_get(req, resp)


class WhitelistEnabledResource:
    """POST /api/traffic/rate_limit/whitelist/enabled: the default limit on (whitelist exempt) or off."""

    def __init__(self, settings: Settings, changed: Callable[[], None]) -> None:
        self._settings = settings
        self._changed = changed

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        enabled = validated(_enabled, json_body(req))
        write_change(self._settings, lambda: self._settings.set_whitelist_enabled(enabled))
        self._changed()
        d = self._settings.default_limit
        resp.media = ok({"enabled": d.enabled, "macs": sorted(d.whitelist)})


def _binding(body: object) -> tuple[str, str]:
    if not isinstance(body, dict):
        raise ValidationError("body", "must be a JSON object")
    for key in body:
        if key not in ("mac", "hostname"):
            raise ValidationError(key, "unknown field")
    return parse_mac(body.get("mac")), parse_hostname(body.get("hostname"))


class BindingsResource:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = ok({"bindings": [{"mac": m, "hostname": h} for m, h in sorted(self._settings.bindings.items())]})

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        mac, hostname = validated(_binding, json_body(req))
        write_change(self._settings, lambda: self._settings.set_binding(mac, hostname))
        resp.media = ok({"binding": {"mac": mac, "hostname": hostname}})
