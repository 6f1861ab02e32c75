"""GET /metrics, parsed by prometheus_client's own parser, against the JSON API
of the same daemon: per-device counters, rates and limits, connections, DNS,
collector health."""

import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.bandixd import busy_router, http_get

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    data = tmp_path_factory.mktemp("data")
    with busy_router(["--enable-traffic", "--enable-connection", "--enable-dns", "--enable-flows",
                      "--data-dir", str(data), "--connection-interval-seconds", "1"]) as (vr, daemon):
        dns = vr.internet.popen([sys.executable, "-m", "tests.dnsserver", vr.SERVER_V4], cwd=ROOT,
                                stdout=subprocess.PIPE)
        assert dns.stdout.readline().strip() == b"listening"
        yield vr, daemon


def scrape(daemon) -> dict:
    status, content_type, text = http_get(daemon.ns, "/metrics", daemon.port)
    assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
    return {f.name: f for f in text_string_to_metric_families(text)}


def samples(family, **match) -> list:
    return [s for s in family.samples if all(s.labels.get(k) == v for k, v in match.items())]


def test_device_counters_rates_and_limits(site):
    vr, daemon = site
    c1, c3 = vr.clients[0], vr.clients[2]
    assert daemon.send("POST", "/api/traffic/bindings", {"mac": c3.mac, "hostname": "Printer"})[0] == 200
    rule = {"mac": c1.mac, "time_slot": {"start": "00:00", "end": "24:00", "days": [1, 2, 3, 4, 5, 6, 7]},
            "wan_rx_rate_limit": 125_000, "wan_tx_rate_limit": 0}
    assert daemon.send("POST", "/api/traffic/limits/schedule", rule)[0] == 200
    families = scrape(daemon)
    devices = daemon.devices()
    counters = families["bandix_device_bytes"]
    assert counters.type == "counter" and families["bandix_device_packets"].type == "counter"
    label_sets = {frozenset(s.labels) for s in counters.samples}
    assert label_sets == {frozenset({"mac", "zone", "direction"})}  # what changes (ip, hostname) is in info
    assert {s.labels["mac"] for s in counters.samples} == {c.mac for c in vr.clients}
    for c in vr.clients:  # idle since the pings: the two reads agree exactly
        for zone in ("lan", "wan"):
            for direction in ("rx", "tx"):
                (s,) = samples(counters, mac=c.mac, zone=zone, direction=direction)
                assert s.value == devices[c.mac][f"{zone}_{direction}_bytes"]
    info = {s.labels["mac"]: s for s in families["bandix_device_info"].samples}
    assert {mac: (s.labels["ip"], s.value) for mac, s in info.items()} == {c.mac: (c.ipv4, 1) for c in vr.clients}
    assert info[c3.mac].labels["hostname"] == "Printer"
    assert families["bandix_device_rate_bytes"].type == "gauge"
    limits = families["bandix_device_rate_limit_bytes"]
    assert samples(limits, mac=c1.mac, direction="rx")[0].value == 125_000
    assert samples(limits, mac=c1.mac, direction="tx")[0].value == 0
    assert samples(limits, mac=c3.mac, direction="rx")[0].value == 0
    seen = samples(families["bandix_device_last_seen_seconds"], mac=c1.mac)[0].value
    assert abs(seen - devices[c1.mac]["last_online_ts"] / 1000) < 5


def test_connections_dns_and_health(site):
    vr, daemon = site
    c2 = vr.clients[1]
    out = c2.ns.run(["dig", f"@{vr.SERVER_V4}", "a.test", "+tries=1", "+time=3"]).stdout
    assert "status: NOERROR" in out
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        families = scrape(daemon)
        if samples(families["bandix_dns_response_time_seconds"], quantile=None) and \
                families["bandix_dns_queries"].samples[0].value >= 1:
            break
        time.sleep(0.3)
    assert families["bandix_dns_queries"].samples[0].value == 1
    assert {s.labels["code"]: s.value for s in families["bandix_dns_responses"].samples} == {"Success": 1}
    summary = families["bandix_dns_response_time_seconds"]
    assert summary.type == "summary"
    record = next(r for r in daemon.get("/api/dns/queries")[1]["data"]["queries"] if not r["is_query"])
    by_name = {(s.name, s.labels.get("quantile")): s.value for s in summary.samples}
    assert by_name[("bandix_dns_response_time_seconds_count", None)] == 1
    assert by_name[("bandix_dns_response_time_seconds_sum", None)] == record["response_time_ms"] / 1000
    assert by_name[("bandix_dns_response_time_seconds", "0.5")] == record["response_time_ms"] / 1000

    connections = families["bandix_connections"]
    assert {s.labels["state"] for s in connections.samples} == {
        "tcp_connections", "udp_connections", "established_tcp", "time_wait_tcp", "close_wait_tcp"}
    for _ in range(10):  # both read the same snapshot unless a new one lands in between
        api = daemon.get("/api/connection/devices")[1]["data"]
        scraped = scrape(daemon)
        if daemon.get("/api/connection/devices")[1]["data"]["last_updated"] == api["last_updated"]:
            break
    now = {s.labels["state"]: s.value for s in scraped["bandix_connections"].samples}
    assert now == {k: api["global_stats"][k] for k in now}
    per_device = {(s.labels["mac"], s.labels["state"]): s.value for s in scraped["bandix_device_connections"].samples}
    for d in api["devices"]:
        assert per_device[(d["mac_address"], "udp_connections")] == d["udp_connections"]

    health = families["bandix_collector_events"]
    assert {s.labels["event"] for s in health.samples} == {
        "device_table_full", "truncated_ip_header", "limit_drops", "dns_lost", "flows_added", "flows_not_added",
        "hello_lost"}
    assert samples(health, event="flows_added")[0].value > 0
    assert families["bandix_flow_map_capacity"].samples[0].value == 16384
    assert families["bandix_flow_map_entries"].samples[0].value > 0
    assert {s.labels["result"] for s in families["bandix_hellos"].samples} == {"parsed", "unparsed", "quic_unavailable"}
    assert samples(families["bandix_hellos"], result="quic_unavailable")[0].value == 0  # cryptography is installed
