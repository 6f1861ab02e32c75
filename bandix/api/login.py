"""The dashboard's login off the router: the API token once, then an HttpOnly cookie.

The cookie is the expiry time signed with the token (HMAC-SHA256): nothing to
store, it outlives a restart, and a new token ends every session.
"""

from __future__ import annotations

import time

import falcon

from .body import json_body
from .errors import ok
from .guard import SESSION_COOKIE, SESSION_SECONDS, Guard, session_value, token_valid


class LoginResource:
    def __init__(self, guard: Guard) -> None:
        self._guard = guard

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = json_body(req)
        if not isinstance(body, dict) or set(body) != {"token"} or not isinstance(body["token"], str):
            raise falcon.HTTPBadRequest(description="token: required, a string (and nothing else)")
        token = self._guard.access.token
        if not self._guard.verify(req.remote_addr or "", lambda: token_valid(body["token"], token)):
            raise falcon.HTTPUnauthorized(description="wrong token", challenges=['Bearer realm="bandix"'])
        expires = int(time.time()) + SESSION_SECONDS
        resp.set_cookie(SESSION_COOKIE, session_value(token, expires), max_age=SESSION_SECONDS, path="/",
                        secure=False, http_only=True, same_site="Strict")
        resp.media = ok({"expires": expires})


class LogoutResource:
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.unset_cookie(SESSION_COOKIE, path="/", same_site="Strict")
        resp.media = ok({})
