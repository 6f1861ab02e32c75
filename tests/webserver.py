"""Web servers for the flow tests, run in the internet namespace.

`python -m tests.webserver CERT KEY` answers on every address of the namespace,
IPv4 and IPv6: HTTP on TCP 80, HTTPS on TCP 443 and TLS on TCP 853 (DoT's
port; the same HTTP handler), and swallows UDP 443 (QUIC clients get no reply,
which is all the tests need: their Initial packets). `GET /N` answers N bytes.
"""

from __future__ import annotations

import socket
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHUNK = b"x" * 65536


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        try:
            size = int(self.path.strip("/").split("/")[-1] or 0)
        except ValueError:
            size = 0
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.send_header("Connection", "close")
        self.end_headers()
        while size > 0:
            self.wfile.write(CHUNK[: min(size, len(CHUNK))])
            size -= len(CHUNK)

    def log_message(self, *args) -> None:
        pass


class DualStackServer(ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def serve(port: int, tls: ssl.SSLContext | None) -> None:
    server = DualStackServer(("::", port), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()


def swallow_udp(port: int) -> None:
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind(("::", port))

    def drain() -> None:
        while True:
            sock.recv(65536)

    threading.Thread(target=drain, daemon=True).start()


def main(cert: str, key: str) -> None:
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    serve(80, None)
    serve(443, tls)
    serve(853, tls)
    swallow_udp(443)
    print("listening", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
