"""A real Prometheus (Debian's `prometheus`) scrapes the daemon every second from
the router namespace, with the config file the README shows; the test asks
Prometheus's HTTP API what it stored, and runs every expression of the Grafana
dashboard that ships (files/grafana/bandix.json) against it.

Grafana itself is not in Debian: the dashboard's import format is checked on
its own (inputs, datasource references, ids, variables), its expressions by
promtool and this Prometheus.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from pathlib import Path

import pytest

from tests.bandixd import Bandix, http_get, remove_state
from tests.test_dns import dig
from tests.traffic import settle
from tests.vrouter import VirtualRouter

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "files" / "grafana" / "bandix.json"
PROMETHEUS_PORT = 9090
SCRAPE_S = 1
PROMETHEUS_CONFIG = """\
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: bandix
    static_configs:
      - targets: ["127.0.0.1:8686"]
"""
UDP_PAYLOAD = 1400
L3_OVERHEAD = 28  # IPv4 + UDP headers: bandix counts L3 bytes, iperf3 reports payload
# Grafana's variables, as the dashboard's "All" sends them; $__rate_interval is at least four scrapes.
GRAFANA_VARIABLES = {"$__rate_interval": "4s", "$__range": "1m", "$instance": ".*", "$mac": ".*"}
QUOTA_METRICS = ("bandix_device_quota_bytes", "bandix_device_quota_used_bytes", "bandix_device_quota_state")


class Prometheus:
    """The server in the router namespace; storage in a temporary directory removed on close."""

    def __init__(self, vr: VirtualRouter) -> None:
        self.ns = vr.router
        self.dir = Path(tempfile.mkdtemp(prefix="bandix-prometheus-"))
        (self.dir / "prometheus.yml").write_text(PROMETHEUS_CONFIG)
        with open(self.dir / "log", "wb") as log:
            self.proc = self.ns.popen(["prometheus", f"--config.file={self.dir / 'prometheus.yml'}",
                                       f"--storage.tsdb.path={self.dir / 'data'}",
                                       f"--web.listen-address=127.0.0.1:{PROMETHEUS_PORT}", "--log.level=warn"],
                                      stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if http_get(self.ns, "/-/ready", PROMETHEUS_PORT)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"prometheus did not start: {(self.dir / 'log').read_text()}")

    def api(self, path: str, **params: str | float) -> list | dict:
        status, _, text = http_get(self.ns, f"/api/v1/{path}?{urllib.parse.urlencode(params)}", PROMETHEUS_PORT)
        body = json.loads(text)
        assert status == 200 and body["status"] == "success", (path, params, body)
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict]:
        return self.api("query", query=expr, **({"time": at} if at else {}))["result"]

    def series(self, match: str, start: float) -> list[dict]:
        return self.api("series", **{"match[]": match, "start": start, "end": time.time()})

    def wait_scrapes(self, n: int = 2) -> None:
        """Until a successful scrape of the daemon n scrape intervals from now is stored."""
        due = time.time() + (n - 0.5) * SCRAPE_S
        deadline = time.monotonic() + 10 + n
        while time.monotonic() < deadline:
            up = self.query("timestamp(up == 1)")
            if up and float(up[0]["value"][1]) >= due:
                return
            time.sleep(0.2)
        raise AssertionError("prometheus stopped scraping bandix")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(15)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """A router with every module and IPFIX export (to a port where nothing listens, for its
    health series), a rate limit, DNS answers and connections; Prometheus scraping it."""
    data = tmp_path_factory.mktemp("data")
    pin_dir = Path("/sys/fs/bpf") / f"bandix-test-{uuid.uuid4().hex[:8]}"
    with VirtualRouter() as vr:
        vr.wait_quiet()
        daemon = Bandix(vr.router, ["--iface", "br-lan", "--enable-traffic", "--enable-connection", "--enable-dns",
                                    "--enable-flows", "--data-dir", str(data), "--connection-interval-seconds", "1",
                                    "--ipfix-collector", f"{vr.SERVER_V4}:4739"], pin_dir).start()
        prometheus = None
        try:
            dns = vr.internet.popen([sys.executable, "-m", "tests.dnsserver", vr.SERVER_V4], cwd=ROOT,
                                    stdout=subprocess.PIPE)
            assert dns.stdout.readline().strip() == b"listening"
            for c in vr.clients:
                c.ns.run(["ping", "-c", "2", "-i", "0.1", vr.SERVER_V4])
                dig(c, vr.SERVER_V4, "a.test")
            rule = {"mac": vr.clients[1].mac, "time_slot": {"start": "00:00", "end": "24:00",
                                                            "days": [1, 2, 3, 4, 5, 6, 7]},
                    "wan_rx_rate_limit": 1_250_000, "wan_tx_rate_limit": 0}
            assert daemon.send("POST", "/api/traffic/limits/schedule", rule)[0] == 200
            settle(daemon)
            prometheus = Prometheus(vr)
            prometheus.wait_scrapes(3)
            yield vr, daemon, prometheus
        finally:
            if prometheus:
                prometheus.close()
            daemon.stop()
            remove_state(pin_dir)


def stored(prometheus: Prometheus, expr: str, at: float | None = None) -> dict[tuple, float]:
    return {(r["metric"]["mac"], r["metric"]["zone"], r["metric"]["direction"]): float(r["value"][1])
            for r in prometheus.query(expr, at)}


def api_counters(daemon: Bandix) -> dict[tuple, float]:
    return {(mac, z, d): d_[f"{z}_{d}_bytes"] for mac, d_ in daemon.devices().items()
            for z in ("lan", "wan") for d in ("rx", "tx")}


def test_stored_counters_equal_the_api_and_rate_matches_iperf3(scene):
    vr, daemon, prometheus = scene
    c1 = vr.clients[0]
    server = vr.internet.popen(["iperf3", "-s", "-1", "-p", "5202", "-B", vr.SERVER_V4], stdout=subprocess.DEVNULL)
    vr.internet.wait_listening(5202)
    client = c1.ns.popen(["iperf3", "-c", vr.SERVER_V4, "-p", "5202", "-J", "-u", "-R", "-b", "16M",
                          "-l", str(UDP_PAYLOAD), "-t", "10"], stdout=subprocess.PIPE)
    time.sleep(3)
    # While the flow runs: what Prometheus stored last is at most one scrape (and the reading before it)
    # behind the API, never ahead of it.
    for _ in range(3):
        latest = prometheus.query(f'bandix_device_bytes_total{{mac="{c1.mac}",zone="wan",direction="rx"}}')
        now = daemon.devices()[c1.mac]["wan_rx_bytes"]
        behind = now - float(latest[0]["value"][1])
        assert 0 <= behind <= 2_000_000 * (SCRAPE_S + 1) * 1.2, behind  # 16 Mbit/s = 2 MB/s
        time.sleep(1)
    report = json.loads(client.communicate(timeout=30)[0])
    server.wait(10)
    ended = time.time()
    # iperf3's own figure, as L3 bytes per second, beside rate() over six steady seconds.
    received = report["end"]["sum"]
    iperf_rate = received["bytes"] / received["seconds"] * (UDP_PAYLOAD + L3_OVERHEAD) / UDP_PAYLOAD
    # Late in the flow: early on, the device's counter is near zero and rate() stops extrapolating there.
    rate = prometheus.query(f'rate(bandix_device_bytes_total{{mac="{c1.mac}",zone="wan",direction="rx"}}[6s])',
                            ended - 1.5)
    assert abs(float(rate[0]["value"][1]) / iperf_rate - 1) < 0.05, (rate, iperf_rate)
    # Idle again: after the next scrapes, every stored counter equals the API's for the same reading.
    settle(daemon)
    prometheus.wait_scrapes(2)
    api = api_counters(daemon)
    assert stored(prometheus, "bandix_device_bytes_total") == api


def test_promtool_finds_nothing_to_say_about_metrics(scene):
    _, daemon, _ = scene
    status, _, text = http_get(daemon.ns, "/metrics", daemon.port)
    assert status == 200
    out = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert (out.returncode, out.stdout, out.stderr) == (0, "", "")


def test_no_series_churn_across_a_restart_and_a_new_address(scene):
    """A restart continues from the pinned counters under the same series; a device that only changes its
    address ends one bandix_device_info series and starts one, nothing else."""
    vr, daemon, prometheus = scene
    c2 = vr.clients[1]
    start = time.time() - 60  # since the scene started: every series stored so far
    names = sorted({s["__name__"] for s in prometheus.series('{__name__=~"bandix_.+"}', start)})
    before = {n: prometheus.series(n, start) for n in names}
    daemon.stop()
    daemon.start()
    new_ip = "192.168.77.99"
    c2.ns.run(["sysctl", "-q", "-w", "net.ipv4.conf.eth0.promote_secondaries=1"])
    c2.ns.ip_batch([f"addr add {new_ip}/24 dev eth0", f"addr del {c2.ipv4}/24 dev eth0"])
    vr.router.ip_batch([f"neigh replace {new_ip} lladdr {c2.mac} dev br-lan nud permanent",
                        f"neigh del {c2.ipv4} dev br-lan"])
    try:
        c2.ns.run(["ping", "-c", "2", "-i", "0.1", vr.SERVER_V4])
        settle(daemon)
        prometheus.wait_scrapes(3)
        info = {r["metric"]["mac"]: r["metric"] for r in prometheus.query("bandix_device_info")}
        assert info[c2.mac]["ip"] == new_ip
        assert len(info) == len(vr.clients)  # one info series per device at any instant
        for name in names:
            after = prometheus.series(name, start)
            key = lambda s: json.dumps(s, sort_keys=True)  # noqa: E731
            grown = {key(s) for s in after} - {key(s) for s in before[name]}
            if name == "bandix_device_info":
                assert [json.loads(s)["ip"] for s in grown] == [new_ip]
            else:
                assert not grown, (name, grown)
        # The restart continued the counters: no reset seen in what Prometheus stored.
        resets = prometheus.query(f"resets(bandix_device_bytes_total[{int(time.time() - start) + 5}s])")
        assert resets and all(r["value"][1] == "0" for r in resets)
    finally:
        c2.ns.ip_batch([f"addr add {c2.ipv4}/24 dev eth0", f"addr del {new_ip}/24 dev eth0"])
        vr.router.ip_batch([f"neigh replace {c2.ipv4} lladdr {c2.mac} dev br-lan nud permanent",
                            f"neigh del {new_ip} dev br-lan"])


# -- the Grafana dashboard ----------------------------------------------------------------------------

PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool",
                "offset", "sum", "avg", "count", "min", "max", "topk", "bottomk", "quantile", "stddev", "stdvar",
                "count_values", "group", "inf", "nan"}


def dashboard_expressions() -> list[tuple[str, str]]:
    """(panel title, expression with Grafana's variables replaced) of every target."""
    board = json.loads(DASHBOARD.read_text())
    out = []
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for name, value in sorted(GRAFANA_VARIABLES.items(), key=lambda kv: -len(kv[0])):
                expr = expr.replace(name, value)
            assert "$" not in expr, (panel["title"], expr)
            out.append((panel["title"], expr))
    return out


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects: identifiers outside strings, label matchers, grouping
    clauses and ranges that are neither functions nor PromQL keywords."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", bare)
    bare = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", bare)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", bare):
        word = m.group(0)
        if word.lower() in PROMQL_WORDS or bare[m.end():].lstrip().startswith("("):
            continue
        names.add(word)
    return names


def exported_names(daemon: Bandix) -> set[str]:
    text = http_get(daemon.ns, "/metrics", daemon.port)[2]
    families = set(re.findall(r"^# TYPE (\S+) (\S+)", text, re.M))
    out = set()
    for name, kind in families:
        out |= {name, f"{name}_sum", f"{name}_count"} if kind == "summary" else {name}
    return out


def test_dashboard_imports_into_grafana():
    """What Grafana's import needs of an exported dashboard: the datasource input every panel and
    variable refers to, unique panel ids, a uid, and variables its queries use."""
    board = json.loads(DASHBOARD.read_text())
    assert [i["name"] for i in board["__inputs"]] == ["DS_PROMETHEUS"]
    assert board["__inputs"][0]["pluginId"] == "prometheus" and board["uid"] and board["schemaVersion"] >= 36
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for p in board["panels"]:
        if p["type"] != "row":
            assert p["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, p["title"]
            assert p["targets"] and all(t["datasource"] == p["datasource"] for t in p["targets"])
            assert {"h", "w", "x", "y"} <= set(p["gridPos"])
    variables = {v["name"] for v in board["templating"]["list"]}
    assert variables == {"instance", "mac"}
    used = set(re.findall(r"\$(\w+)", DASHBOARD.read_text())) - {"__rate_interval", "__range", "__all"}
    assert used == variables  # and ${DS_PROMETHEUS}, the input


def check_expressions(daemon: Bandix, prometheus: Prometheus, exprs: list[tuple[str, str]], tmp_path: Path) -> None:
    rules = {"groups": [{"name": "dashboard", "rules": [{"record": f"dashboard:expr{i}", "expr": e}
                                                        for i, (_, e) in enumerate(exprs)]}]}
    path = tmp_path / "rules.json"  # YAML is a superset of JSON: promtool reads it as it is
    path.write_text(json.dumps(rules))
    out = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    known = exported_names(daemon)
    for title, expr in exprs:
        assert metric_names(expr) and metric_names(expr) <= known, (title, metric_names(expr) - known)
        assert prometheus.query(expr), (title, expr)


def test_every_dashboard_expression_parses_names_our_metrics_and_answers(scene, tmp_path):
    vr, daemon, prometheus = scene
    dig(vr.clients[0], vr.SERVER_V4, "a.test")  # DNS counters start again with each daemon
    exprs = [(t, e) for t, e in dashboard_expressions() if not any(q in e for q in QUOTA_METRICS)]
    assert len(exprs) >= 15
    board = json.loads(DASHBOARD.read_text())
    for variable in board["templating"]["list"]:  # label_values(metric, label): Grafana's own function
        metric, label = re.fullmatch(r"label_values\((\w+)(?:\{.*\})?, (\w+)\)", variable["definition"]).groups()
        assert prometheus.api(f"label/{label}/values", **{"match[]": metric}), variable["name"]
    prometheus.wait_scrapes(5)  # rate() over $__rate_interval has its samples
    check_expressions(daemon, prometheus, exprs, tmp_path)


def test_quota_panels_answer_once_a_quota_is_set(scene, tmp_path):
    """The quota metrics and POST /api/traffic/quotas come with issue 18a's branch: before that
    merge this test fails with the 404 of the missing endpoint."""
    vr, daemon, prometheus = scene
    quota = {"mac": vr.clients[2].mac, "period": "day", "bytes": 1_000_000_000, "direction": "both",
             "action": "block", "reset_day": 1, "reset_hour": 0, "throttle_rx_rate": 0, "throttle_tx_rate": 0}
    status, body = daemon.send("POST", "/api/traffic/quotas", quota)
    assert status == 200, body
    settle(daemon)
    prometheus.wait_scrapes(2)
    exprs = [(t, e) for t, e in dashboard_expressions() if any(q in e for q in QUOTA_METRICS)]
    assert len(exprs) == 2
    check_expressions(daemon, prometheus, exprs, tmp_path)
