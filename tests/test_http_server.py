"""The API as waitress serves it: chunked bodies, stalled clients, limits, JSON errors.

One daemon for the module on the virtual router; every request is made from a
socket inside the router namespace to its loopback (the router's own clients:
the rpcd plugin, Prometheus, a browser through a forward).
"""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from tests.bandixd import _NsConnection

SLOW_CLIENTS = 100  # each sends one byte of a request head every SLOW_BYTE_S
IDLE_CLIENTS = 100  # each connects and sends nothing
SLOW_BYTE_S = 5.0
STALL_S = 11.0  # how long the stalled clients are held: two slow bytes each


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from tests.bandixd import busy_router

    data = tmp_path_factory.mktemp("data")
    with busy_router(["--enable-traffic", "--enable-dns", "--data-dir", str(data)]) as shared:
        yield shared


@pytest.fixture
def daemon(site):
    d = site[1]
    assert d.proc.poll() is None, "a request crashed the daemon"
    return d


def request(daemon, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
            chunks: list[bytes] | None = None, timeout: float = 10.0) -> tuple[int, dict, bytes]:
    """(status, headers in lower case, body) of one request on a new connection; `chunks`
    sends the body with Transfer-Encoding: chunked, as uclient-fetch does."""
    conn = _NsConnection(daemon.ns, "127.0.0.1", daemon.port, timeout=timeout)
    try:
        if chunks is not None:
            conn.request(method, path, body=iter(chunks), headers=headers or {}, encode_chunked=True)
        else:
            conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


JSON = {"Content-Type": "application/json"}
RULE = {"mac": "02:bd:00:00:01:01", "time_slot": {"start": "01:00", "end": "02:00", "days": [1]},
        "wan_rx_rate_limit": 123456, "wan_tx_rate_limit": 0}


def uci_text(daemon) -> bytes:
    return (daemon.config_dir / "bandix").read_bytes()


def test_a_chunked_body_is_read_like_any_other(daemon):
    """uclient-fetch posts every body chunked, without Content-Length."""
    body = json.dumps(RULE).encode()
    status, headers, answer = request(daemon, "POST", "/api/traffic/limits/schedule", headers=JSON,
                                      chunks=[body[:7], body[7:30], body[30:]])
    assert status == 200, answer
    assert b"wan_rx_rate_limit '123456'" in uci_text(daemon)
    rules = daemon.get("/api/traffic/limits/schedule")[1]["data"]["limits"]
    assert any(r["mac"] == RULE["mac"] and r["wan_rx_rate_limit"] == 123456 for r in rules)
    status, _, answer = request(daemon, "POST", "/api/traffic/limits/schedule", headers=JSON,
                                chunks=[json.dumps({"mac": RULE["mac"], "time_slot": RULE["time_slot"]}).encode()])
    assert status == 400 and json.loads(answer)["status"] == "error"  # a chunked bad body: a clear 400
    status, _, answer = request(daemon, "DELETE", "/api/traffic/limits/schedule", headers=JSON,
                                chunks=[json.dumps({"mac": RULE["mac"], "time_slot": RULE["time_slot"]}).encode()])
    assert status == 200, answer
    assert b"123456" not in uci_text(daemon)


def test_the_rpc_path_takes_a_chunked_body(daemon):
    status, _, answer = request(daemon, "POST", "/api/rpc?method=devices", headers=JSON, chunks=[b"{", b"}"])
    body = json.loads(answer)
    assert status == 200 and body["status"] == "success" and body["data"]["value_fields"][0] == "wan_rx_rate"


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", "application/jsonx"])
def test_a_body_that_is_not_json_is_refused_with_415_and_changes_nothing(daemon, content_type):
    before = uci_text(daemon)
    headers = {"Content-Type": content_type} if content_type else {}
    for chunks in (None, [json.dumps(RULE).encode()]):
        status, headers_got, answer = request(daemon, "POST", "/api/traffic/limits/schedule", headers=headers,
                                              body=None if chunks else json.dumps(RULE).encode(), chunks=chunks)
        assert status == 415, answer
        assert headers_got["content-type"] == "application/json"
        assert json.loads(answer) == {"status": "error", "message": "a request body must be application/json"}
    assert uci_text(daemon) == before


def test_bodies_and_heads_beyond_the_limits_are_refused(daemon):
    before = uci_text(daemon)
    big = b'{"mac": "' + b"a" * (64 * 1024) + b'"}'
    status, _, _ = request(daemon, "POST", "/api/traffic/bindings", body=big, headers=JSON)
    assert status == 413
    status, _, _ = request(daemon, "POST", "/api/traffic/bindings", headers=JSON,
                           chunks=[big[i:i + 4096] for i in range(0, len(big), 4096)])
    assert status == 413
    status, _, _ = request(daemon, "GET", "/api/traffic/devices", headers={"X-Filler": "x" * (17 * 1024)})
    assert status == 431
    assert uci_text(daemon) == before
    assert daemon.get("/api/traffic/devices")[0] == 200


@pytest.mark.parametrize(("method", "path", "headers", "body", "status"), [
    ("GET", "/api/no/such/thing", {}, None, 404),
    ("GET", "/nothing.js", {}, None, 404),
    ("PATCH", "/api/traffic/devices", {}, None, 405),
    ("POST", "/api/traffic/bindings", JSON, b"{not json", 400),
    ("POST", "/api/traffic/bindings", JSON, b"", 400),
    ("GET", "/api/traffic/metrics?mac=zz", {}, None, 400),
    ("GET", "/", {"Host": "rebind.attacker.example"}, None, 421),
    ("POST", "/api/traffic/bindings", {**JSON, "Origin": "http://evil.example"}, b"{}", 403),
])
def test_errors_come_in_the_json_envelope(daemon, method, path, headers, body, status):
    got, headers_got, answer = request(daemon, method, path, body=body, headers=headers)
    assert got == status, answer
    assert headers_got["content-type"] == "application/json"
    parsed = json.loads(answer)
    assert parsed["status"] == "error" and isinstance(parsed["message"], str) and parsed["message"]
    assert "access-control-allow-origin" not in headers_got and "server" not in headers_got


def test_keep_alive_serves_several_requests_on_one_connection(daemon):
    conn = _NsConnection(daemon.ns, "127.0.0.1", daemon.port)
    try:
        for _ in range(3):
            conn.request("GET", "/api/dashboard/devices")
            resp = conn.getresponse()
            assert resp.status == 200 and json.loads(resp.read())["status"] == "success"
    finally:
        conn.close()


class StalledClients:
    """IDLE_CLIENTS connections that send nothing and SLOW_CLIENTS that send a request
    head one byte every SLOW_BYTE_S, to the daemon's loopback inside the router
    namespace only; all closed on exit."""

    def __init__(self, daemon) -> None:
        self._daemon = daemon
        self._socks: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drip, daemon=True)

    def __enter__(self) -> StalledClients:
        for _ in range(IDLE_CLIENTS + SLOW_CLIENTS):
            s = self._daemon.ns.socket()
            s.settimeout(5)
            s.connect(("127.0.0.1", self._daemon.port))
            self._socks.append(s)
        self._thread.start()
        return self

    def _drip(self) -> None:
        head = b"GET /api/traffic/devices HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"x" * 100
        sent = 0
        while not self._stop.is_set() and sent < len(head):
            for s in self._socks[IDLE_CLIENTS:]:
                s.send(head[sent:sent + 1])
            sent += 1
            self._stop.wait(SLOW_BYTE_S)

    def alive(self) -> int:
        """How many of the stalled connections the daemon still holds open."""
        count = 0
        for s in self._socks:
            s.setblocking(False)
            try:
                count += s.recv(1) != b""
            except BlockingIOError:
                count += 1
            except OSError:
                pass
            finally:
                s.setblocking(True)
        return count

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(SLOW_BYTE_S + 1)
        for s in self._socks:
            s.close()


def test_stalled_clients_do_not_hold_up_the_dashboard_rpc_or_prometheus(daemon):
    asks = {
        "dashboard": ("GET", "/api/dashboard/devices", None),
        "rpcd plugin": ("POST", "/api/rpc?method=devices", [b"{}"]),
        "prometheus": ("GET", "/metrics", None),
    }
    worst: dict[str, float] = {}
    with StalledClients(daemon) as stalled:
        deadline = time.monotonic() + STALL_S
        while time.monotonic() < deadline:
            for name, (method, path, chunks) in asks.items():
                started = time.monotonic()
                status, _, _ = request(daemon, method, path, headers=JSON if chunks else {}, chunks=chunks,
                                       timeout=1.0)
                took = time.monotonic() - started
                assert status == 200, name
                worst[name] = max(worst.get(name, 0.0), took)
            time.sleep(0.5)
        held = stalled.alive()
    print("slowest answers with 200 stalled connections:", {k: f"{v * 1000:.0f} ms" for k, v in worst.items()})
    assert all(v < 1.0 for v in worst.values()), worst
    assert held == IDLE_CLIENTS + SLOW_CLIENTS  # they really were open the whole time
    assert daemon.proc.poll() is None


def test_http_1_0_and_a_request_without_host_are_answered(daemon):
    s = daemon.ns.socket()
    s.settimeout(5)
    s.connect(("127.0.0.1", daemon.port))
    s.sendall(b"GET /api/traffic/devices HTTP/1.0\r\n\r\n")
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200") and json.loads(body)["status"] == "success"
