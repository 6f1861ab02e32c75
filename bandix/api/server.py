"""A small HTTP/1.1 server for the WSGI app: one thread per connection.

Why not waitress: at one request a second (an open dashboard page, a LuCI
refresh) waitress's own Python work cost 0.4-0.7 ms of CPU per request on
the bench machine, and its loop woke twice a second when idle; this server
costs about 0.25 ms a request and never wakes while idle.
The API's clients are the dashboard, LuCI's rpcd plugin, Prometheus and
curl, on a router: few connections, small bodies. So this keeps to what they
need and refuses the rest with a clear status:

- requests are read with C-level buffered reads; request line and headers
  are bounded (MAX_HEAD), bodies need a Content-Length (MAX_BODY), and
  `Expect: 100-continue` is answered;
- keep-alive (HTTP/1.1 by default, HTTP/1.0 on request) and pipelining;
  a connection idle for IDLE_TIMEOUT_S is closed;
- at most MAX_CONNECTIONS connections; one more gets 503 and is closed;
- every answer carries Content-Length (bodies are joined: they are small),
  HEAD answers carry none;
- a GET path may be answered without the app (`quick_get`): the dashboard's
  once-a-second poll, whose answer is ready bytes and costs less than the
  framework's work per request.

A connection's thread sleeps in recv() between requests, so an idle server
wakes for nothing.
"""

from __future__ import annotations

import io
import json
import logging
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from urllib.parse import unquote_to_bytes

log = logging.getLogger(__name__)

MAX_HEAD = 16 * 1024  # request line and headers
MAX_HEADERS = 100
MAX_BODY = 1024 * 1024
MAX_CONNECTIONS = 32
IDLE_TIMEOUT_S = 30.0
TOKEN = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
REASONS = {400: "Bad Request", 408: "Request Timeout", 411: "Length Required", 413: "Content Too Large",
           431: "Request Header Fields Too Large", 500: "Internal Server Error", 501: "Not Implemented",
           503: "Service Unavailable", 505: "HTTP Version Not Supported"}

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

WsgiApp = Callable[[dict, Callable], Iterable[bytes]]
# A GET answered without the app: given the query string, a JSON body, or None
# to leave the request to the app (which then also answers any error).
QuickGet = Callable[[str], bytes | None]


class BadRequest(Exception):
    """A request this server answers itself, with `status`, and then closes the connection."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Closed(Exception):
    """The client closed the connection between requests."""


def _is_token(name: bytes) -> bool:
    return bool(name) and TOKEN.issuperset(name)


def _drain_and_close(conn: socket.socket, limit: int = 256 * 1024, seconds: float = 1.0) -> None:
    """Close after an early answer without losing it: closing with unread input makes the
    kernel send a reset, and the client may then drop the answer it already has."""
    try:
        conn.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + seconds
        while limit > 0 and (left := deadline - time.monotonic()) > 0:
            conn.settimeout(left)
            chunk = conn.recv(65536)
            if not chunk:
                break
            limit -= len(chunk)
    except OSError:
        pass
    conn.close()


class ApiServer:
    """Binds at construction (so a busy port fails early), serves in a thread."""

    def __init__(self, app: WsgiApp, host: str, port: int, max_connections: int = MAX_CONNECTIONS,
                 idle_timeout_s: float = IDLE_TIMEOUT_S, quick_get: Mapping[str, QuickGet] | None = None) -> None:
        self._app = app
        self._quick_get = dict(quick_get or {})
        self._max_connections = max_connections
        self._idle_timeout_s = idle_timeout_s
        family, kind, proto, _name, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                                 flags=socket.AI_PASSIVE)[0]
        self._sock = socket.socket(family, kind, proto)
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._sock.bind(address)
            self._sock.listen(64)
        except OSError:
            self._sock.close()
            raise
        host, port = self._sock.getsockname()[:2]
        self._base_environ = {"SERVER_NAME": host, "SERVER_PORT": str(port), "SCRIPT_NAME": "",
                              "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr,
                              "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False}
        self._stopping = False
        self._lock = threading.Lock()  # guards _connections
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._thread = threading.Thread(target=self._accept_loop, name="api", daemon=True)
        self._date = (0, "")

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._sock.getsockname()[:2]
        return host, int(port)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, close every connection (an answer being written is cut off),
        and wait a few seconds at most for their threads."""
        self._stopping = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes accept()
        except OSError:
            pass
        if self._thread.ident is not None:
            self._thread.join(5)
        self._sock.close()
        with self._lock:
            connections = list(self._connections.items())
        for conn, _thread in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)  # wakes recv(); a response being written fails
            except OSError:
                pass
        deadline = time.monotonic() + 5
        for _conn, thread in connections:
            thread.join(max(0.0, deadline - time.monotonic()))

    # -- connections ------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stopping:
            try:
                conn, peer = self._sock.accept()
            except OSError:
                if self._stopping:
                    return
                time.sleep(0.1)  # EMFILE and the like: do not spin
                continue
            with self._lock:
                busy = len(self._connections) >= self._max_connections
                if not busy:
                    thread = threading.Thread(target=self._serve, args=(conn, peer), name="api-conn", daemon=True)
                    self._connections[conn] = thread
            if not busy:
                try:
                    thread.start()
                    continue
                except RuntimeError:  # no thread to be had (memory): refuse like a full server
                    with self._lock:
                        self._connections.pop(conn, None)
            self._refuse(conn)

    def _refuse(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(1)
            conn.sendall(self._error_response(503, "too many connections, try again"))
            _drain_and_close(conn, seconds=0.2)  # short: this holds up accepting
        except OSError:
            conn.close()

    def _serve(self, conn: socket.socket, peer: tuple) -> None:
        reader = conn.makefile("rb", buffering=65536)  # the socket's fd stays open until this closes too
        try:
            conn.settimeout(self._idle_timeout_s)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            remote = {"REMOTE_ADDR": peer[0], "REMOTE_PORT": str(peer[1])}
            while not self._stopping:
                try:
                    environ, keep_alive = self._read_request(reader, conn, remote)
                except _Closed:
                    return
                except BadRequest as exc:
                    conn.sendall(self._error_response(exc.status, str(exc)))
                    _drain_and_close(conn)
                    return
                conn.sendall(self._respond(environ, keep_alive))
                if not keep_alive:
                    return
        except (TimeoutError, OSError):
            pass  # an idle or vanished client, or the server stopping
        except Exception:
            log.exception("serving a connection failed")
        finally:
            with self._lock:
                self._connections.pop(conn, None)
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            reader.close()
            conn.close()

    # -- one request ------------------------------------------------------------

    def _read_request(self, reader: io.BufferedReader, conn: socket.socket, remote: dict) -> tuple[dict, bool]:
        """The WSGI environ of the next request and whether the connection stays open after it."""
        line = reader.readline(MAX_HEAD + 1)
        for _ in range(8):  # RFC 9112 section 2.2: ignore an empty line or a few before a request
            if line not in (b"\r\n", b"\n"):
                break
            line = reader.readline(MAX_HEAD + 1)
        if not line:
            raise _Closed
        if not line.endswith(b"\n"):
            raise BadRequest(431 if len(line) > MAX_HEAD else 400, "the request line is too long or cut short")
        parts = line.rstrip(b"\r\n").split(b" ")
        if len(parts) != 3 or not _is_token(parts[0]) or not parts[1].startswith(b"/"):
            raise BadRequest(400, "a request line is METHOD /path HTTP/1.1")
        method, target, version = parts
        if version not in (b"HTTP/1.1", b"HTTP/1.0"):
            raise BadRequest(505 if version.startswith(b"HTTP/") else 400, "HTTP/1.0 and HTTP/1.1 only")
        environ = {**self._base_environ, **remote, "REQUEST_METHOD": method.decode("ascii"),
                   "SERVER_PROTOCOL": version.decode("ascii")}
        if not target.isascii():
            raise BadRequest(400, "the request target must be ASCII (percent-encode the rest)")
        path, _, query = target.partition(b"?")
        environ["PATH_INFO"] = unquote_to_bytes(path).decode("latin-1")
        environ["QUERY_STRING"] = query.decode("ascii")

        headers = self._read_headers(reader, len(line))
        for name, value in headers.items():
            key = name.upper().replace("-", "_")
            if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                environ[key] = value
            else:
                environ["HTTP_" + key] = value
        connection = headers.get("connection", "").lower()
        keep_alive = "close" not in connection and (version == b"HTTP/1.1" or "keep-alive" in connection)

        if "transfer-encoding" in headers:
            raise BadRequest(411 if "content-length" not in headers else 400,
                             "send the body with a Content-Length, not a transfer coding")
        length = headers.get("content-length", "0")
        if not length.isdigit() or not length.isascii():
            raise BadRequest(400, "Content-Length must be one number")
        size = int(length)
        if size > MAX_BODY:
            raise BadRequest(413, f"request bodies are limited to {MAX_BODY} bytes")
        if size and headers.get("expect", "").lower() == "100-continue":
            conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = reader.read(size) if size else b""
        if len(body) != size:
            raise _Closed  # the client went away mid-body
        environ["wsgi.input"] = io.BytesIO(body)
        return environ, keep_alive

    @staticmethod
    def _read_headers(reader: io.BufferedReader, used: int) -> dict[str, str]:
        """Header fields by lower-case name; repeated fields joined with ", " (a differing
        repeated Content-Length is refused, as a request-smuggling guard)."""
        headers: dict[str, str] = {}
        for _ in range(MAX_HEADERS + 1):
            line = reader.readline(MAX_HEAD + 1 - used)
            used += len(line)
            if not line.endswith(b"\n"):
                if not line:
                    raise _Closed
                raise BadRequest(431, f"request headers are limited to {MAX_HEAD} bytes")
            line = line.rstrip(b"\r\n")
            if not line:
                return headers
            name, colon, value = line.partition(b":")
            if not colon or not _is_token(name):
                raise BadRequest(400, "a header field is name: value, with no space before the colon")
            key, text = name.decode("ascii").lower(), value.strip(b" \t").decode("latin-1")  # a token is ASCII
            if "_" in key:
                continue  # would be indistinguishable from its dashed twin in the environ
            if key in headers:
                if key == "content-length" and headers[key] != text:
                    raise BadRequest(400, "two different Content-Length fields")
                if key != "content-length":
                    headers[key] += ", " + text
                continue
            headers[key] = text
        raise BadRequest(431, f"at most {MAX_HEADERS} header fields")

    def _respond(self, environ: dict, keep_alive: bool) -> bytes:
        """Run the quick answer or the app; the whole response as bytes."""
        started: list = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info=None) -> Callable:
            if exc_info and started:
                raise exc_info[1].with_traceback(exc_info[2])
            started[:] = [status, headers]
            return lambda data: None  # the legacy write(): falcon never calls it

        try:
            quick = self._quick_get.get(environ["PATH_INFO"]) if environ["REQUEST_METHOD"] == "GET" else None
            body = quick(environ["QUERY_STRING"]) if quick is not None else None
            if body is not None:
                started[:] = ["200 OK", [("Content-Type", "application/json")]]
            else:
                result = self._app(environ, start_response)
                try:
                    body = b"".join(result)
                finally:
                    close = getattr(result, "close", None)
                    if close is not None:
                        close()
        except Exception:
            log.exception("the app failed on %s %s", environ["REQUEST_METHOD"], environ["PATH_INFO"])
            return self._error_response(500, "the server failed to answer this request")
        if not started:
            return self._error_response(500, "the server failed to answer this request")
        status, headers = started
        empty = status[:3] in ("204", "304")
        if not keep_alive:
            connection = "close"
        else:
            connection = "keep-alive" if environ["SERVER_PROTOCOL"] == "HTTP/1.0" else None
        head = self._head(status, headers, None if empty else len(body), connection)
        return head + (b"" if empty or environ["REQUEST_METHOD"] == "HEAD" else body)

    def _error_response(self, status: int, message: str) -> bytes:
        body = json.dumps({"status": "error", "message": message}).encode()
        status_line = f"{status} {REASONS.get(status, 'Error')}"
        return self._head(status_line, [("Content-Type", "application/json")], len(body), "close") + body

    def _head(self, status: str, headers: list[tuple[str, str]], length: int | None,
              connection: str | None) -> bytes:
        """Status line and header fields; Content-Length, Date, Server and Connection are
        this server's, whatever the app set."""
        head = [f"HTTP/1.1 {status}\r\n"]
        head.extend(f"{name}: {value}\r\n" for name, value in headers
                    if name.lower() not in ("content-length", "connection", "date", "server"))
        if length is not None:
            head.append(f"Content-Length: {length}\r\n")
        head.append(f"Date: {self._http_date()}\r\nServer: bandix\r\n")
        if connection:
            head.append(f"Connection: {connection}\r\n")
        head.append("\r\n")
        return "".join(head).encode("latin-1")

    def _http_date(self) -> str:
        now = int(time.time())
        if self._date[0] != now:  # RFC 9110 section 5.6.7, without the locale strftime would use
            t = time.gmtime(now)
            self._date = (now, f"{DAYS[t.tm_wday]}, {t.tm_mday:02d} {MONTHS[t.tm_mon - 1]} {t.tm_year} "
                               f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT")
        return self._date[1]
