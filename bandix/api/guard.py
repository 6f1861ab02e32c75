"""Who may ask what, checked before any resource runs (falcon middleware).

In this order, each refusal a JSON error that changes nothing:
- Host (DNS rebinding): a name an attacker's page could point at the router
  gets 421; allowed are loopback names and addresses, the listen address
  (any address literal when listening on all of them) and the owner's
  `allowed_host` names.
- Cross-site writes (CSRF): a POST/PUT/DELETE/PATCH whose Origin is not this
  daemon's own (`http://` + the Host asked for) or that the browser marks
  `Sec-Fetch-Site: cross-site`/`same-site` gets 403. Clients without a
  browser (curl, uclient-fetch, Prometheus) send neither header.
- Credentials: the router itself (loopback, or the listen address as the
  source) needs none; anyone else needs the API token as
  `Authorization: Bearer`, or the dashboard's login cookie. The dashboard's
  files and the login itself are open, so the login form can load. Wrong
  credentials are counted per address and locked out for a while (429).
- Bodies: a request with a body that is not application/json gets 415,
  which is also what keeps a plain HTML form from posting here.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field

import falcon

from .web import FILES

log = logging.getLogger(__name__)

SESSION_COOKIE = "bandix_session"
SESSION_SECONDS = 7 * 86400
FAILURES_ALLOWED = 5  # wrong credentials per address within FAILURE_WINDOW_S before a lockout
FAILURE_WINDOW_S = 60.0
FAILURE_ADDRESSES = 1024  # addresses remembered at most (the oldest are forgotten)
WRITE_METHODS = frozenset(("POST", "PUT", "DELETE", "PATCH"))
SUBREQUEST = "bandix.subrequest"  # environ key of /api/rpc's own calls (no header can make it)
OPEN_PATHS = frozenset(("/", *(f"/{name}" for name in FILES), "/api/login", "/api/logout"))


@dataclass(frozen=True)
class Access:
    """The owner's access settings; replaced as a whole on SIGHUP."""

    listen: str = "127.0.0.1"
    token: str = ""  # empty: nobody off the router gets in
    allowed_hosts: frozenset[str] = field(default_factory=frozenset)
    metrics_public: bool = False


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        addr = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        return addr.ipv4_mapped
    return addr


def host_name(header: str) -> str:
    """The name or address of a Host header, without port, brackets or final dot, lower case."""
    host = header.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    name, colon, port = host.rpartition(":")
    if colon and port.isdigit() and ":" not in name:
        host = name
    return host.rstrip(".")


def host_allowed(header: str, access: Access) -> bool:
    name = host_name(header)
    if name == "localhost" or name.endswith(".localhost") or name in access.allowed_hosts:
        return True
    addr = _address(name)
    if addr is None:
        return False
    listen = _address(access.listen)
    return addr.is_loopback or addr == listen or (listen is not None and listen.is_unspecified)


def is_local(remote: str, access: Access) -> bool:
    """The router itself: loopback, or the listen address as the source (the kernel drops
    packets arriving from outside with one of the router's own addresses as source)."""
    addr = _address(remote or "")
    return addr is not None and (addr.is_loopback or (addr == _address(access.listen) and not addr.is_unspecified))


def session_value(token: str, expires: int) -> str:
    sig = hmac.new(token.encode(), f"bandix-session|{expires}".encode(), "sha256").hexdigest()
    return f"{expires}.{sig}"


def session_valid(value: str, token: str, now: float) -> bool:
    expires, _, _sig = value.partition(".")
    if not token or not expires.isdigit() or int(expires) < now:
        return False
    return hmac.compare_digest(value.encode(), session_value(token, int(expires)).encode())


def token_valid(given: str, token: str) -> bool:
    """Constant time in the token's content."""
    return bool(token) and hmac.compare_digest(given.encode(), token.encode())


class Failures:
    """Wrong credentials per address, for the lockout."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, addr: str, now: float) -> deque[float]:
        times = self._seen.setdefault(addr, deque(maxlen=FAILURES_ALLOWED))
        while times and times[0] < now - FAILURE_WINDOW_S:
            times.popleft()
        return times

    def locked_for(self, addr: str, now: float) -> float:
        """Seconds until this address may try again; 0: it may now."""
        with self._lock:
            if addr not in self._seen:
                return 0.0
            times = self._recent(addr, now)
            return times[0] + FAILURE_WINDOW_S - now if len(times) >= FAILURES_ALLOWED else 0.0

    def add(self, addr: str, now: float) -> None:
        with self._lock:
            self._recent(addr, now).append(now)
            self._seen.move_to_end(addr)
            while len(self._seen) > FAILURE_ADDRESSES:
                self._seen.popitem(last=False)


def unauthorized() -> falcon.HTTPUnauthorized:
    return falcon.HTTPUnauthorized(description="credentials required", challenges=['Bearer realm="bandix"'])


class Guard:
    """The middleware; `access` is read once per request, so a SIGHUP swaps it atomically."""

    def __init__(self, access: Access) -> None:
        self.access = access
        self.failures = Failures()

    def verify(self, remote: str, valid) -> bool:
        """Credentials offered by `remote` (`valid()` checks them); a wrong one counts
        towards its lockout, and a locked-out address is not even checked."""
        now = time.monotonic()
        wait = self.failures.locked_for(remote, now)
        if wait:
            raise falcon.HTTPTooManyRequests(description="too many wrong credentials; try again later",
                                             retry_after=int(wait) + 1)
        if valid():
            return True
        self.failures.add(remote, now)
        if self.failures.locked_for(remote, now):
            log.warning("%d wrong credentials from %s within %.0f s: refused for a while",
                        FAILURES_ALLOWED, remote, FAILURE_WINDOW_S)
        return False

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.env.get(SUBREQUEST):
            return
        access = self.access
        host = req.get_header("Host")
        if host is not None and not host_allowed(host, access):
            raise falcon.HTTPError(falcon.HTTP_421, description=(
                "this Host is not the router's: add it with `uci add_list bandix.config.allowed_host=NAME`"))
        if req.method in WRITE_METHODS:
            origin = req.get_header("Origin")
            if origin is not None and (host is None or origin.lower() != "http://" + host.strip().lower()):
                raise falcon.HTTPForbidden(description="cross-site request refused")
            if req.get_header("Sec-Fetch-Site") in ("cross-site", "same-site"):
                raise falcon.HTTPForbidden(description="cross-site request refused")
        if not self._open(req, access):
            self._authenticate(req, access)
        media_type = (req.content_type or "").split(";")[0].strip().lower()
        if (req.content_length or 0) > 0 and media_type != "application/json":
            raise falcon.HTTPUnsupportedMediaType(description="a request body must be application/json")

    def _open(self, req: falcon.Request, access: Access) -> bool:
        return (is_local(req.remote_addr, access) or req.path in OPEN_PATHS
                or (req.path == "/metrics" and access.metrics_public))

    def _authenticate(self, req: falcon.Request, access: Access) -> None:
        remote = req.remote_addr or ""
        auth = req.get_header("Authorization")
        if auth is not None:
            scheme, _, given = auth.partition(" ")
            if scheme.lower() == "bearer" and self.verify(remote, lambda: token_valid(given.strip(), access.token)):
                return
            raise unauthorized()
        cookie = req.get_cookie_values(SESSION_COOKIE)
        if cookie and self.verify(remote, lambda: session_valid(cookie[0], access.token, time.time())):
            return
        raise unauthorized()
