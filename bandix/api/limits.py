"""GET/POST/DELETE /api/traffic/limits/schedule and GET/POST /api/traffic/bindings."""

from __future__ import annotations

import logging
from collections.abc import Callable

import falcon

from .. import uci
from ..schedule import ValidationError, parse_mac, parse_rule, parse_rule_key
from ..settings import Settings, parse_hostname
from .body import json_body
from .errors import ok

log = logging.getLogger(__name__)


def _validated(parse: Callable[[object], object], body: object) -> object:
    try:
        return parse(body)
    except ValidationError as exc:
        raise falcon.HTTPBadRequest(description=str(exc)) from None


def _write(settings: Settings, change: Callable[[], object]) -> object:
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
        rule = _validated(parse_rule, json_body(req))
        _write(self._settings, lambda: self._settings.upsert_rule(rule))
        self._changed()
        resp.media = ok({"limit": rule.to_json()})

    def on_delete(self, req: falcon.Request, resp: falcon.Response) -> None:
        mac, slot = _validated(parse_rule_key, json_body(req))
        if not _write(self._settings, lambda: self._settings.delete_rule(mac, slot)):
            raise falcon.HTTPNotFound(description=f"no limit for {mac} in the slot {slot.to_json()}")
        self._changed()
        resp.media = ok({"deleted": {"mac": mac, "time_slot": slot.to_json()}})


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
        mac, hostname = _validated(_binding, json_body(req))
        _write(self._settings, lambda: self._settings.set_binding(mac, hostname))
        resp.media = ok({"binding": {"mac": mac, "hostname": hostname}})
