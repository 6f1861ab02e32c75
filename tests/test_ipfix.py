"""IPFIX export (RFC 7011) to a real collector: Debian's nfcapd (nfdump) in the
internet namespace receives what the daemon exports over the WAN link, and
what `nfdump` reads back is compared with the daemon's own flow table
(flow_1m_5t in its database) for the same window: the whole life of the daemon,
whose stop sends every pending record.

nfcapd also repeats every datagram it receives (`-R`) to a socket of this
test, which decodes them from their templates alone, as any collector does: the
enterprise-specific domain element nfdump does not know is checked there.
"""

import socket
import sqlite3
import struct
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.bandixd import http_get
from tests.test_dns import dig
from tests.traffic import iperf3, l3_truth, settle

ROOT = Path(__file__).resolve().parents[1]
COLLECTOR_PORT = 4739
REPEAT_PORT = 4740
NAMED_SERVER = "198.51.100.21"  # alpha.test in tests/dnsserver.py
ENTERPRISE, DOMAIN_ELEMENT = 32473, 1


def nfcapd_command(flow_dir: Path, address: str) -> list[str]:
    """The collector as the README shows it: one file per minute in flow_dir, every datagram repeated."""
    return ["nfcapd", "-w", str(flow_dir), "-b", address, "-p", str(COLLECTOR_PORT), "-t", "60",
            "-R", f"{address}/{REPEAT_PORT}"]


def nfdump_records(flow_dir: Path) -> list[dict]:
    fields = ("proto", "src", "sport", "dst", "dport", "packets", "bytes", "in_src_mac", "in_dst_mac", "dir")
    out = subprocess.run(["nfdump", "-R", str(flow_dir), "-N", "-q", "-6",
                          "-o", "fmt:%pr|%sa|%sp|%da|%dp|%pkt|%byt|%ismc|%idmc|%dir"],
                         capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        if line.strip():
            values = dict(zip(fields, (v.strip() for v in line.split("|")), strict=True))
            for k in ("proto", "sport", "dport", "packets", "bytes"):
                values[k] = int(values[k])
            rows.append(values)
    return rows


def decode_ipfix(messages: list[bytes]) -> tuple[int, list[dict]]:
    """(template sets seen, data records as {(enterprise, element): raw value}), driven by the templates."""
    templates: dict[int, list[tuple[int, int, int]]] = {}
    template_sets, records = 0, []
    for msg in messages:
        version, length = struct.unpack_from("!HH", msg)
        assert version == 10 and length == len(msg)
        at = 16
        while at < length:
            set_id, set_len = struct.unpack_from("!HH", msg, at)
            body, at = msg[at + 4:at + set_len], at + set_len
            if set_id == 2:
                template_sets += 1
                i = 0
                while i + 4 <= len(body):
                    tid, count = struct.unpack_from("!HH", body, i)
                    i += 4
                    fields = []
                    for _ in range(count):
                        element, size = struct.unpack_from("!HH", body, i)
                        i += 4
                        enterprise = 0
                        if element & 0x8000:
                            enterprise, element = struct.unpack_from("!I", body, i)[0], element & 0x7FFF
                            i += 4
                        fields.append((enterprise, element, size))
                    templates[tid] = fields
            elif set_id >= 256:
                i = 0
                while i < len(body):
                    record = {}
                    for enterprise, element, size in templates[set_id]:
                        if size == 0xFFFF:
                            size, i = body[i], i + 1
                            if size == 255:
                                size, i = struct.unpack_from("!H", body, i)[0], i + 2
                        record[(enterprise, element)] = body[i:i + size]
                        i += size
                    records.append(record)
    return template_sets, records


def test_nfdump_reads_back_the_flow_table(vrouter, bandix, tmp_path):
    c1, c2 = vrouter.clients[0], vrouter.clients[1]
    inet = vrouter.internet
    inet.ip("addr", "add", f"{NAMED_SERVER}/32", "dev", "lo")
    dns = inet.popen([sys.executable, "-m", "tests.dnsserver", vrouter.SERVER_V4], cwd=ROOT, stdout=subprocess.PIPE)
    assert dns.stdout.readline().strip() == b"listening"
    repeated = inet.socket(socket.AF_INET, socket.SOCK_DGRAM)
    repeated.bind((vrouter.SERVER_V4, REPEAT_PORT))
    repeated.settimeout(0.5)
    flow_dir = tmp_path / "flows"
    flow_dir.mkdir()
    collector = inet.popen(nfcapd_command(flow_dir, vrouter.SERVER_V4), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    inet.wait_listening(COLLECTOR_PORT, udp=True)
    data = tmp_path / "data"
    began_ms = int(time.time() * 1000)
    daemon = bandix("--enable-flows", "--data-dir", str(data), "--ipfix-collector",
                    f"{vrouter.SERVER_V4}:{COLLECTOR_PORT}", "--ipfix-active-timeout-secs", "2",
                    "--ipfix-idle-timeout-secs", "2", "--ipfix-template-refresh-secs", "3")

    assert dig(c1, vrouter.SERVER_V4, "alpha.test")["ips"] == [NAMED_SERVER]
    tcp = iperf3(c1, inet, NAMED_SERVER, "-t", "5", "-b", "20M")  # a long flow: one record per active timeout
    iperf3(c2, inet, vrouter.SERVER_V6, "-6", "-u", "-R", "-t", "2", "-b", "2M", "-l", "1000")
    tcp_port = tcp["start"]["connected"][0]["local_port"]
    time.sleep(1)
    daemon.stop()  # the final read, and every pending record, go out before it exits
    stopped_ms = int(time.time() * 1000)
    assert "Traceback" not in daemon.log()
    time.sleep(0.5)
    collector.terminate()  # nfcapd writes its file out on SIGTERM
    summary = collector.communicate(timeout=10)[0]
    assert "Sequence Errors: 0" in summary, summary
    datagrams = []
    try:
        while True:
            datagrams.append(repeated.recv(65535))
    except TimeoutError:
        pass
    repeated.close()

    rows = sqlite3.connect(data / "bandix.db").execute(
        "SELECT proto, src_ip, src_port, dst_ip, dst_port, mac, direction, domain, sum(bytes), sum(packets) "
        "FROM flow_1m_5t GROUP BY proto, src_ip, src_port, dst_ip, dst_port").fetchall()
    table = {r[:5]: r for r in rows}
    records = nfdump_records(flow_dir)
    exported, per_tuple = Counter(), Counter()
    for r in records:
        key = (r["proto"], r["src"], r["sport"], r["dst"], r["dport"])
        exported[key + ("bytes",)] += r["bytes"]
        exported[key + ("packets",)] += r["packets"]
        per_tuple[key] += 1
        mac, direction = table[key][5], table[key][6]
        # The device's MAC in the element that is true of it; flowDirection 0 ingress, 1 egress at br-lan.
        assert (r["in_src_mac"], r["dir"]) == (mac, "I") if direction == "up" else (r["in_dst_mac"], r["dir"]) == (
            mac, "E")
    assert {k[:5] for k in exported} == set(table)
    for key, row in table.items():
        assert (exported[key + ("bytes",)], exported[key + ("packets",)]) == (row[8], row[9]), key
    up = (6, c1.ipv4, tcp_port, NAMED_SERVER, 5201)
    assert up in table and table[up][7] == "alpha.test"
    assert per_tuple[up] >= 2  # five seconds with a two-second active timeout
    assert any(k[0] == 17 and k[1] == vrouter.SERVER_V6 and k[3] == c2.ipv6 for k in table)

    # What reached the collector, decoded from its templates: the domain in the enterprise element.
    template_sets, decoded = decode_ipfix(datagrams)
    assert template_sets >= 2  # at the start and again after the refresh interval
    assert len(decoded) == len(records)
    domains = Counter()
    for rec in decoded:
        start, end = (int.from_bytes(rec[(0, e)], "big") for e in (152, 153))  # flowStart/EndMilliseconds
        # Read times: a record spans at most its active timeout (and the read that ends it).
        assert began_ms <= start <= end <= stopped_ms and end - start <= 2000 + 1500, (start, end)
        if rec.get((0, 8)) == socket.inet_aton(c1.ipv4) and rec[(0, 7)] == struct.pack("!H", tcp_port):
            domains[rec[(ENTERPRISE, DOMAIN_ELEMENT)].decode()] += 1
    assert domains == {"alpha.test": per_tuple[up]}


def test_a_collector_that_is_down_costs_only_a_counter(vrouter, bandix, tmp_path):
    """Nothing listens on the collector's port: each send after the first meets the ICMP port unreachable
    of the one before. Counting is exact all the same, and the records are counted as not sent."""
    c1 = vrouter.clients[0]
    daemon = bandix("--enable-flows", "--data-dir", str(tmp_path / "data"), "--ipfix-collector",
                    f"{vrouter.SERVER_V4}:{COLLECTOR_PORT}", "--ipfix-active-timeout-secs", "1",
                    "--ipfix-idle-timeout-secs", "1", "--ipfix-template-refresh-secs", "1")
    settle(daemon)
    before_api, before = daemon.devices().get(c1.mac, {}), c1.ns.link_stats("eth0")  # not seen yet: zeros
    iperf3(c1, vrouter.internet, vrouter.SERVER_V4, "-u", "-t", "3", "-b", "2M", "-R")
    after = c1.ns.link_stats("eth0")
    settle(daemon)
    time.sleep(1.5)  # the last records fall due
    now = daemon.devices()[c1.mac]
    truth = l3_truth(c1, before, after)
    counted = {d: sum(now[f"{z}_{d}_bytes"] - before_api.get(f"{z}_{d}_bytes", 0) for z in ("lan", "wan"))
               for d in ("rx", "tx")}
    assert counted == {"rx": truth["rx"].bytes, "tx": truth["tx"].bytes}
    families = {f.name: f for f in text_string_to_metric_families(http_get(daemon.ns, "/metrics", daemon.port)[2])}
    result = {s.labels["result"]: s.value for s in families["bandix_ipfix_records"].samples}
    assert result["not_sent"] > 0 and result["not_sent"] >= result["sent"], result
    status, body = daemon.get("/api/flows/top?by=flow&lookback_minutes=5")
    assert status == 200 and body["data"]["rows"]
    assert "Traceback" not in daemon.log()


def test_bad_collectors_are_refused_with_the_reason(tmp_path):
    """Flags and UCI alike; a collector without the flow table is refused before anything is loaded."""
    from bandix import config

    for bad, reason in (("192.0.2.7", "is not HOST:PORT"), ("collector.example:4739", "not an IPv4 or IPv6"),
                        ("2001:db8::7:4739", "in brackets"), ("192.0.2.7:0", "is not a port"),
                        ("192.0.2.7:65536", "is not a port"), ("[2001:db8::7]:x", "is not a port")):
        out = subprocess.run([sys.executable, "-m", "bandix", "--iface", "lo", "--enable-flows", "--config-dir",
                              str(tmp_path), "--ipfix-collector", bad], cwd=ROOT, capture_output=True, text=True)
        assert out.returncode == 2 and "--ipfix-collector" in out.stderr and reason in out.stderr, (bad, out.stderr)
        (tmp_path / "bandix").write_text(f"config bandix 'config'\n\toption ipfix_collector '{bad}'\n")
        try:
            config.parse_args(["--iface", "lo", "--config-dir", str(tmp_path)])
        except SystemExit as exc:
            assert exc.code == 2
        else:
            raise AssertionError(bad)
    (tmp_path / "bandix").unlink()
    opts = config.parse_args(["--iface", "lo", "--config-dir", str(tmp_path),
                              "--ipfix-collector", "[2001:DB8::7]:4739"])
    assert opts.ipfix_collector == ("2001:db8::7", 4739)
    (tmp_path / "bandix").write_text("config bandix 'config'\n\toption ipfix_collector ''\n")  # as LuCI may leave it
    assert config.parse_args(["--iface", "lo", "--config-dir", str(tmp_path)]).ipfix_collector is None
    (tmp_path / "bandix").unlink()
    out = subprocess.run([sys.executable, "-m", "bandix", "--iface", "lo", "--enable-traffic", "--config-dir",
                          str(tmp_path), "--ipfix-collector", "192.0.2.7:4739"], cwd=ROOT, capture_output=True,
                         text=True)
    assert out.returncode == 2 and "add --enable-flows" in out.stderr, out.stderr
    assert "bandix.export" not in subprocess.run(
        [sys.executable, "-c", "import sys, bandix.daemon; print(sorted(sys.modules))"], cwd=ROOT,
        capture_output=True, text=True, check=True).stdout  # imported only when a collector is set


def test_messages_fit_a_datagram_and_number_their_records():
    """Records of all four templates, domains up to the longest: every message at most MESSAGE_SIZE bytes,
    the templates first, sequence numbers counting the records before each message."""
    from bandix.collect.flows import Flow
    from bandix.export import ipfix

    records = []
    for i in range(300):
        v6, up = i % 3 == 0, i % 2 == 0
        lan, peer = ("fd77::11", "2001:db8:100::10") if v6 else ("192.168.77.11", "198.51.100.10")
        src, dst = (lan, peer) if up else (peer, lan)
        flow = Flow("up" if up else "down", 17, src, 1000 + i, dst, 53, "02:bd:00:00:00:01",
                    label=(1, "dns", "x" * (i % 300)))  # longer than MAX_DOMAIN from 255 on: cut
        records.append(ipfix.encode_record(flow, i, 1, 1, 2))
    out = list(ipfix.messages(records, 1_700_000_000, 2**32 - 5, 7, True))
    assert all(len(m) <= ipfix.MESSAGE_SIZE for m, _ in out)
    assert sum(n for _, n in out) == 300
    sequences = [struct.unpack_from("!I", m, 8)[0] for m, _ in out]
    expected = [(2**32 - 5 + sum(n for _, n in out[:k])) % 2**32 for k in range(len(out))]
    assert sequences == expected
    template_sets, decoded = decode_ipfix([m for m, _ in out])
    assert template_sets == 1 and struct.unpack_from("!H", out[0][0], 16)[0] == 2
    assert sorted(int.from_bytes(r[(0, 1)], "big") for r in decoded) == list(range(300))
    assert max(len(r[(ENTERPRISE, DOMAIN_ELEMENT)]) for r in decoded) == ipfix.MAX_DOMAIN
    assert list(ipfix.messages([], 0, 0, 7, False)) == []
