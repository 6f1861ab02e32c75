"""Where the traffic goes, end to end: real clients (dig, curl, openssl
s_client, aioquic) resolve names at a real DNS server and fetch from real web
servers in the internet namespace; flows, attribution and every report
command are checked against a capture of what the clients sent and received.
"""

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.bandixd import http_get, no_cryptography
from tests.test_dns import dig, validate
from tests.vrouter import Capture

ROOT = Path(__file__).resolve().parents[1]
WEB_ADDRESSES = ["198.51.100.21", "198.51.100.22", "198.51.100.23", "198.51.100.24", "198.51.100.25",
                 "198.51.100.26", "198.51.100.30", "198.51.100.53", "2001:db8:100::21"]


@pytest.fixture
def servers(vrouter, tmp_path):
    """The DNS server and the web servers, on their addresses in the internet namespace."""
    inet = vrouter.internet
    inet.ip_batch([f"addr add {a}/{128 if ':' in a else 32} dev lo" for a in WEB_ADDRESSES])
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-subj", "/CN=bandix test", "-days", "1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    procs = [inet.popen([sys.executable, "-m", module, *args], cwd=ROOT, stdout=subprocess.PIPE)
             for module, args in (("tests.dnsserver", [vrouter.SERVER_V4]), ("tests.webserver", [cert, key]))]
    for proc in procs:
        assert proc.stdout.readline().strip() == b"listening"
    inet.wait_listening(80)
    inet.wait_listening(443)
    return procs


def curl(client, url: str, resolve: str | None = None) -> int:
    """Fetch a URL; the local port of the connection."""
    args = ["curl", "-sk", "--max-time", "10", "-o", "/dev/null", "-w", "%{local_port} %{http_code}", url]
    if resolve:
        args[1:1] = ["--resolve", resolve]
    port, code = client.ns.run(args).stdout.split()
    assert code == "200", url
    return int(port)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bandix", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


def report(db: Path, name: str, *args: str) -> list[dict]:
    out = cli(name, "--db", str(db), "--json", "--lookback-minutes", "30", "--limit", "100", *args)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["rows"]


def truth(frames, client) -> Counter:
    """Bytes and packets per (direction, proto, src, sport, dst, dport) as the device sent and received them."""
    out: Counter = Counter()
    for f in frames:
        if f.src_ip is None:
            continue
        if f.src_mac == client.mac:
            direction = "up"
        elif f.dst_mac == client.mac:
            direction = "down"
        else:
            continue
        key = (direction, f.l4_proto, f.src_ip, f.src_port, f.dst_ip, f.dst_port)
        out[key + ("bytes",)] += f.l3_len
        out[key + ("packets",)] += 1
    return out


def test_flows_domains_and_reports_match_what_the_clients_did(vrouter, bandix, servers, tmp_path):
    c1, c2, c3 = vrouter.clients
    data = tmp_path / "data"
    daemon = bandix("--enable-flows", "--data-dir", str(data))
    db = data / "bandix.db"
    captures = [Capture(c.ns, "eth0", tmp_path / f"{c.name}.pcap") for c in (c1, c2, c3)]
    for cap in captures:
        cap.start()
    server = vrouter.SERVER_V4
    expect = {}  # (client, proto, local port, remote ip, remote port) → (attribution, source, domain)

    # c1: a name with an address of its own, over HTTPS (server name) and HTTP (DNS answer), and over IPv6.
    assert dig(c1, server, "alpha.test")["ips"] == ["198.51.100.21"]
    assert dig(c1, server, "alpha.test", "AAAA")["ips"] == ["2001:db8:100::21"]
    port = curl(c1, "https://alpha.test/300000", "alpha.test:443:198.51.100.21")
    expect[("c1", 6, port, "198.51.100.21", 443)] = ("exact", "sni", "alpha.test")
    port = curl(c1, "http://198.51.100.21/200000")
    expect[("c1", 6, port, "198.51.100.21", 80)] = ("exact", "dns", "alpha.test")
    port = curl(c1, "http://[2001:db8:100::21]/100000")
    expect[("c1", 6, port, "2001:db8:100::21", 80)] = ("exact", "dns", "alpha.test")
    # c1 and c2 resolve two names of one address: each keeps the name it resolved.
    dig(c1, server, "beta.test")
    dig(c2, server, "gamma.test")
    port = curl(c1, "http://198.51.100.22/150000")
    expect[("c1", 6, port, "198.51.100.22", 80)] = ("ambiguous", "dns", "beta.test")
    port = curl(c2, "http://198.51.100.22/250000")
    expect[("c2", 6, port, "198.51.100.22", 80)] = ("ambiguous", "dns", "gamma.test")
    # A CNAME chain counts for the name asked for.
    assert dig(c2, server, "www.video.test")["ips"] == ["198.51.100.23"]
    port = curl(c2, "http://198.51.100.23/400000")
    expect[("c2", 6, port, "198.51.100.23", 80)] = ("exact", "dns", "www.video.test")
    # A ClientHello whose name is in its second segment: not parsed, so no name.
    port = int(c2.ns.run([sys.executable, "-m", "tests.hellos", "split-tls", "198.51.100.26", "split.test"],
                         cwd=ROOT).stdout)
    expect[("c2", 6, port, "198.51.100.26", 443)] = ("unknown", "", "")
    # c3: an address nobody resolved; QUIC v1 and v2 Initials; DoT; DoH to a known resolver name.
    port = curl(c3, "http://198.51.100.30/50000")
    expect[("c3", 6, port, "198.51.100.30", 80)] = ("unknown", "", "")
    for version, name in ((1, "quic.test"), (0x6B3343CF, "quic2.test")):
        port = int(c3.ns.run([sys.executable, "-m", "tests.hellos", "quic", "198.51.100.24", name, str(version)],
                             cwd=ROOT).stdout)
        expect[("c3", 17, port, "198.51.100.24", 443)] = ("exact", "sni", name)
    s_client = c3.ns.run(["openssl", "s_client", "-connect", "198.51.100.25:853", "-servername", "dot.test",
                          "-quiet"], input="GET /1000 HTTP/1.0\r\n\r\n", check=False)
    assert s_client.stdout.startswith("HTTP/1.1 200"), s_client.stderr  # the server closes without close_notify
    port = curl(c3, "https://dns.google/dns-query/20000", "dns.google:443:198.51.100.53")
    expect[("c3", 6, port, "198.51.100.53", 443)] = ("exact", "sni", "dns.google")

    # The API serves the same reports while the daemon runs.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status, body = daemon.get(f"/api/flows/top?by=domain&mac={c1.mac}&lookback_minutes=30&limit=50")
        assert status == 200, body
        mine = {r["domain"] for r in body["data"]["rows"]}
        if {"alpha.test", "beta.test"} <= mine:
            break
        time.sleep(0.3)
    assert {"alpha.test", "beta.test"} <= mine and "gamma.test" not in mine and "www.video.test" not in mine
    validate(body, "FlowsTopResponse")
    assert body["data"]["by"] == "domain" and body["data"]["lookback_minutes"] == 30
    for by in ("ip", "lan", "flow", "sni", "dns", "quic", "dohdot", "coverage"):
        deadline = time.monotonic() + 5  # the newest flows reach the database within a flush interval
        while True:
            status, other = daemon.get(f"/api/flows/top?by={by}&lookback_minutes=30")
            if status != 200 or other["data"]["rows"] or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert status == 200 and other["data"]["rows"], by
        validate(other, "FlowsTopResponse")
    assert [c["key"] for c in body["data"]["columns"]][:4] == ["domain", "down", "up", "total"]
    for query, field in (("by=everything", "by"), ("limit=0", "limit"), ("limit=1001", "limit"),
                         ("lookback_minutes=x", "lookback_minutes"), ("mac=02:zz", "mac"), ("by=ip&by=lan", "by")):
        status, body = daemon.get(f"/api/flows/top?{query}")
        assert status == 400 and body["message"].startswith(field), (query, body)
        validate(body, "Error")

    time.sleep(1.5)  # the last packets into the capture
    for cap in captures:
        cap.stop()
    daemon.stop()  # a final collection, written before it exits
    assert "Traceback" not in daemon.log()

    frames = {c.name: truth(cap.frames(), c) for c, cap in zip((c1, c2, c3), captures, strict=True)}
    import sqlite3

    rows = sqlite3.connect(db).execute(
        "SELECT mac, direction, proto, src_ip, src_port, dst_ip, dst_port, domain, attribution, source, "
        "sum(bytes), sum(packets) FROM flow_1m_5t GROUP BY direction, proto, src_ip, src_port, dst_ip, dst_port"
    ).fetchall()
    stored = {(r[1], r[2], r[3], r[4], r[5], r[6]): r for r in rows}

    # Every flow with the servers: bytes and packets exact in both directions, the expected label.
    covered = Counter()
    clients = {c.name: c for c in vrouter.clients}
    for (name, proto, lport, rip, rport), label in expect.items():
        client, total = clients[name], 0
        for direction, key in (("up", (proto, client.ipv6 if ":" in rip else client.ipv4, lport, rip, rport)),
                               ("down", (proto, rip, rport, client.ipv6 if ":" in rip else client.ipv4, lport))):
            want_bytes = frames[client.name][(direction, *key, "bytes")]
            want_packets = frames[client.name][(direction, *key, "packets")]
            row = stored.get((direction, *key))
            if want_packets == 0:  # QUIC: the server never answers
                assert row is None
                continue
            assert row is not None, (client.name, direction, key)
            assert (row[10], row[11]) == (want_bytes, want_packets), (client.name, direction, key)
            assert row[0] == client.mac
            assert (row[8], row[9], row[7]) == label, (client.name, direction, key, row)
            total += want_bytes
        covered[label[:2]] += total
    # The s_client DoT session: its port is not known beforehand.
    dot = [r for k, r in stored.items() if k[1] == 6 and 853 in (k[3], k[5])]
    assert len(dot) == 2 and all((r[8], r[9], r[7]) == ("exact", "sni", "dot.test") for r in dot)
    dot_bytes = sum(v for k, v in frames["c3"].items() if k[-1] == "bytes" and 853 in (k[3], k[5]))
    assert sum(r[10] for r in dot) == dot_bytes
    covered[("exact", "sni")] += dot_bytes

    # Reports, from the command line, on the database this traffic filled.
    domains = {r["domain"]: r for r in report(db, "top-domain")}
    alpha = [r for k, r in stored.items() if r[7] == "alpha.test"]
    assert domains["alpha.test"]["total"] == sum(r[10] for r in alpha)
    assert domains["alpha.test"]["down"] == sum(r[10] for r in alpha if r[1] == "down")
    assert domains["alpha.test"]["devices"] == 1
    assert domains["beta.test"]["devices"] == domains["gamma.test"]["devices"] == 1
    detail = report(db, "domain-detail", "--domain", "alpha.test")
    assert {(r["direction"], r["proto"], r["port"]) for r in detail} == {
        (d, "tcp", p) for d in ("up", "down") for p in (80, 443)}
    assert sum(r["bytes"] for r in detail) == domains["alpha.test"]["total"]

    lan = {(r["ip"], r["mac"]): r for r in report(db, "top-lan")}
    for c in (c1, c2, c3):
        want = sum(r[10] for k, r in stored.items() if r[0] == c.mac and (c.ipv4 in (k[2], k[4])))
        assert lan[(c.ipv4, c.mac)]["total"] == want
    ips = {r["ip"]: r for r in report(db, "top-ip")}
    assert ips["198.51.100.22"]["total"] == sum(r[10] for k, r in stored.items() if "198.51.100.22" in (k[2], k[4]))
    assert set(ips["198.51.100.22"]["domains"].split(",")) == {"beta.test", "gamma.test"}

    flows = report(db, "top-flow", "--mac", c2.mac)
    assert flows[0]["bytes"] == max(r[10] for r in rows if r[0] == c2.mac)

    # Coverage: the labelled bytes are exactly those of the labelled flows in the capture.
    coverage = {(r["attribution"], r["source"]): r for r in report(db, "attribution-coverage")}
    all_bytes = sum(r[10] for r in rows)
    assert sum(r["bytes"] for r in coverage.values()) == all_bytes
    for label in (("exact", "sni"), ("exact", "dns"), ("ambiguous", "dns")):
        assert coverage[label]["bytes"] == covered[label], label
    labelled = sum(v for k, v in covered.items() if k[0] != "unknown")
    assert coverage[("unknown", "")]["bytes"] == all_bytes - labelled >= covered[("unknown", "")]
    assert abs(sum(r["share"] for r in coverage.values()) - 100) < 1e-6

    dns = {r["qname"]: r for r in report(db, "top-dns")}
    assert dns["alpha.test"]["queries"] == dns["alpha.test"]["responses"] == 2
    assert dns["www.video.test"]["devices"] == 1
    sni = {(r["sni"], r["kind"]): r["hellos"] for r in report(db, "top-sni")}
    assert sni[("alpha.test", "tls")] == 1 and sni[("dot.test", "tls")] == 1 and sni[("dns.google", "tls")] == 1
    assert sni[("quic.test", "quic")] == 1 and sni[("quic2.test", "quic")] == 1
    assert ("split.test", "tls") not in sni
    quic = {r["domain"] for r in report(db, "top-quic")}
    assert quic == {"quic.test", "quic2.test"}
    dohdot = {(r["kind"], r["domain"]) for r in report(db, "top-dohdot")}
    assert dohdot == {("DoH", "dns.google"), ("DoT", "dot.test")}
    cache = {(r["domain"], r["source"]): r for r in report(db, "dns-cache-inspect")}
    assert cache[("gamma.test", "dns")]["learned"] == 1 and cache[("alpha.test", "dns")]["learned"] == 2
    assert cache[("alpha.test", "sni")]["refreshed"] == 1  # the address was known from DNS already
    health = report(db, "collector-health")
    assert sum(r["hellos_unparsed"] for r in health) == 1
    assert sum(r["hellos_parsed"] for r in health) == 5
    assert sum(r["hellos_quic_unavailable"] for r in health) == 0  # cryptography is installed here
    assert sum(r["flows_added"] for r in health) == len(rows)
    assert sum(r["dns_lost"] + r["hello_lost"] + r["flows_failed"] + r["flows_evicted"] for r in health) == 0

    panel = cli("ui", "--db", str(db), "--lookback-minutes", "30", "--count", "1")
    assert panel.returncode == 0 and "Top domains" in panel.stdout and "alpha.test" in panel.stdout
    table = cli("top-domain", "--db", str(db), "--lookback-minutes", "30")
    assert table.returncode == 0 and "alpha.test" in table.stdout and "(unknown)" in table.stdout


def test_without_cryptography_quic_initials_are_counted_and_the_rest_works(vrouter, bandix, servers, tmp_path):
    """A router without python3-cryptography: the daemon starts, says once why QUIC names are missing,
    counts each QUIC Initial as quic_unavailable in /metrics and collector-health, and still names TLS
    flows from their ClientHello and plain ones from DNS."""
    c1, _, c3 = vrouter.clients
    data = tmp_path / "data"
    daemon = bandix("--enable-flows", "--enable-dns", "--data-dir", str(data),
                    env=no_cryptography(tmp_path / "blocked"))
    capture = Capture(c3.ns, "eth0", tmp_path / "c3.pcap")
    capture.start()
    tls_port = curl(c1, "https://alpha.test/300000", "alpha.test:443:198.51.100.21")
    assert dig(c1, vrouter.SERVER_V4, "beta.test")["ips"] == ["198.51.100.22"]
    http_port = curl(c1, "http://198.51.100.22/1000")
    quic_ports = [int(c3.ns.run([sys.executable, "-m", "tests.hellos", "quic", "198.51.100.24", name, str(version)],
                                cwd=ROOT).stdout) for version, name in ((1, "quic.test"), (0x6B3343CF, "quic2.test"))]
    time.sleep(0.5)
    capture.stop()
    initials = sum(1 for f in capture.frames() if f.src_mac == c3.mac and f.l4_proto == 17 and f.dst_port == 443)
    assert initials >= 2

    def unavailable() -> float:
        text = http_get(daemon.ns, "/metrics", daemon.port)[2]
        return next(float(line.split()[-1]) for line in text.splitlines()
                    if line.startswith('bandix_hellos_total{result="quic_unavailable"}'))

    deadline = time.monotonic() + 10
    while unavailable() != initials and time.monotonic() < deadline:
        time.sleep(0.2)
    assert unavailable() == initials
    daemon.stop()
    log = daemon.log()
    assert log.count("QUIC server names are unavailable") == 1, log
    assert "cryptography cannot be imported" in log and "install python3-cryptography" in log
    assert "Traceback" not in log
    db = data / "bandix.db"
    health = report(db, "collector-health")
    assert sum(r["hellos_quic_unavailable"] for r in health) == initials
    assert sum(r["hellos_parsed"] for r in health) == 1 and sum(r["hellos_unparsed"] for r in health) == 0
    import sqlite3

    named = {(r[0], r[1]): r[2:] for r in sqlite3.connect(db).execute(
        "SELECT proto, src_port, domain, source FROM flow_1m_5t WHERE direction = 'up'")}
    assert named[(6, tls_port)] == ("alpha.test", "sni")
    assert named[(6, http_port)] == ("beta.test", "dns")
    assert all(named[(17, port)] == ("", "") for port in quic_ports)
    assert [(r["domain"], r["ip"]) for r in report(db, "top-quic")] == [("(unknown)", "198.51.100.24")]


def test_flows_api_is_unavailable_when_flows_are_off(bandix):
    daemon = bandix()
    status, body = daemon.get("/api/flows/top")
    assert status == 503 and "--enable-flows" in body["message"]


def test_a_full_flow_map_evicts_and_the_health_report_says_so(vrouter, bandix, tmp_path):
    c1 = vrouter.clients[0]
    data = tmp_path / "data"
    daemon = bandix("--enable-flows", "--data-dir", str(data), "--flow-map-size", "1024")
    burst = ("import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
             f"for port in range(20000, 23000): s.sendto(b'x', ('{vrouter.SERVER_V4}', port))")
    c1.ns.run([sys.executable, "-c", burst])
    time.sleep(1.5)
    daemon.stop()
    health = report(data / "bandix.db", "collector-health")
    added, evicted, aged = (sum(r[k] for r in health) for k in ("flows_added", "flows_evicted", "flows_aged"))
    latest = health[0]  # newest minute first
    assert added >= 3000 and aged == 0
    assert added - evicted == latest["flow_entries"] <= 1024  # every added flow is in the map or was evicted
    assert evicted >= 3000 - 1024
    assert latest["flow_capacity"] == 1024
    assert latest["pressure"] == pytest.approx(100 * latest["flow_entries"] / 1024)


@pytest.mark.parametrize("transport", ["quic", "tls"])
def test_a_flow_is_named_by_the_hello_still_waiting_in_its_ring(tmp_pin_dir, tmp_path, transport):
    """The kernel counts a flow's first packet before it copies the hello, and the hello thread may lag (its
    first QUIC packet imports cryptography): a collection that reads the flow first must still name it.
    Here the hello thread never runs, so only the collection itself can read the ring. The real program runs
    on a real aioquic Initial / OpenSSL ClientHello (BPF_PROG_TEST_RUN)."""
    import socket
    import struct

    from bandix.bpf import layout, loader
    from bandix.bpf.counters import read_health
    from bandix.bpf.testrun import run_program
    from bandix.collect.analytics import FlowAnalytics
    from bandix.collect.attribution import DomainCache
    from bandix.store.analytics import AnalyticsWriter
    from tests.test_tls_quic import aioquic_initials, openssl_hello

    device, router = bytes.fromhex("02bd00000001"), bytes.fromhex("02bd01000001")
    src, dst = socket.inet_aton("192.168.77.11"), socket.inet_aton("198.51.100.24")
    if transport == "quic":
        payload, proto = aioquic_initials(1, "quic.test")[0], 17
        l4 = struct.pack("!HHHH", 40000, 443, 8 + len(payload), 0)
    else:
        payload, proto = openssl_hello("tls.test"), 6
        l4 = struct.pack("!HHIIBBHHH", 40000, 443, 1, 0, 5 << 4, 0x18, 65535, 0, 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4) + len(payload), 0, 0, 64, proto, 0, src, dst)
    frame = router + device + struct.pack("!H", 0x0800) + ip + l4 + payload

    loaded = loader.load(loader.repo_object(), tmp_pin_dir)
    writer = AnalyticsWriter(tmp_path, 1, 1)
    analytics = FlowAnalytics(loaded.maps[layout.MAP_FLOWS], loaded.hello_events_fd,
                              lambda: read_health(loaded.maps[layout.MAP_HEALTH]), writer, DomainCache(3600, 3600),
                              1024, 300, 1, lambda mac: "br-lan", loaded.maps[layout.MAP_CONTROL])
    try:
        loaded.maps[layout.MAP_CONTROL].update(struct.pack("=I", layout.CONTROL_FLOWS), struct.pack("=I", 1))
        assert run_program(loaded.prog_fds[layout.PROG_INGRESS], frame) == -1
        rows = analytics.collect().rows["flow_1m_5t"]
        assert [(r[2], r[3], r[4], r[5], r[6], r[7], r[8]) for r in rows] == [
            ("02:bd:00:00:00:01", "up", proto, "192.168.77.11", 40000, "198.51.100.24", 443)]
        assert rows[0][9:] == (f"{transport}.test", "exact", "sni", len(ip) + len(l4) + len(payload), 1)
        assert analytics.hellos_parsed == 1
    finally:
        analytics.stop()
        loaded.close()
