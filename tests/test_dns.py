"""DNS monitoring against what real clients (dig, getent) sent and received
from a real DNS server (tests/dnsserver.py) in the internet namespace."""

import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest

from bandix.store.stats import nearest_rank
from tests.test_api import OPENAPI

SLOW_MS = 150


def validate(body, name):
    jsonschema.Draft202012Validator({"$ref": f"#/components/schemas/{name}",
                                     "components": OPENAPI["components"]}).validate(body)


@pytest.fixture
def dns_server(vrouter):
    proc = vrouter.internet.popen([sys.executable, "-m", "tests.dnsserver", vrouter.SERVER_V4, vrouter.SERVER_V6],
                                  cwd=Path(__file__).resolve().parents[1], stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"listening"
    return proc


def dig(client, server: str, name: str, qtype: str = "A", *opts: str) -> dict:
    """One dig run: its transaction id, status, answers (addresses) and the time it measured."""
    out = client.ns.run(["dig", f"@{server}", name, qtype, "+tries=1", "+time=3", *opts]).stdout
    header = re.search(r"opcode: QUERY, status: (\w+), id: (\d+)", out)
    answers = re.findall(r"^\S+\s+\d+\s+IN\s+(?:A|AAAA)\s+(\S+)$", out, re.M)
    return {"status": header.group(1), "id": int(header.group(2)), "ips": answers, "out": out}


def records(daemon, query: str = "") -> list[dict]:
    status, body = daemon.get(f"/api/dns/queries?page_size=1000{query}")
    assert status == 200, body
    validate(body, "DnsQueriesResponse")
    return body["data"]["queries"]


def wait_records(daemon, count: int, query: str = "") -> list[dict]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        got = records(daemon, query)
        if len(got) >= count:
            return got
        time.sleep(0.2)
    raise AssertionError(f"only {len(got)} of {count} DNS records appeared")


STATUS = {"NOERROR": "Success", "NXDOMAIN": "Domain not found", "SERVFAIL": "Server failure"}


def test_records_and_stats_equal_what_the_clients_saw(vrouter, bandix, dns_server):
    c1, c2 = vrouter.clients[0], vrouter.clients[1]
    daemon = bandix("--enable-dns")
    asked = [  # (client, server, name, type, dig options, transport)
        (c1, vrouter.SERVER_V4, "a.test", "A", (), "udp"),
        (c1, vrouter.SERVER_V4, "a.test", "AAAA", (), "udp"),
        (c1, vrouter.SERVER_V4, "www.cname.test", "A", (), "udp"),
        (c1, vrouter.SERVER_V4, "missing.test", "A", (), "udp"),
        (c1, vrouter.SERVER_V4, "broken.test", "A", (), "udp"),
        (c1, vrouter.SERVER_V4, "many.test", "A", ("+tcp",), "tcp"),
        (c2, vrouter.SERVER_V6, "a.test", "A", (), "udp"),
        (c2, vrouter.SERVER_V4, "slow.test", "A", (), "udp"),
        (c2, vrouter.SERVER_V4, "slow.test", "A", ("+tcp",), "tcp"),
    ]
    seen = [(c, server, name, qtype, transport, dig(c, server, name, qtype, *opts))
            for c, server, name, qtype, opts, transport in asked]
    got = wait_records(daemon, 2 * len(asked))
    assert len(got) == 2 * len(asked)

    for c, server, name, qtype, transport, answer in seen:
        pair = [r for r in got if r["transaction_id"] == answer["id"] and r["domain"] == name + "."
                and r["query_type"] == qtype and r["transport"] == transport]
        query = next(r for r in pair if r["is_query"])
        response = next(r for r in pair if not r["is_query"])
        assert len(pair) == 2, (name, pair)
        assert query["source_ip"] in (c.ipv4, c.ipv6) and query["destination_ip"] == server
        assert query["destination_port"] == 53 and response["source_port"] == 53
        assert response["destination_port"] == query["source_port"]
        assert query["device_mac"] == response["device_mac"] == c.mac
        assert response["response_code"] == STATUS[answer["status"]]
        assert sorted(response["response_ips"]) == sorted(answer["ips"])
        assert response["response_time_ms"] == query["response_time_ms"]
        if name == "slow.test":
            assert abs(response["response_time_ms"] - SLOW_MS) <= 20, response["response_time_ms"]
        # Newest group first, the response right before its query.
        assert got.index(response) + 1 == got.index(query)
    cname = next(r for r in got if r["domain"] == "www.cname.test." and not r["is_query"])
    assert [(x["name"], x["type"], x["data"]) for x in cname["response_records"]] == [
        ("www.cname.test.", "CNAME", "edge.cname.test."), ("edge.cname.test.", "CNAME", "cdn.cname.test."),
        ("cdn.cname.test.", "A", "10.2.2.2"), ("cdn.cname.test.", "A", "10.2.2.3")]
    many = next(r for r in got if r["domain"] == "many.test." and not r["is_query"])
    assert len(many["response_ips"]) == 40  # a TCP answer spanning segments

    status, body = daemon.get("/api/dns/stats")
    validate(body, "DnsStatsResponse")
    stats = body["data"]["stats"]
    times = sorted(r["response_time_ms"] for r in got if not r["is_query"])
    assert (stats["total_queries"], stats["total_responses"], stats["queries_with_response"],
            stats["queries_without_response"]) == (len(asked), len(asked), len(asked), 0)
    assert (stats["success_count"], stats["failure_count"]) == (len(asked) - 2, 2)
    assert stats["success_rate"] == round((len(asked) - 2) / len(asked), 4)
    assert {c["code"]: c["count"] for c in stats["response_codes"]} == {
        "Success": 7, "Domain not found": 1, "Server failure": 1}
    assert stats["response_time_percentiles"] == {f"p{p}": nearest_rank(times, p) for p in (50, 90, 95, 99)}
    assert stats["max_response_time_ms"] == times[-1] >= SLOW_MS - 20
    assert stats["avg_response_time_ms"] == round(statistics.mean(times), 2)
    assert stats["top_domains"][:2] == [{"name": "a.test.", "count": 3}, {"name": "slow.test.", "count": 2}]
    assert stats["top_dns_servers"] == [{"name": vrouter.SERVER_V4, "count": 8},
                                        {"name": vrouter.SERVER_V6, "count": 1}]
    assert stats["unique_devices"] == 2 and stats["lost_events"] == 0 and stats["malformed_packets"] == 0
    assert {d["name"]: d["count"] for d in stats["top_devices"]} == {c1.mac: 6, c2.mac: 3}


def test_getent_through_the_system_resolver(vrouter, bandix, dns_server):
    c1 = vrouter.clients[0]
    conf = Path("/etc/netns") / c1.ns.name
    conf.mkdir(parents=True, exist_ok=True)
    try:
        (conf / "resolv.conf").write_text(f"nameserver {vrouter.SERVER_V4}\noptions attempts:1\n")
        daemon = bandix("--enable-dns")
        out = c1.ns.run(["getent", "ahostsv4", "a.test"]).stdout
        assert "10.1.1.1" in out
        got = wait_records(daemon, 2, "&domain=a.test")
        assert {(r["domain"], r["is_query"]) for r in got} >= {("a.test.", True), ("a.test.", False)}
    finally:
        shutil.rmtree(conf, ignore_errors=True)


def test_filters_paging_and_bad_queries(vrouter, bandix, dns_server, tmp_path):
    c1, c2 = vrouter.clients[0], vrouter.clients[1]
    daemon = bandix("--enable-dns")
    daemon.send("POST", "/api/traffic/bindings", {"mac": c2.mac, "hostname": "Kitchen-Tablet"})
    for _ in range(3):
        dig(c1, vrouter.SERVER_V4, "a.test")
    dig(c2, vrouter.SERVER_V4, "www.cname.test")
    wait_records(daemon, 8)
    assert len(records(daemon, "&domain=CNAME")) == 2
    assert len(records(daemon, "&device=kitchen")) == 2
    assert len(records(daemon, f"&device={c1.mac[-5:].upper()}")) == 6
    assert all(r["is_query"] for r in records(daemon, "&is_query=true"))
    assert len(records(daemon, "&is_query=false&domain=a.test")) == 3
    assert records(daemon, "&device=kitchen")[0]["device_name"] == "Kitchen-Tablet"
    pages = [daemon.get(f"/api/dns/queries?page={p}&page_size=3")[1]["data"] for p in (1, 2, 3, 4)]
    assert [len(p["queries"]) for p in pages] == [3, 3, 2, 0]
    assert all((p["total"], p["total_pages"]) == (8, 3) for p in pages)
    assert {(q["transaction_id"], q["is_query"]) for p in pages for q in p["queries"]} == {
        (r["transaction_id"], r["is_query"]) for r in records(daemon)}
    for query, field in (("page=0", "page"), ("page_size=1001", "page_size"), ("page_size=x", "page_size"),
                         ("is_query=maybe", "is_query"), ("page=1&page=2", "page")):
        status, body = daemon.get(f"/api/dns/queries?{query}")
        assert status == 400 and body["message"].startswith(field), (query, body)


def test_max_records_keeps_the_newest(vrouter, bandix, dns_server):
    c1 = vrouter.clients[0]
    daemon = bandix("--enable-dns", "--dns-max-records", "5")
    ids = [dig(c1, vrouter.SERVER_V4, "a.test")["id"] for _ in range(4)]
    time.sleep(1)
    got = records(daemon)
    assert len(got) == 5
    assert {r["transaction_id"] for r in got} == {ids[1], ids[2], ids[3]}  # the first two packets went


def test_config_turns_capture_off_and_on_and_is_stored(vrouter, bandix, dns_server):
    c1 = vrouter.clients[0]
    daemon = bandix("--enable-dns")
    status, body = daemon.get("/api/dns/config")
    assert (status, body["data"]) == (200, {"enabled": True, "max_records": 10000})
    dig(c1, vrouter.SERVER_V4, "a.test")
    wait_records(daemon, 2)
    assert daemon.send("POST", "/api/dns/config", {"enabled": False, "max_records": 50})[1]["data"] == {
        "enabled": False, "max_records": 50}
    dig(c1, vrouter.SERVER_V4, "a.test")
    time.sleep(1)
    assert len(records(daemon)) == 2  # nothing captured while off
    text = (daemon.config_dir / "bandix").read_text()
    assert "option dns_enabled '0'" in text and "option dns_max_records '50'" in text
    daemon.send("POST", "/api/dns/config", {"enabled": True})
    dig(c1, vrouter.SERVER_V4, "a.test")
    assert len(wait_records(daemon, 4)) == 4
    for body, field in (({"enabled": "yes"}, "enabled"), ({"max_records": 0}, "max_records"),
                        ({"max_records": 1.5}, "max_records"), ({"colour": "red"}, "colour"), ({}, "body")):
        status, reply = daemon.send("POST", "/api/dns/config", body)
        assert status == 400 and reply["message"].startswith(field), (body, reply)
    # Stored in UCI: a restarted bandix without the flag keeps it on with 50 records.
    assert daemon.stop(signal.SIGTERM) == 0
    daemon = bandix()
    assert daemon.get("/api/dns/config")[1]["data"] == {"enabled": True, "max_records": 50}


def test_malformed_packets_are_counted_and_skipped(vrouter, bandix, dns_server):
    c1 = vrouter.clients[0]
    daemon = bandix("--enable-dns")
    sock = c1.ns.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for junk in (b"\x00", b"\x12\x34\x01\x00\x00\x01" + b"\xff" * 20, b"\xab\xcd" + b"\xc0\x0c" * 40):
        sock.sendto(junk, (vrouter.SERVER_V4, 53))
    sock.close()
    dig(c1, vrouter.SERVER_V4, "a.test")
    got = wait_records(daemon, 2)
    assert [r["domain"] for r in got] == ["a.test.", "a.test."]
    stats = daemon.get("/api/dns/stats")[1]["data"]["stats"]
    assert stats["malformed_packets"] >= 3  # the junk, and the server's replies to it if any
    assert daemon.proc.poll() is None


def test_off_unless_enabled(vrouter, bandix):
    daemon = bandix()
    assert daemon.get("/api/dns/queries")[0] == 503
    assert daemon.get("/api/dns/config")[1]["data"]["enabled"] is False

