"""The API's HTTP server (bandix/api/server.py) on the wire: keep-alive and
pipelining, bodies and 100-continue, the limits and refusals, connection
bounds, idle timeout and stop. Clients are http.client, curl and raw sockets;
the app is a probe that echoes what the server handed it, so every field of
the WSGI environ and every byte of the answer is checked.
"""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import threading
import time
from email.utils import parsedate_to_datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bandix.api.server import MAX_BODY, MAX_HEAD, ApiServer


class Probe:
    """A WSGI app that answers with the request it saw, and counts calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, environ: dict, start_response):
        self.calls += 1
        path = environ["PATH_INFO"]
        if path == "/fail":
            raise RuntimeError("the probe fails on purpose")
        if path == "/empty":
            start_response("204 No Content", [])
            return []
        body = environ["wsgi.input"].read()
        seen = {k: v for k, v in environ.items() if isinstance(v, str)}
        seen["body"] = body.decode("latin-1")
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "999")])
        return [json.dumps(seen).encode()[:10], json.dumps(seen).encode()[10:]]  # parts, and a wrong length


@pytest.fixture
def server():
    probe = Probe()
    started: list[ApiServer] = []

    def start(**kw) -> tuple[ApiServer, Probe]:
        srv = ApiServer(probe, "127.0.0.1", 0, **kw)
        srv.start()
        started.append(srv)
        return srv, probe

    yield start
    for srv in started:
        srv.stop()


def raw(port: int, data: bytes, timeout: float = 3) -> bytes:
    """Send bytes and end the request stream, read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
        return out


def parse(response: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """Split a byte stream of responses into (status, headers, body) by their Content-Length."""
    out = []
    while response:
        head, _, rest = response.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:])
        size = int(headers.get("Content-Length", "0"))
        out.append((int(lines[0].split()[1]), headers, rest[:size]))
        response = rest[size:]
    return out


def test_keep_alive_serves_many_requests_on_one_connection_with_exact_lengths(server):
    srv, probe = server()
    conn = http.client.HTTPConnection(*srv.address)
    ports = set()
    for i in range(3):
        conn.request("GET", f"/api/x%20y?n={i}&a=%41", headers={"X-Thing": "v"})
        resp = conn.getresponse()
        seen = json.loads(resp.read())
        assert resp.status == 200 and resp.getheader("Server") == "bandix"
        assert abs(parsedate_to_datetime(resp.getheader("Date")).timestamp() - time.time()) < 2
        assert int(resp.getheader("Content-Length")) == len(json.dumps(seen))  # the app's 999 replaced
        assert seen["PATH_INFO"] == "/api/x y" and seen["QUERY_STRING"] == f"n={i}&a=%41"
        assert seen["REQUEST_METHOD"] == "GET" and seen["SERVER_PROTOCOL"] == "HTTP/1.1"
        assert seen["HTTP_X_THING"] == "v" and seen["SCRIPT_NAME"] == "" and seen["REMOTE_ADDR"] == "127.0.0.1"
        ports.add(seen["REMOTE_PORT"])
    assert len(ports) == 1 and probe.calls == 3
    conn.close()


def test_pipelined_requests_are_answered_in_order(server):
    srv, _ = server()
    stream = b"\r\n".join(f"GET /{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for i in range(5))  # a stray CRLF
    answers = parse(raw(srv.address[1], stream + b"GET /last HTTP/1.1\r\nConnection: close\r\n\r\n"))
    assert [json.loads(body)["PATH_INFO"] for _, _, body in answers] == ["/0", "/1", "/2", "/3", "/4", "/last"]
    assert answers[-1][1]["Connection"] == "close" and "Connection" not in answers[0][1]


def test_http_1_0_closes_unless_asked_to_keep_alive(server):
    srv, _ = server()
    (status, headers, _), = parse(raw(srv.address[1], b"GET / HTTP/1.0\r\n\r\n"))
    assert status == 200 and headers["Connection"] == "close"
    with socket.create_connection(srv.address, timeout=3) as sock:
        for _ in range(2):
            sock.sendall(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
            head = sock.recv(65536)
            assert b"Connection: keep-alive\r\n" in head


def test_bodies_arrive_whole_and_100_continue_is_answered(server):
    srv, probe = server()
    body = bytes(range(256)) * 40
    conn = http.client.HTTPConnection(*srv.address)
    conn.request("POST", "/in", body=body, headers={"Content-Type": "application/octet-stream"})
    seen = json.loads(conn.getresponse().read())
    assert seen["body"].encode("latin-1") == body and seen["CONTENT_LENGTH"] == str(len(body))
    assert seen["CONTENT_TYPE"] == "application/octet-stream" and "HTTP_CONTENT_TYPE" not in seen
    with socket.create_connection(srv.address, timeout=3) as sock:
        sock.sendall(b"POST /in HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hello")
        (status, _, answer), = parse(sock.recv(65536))
        assert status == 200 and json.loads(answer)["body"] == "hello"
    # curl sends Expect: 100-continue for a large body and waits for it.
    out = subprocess.run(["curl", "-s", "--max-time", "5", "-w", "\n%{time_total}", "--data-binary", "@-",
                          "-H", "Expect: 100-continue", f"http://127.0.0.1:{srv.address[1]}/curl"],
                         input=b"z" * 200_000, capture_output=True, check=True).stdout
    answer, elapsed = out.rsplit(b"\n", 1)
    assert json.loads(answer)["body"] == "z" * 200_000 and float(elapsed) < 0.9  # curl waits 1 s without the 100


@pytest.mark.parametrize("request_bytes, status, words", [
    (b"GARBAGE\r\n\r\n", 400, "request line"),
    (b"\r\n" * 9 + b"GET / HTTP/1.1\r\n\r\n", 400, "request line"),
    (b"GET http://elsewhere/ HTTP/1.1\r\n\r\n", 400, "request line"),
    (b"GET / HTTP/2.0\r\n\r\n", 505, "HTTP/1.1"),
    (b"GET / SPDY\r\n\r\n", 400, "HTTP/1.1"),
    (b"GET /\xff HTTP/1.1\r\n\r\n", 400, "ASCII"),
    (b"GET /?q=\xc3\xa9 HTTP/1.1\r\n\r\n", 400, "ASCII"),
    (b"GET /" + b"a" * MAX_HEAD + b" HTTP/1.1\r\n\r\n", 431, "too long"),
    (b"GET / HTTP/1.1\r\nX: " + b"a" * MAX_HEAD + b"\r\n\r\n", 431, "limited"),
    (b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 101 + b"\r\n", 431, "header fields"),
    (b"GET / HTTP/1.1\r\nBad Name: y\r\n\r\n", 400, "header field"),
    (b"GET / HTTP/1.1\r\nX: y\r\n folded\r\n\r\n", 400, "header field"),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 411, "Content-Length"),
    (b"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nhello", 400, "Content-Length"),
    (b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400, "Content-Length"),
    (b"POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\n", 400, "Content-Length"),
    (b"POST / HTTP/1.1\r\nContent-Length: \xd9\xa3\r\n\r\n", 400, "Content-Length"),
    (f"POST / HTTP/1.1\r\nContent-Length: {MAX_BODY + 1}\r\n\r\n".encode(), 413, "limited"),
])
def test_bad_requests_get_a_clear_answer_and_never_reach_the_app(server, request_bytes, status, words):
    srv, probe = server()
    (got, headers, body), = parse(raw(srv.address[1], request_bytes))
    assert got == status and headers["Connection"] == "close"
    assert json.loads(body)["status"] == "error" and words in json.loads(body)["message"]
    assert probe.calls == 0
    conn = http.client.HTTPConnection(*srv.address)  # and the server still serves
    conn.request("GET", "/after")
    assert conn.getresponse().status == 200


def test_headers_repeated_are_joined_and_underscored_names_are_dropped(server):
    srv, _ = server()
    (_, _, body), = parse(raw(srv.address[1], b"GET / HTTP/1.1\r\nAccept: a\r\nAccept:  b \r\nX_Forwarded: evil\r\n"
                                               b"X-Forwarded: good\r\nConnection: close\r\n\r\n"))
    seen = json.loads(body)
    assert seen["HTTP_ACCEPT"] == "a, b" and seen["HTTP_X_FORWARDED"] == "good"


def test_head_204_and_a_failing_app(server):
    srv, probe = server()
    conn = http.client.HTTPConnection(*srv.address)
    conn.request("HEAD", "/h")
    resp = conn.getresponse()
    assert resp.status == 200 and int(resp.getheader("Content-Length")) > 0 and resp.read() == b""
    conn.request("GET", "/empty")
    resp = conn.getresponse()
    assert resp.status == 204 and resp.getheader("Content-Length") is None and resp.read() == b""
    conn.request("GET", "/fail")
    resp = conn.getresponse()
    assert resp.status == 500 and json.loads(resp.read())["status"] == "error"
    conn = http.client.HTTPConnection(*srv.address)
    conn.request("GET", "/still")
    assert conn.getresponse().status == 200 and probe.calls == 4


def test_quick_gets_are_answered_without_the_app_unless_they_decline(server):
    asked = []

    def quick(query: str) -> bytes | None:
        asked.append(query)
        if query == "boom":
            raise RuntimeError("the quick answer fails on purpose")
        return b'{"quick":1}' if query in ("", "known=1") else None

    srv, probe = server(quick_get={"/q": quick})
    conn = http.client.HTTPConnection(*srv.address)
    for target in ("/q", "/q?known=1"):
        conn.request("GET", target)
        resp = conn.getresponse()
        assert (resp.status, resp.read(), resp.getheader("Content-Type")) == (200, b'{"quick":1}', "application/json")
        assert resp.getheader("Content-Length") == "11" and resp.getheader("Server") == "bandix"
    assert probe.calls == 0
    conn.request("GET", "/q?other=2")  # declined: the app answers (and would answer its errors)
    resp = conn.getresponse()
    assert resp.status == 200 and json.loads(resp.read())["QUERY_STRING"] == "other=2" and probe.calls == 1
    conn.request("HEAD", "/q")  # GET only
    conn.getresponse().read()
    conn.request("GET", "/q?boom")
    resp = conn.getresponse()
    assert resp.status == 500 and json.loads(resp.read())["status"] == "error"
    conn.request("GET", "/q")  # the connection goes on
    assert conn.getresponse().read() == b'{"quick":1}'
    assert asked == ["", "known=1", "other=2", "boom", ""] and probe.calls == 2


def test_connections_are_bounded_and_idle_ones_time_out(server):
    srv, _ = server(max_connections=2, idle_timeout_s=1.0)
    idle = [socket.create_connection(srv.address, timeout=3) for _ in range(2)]
    time.sleep(0.2)
    (status, _, body), = parse(raw(srv.address[1], b"GET / HTTP/1.1\r\n\r\n"))
    assert status == 503 and "too many connections" in json.loads(body)["message"]
    t0 = time.monotonic()
    assert idle[0].recv(1) == b""  # closed by the server after the idle timeout
    assert 0.6 < time.monotonic() - t0 < 2.0
    for sock in idle:
        sock.close()
    time.sleep(0.2)
    assert parse(raw(srv.address[1], b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n"))[0][0] == 200


def test_a_client_leaving_mid_body_is_not_served(server):
    srv, probe = server()
    with socket.create_connection(srv.address, timeout=3) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\nonly this")
    time.sleep(0.3)
    assert probe.calls == 0


def test_stop_closes_open_connections_and_frees_the_port(server):
    srv, _ = server()
    port = srv.address[1]
    clients = [http.client.HTTPConnection("127.0.0.1", port) for _ in range(3)]
    for conn in clients:
        conn.request("GET", "/")
        conn.getresponse().read()
    before = threading.active_count()
    t0 = time.monotonic()
    srv.stop()
    assert time.monotonic() - t0 < 1.0
    assert threading.active_count() == before - 4  # the accept thread and one per connection
    again = ApiServer(Probe(), "127.0.0.1", port)  # the port is free at once
    again.stop()


def test_a_busy_port_fails_at_construction():
    with socket.create_server(("127.0.0.1", 0)) as taken, pytest.raises(OSError):
        ApiServer(Probe(), "127.0.0.1", taken.getsockname()[1])


@pytest.fixture(scope="module")
def fuzz_server():
    srv = ApiServer(Probe(), "127.0.0.1", 0, idle_timeout_s=0.3)
    srv.start()
    yield srv
    srv.stop()


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=300),
                 st.builds(lambda a, b: a + b, st.sampled_from([b"GET / HTTP/1.1\r\n", b"POST /x HTTP/1.0\r\n",
                                                                b"GET / HTTP/1.1\r\nContent-Length: 3\r\n"]),
                           st.binary(max_size=200))))
def test_any_bytes_get_an_http_answer_or_a_close_and_the_server_goes_on(fuzz_server, data):
    out = raw(fuzz_server.address[1], data)
    assert out == b"" or out.startswith(b"HTTP/1.1 ")
    conn = http.client.HTTPConnection(*fuzz_server.address, timeout=3)
    conn.request("GET", "/alive")
    assert conn.getresponse().status == 200
