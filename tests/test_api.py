"""The HTTP API against its OpenAPI document, its error envelope, and bad input."""

import json
from pathlib import Path

import jsonschema
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.bandixd import http_get

OPENAPI = json.loads((Path(__file__).resolve().parents[1] / "bandix/api/openapi.json").read_text())


def validate(body, schema_name: str) -> None:
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": OPENAPI["components"]}
    jsonschema.Draft202012Validator(schema).validate(body)


@pytest.fixture(scope="module")
def api_router(tmp_path_factory):
    """One router and daemon for this module: these tests only read, or send bad input."""
    from tests.bandixd import busy_router

    data = tmp_path_factory.mktemp("data")
    with busy_router(["--enable-traffic", "--enable-connection", "--enable-dns", "--enable-flows",
                      "--data-dir", str(data), "--web-log"]) as shared:
        yield shared


@pytest.fixture
def vrouter(api_router):
    return api_router[0]


@pytest.fixture
def busy(api_router):
    daemon = api_router[1]
    assert daemon.proc.poll() is None, "a request crashed the daemon"
    return daemon


def test_devices_and_metrics_match_the_document(vrouter, busy):
    status, body = busy.get("/api/traffic/devices")
    assert status == 200
    validate(body, "DevicesResponse")
    assert len(body["data"]["devices"]) == len(vrouter.clients)

    mac = vrouter.clients[0].mac
    for query, expected_mac in (("", "all"), ("?mac=all", "all"), ("?mac=ALL", "all"),
                                (f"?mac={mac}", mac), (f"?mac={mac.upper().replace(':', '-')}", mac)):
        status, body = busy.get(f"/api/traffic/metrics{query}")
        assert status == 200, query
        validate(body, "MetricsResponse")
        assert body["data"]["mac"] == expected_mac
        assert body["data"]["retention_seconds"] == 600
        assert len(body["data"]["metrics"]) >= 2


def test_every_path_in_the_document_is_served(vrouter, busy):
    for path, item in OPENAPI["paths"].items():
        if "get" not in item:  # POST only (login, logout, whitelist/enabled): served, but not to a GET
            assert http_get(busy.ns, path, busy.port)[0] == 405, path
            continue
        required = [p["name"] for p in item["get"].get("parameters", []) if p.get("required")]
        query = "?" + "&".join(f"{name}={vrouter.clients[0].mac}" for name in required) if required else ""
        status, _, _ = http_get(busy.ns, path + query, busy.port)
        assert status == 200, path
    status, body = busy.get("/api/openapi.json")
    assert body == OPENAPI


@pytest.mark.parametrize("query, status, message", [
    ("?mac=zz", 400, "not a MAC address"),
    ("?mac=02:bd:00:00:00", 400, "not a MAC address"),
    ("?mac=02:bd:00:00:00:01%00", 400, "not a MAC address"),
    ("?mac=02:bd:00:00:00:01&mac=all", 400, "more than once"),
    ("?mac=02:bd:00:00:00:99", 404, "no traffic seen"),
])
def test_bad_queries_get_the_error_envelope(busy, query, status, message):
    got, body = busy.get(f"/api/traffic/metrics{query}")
    assert got == status
    validate(body, "Error")
    assert message in body["message"]


def test_unknown_paths_and_methods_get_json_errors(busy):
    for path in ("/api/nothing", "/api/traffic/devices/extra", "/nothing.js", "/index.html/x", "/%2e%2e/setup.py"):
        status, body = busy.get(path)
        assert status == 404, path
        validate(body, "Error")


def test_methods_other_than_get_are_refused(busy):
    from tests.bandixd import _NsConnection

    for method in ("POST", "PUT"):  # DELETE forgets a device (tests/test_usage.py)
        conn = _NsConnection(busy.ns, "127.0.0.1", busy.port)
        conn.request(method, "/api/traffic/devices", body=b"{not json", headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        body = json.loads(resp.read())
        conn.close()
        assert resp.status == 405, method
        validate(body, "Error")
    assert busy.get("/api/traffic/devices")[0] == 200  # still serving


def test_prometheus_exposition_parses(vrouter, busy):
    _, content_type, text = http_get(busy.ns, "/metrics", busy.port)
    assert content_type.startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["bandix_device_bytes"].type == "counter"
    macs = {s.labels["mac"] for s in families["bandix_device_bytes"].samples}
    assert macs == {c.mac for c in vrouter.clients}
    ips = {s.labels["mac"]: s.labels["ip"] for s in families["bandix_device_info"].samples}
    assert all(ips[c.mac] == c.ipv4 for c in vrouter.clients)
    assert {s.labels["event"] for s in families["bandix_collector_events"].samples} >= {
        "device_table_full", "truncated_ip_header"}


def test_web_log_records_requests(busy):
    busy.get("/api/traffic/devices?x=1")
    busy.get("/api/dashboard/devices")
    assert "GET /api/traffic/devices?x=1 200" in busy.log() and "GET /api/dashboard/devices 200" in busy.log()
