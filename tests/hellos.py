"""Clients that open TLS and QUIC the way the flow tests need, from a client namespace.

`python -m tests.hellos quic HOST SNI [VERSION]` sends the Initial packets of a
real QUIC implementation (aioquic) to HOST:443 from one UDP socket.
`python -m tests.hellos split-tls HOST SNI` sends a real ClientHello (OpenSSL,
through Python's ssl) to HOST:443 in two TCP segments, the server name in the
second, as a hello too big for one packet arrives.
Both print the local port they used.
"""

from __future__ import annotations

import socket
import ssl
import sys
import time


def quic(host: str, sni: str, version: int = 1) -> None:
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.connection import QuicConnection

    config = QuicConfiguration(is_client=True, server_name=sni, alpn_protocols=["h3"],
                               supported_versions=[version])
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.connect((host, 443))
    conn = QuicConnection(configuration=config)
    now = time.time()
    conn.connect((host, 443), now=now)
    for datagram, _addr in conn.datagrams_to_send(now=now):
        sock.send(datagram)
    print(sock.getsockname()[1], flush=True)


def split_tls(host: str, sni: str) -> None:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname=sni)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = outgoing.read()
    cut = hello.index(sni.encode()) - 4  # the second segment starts before the name
    sock = socket.create_connection((host, 443))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.send(hello[:cut])
    time.sleep(0.2)
    sock.send(hello[cut:])
    sock.settimeout(3)
    try:
        sock.recv(65536)  # the server's answer: the hello was whole
    except OSError:
        pass
    print(sock.getsockname()[1], flush=True)
    sock.close()


if __name__ == "__main__":
    if sys.argv[1] == "quic":
        quic(sys.argv[2], sys.argv[3], int(sys.argv[4], 0) if len(sys.argv) > 4 else 1)
    else:
        split_tls(sys.argv[2], sys.argv[3])
