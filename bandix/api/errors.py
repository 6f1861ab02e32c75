"""The error envelope: every failure is {"status": "error", "message": ...}."""

from __future__ import annotations

import logging

import falcon

log = logging.getLogger(__name__)


def serialize_error(req: falcon.Request, resp: falcon.Response, exc: falcon.HTTPError) -> None:
    resp.content_type = falcon.MEDIA_JSON
    resp.media = {"status": "error", "message": exc.description or exc.title}


def handle_unexpected(req: falcon.Request, resp: falcon.Response, exc: Exception, params: dict) -> None:
    """A bug must cost one request, never the daemon."""
    if isinstance(exc, falcon.HTTPError):
        raise exc
    log.exception("%s %s failed", req.method, req.path)
    raise falcon.HTTPInternalServerError(description="internal error; see the bandix log")


def ok(data: object) -> dict:
    return {"status": "success", "data": data}
