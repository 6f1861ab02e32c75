"""Connection statistics against the kernel's own conntrack view, IPv4 and IPv6.

Connections are made with sockets the test holds inside the client and server
namespaces, and driven into the states counted. The ground truth is
/proc/net/nf_conntrack of the router, read right after the daemon's dump (the
daemon itself only uses netlink). The router's loopback is not tracked during
the test, so the test's own API requests cannot shift the figures.
"""

import ipaddress
import math
import socket
import time

import pytest

from tests.test_api import OPENAPI

ESTABLISHED, TIME_WAIT, CLOSE_WAIT = {"ESTABLISHED"}, {"FIN_WAIT", "LAST_ACK", "TIME_WAIT", "CLOSE"}, {"CLOSE_WAIT"}
PORT, CLOSING_PORT, DROPPED_PORT = 7000, 7001, 7099  # CLOSING_PORT: only connections the test closes


def conntrack_view(vrouter) -> list[dict]:
    """The router's conntrack entries: protocol, TCP state and original source address."""
    out = []
    for line in vrouter.router.run(["cat", "/proc/net/nf_conntrack"]).stdout.splitlines():
        fields = line.split()
        proto = fields[2]
        state = fields[5] if proto == "tcp" else ""
        src = next(f[4:] for f in fields if f.startswith("src="))  # IPv6 fully expanded here
        out.append({"proto": proto, "state": state, "src": str(ipaddress.ip_address(src))})
    return out


def expected_counts(entries: list[dict]) -> dict:
    tcp = [e for e in entries if e["proto"] == "tcp"]
    udp = [e for e in entries if e["proto"] == "udp"]
    return {"total_connections": len(tcp) + len(udp), "tcp_connections": len(tcp), "udp_connections": len(udp),
            "established_tcp": sum(e["state"] in ESTABLISHED for e in tcp),
            "time_wait_tcp": sum(e["state"] in TIME_WAIT for e in tcp),
            "close_wait_tcp": sum(e["state"] in CLOSE_WAIT for e in tcp)}


class Connections:
    """Sockets held for the test's duration, in the states it asks for."""

    def __init__(self) -> None:
        self.held: list[socket.socket] = []

    def listen(self, ns, host: str, port: int = PORT) -> socket.socket:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        srv = ns.socket(family)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind((host, port))
        srv.listen(128)
        self.held.append(srv)
        return srv

    def connect(self, client, host: str, port: int = PORT) -> socket.socket:
        s = client.ns.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        s.connect((host, port))
        self.held.append(s)
        return s

    def established(self, client, host: str, n: int) -> None:
        for _ in range(n):
            self.connect(client, host)

    def close_wait(self, client, host: str, n: int) -> None:
        """The device sent its FIN, the server's side stays open: CLOSE_WAIT."""
        for _ in range(n):
            self.connect(client, host).shutdown(socket.SHUT_WR)

    def time_wait(self, client, server: socket.socket, host: str, n: int) -> None:
        """Both sides closed: TIME_WAIT. `server` listens on CLOSING_PORT, so accept() returns this connection."""
        for _ in range(n):
            s = self.connect(client, host, CLOSING_PORT)
            conn, _ = server.accept()
            s.close()
            conn.close()

    def syn_sent(self, client, host: str) -> None:
        s = client.ns.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        s.setblocking(False)
        s.connect_ex((host, DROPPED_PORT))
        self.held.append(s)

    def udp(self, client, host: str, n: int) -> None:
        for _ in range(n):
            s = client.ns.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
            s.sendto(b"hello", (host, PORT))
            self.held.append(s)

    def close(self) -> None:
        for s in self.held:
            s.close()


@pytest.fixture
def connections(vrouter):
    vrouter.router.run(["nft", "add table inet bxraw; "
                        "add chain inet bxraw pre { type filter hook prerouting priority -300 ; } ; "
                        "add chain inet bxraw out { type filter hook output priority -300 ; } ; "
                        "add rule inet bxraw pre iif lo notrack ; add rule inet bxraw out oif lo notrack"])
    vrouter.internet.run(["nft", f"add table inet bxdrop; add chain inet bxdrop in "
                          f"{{ type filter hook input priority 0 ; }} ; "
                          f"add rule inet bxdrop in tcp dport {DROPPED_PORT} drop"])
    made = Connections()
    yield made
    made.close()


def wait_for_dump(daemon, after: float) -> dict:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        status, body = daemon.get("/api/connection/devices")
        assert status == 200
        if body["data"]["last_updated"] > after:
            return body["data"]
        time.sleep(0.3)
    raise AssertionError("no conntrack dump after the set-up")


def test_counts_per_device_and_globally_equal_the_kernel_view(vrouter, bandix, connections):
    import jsonschema

    c1, c2 = vrouter.clients[0], vrouter.clients[1]
    v4, v6 = vrouter.bridge_addresses("br-lan")
    connections.listen(vrouter.internet, vrouter.SERVER_V4)
    connections.listen(vrouter.internet, vrouter.SERVER_V6)
    server4 = connections.listen(vrouter.internet, vrouter.SERVER_V4, CLOSING_PORT)
    server6 = connections.listen(vrouter.internet, vrouter.SERVER_V6, CLOSING_PORT)
    connections.listen(vrouter.router, v4)
    connections.listen(vrouter.router, v6)
    daemon = bandix("--enable-connection", "--connection-interval-seconds", "1")

    connections.established(c1, vrouter.SERVER_V4, 3)
    connections.established(c1, v4, 2)  # to the router itself
    connections.established(c1, vrouter.SERVER_V6, 2)
    connections.close_wait(c1, vrouter.SERVER_V4, 2)
    connections.time_wait(c1, server4, vrouter.SERVER_V4, 2)
    connections.syn_sent(c1, vrouter.SERVER_V4)
    connections.udp(c1, vrouter.SERVER_V4, 2)
    connections.established(c2, vrouter.SERVER_V6, 1)
    connections.close_wait(c2, v6, 1)
    connections.time_wait(c2, server6, vrouter.SERVER_V6, 1)
    connections.udp(c2, vrouter.SERVER_V6, 1)
    time.sleep(0.5)  # the last handshakes and FINs settle
    data = wait_for_dump(daemon, time.time())
    entries = conntrack_view(vrouter)

    jsonschema.Draft202012Validator({"$ref": "#/components/schemas/ConnectionDevicesResponse",
                                     "components": OPENAPI["components"]}).validate({"status": "success",
                                                                                     "data": data})
    assert {k: v for k, v in data["global_stats"].items() if k != "last_updated"} == expected_counts(entries)
    devices = {d["mac_address"]: d for d in data["devices"]}
    for c, wanted in ((c1, dict(tcp=12, udp=2, est=7, tw=2, cw=2)), (c2, dict(tcp=3, udp=1, est=1, tw=1, cw=1))):
        own = [e for e in entries if e["src"] in (c.ipv4, c.ipv6)]
        got = {k: v for k, v in devices[c.mac].items() if k not in ("mac_address", "ip_address", "last_updated")}
        assert got == expected_counts(own), c.name
        assert (got["tcp_connections"], got["udp_connections"], got["established_tcp"], got["time_wait_tcp"],
                got["close_wait_tcp"]) == tuple(wanted.values()), c.name
        assert devices[c.mac]["ip_address"] == c.ipv4
    assert data["total_devices"] == 2 and data["partial"] is False


def test_flows_list_a_device_page_by_page(vrouter, bandix, connections):
    c1 = vrouter.clients[0]
    connections.listen(vrouter.internet, vrouter.SERVER_V4)
    connections.listen(vrouter.internet, vrouter.SERVER_V6)
    server = connections.listen(vrouter.internet, vrouter.SERVER_V4, CLOSING_PORT)
    daemon = bandix("--enable-connection", "--connection-interval-seconds", "1")
    connections.established(c1, vrouter.SERVER_V4, 5)
    connections.established(c1, vrouter.SERVER_V6, 2)
    connections.time_wait(c1, server, vrouter.SERVER_V4, 2)
    connections.udp(c1, vrouter.SERVER_V4, 3)
    time.sleep(0.5)
    total = sum(1 for e in conntrack_view(vrouter) if e["src"] in (c1.ipv4, c1.ipv6))
    assert total == 12
    seen = []
    for page in range(1, 5):
        status, body = daemon.get(f"/api/connection/flows?mac={c1.mac}&page={page}&page_size=5")
        assert status == 200
        data = body["data"]
        assert (data["total"], data["page"], data["page_size"], data["total_pages"]) == (12, page, 5, 3)
        assert len(data["flows"]) == [5, 5, 2, 0][page - 1]
        seen += [(f["protocol"], f["original"]["src"], f["original"]["sport"], f["original"]["dport"])
                 for f in data["flows"]]
    assert len(set(seen)) == 12
    flow = next(f for f in daemon.get(f"/api/connection/flows?mac={c1.mac}&proto=tcp&state=established")[1]
                ["data"]["flows"] if ":" in f["original"]["src"])
    assert flow["state"] == "ESTABLISHED" and flow["original"]["dst"] == vrouter.SERVER_V6
    assert flow["reply"]["src"] == vrouter.SERVER_V6 and flow["original"]["dport"] in (PORT, CLOSING_PORT)
    assert flow["age_seconds"] is not None and 0 <= flow["age_seconds"] < 60
    assert flow["orig_packets"] >= 2 and flow["orig_bytes"] > 0 and flow["reply_packets"] >= 1
    tcp = daemon.get(f"/api/connection/flows?mac={c1.mac}&proto=tcp&page_size=1000")[1]["data"]
    udp = daemon.get(f"/api/connection/flows?mac={c1.mac}&proto=UDP")[1]["data"]
    established = daemon.get(f"/api/connection/flows?mac={c1.mac}&state=ESTABLISHED")[1]["data"]
    assert (tcp["total"], udp["total"], established["total"]) == (9, 3, 7)
    assert all(f["reply"]["dst"] == vrouter.WAN_V4 for f in udp["flows"])  # NAT seen in the reply tuple
    assert math.ceil(9 / 1000) == tcp["total_pages"]


@pytest.mark.parametrize("query, message", [
    ("", "mac: required"),
    ("?mac=nope", "mac:"),
    ("?mac=02:bd:00:00:00:01&page=0", "page:"),
    ("?mac=02:bd:00:00:00:01&page=x", "page:"),
    ("?mac=02:bd:00:00:00:01&page_size=1001", "page_size:"),
    ("?mac=02:bd:00:00:00:01&proto=smtp", "proto:"),
    ("?mac=02:bd:00:00:00:01&state=sleeping", "state:"),
])
def test_flows_refuse_bad_queries(vrouter, bandix, query, message):
    daemon = bandix("--enable-connection")
    status, body = daemon.get(f"/api/connection/flows{query}")
    assert status == 400 and body["message"].startswith(message), body


def test_off_unless_enabled(vrouter, bandix):
    daemon = bandix()
    status, body = daemon.get("/api/connection/devices")
    assert status == 503 and "--enable-connection" in body["message"]


def test_partial_when_the_table_is_larger_than_the_cap(vrouter, bandix, connections):
    c1 = vrouter.clients[0]
    daemon = bandix("--enable-connection", "--connection-interval-seconds", "1", "--connection-max-entries", "100")
    connections.udp(c1, vrouter.SERVER_V4, 150)
    data = wait_for_dump(daemon, time.time())
    assert data["partial"] is True
    assert data["global_stats"]["udp_connections"] == 100
    assert "more than 100 entries" in daemon.log()
    flows = daemon.get(f"/api/connection/flows?mac={c1.mac}")[1]["data"]
    assert flows["partial"] is True and flows["total"] <= 100
