"""Request bodies: JSON objects of bounded size, or a clear 4xx."""

from __future__ import annotations

import json

import falcon

MAX_BODY = 64 * 1024


def _number(text: str) -> int | float:
    """A JSON number with a fraction or exponent; integral ones are integers, as JSON
    Schema's `integer` counts them (1032.0 is one)."""
    value = float(text)
    return int(value) if value.is_integer() else value


def json_body(req: falcon.Request) -> object:
    if req.content_length is not None and req.content_length > MAX_BODY:
        raise falcon.HTTPContentTooLarge(description=f"the body is larger than {MAX_BODY} bytes")
    raw = req.bounded_stream.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise falcon.HTTPContentTooLarge(description=f"the body is larger than {MAX_BODY} bytes")
    if not raw.strip():
        raise falcon.HTTPBadRequest(description="body: a JSON object is required")
    try:
        return json.loads(raw, parse_float=_number)
    except (ValueError, RecursionError) as exc:
        raise falcon.HTTPBadRequest(description=f"body: not valid JSON ({exc})") from None
