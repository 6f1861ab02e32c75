"""GET/POST/PUT/DELETE /api/traffic/quotas: data quotas per device, and the default one (mac "*")."""

from __future__ import annotations

from collections.abc import Callable

import falcon

from ..quota import parse_quota
from ..schedule import ValidationError, no_unknown, parse_id
from ..settings import Settings
from .body import json_body
from .errors import ok
from .limits import validated, write_change


def _quota_id(body: object) -> str:
    if not isinstance(body, dict):
        raise ValidationError("body", "must be a JSON object")
    no_unknown(body, {"id"})
    return parse_id(body.get("id"))


class QuotasResource:
    def __init__(self, settings: Settings, changed: Callable[[], None]) -> None:
        self._settings = settings
        self._changed = changed  # in force now, not at the next tick

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = ok({"quotas": [q.to_json() for q in self._settings.quotas]})

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        quota = validated(parse_quota, json_body(req))
        stored = write_change(self._settings, lambda: self._settings.upsert_quota(quota))
        self._changed()
        resp.media = ok({"quota": stored.to_json()})

    def on_put(self, req: falcon.Request, resp: falcon.Response) -> None:
        quota = validated(lambda body: parse_quota(body, with_id=True), json_body(req))
        if all(q.id != quota.id for q in self._settings.quotas):
            raise falcon.HTTPNotFound(description=f"id: no quota {quota.id!r}")
        other = next((q for q in self._settings.quotas if q.mac == quota.mac and q.id != quota.id), None)
        if other is not None:
            raise falcon.HTTPConflict(description=f"mac: {quota.mac} has the quota {other.id!r} already")
        if not write_change(self._settings, lambda: self._settings.update_quota(quota)):
            raise falcon.HTTPNotFound(description=f"id: no quota {quota.id!r}")
        self._changed()
        resp.media = ok({"quota": quota.to_json()})

    def on_delete(self, req: falcon.Request, resp: falcon.Response) -> None:
        quota_id = validated(_quota_id, json_body(req))
        if not write_change(self._settings, lambda: self._settings.delete_quota(quota_id)):
            raise falcon.HTTPNotFound(description=f"id: no quota {quota_id!r}")
        self._changed()
        resp.media = ok({"deleted": {"id": quota_id}})
