"""GET/POST /api/rpc: the daemon's side of luci-app-bandix's rpcd plugin.

The plugin (a few lines of sh on the router) forwards each ubus call's JSON
arguments here unchanged, so validating them and choosing the handler happen
in Python, where they are tested. Each method is a sub-request to an existing
route of this app: the same handler, validation, caching and error messages
as the HTTP API, with no second copy of their logic.

Why a handler's failure is answered 200: the plugin fetches with
uclient-fetch, which throws away the body of any non-2xx answer, so LuCI
would see "HTTP error 400" instead of the handler's message. The answer is
therefore the handler's own envelope with its status as `code`. Mistakes of
the caller itself (unknown method, arguments of the wrong type) are 400s:
they are bugs of the plugin or a view, never the user's input.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from urllib.parse import urlencode

import falcon

from .body import json_body
from .errors import ok
from .guard import SUBREQUEST
from .traffic import single_param

STR, INT, INT64, BOOL, OBJECT = "str", 32, 64, True, {}  # argument types as rpcd's `list` spells them
# uhttpd's ubus handler (openwrt/uhttpd ubus.c, uh_ubus_handle_request_object ->
# uh_ubus_call) adds the caller's session id to the arguments of every call it
# forwards, and the plugin passes them on as they are: accepted and dropped here.
SESSION_ARG = "ubus_rpc_session"


@dataclass(frozen=True)
class Method:
    http: str  # the HTTP method of the route it calls
    path: str
    args: dict[str, object] = field(default_factory=dict)  # name -> type, as in rpcd's `list`
    write: bool = False  # changes the configuration: the ACL's write set


_QUOTA_ARGS = {"mac": STR, "period": STR, "bytes": INT64, "direction": STR, "action": STR,
               "throttle_rx_rate": INT, "throttle_tx_rate": INT, "reset_day": INT, "reset_hour": INT}
METHODS: dict[str, Method] = {
    "devices": Method("GET", "/api/dashboard/devices", {"known": STR}),
    # since (ms since the epoch) is a string: older libubox clamps JSON numbers to 32 bits.
    "device": Method("GET", "/api/dashboard/device", {"mac": STR, "since": STR, "level": STR, "extras": BOOL}),
    "connections": Method("GET", "/api/connection/devices"),
    "connection_flows": Method("GET", "/api/connection/flows",
                               {"mac": STR, "proto": STR, "state": STR, "page": INT, "page_size": INT}),
    "dns": Method("GET", "/api/dashboard/dns",
                  {"domain": STR, "device": STR, "is_query": BOOL, "page": INT, "page_size": INT}),
    "flows_top": Method("GET", "/api/flows/top", {"by": STR, "mac": STR, "lookback_minutes": INT, "limit": INT}),
    # start_ms and end_ms are strings too: ms since the epoch pass 2^31.
    "usage_ranking": Method("GET", "/api/traffic/usage/ranking",
                            {"start_ms": STR, "end_ms": STR, "network_type": STR}),
    "usage_increments": Method("GET", "/api/traffic/usage/increments",
                               {"mac": STR, "start_ms": STR, "end_ms": STR, "aggregation": STR,
                                "network_type": STR}),
    # A CSV file comes back as text in the envelope (rpcd passes JSON only): see RpcResource.
    "usage_export": Method("GET", "/api/traffic/usage/export",
                           {"format": STR, "start_ms": STR, "end_ms": STR, "aggregation": STR, "network_type": STR}),
    "schedule": Method("GET", "/api/traffic/limits/schedule"),
    "bindings": Method("GET", "/api/traffic/bindings"),
    "dns_config": Method("GET", "/api/dns/config"),
    "set_limit": Method("POST", "/api/traffic/limits/schedule",
                        {"mac": STR, "time_slot": OBJECT, "wan_rx_rate_limit": INT, "wan_tx_rate_limit": INT},
                        write=True),
    "put_limit": Method("PUT", "/api/traffic/limits/schedule",
                        {"id": STR, "mac": STR, "time_slot": OBJECT, "wan_rx_rate_limit": INT,
                         "wan_tx_rate_limit": INT}, write=True),
    "delete_limit": Method("DELETE", "/api/traffic/limits/schedule", {"id": STR, "mac": STR, "time_slot": OBJECT},
                           write=True),
    "default_limit": Method("GET", "/api/traffic/rate_limit/default"),
    "set_default_limit": Method("POST", "/api/traffic/rate_limit/default",
                                {"wan_rx_rate_limit": INT, "wan_tx_rate_limit": INT}, write=True),
    "whitelist": Method("GET", "/api/traffic/rate_limit/whitelist"),
    "add_whitelist": Method("POST", "/api/traffic/rate_limit/whitelist", {"mac": STR}, write=True),
    "delete_whitelist": Method("DELETE", "/api/traffic/rate_limit/whitelist", {"mac": STR}, write=True),
    "set_whitelist_enabled": Method("POST", "/api/traffic/rate_limit/whitelist/enabled", {"enabled": BOOL},
                                    write=True),
    "quotas": Method("GET", "/api/traffic/quotas"),
    # bytes may pass 2^31: 64 makes rpcd check it as BLOBMSG_TYPE_INT64 (rpc_plugin_parse_signature, plugin.c).
    "set_quota": Method("POST", "/api/traffic/quotas", _QUOTA_ARGS, write=True),
    "put_quota": Method("PUT", "/api/traffic/quotas", {"id": STR, **_QUOTA_ARGS}, write=True),
    "delete_quota": Method("DELETE", "/api/traffic/quotas", {"id": STR}, write=True),
    "set_binding": Method("POST", "/api/traffic/bindings", {"mac": STR, "hostname": STR}, write=True),
    "forget_device": Method("DELETE", "/api/traffic/devices", {"mac": STR, "rules": BOOL}, write=True),
    "set_dns_config": Method("POST", "/api/dns/config", {"enabled": BOOL, "max_records": INT}, write=True),
}


def _query_value(name: str, kind: object, value: object) -> str:
    """One argument of a GET method as its query parameter; 400 when its type is not the declared one."""
    if kind is BOOL:
        if not isinstance(value, bool):
            raise falcon.HTTPBadRequest(description=f"{name}: must be true or false")
        return "true" if value else "false"
    if kind == INT:
        if type(value) is not int or value < 0:
            raise falcon.HTTPBadRequest(description=f"{name}: must be a whole number")
        return str(value)
    if not isinstance(value, str):
        raise falcon.HTTPBadRequest(description=f"{name}: must be a string")
    return value


def parse_call(name: str | None, args: object) -> tuple[Method, str, bytes | None]:
    """(method, query string, body) of a call; 400 with the reason when it is not a valid one."""
    if name is None:
        raise falcon.HTTPBadRequest(description="method: required (one of " + ", ".join(METHODS) + ")")
    method = METHODS.get(name)
    if method is None:
        raise falcon.HTTPBadRequest(description=f"method: unknown {name!r}; one of " + ", ".join(METHODS))
    if not isinstance(args, dict):
        raise falcon.HTTPBadRequest(description="body: the arguments must be a JSON object")
    args = {k: v for k, v in args.items() if k != SESSION_ARG}
    for key in args:
        if key not in method.args:
            known = ", ".join(method.args) or "none"
            raise falcon.HTTPBadRequest(description=f"{key}: unknown argument of {name} (known: {known})")
    if method.http != "GET":
        return method, "", json.dumps(args).encode()
    query = urlencode([(k, _query_value(k, method.args[k], v)) for k, v in args.items()])
    return method, query, None


def subrequest(app: falcon.App, env: dict, method: str, path: str, query: str,
               body: bytes | None) -> tuple[int, bytes, dict[str, str]]:
    """Run one request through this app in-process; (status, body, headers with lower-case names)."""
    sub = {k: v for k, v in env.items() if k.startswith(("wsgi.", "SERVER_", "REMOTE_"))}
    sub[SUBREQUEST] = True  # the guard checked the caller's request already
    sub.update({"REQUEST_METHOD": method, "SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": query,
                "wsgi.input": io.BytesIO(body or b""), "CONTENT_LENGTH": str(len(body or b""))})
    if body is not None:
        sub["CONTENT_TYPE"] = "application/json"
    status: list[str] = []
    headers: dict[str, str] = {}

    def start_response(s: str, hs: list[tuple[str, str]], exc_info=None) -> None:
        status.append(s)
        headers.update((k.lower(), v) for k, v in hs)

    result = app(sub, start_response)
    try:
        data = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close:
            close()
    return int(status[0].split()[0]), data, headers


class RpcResource:
    def __init__(self, app: falcon.App) -> None:
        self._app = app
        self._methods = {name: m.args for name, m in METHODS.items()}
        self._acl = {"read": [n for n, m in METHODS.items() if not m.write],
                     "write": [n for n, m in METHODS.items() if m.write]}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """The method table: what the plugin's `list` prints, and which methods write."""
        resp.media = ok({"methods": self._methods, **self._acl})

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        method, query, body = parse_call(single_param(req, "method"), json_body(req))
        status, data, headers = subrequest(self._app, req.env, method.http, method.path, query, body)
        resp.content_type = falcon.MEDIA_JSON
        if 200 <= status < 300 and "content-disposition" in headers and not headers.get(
                "content-type", "").startswith(falcon.MEDIA_JSON):
            # A file (the CSV export): rpcd passes JSON only, so the file is a string in it.
            resp.media = ok({"filename": headers["content-disposition"].partition('filename="')[2].rstrip('"'),
                             "content_type": headers.get("content-type", ""), "content": data.decode()})
            return
        if 200 <= status < 300:
            resp.data = data  # as the handler made it: the devices page's cached bytes stay cached
            return
        try:
            message = json.loads(data)["message"]
        except (ValueError, KeyError, TypeError):
            message = data.decode(errors="replace") or f"HTTP {status}"
        resp.media = {"status": "error", "code": status, "message": message}
