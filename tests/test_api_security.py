"""The attacks of issue 15, end to end on the virtual router.

The daemon listens on the LAN address (192.168.77.1). Attacks come from client
c1's namespace over the LAN (a guest or IoT device, or the owner's browser
running someone else's page) and, with forged headers, from the router itself.
Every refusal must leave the UCI file and the database byte for byte as they were.
"""

from __future__ import annotations

import json

import pytest

from bandix import uci
from tests.bandixd import _NsConnection

LAN = "192.168.77.1"
RULE = {"mac": "02:bd:00:00:01:01", "time_slot": {"start": "01:00", "end": "02:00", "days": [1]},
        "wan_rx_rate_limit": 1000, "wan_tx_rate_limit": 0}


@pytest.fixture(scope="module")
def lan_site(tmp_path_factory):
    from tests.bandixd import busy_router

    data = tmp_path_factory.mktemp("data")
    with busy_router(["--enable-traffic", "--enable-dns", "--traffic-persist-history", "--data-dir", str(data),
                      "--listen", LAN, "--allowed-host", "router.lan"]) as (vr, daemon):
        yield vr, daemon, data


def token_of(daemon) -> str:
    section = uci.load(daemon.config_dir / "bandix").named("config")
    return section.get("api_token")


def ask(ns, method: str, path: str, headers: dict | None = None, body: object = None,
        raw: bytes | None = None) -> tuple[int, dict, dict]:
    conn = _NsConnection(ns, LAN, 8686)
    try:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        conn.request(method, path, body=data, headers=headers or {})
        resp = conn.getresponse()
        text = resp.read()
        headers = {k.lower(): v for k, v in resp.getheaders()}
        return resp.status, headers, json.loads(text) if headers.get("content-type") == "application/json" else {}
    finally:
        conn.close()


def state(daemon, data) -> tuple[bytes, bytes]:
    """The UCI file and the database as bytes (the daemon saves history only when flushing)."""
    db = data / "bandix.db"
    return (daemon.config_dir / "bandix").read_bytes(), db.read_bytes() if db.exists() else b""


JSON = {"Content-Type": "application/json"}


def test_the_token_is_made_at_first_start_stored_in_uci_and_never_logged(lan_site):
    _, daemon, _ = lan_site
    token = token_of(daemon)
    assert token and len(token) == 32 and int(token, 16) >= 0
    assert token not in daemon.log()
    assert "uci get bandix.config.api_token" in daemon.log()


def test_a_lan_device_without_credentials_gets_401_and_nothing_else(lan_site):
    vr, daemon, data = lan_site
    guest = vr.clients[0].ns
    before = state(daemon, data)
    for method, path, body in (("GET", "/api/dns/queries", None), ("GET", "/api/traffic/devices", None),
                               ("GET", "/metrics", None), ("POST", "/api/traffic/limits/schedule", RULE),
                               ("GET", "/api/openapi.json", None)):
        status, headers, answer = ask(guest, method, path, JSON if body else {}, body)
        assert status == 401, (method, path)
        assert answer == {"status": "error", "message": "credentials required"}
        assert headers["www-authenticate"] == 'Bearer realm="bandix"'
    assert state(daemon, data) == before


def test_the_dashboard_files_and_login_are_open_and_the_cookie_works(lan_site):
    vr, daemon, data = lan_site
    guest = vr.clients[0].ns
    status, headers, _ = ask_raw_ok(guest, "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    status, headers, answer = ask(guest, "POST", "/api/login", JSON, {"token": token_of(daemon)})
    assert status == 200 and answer["status"] == "success"
    cookie = headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and cookie.startswith("bandix_session=")
    value = cookie.split(";")[0]
    status, _, answer = ask(guest, "GET", "/api/dns/queries", {"Cookie": value})
    assert status == 200 and answer["status"] == "success"
    forged = value[:-4] + ("0000" if not value.endswith("0000") else "1111")
    assert ask(guest, "GET", "/api/dns/queries", {"Cookie": forged})[0] == 401


def ask_raw_ok(ns, path: str) -> tuple[int, dict, bytes]:
    conn = _NsConnection(ns, LAN, 8686)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def test_a_bearer_token_opens_the_api_from_the_lan(lan_site):
    vr, daemon, _ = lan_site
    auth = {"Authorization": f"Bearer {token_of(daemon)}"}
    assert ask(vr.clients[1].ns, "GET", "/api/traffic/devices", auth)[0] == 200
    assert ask(vr.clients[1].ns, "GET", "/metrics", auth)[0] == 200


def test_wrong_tokens_are_rate_limited_per_address(lan_site):
    vr, daemon, data = lan_site
    attacker, other = vr.clients[2].ns, vr.clients[1].ns
    before = state(daemon, data)
    answers = [ask(attacker, "GET", "/api/traffic/devices", {"Authorization": f"Bearer wrong{i:028d}"})
               for i in range(7)]
    assert [a[0] for a in answers] == [401] * 5 + [429] * 2
    assert all(a[2] == {"status": "error", "message": "credentials required"} for a in answers[:5])
    assert int(answers[5][1]["retry-after"]) > 0
    # even the right token waits out the lockout; another address is not locked out
    good = {"Authorization": f"Bearer {token_of(daemon)}"}
    assert ask(attacker, "GET", "/api/traffic/devices", good)[0] == 429
    assert ask(other, "GET", "/api/traffic/devices", good)[0] == 200
    assert ask(attacker, "POST", "/api/login", JSON, {"token": "x" * 32})[0] == 429
    assert state(daemon, data) == before


@pytest.mark.parametrize("headers", [
    {"Content-Type": "text/plain", "Origin": "http://evil.example"},  # the simple request of any web page
    {"Content-Type": "application/json", "Origin": "http://evil.example"},
    {"Content-Type": "application/json", "Origin": "null"},
    {"Content-Type": "application/json", "Origin": f"http://{LAN}:8687"},
    {"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"},
    {"Content-Type": "text/plain"},
    {"Content-Type": "application/x-www-form-urlencoded"},
])
@pytest.mark.parametrize("where", ["lan", "router"])
def test_cross_site_writes_are_refused_and_change_nothing(lan_site, headers, where):
    vr, daemon, data = lan_site
    ns = vr.clients[0].ns if where == "lan" else vr.router
    auth = {"Authorization": f"Bearer {token_of(daemon)}"} if where == "lan" else {}
    before = state(daemon, data)
    for method, path in (("POST", "/api/traffic/limits/schedule"), ("DELETE", "/api/traffic/limits/schedule"),
                         ("POST", "/api/traffic/bindings"), ("POST", "/api/dns/config"),
                         ("POST", "/api/rpc?method=set_limit")):
        status, got, answer = ask(ns, method, path, {**headers, **auth}, RULE)
        assert status == (403 if "Origin" in headers or "Sec-Fetch-Site" in headers else 415), (method, path)
        assert answer["status"] == "error" and "access-control-allow-origin" not in got
    assert state(daemon, data) == before


def test_the_dashboard_own_origin_may_write(lan_site):
    vr, daemon, data = lan_site
    auth = {"Authorization": f"Bearer {token_of(daemon)}"}
    binding = {"mac": "02:bd:00:00:01:02", "hostname": "printer"}
    for host in (f"{LAN}:8686", "router.lan:8686"):
        status, got, answer = ask(vr.clients[0].ns, "POST", "/api/traffic/bindings",
                                  {**JSON, **auth, "Host": host, "Origin": f"http://{host}",
                                   "Sec-Fetch-Site": "same-origin"}, binding)
        assert status == 200, answer
        assert "access-control-allow-origin" not in got
    assert b"printer" in state(daemon, data)[0]
    ask(vr.router, "POST", "/api/traffic/bindings", JSON, {"mac": binding["mac"], "hostname": ""})


@pytest.mark.parametrize("host", ["rebind.attacker.example", "router.lan.attacker.example", "192.168.77.2",
                                  "10.0.0.1:8686", "[fd00::1]:8686", ""])
@pytest.mark.parametrize("path", ["/api/dns/queries", "/", "/app.js", "/api/login", "/metrics"])
def test_a_foreign_host_gets_421_on_every_path(lan_site, host, path):
    vr, daemon, _ = lan_site
    for ns in (vr.router, vr.clients[0].ns):
        status, got, answer = ask(ns, "GET", path, {"Host": host})
        assert status == 421, (host, path)
        assert got["content-type"] == "application/json" and answer["status"] == "error"
        assert "allowed_host" in answer["message"]


@pytest.mark.parametrize("host", [f"{LAN}:8686", "router.lan", "ROUTER.LAN.:8686", "localhost:8686",
                                  "127.0.0.1:8686", "[::1]:8686"])
def test_the_router_names_are_answered(lan_site, host):
    vr, _, _ = lan_site
    status, _, answer = ask(vr.router, "GET", "/api/traffic/devices", {"Host": host})
    assert status == 200 and answer["status"] == "success"


def test_forged_forwarding_headers_do_not_make_a_lan_client_local(lan_site):
    vr, _, _ = lan_site
    for forged in ({"X-Forwarded-For": "127.0.0.1"}, {"Forwarded": "for=127.0.0.1"}, {"X-Real-IP": "127.0.0.1"},
                   {"X-Forwarded-For": LAN}):
        assert ask(vr.clients[0].ns, "GET", "/api/dns/queries", forged)[0] == 401


def test_the_router_itself_needs_no_credentials(lan_site):
    vr, _, _ = lan_site
    status, _, answer = ask(vr.router, "GET", "/api/dns/queries")  # from the listen address
    assert status == 200 and answer["status"] == "success"


def test_metrics_public_opens_only_metrics(bandix, vrouter):
    daemon = bandix("--listen", LAN, "--metrics-public")
    guest = vrouter.clients[0].ns
    assert ask(guest, "GET", "/metrics")[0] == 200
    assert ask(guest, "GET", "/api/traffic/devices")[0] == 401
    daemon.stop()
