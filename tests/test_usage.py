"""Usage over a range (ranking, increments, export) and forgetting a device, on the virtual
router with real iperf3 traffic.

Ground truth is the daemon's own one-second samples (/api/traffic/metrics): the
WAN (LAN) bytes of a sample are the difference of its cumulative WAN (LAN)
totals and the previous sample's, and the usage answers must equal their sums
exactly over the range they say they cover, for network_type wan, lan and all
(= both). LAN traffic runs between two client namespaces on two bridges (the
router routes it, so both devices count it as LAN: within one bridge it would
be switched past bandix). The daemon runs in a time zone made for the
test, whose local midnight falls in the middle of the traffic: the daily
increments split there, not at a UTC midnight.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

import pytest

from bandix import uci
from tests.bandixd import Bandix, _NsConnection, remove_state
from tests.test_api import validate
from tests.traffic import settle
from tests.vrouter import NETNS_DIR, VirtualRouter

MIDNIGHT_IN_S = 11  # local midnight about this long after the daemon starts, mid-traffic
WAN_RX, WAN_TX = 11, 12  # cumulative WAN byte columns of a realtime row
LAN_RX, LAN_TX = 9, 10  # and LAN
COLUMNS = {"wan": ((WAN_RX,), (WAN_TX,)), "lan": ((LAN_RX,), (LAN_TX,)), "all": ((WAN_RX, LAN_RX), (WAN_TX, LAN_TX))}
NETWORK_TYPES = tuple(COLUMNS)


def east_of_utc(midnight: int) -> int:
    """The offset (s) east of UTC that puts a local midnight at the instant `midnight`."""
    return (-midnight) % 86400


def local_day(instant: float, midnight: int) -> time.struct_time:
    return time.gmtime(instant + east_of_utc(midnight))


def tz_with_midnight_at(instant: int) -> str:
    """A POSIX TZ whose local midnight is at `instant` (s): UTC plus an offset east."""
    east = east_of_utc(instant)
    return f"BDX-{east // 3600:02d}:{east % 3600 // 60:02d}:{east % 60:02d}"


@pytest.fixture(scope="module")
def site():
    pin_dir = Path("/sys/fs/bpf") / f"bandix-test-{uuid.uuid4().hex[:8]}"
    with VirtualRouter(bridges=("br-lan", "br-guest"),
                       clients=[("c1", "br-lan"), ("c2", "br-lan"), ("c3", "br-guest")]) as vr:
        vr.wait_quiet()
        # On an edge of the 2 s buckets that answer, as a real zone's midnight is on theirs
        # (offsets are whole quarter hours; every level's interval divides 30 minutes).
        midnight = (int(time.time()) + MIDNIGHT_IN_S) // 2 * 2
        daemon = Bandix(vr.router, ["--iface", "br-lan", "--iface", "br-guest", "--enable-traffic",
                                    "--test-level-seconds", "2,4,10,20"],
                        pin_dir, env={"TZ": tz_with_midnight_at(midnight)}).start()
        try:
            c1, c2, c3 = vr.clients
            for port in (5201, 5202):
                vr.internet.popen(["iperf3", "-s", "-1", "-p", str(port), "-B", vr.SERVER_V4])
                vr.internet.wait_listening(port)
            c3.ns.popen(["iperf3", "-s", "-1", "-p", "5301", "-B", c3.ipv4])
            c3.ns.wait_listening(5301)
            started = time.time()
            # c1 downloads 8 Mbit/s, c2 uploads 2 Mbit/s, c3 pings: across local midnight.
            # On the LAN, c1 sends c3 3 Mbit/s (from br-lan to br-guest) and c2 pings c3.
            dl = c1.ns.popen(["iperf3", "-c", vr.SERVER_V4, "-p", "5201", "-R", "-u", "-b", "8M", "-t", "20"],
                            stdout=subprocess.DEVNULL)
            ul = c2.ns.popen(["iperf3", "-c", vr.SERVER_V4, "-p", "5202", "-b", "2M", "-t", "20"],
                            stdout=subprocess.DEVNULL)
            lan = c1.ns.popen(["iperf3", "-c", c3.ipv4, "-p", "5301", "-u", "-b", "3M", "-t", "18"],
                             stdout=subprocess.DEVNULL)
            c3.ns.run(["ping", "-c", "5", "-i", "0.2", vr.SERVER_V4])
            c2.ns.run(["ping", "-c", "10", "-i", "0.2", "-s", "1000", c3.ipv4])
            assert dl.wait(40) == 0 and ul.wait(40) == 0 and lan.wait(40) == 0
            settle(daemon)
            time.sleep(2.5)  # the last 2 s bucket closes
            yield {"vr": vr, "daemon": daemon, "midnight": midnight, "started": started}
        finally:
            daemon.stop()
            remove_state(pin_dir)


def samples(daemon: Bandix, mac: str | None) -> list[list[int]]:
    status, body = daemon.get("/api/traffic/metrics" + (f"?mac={mac}" if mac else ""))
    assert status == 200, body
    return body["data"]["metrics"]


def truth(rows: list[list[int]], start_ms: int, end_ms: int, network_type: str = "wan") -> tuple[int, int]:
    """(rx, tx) bytes of `network_type` of the one-second samples stamped in [start_ms, end_ms)."""
    rx_cols, tx_cols = COLUMNS[network_type]
    rx = tx = 0
    previous = [0] * len(rows[0]) if rows else []
    for row in rows:
        if start_ms <= row[0] < end_ms:
            rx += sum(row[c] - previous[c] for c in rx_cols)
            tx += sum(row[c] - previous[c] for c in tx_cols)
        previous = row
    return rx, tx


def get(daemon: Bandix, path: str, **params) -> dict:
    status, body = daemon.get(path + "?" + urlencode(params))
    assert status == 200, body
    return body


def test_ranking_equals_the_sums_of_the_one_second_samples(site):
    vr, daemon = site["vr"], site["daemon"]
    start = int(site["started"] * 1000) - 3333  # not on a bucket edge
    body = get(daemon, "/api/traffic/usage/ranking", start_ms=start, end_ms=int(time.time() * 1000),
               network_type="wan")
    validate(body, "UsageRankingResponse")
    data = body["data"]
    assert data["level"] == "day" and data["resolution_seconds"] == 2
    assert data["start_ms"] == -(-start // 2000) * 2000 and data["end_ms"] % 2000 == 0
    ranked = data["devices"]
    c1, c2, c3 = vr.clients
    assert [d["mac"] for d in ranked] == [c1.mac, c2.mac, c3.mac]  # 8M down, 2M up, pings
    total = 0
    for d in ranked:
        rx, tx = truth(samples(daemon, d["mac"]), data["start_ms"], data["end_ms"])
        assert (d["rx_bytes"], d["tx_bytes"], d["total_bytes"]) == (rx, tx, rx + tx), d["mac"]
        assert d["ip"] == vr.client(next(c.name for c in vr.clients if c.mac == d["mac"])).ipv4
        total += rx + tx
    assert data["total_bytes"] == total
    assert [d["share"] for d in ranked] == [d["total_bytes"] / total for d in ranked]
    assert ranked[0]["rx_bytes"] > 8e6 / 8 * 15  # most of the 20 s download is in range
    print(f"ranking over {(data['end_ms'] - data['start_ms']) / 1000:.0f} s: "
          + ", ".join(f"{d['mac']} {d['total_bytes']} B ({d['share']:.1%})" for d in ranked))


@pytest.mark.parametrize("network_type", ["lan", "all"])
def test_lan_and_all_rankings_equal_the_sums_of_the_one_second_samples(site, network_type):
    vr, daemon = site["vr"], site["daemon"]
    c1, c2, c3 = vr.clients
    start = int(site["started"] * 1000) - 3333
    body = get(daemon, "/api/traffic/usage/ranking", start_ms=start, end_ms=int(time.time() * 1000),
               network_type=network_type)
    validate(body, "UsageRankingResponse")
    data = body["data"]
    assert data["network_type"] == network_type and data["level"] == "day"
    # Every device with such bytes in the range, exactly, most first (ties by MAC).
    expected = []
    for c in vr.clients:
        rx, tx = truth(samples(daemon, c.mac), data["start_ms"], data["end_ms"], network_type)
        if rx or tx:
            expected.append({"mac": c.mac, "rx_bytes": rx, "tx_bytes": tx, "total_bytes": rx + tx})
    expected.sort(key=lambda d: (-d["total_bytes"], d["mac"]))
    assert [{k: d[k] for k in ("mac", "rx_bytes", "tx_bytes", "total_bytes")} for d in data["devices"]] == expected
    total = sum(d["total_bytes"] for d in expected)
    assert data["total_bytes"] == total and data["rx_bytes"] == sum(d["rx_bytes"] for d in expected)
    assert [d["share"] for d in data["devices"]] == [d["total_bytes"] / total for d in expected]
    by_mac = {d["mac"]: d for d in data["devices"]}
    lan_stream = 3e6 / 8 * 12  # most of c1's 18 s at 3 Mbit/s to c3 is in range
    assert by_mac[c1.mac]["tx_bytes"] > lan_stream and by_mac[c3.mac]["rx_bytes"] > lan_stream
    if network_type == "all":
        wan = get(daemon, "/api/traffic/usage/ranking", start_ms=start, end_ms=data["end_ms"])["data"]
        lan = get(daemon, "/api/traffic/usage/ranking", start_ms=start, end_ms=data["end_ms"],
                  network_type="lan")["data"]
        assert (wan["start_ms"], wan["end_ms"]) == (lan["start_ms"], lan["end_ms"]) == (data["start_ms"],
                                                                                       data["end_ms"])
        assert total == wan["total_bytes"] + lan["total_bytes"]
        for mac, d in by_mac.items():
            w = next((x for x in wan["devices"] if x["mac"] == mac), {"rx_bytes": 0, "tx_bytes": 0})
            la = next((x for x in lan["devices"] if x["mac"] == mac), {"rx_bytes": 0, "tx_bytes": 0})
            assert (d["rx_bytes"], d["tx_bytes"]) == (w["rx_bytes"] + la["rx_bytes"], w["tx_bytes"] + la["tx_bytes"])
    else:
        # c2's WAN upload is no LAN traffic: only its pings to c3 are.
        assert by_mac[c2.mac]["tx_bytes"] < 10 * 1100 * 2
    print(f"{network_type} ranking: " + ", ".join(f"{d['mac']} {d['total_bytes']} B" for d in data["devices"]))


def test_daily_increments_split_at_local_midnight_and_hourly_are_exact(site):
    vr, daemon = site["vr"], site["daemon"]
    c1 = vr.clients[0]
    start = int(site["started"] * 1000) - 1000
    end = int(time.time() * 1000)
    body = get(daemon, "/api/traffic/usage/increments", mac=c1.mac, start_ms=start, end_ms=end, aggregation="daily")
    validate(body, "UsageIncrementsResponse")
    data = body["data"]
    days = data["increments"]
    midnight_ms = site["midnight"] * 1000
    assert [d["ts_ms"] for d in days] == [midnight_ms - 86_400_000, midnight_ms]
    rows = samples(daemon, c1.mac)
    before = truth(rows, data["start_ms"], midnight_ms)
    after = truth(rows, midnight_ms, data["end_ms"])
    assert [(d["rx_bytes"], d["tx_bytes"]) for d in days] == [before, after]
    assert before[0] > 1e6 and after[0] > 1e6  # the download ran on both local days
    assert days[1]["date"] == time.strftime("%Y-%m-%d", local_day(site["midnight"], site["midnight"]))  # the local date
    print(f"c1 download: {before[0]} B before local midnight, {after[0]} B after")
    # All devices summed, per local hour: the same split, from the all-devices series.
    body = get(daemon, "/api/traffic/usage/increments", start_ms=start, end_ms=end, aggregation="hourly")
    hours = body["data"]["increments"]
    assert body["data"]["mac"] == "all" and hours[-1]["ts_ms"] == midnight_ms
    all_rows = samples(daemon, None)
    for h, nxt in zip(hours, [*(x["ts_ms"] for x in hours[1:]), body["data"]["end_ms"]], strict=True):
        assert (h["rx_bytes"], h["tx_bytes"]) == truth(all_rows, max(h["ts_ms"], body["data"]["start_ms"]), nxt)


@pytest.mark.parametrize("network_type", ["lan", "all"])
def test_lan_and_all_increments_split_at_local_midnight_exactly(site, network_type):
    vr, daemon = site["vr"], site["daemon"]
    c1, c3 = vr.clients[0], vr.clients[2]
    start = int(site["started"] * 1000) - 1000
    end = int(time.time() * 1000)
    midnight_ms = site["midnight"] * 1000
    for c, busy in ((c1, 1), (c3, 0)):  # c1 sends the LAN stream (tx), c3 receives it (rx)
        body = get(daemon, "/api/traffic/usage/increments", mac=c.mac, start_ms=start, end_ms=end,
                   aggregation="daily", network_type=network_type)
        validate(body, "UsageIncrementsResponse")
        data = body["data"]
        assert data["network_type"] == network_type
        days = data["increments"]
        assert [d["ts_ms"] for d in days] == [midnight_ms - 86_400_000, midnight_ms]
        rows = samples(daemon, c.mac)
        split = [truth(rows, data["start_ms"], midnight_ms, network_type),
                 truth(rows, midnight_ms, data["end_ms"], network_type)]
        assert [(d["rx_bytes"], d["tx_bytes"]) for d in days] == split
        assert (data["rx_bytes"], data["tx_bytes"]) == (split[0][0] + split[1][0], split[0][1] + split[1][1])
        assert split[0][busy] > 1e5 and split[1][busy] > 1e5  # the LAN stream ran on both local days
    # All devices summed, per local hour, from the all-devices series.
    body = get(daemon, "/api/traffic/usage/increments", start_ms=start, end_ms=end, aggregation="hourly",
               network_type=network_type)
    all_rows = samples(daemon, None)
    hours = body["data"]["increments"]
    for h, nxt in zip(hours, [*(x["ts_ms"] for x in hours[1:]), body["data"]["end_ms"]], strict=True):
        assert (h["rx_bytes"], h["tx_bytes"]) == truth(all_rows, max(h["ts_ms"], body["data"]["start_ms"]), nxt,
                                                       network_type)


def _raw_get(daemon: Bandix, path: str) -> tuple[int, dict[str, str], str]:
    conn = _NsConnection(daemon.ns, daemon.host, daemon.port)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read().decode()
    finally:
        conn.close()


def test_export_is_a_file_of_the_daily_increments(site):
    vr, daemon = site["vr"], site["daemon"]
    start, end = int(site["started"] * 1000) - 1000, int(time.time() * 1000)
    query = urlencode({"start_ms": start, "end_ms": end})
    status, headers, text = _raw_get(daemon, f"/api/traffic/usage/export?{query}")
    assert status == 200 and headers["content-type"] == "text/csv; charset=utf-8"
    first_day = time.strftime("%Y%m%d", local_day(site["midnight"] - 1, site["midnight"]))
    last_day = time.strftime("%Y%m%d", local_day(site["midnight"], site["midnight"]))
    assert headers["content-disposition"] == f'attachment; filename="bandix-usage-daily-{first_day}-{last_day}.csv"'
    table = list(csv.DictReader(io.StringIO(text)))
    status, headers, raw = _raw_get(daemon, f"/api/traffic/usage/export?format=json&{query}")
    assert status == 200 and headers["content-disposition"].endswith('.json"')
    exported = json.loads(raw)
    validate(exported, "UsageExportResponse")
    assert [{k: str(v) for k, v in r.items()} for r in exported["data"]["rows"]] == table
    for c in vr.clients:
        days = get(daemon, "/api/traffic/usage/increments", mac=c.mac, start_ms=start, end_ms=end,
                   aggregation="daily")["data"]["increments"]
        mine = [r for r in table if r["mac"] == c.mac]
        assert [(int(r["ts_ms"]), int(r["rx_bytes"]), int(r["tx_bytes"])) for r in mine] == [
            (d["ts_ms"], d["rx_bytes"], d["tx_bytes"]) for d in days if d["total_bytes"]]
        assert all(r["ip"] == c.ipv4 for r in mine)
    # network_type lan: the LAN increments, in a file of its own name.
    status, headers, raw = _raw_get(daemon, f"/api/traffic/usage/export?format=json&network_type=lan&{query}")
    assert status == 200 and headers["content-disposition"] == (
        f'attachment; filename="bandix-usage-lan-daily-{first_day}-{last_day}.json"')
    exported = json.loads(raw)
    validate(exported, "UsageExportResponse")
    assert exported["data"]["network_type"] == "lan"
    rows = exported["data"]["rows"]
    for c in vr.clients:
        days = get(daemon, "/api/traffic/usage/increments", mac=c.mac, start_ms=start, end_ms=end,
                   aggregation="daily", network_type="lan")["data"]["increments"]
        assert [(r["ts_ms"], r["rx_bytes"], r["tx_bytes"]) for r in rows if r["mac"] == c.mac] == [
            (d["ts_ms"], d["rx_bytes"], d["tx_bytes"]) for d in days if d["total_bytes"]]
    assert {r["mac"] for r in rows} >= {vr.clients[0].mac, vr.clients[2].mac}


def test_bandix_export_writes_the_apis_file(site, tmp_path):
    vr, daemon, midnight = site["vr"], site["daemon"], site["midnight"]
    day_before = time.strftime("%Y-%m-%d", local_day(midnight - 1, midnight))
    day_after = time.strftime("%Y-%m-%d", local_day(midnight + 86400, midnight))
    out = tmp_path / "usage.csv"
    done = subprocess.run(["nsenter", f"--net={NETNS_DIR / vr.router.name}", sys.executable, "-m", "bandix", "export",
                           "--url", f"http://127.0.0.1:{daemon.port}", "--from", day_before, "--to", day_after,
                           "-o", str(out), "--config-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=30, env={**os.environ, **daemon.env})
    assert done.returncode == 0, done.stderr
    query = urlencode({"start_ms": (midnight - 86400) * 1000, "end_ms": (midnight + 86400) * 1000})
    status, _, text = _raw_get(daemon, f"/api/traffic/usage/export?{query}")
    assert status == 200 and out.read_bytes().decode() == text
    assert text.count("\r\n") >= 1 + 3  # the header, a row per device at least
    assert done.stderr == f"wrote {len(text.encode())} bytes to {out}\n"
    # No daemon there: a clear error, exit 2.
    done = subprocess.run([sys.executable, "-m", "bandix", "export", "--url", "http://127.0.0.1:9",
                           "--config-dir", str(tmp_path)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and done.stderr.startswith("bandix export: error: no answer from http://127.0.0.1:9")


@pytest.mark.parametrize("path, message", [
    ("/api/traffic/usage/ranking?start_ms=abc", "start_ms: must be a whole number"),
    ("/api/traffic/usage/ranking?start_ms=10&end_ms=10", "end_ms: must be after start_ms"),
    ("/api/traffic/usage/ranking?start_ms=1&start_ms=2", "start_ms: given more than once"),
    ("/api/traffic/usage/ranking?network_type=guest", "network_type: one of wan, lan, all"),
    ("/api/traffic/usage/increments?network_type=WAN", "network_type: one of wan, lan, all"),
    ("/api/traffic/usage/export?network_type=", "network_type: one of wan, lan, all"),
    ("/api/traffic/usage/increments?aggregation=weekly", "aggregation: one of hourly, daily"),
    ("/api/traffic/usage/increments?mac=zz", "mac: 'zz' is not a MAC address"),
    ("/api/traffic/usage/export?format=xml", "format: one of csv, json"),
    ("/api/traffic/usage/export?end_ms=-5", "end_ms: must be a whole number"),
])
def test_bad_input_is_400_naming_the_field(site, path, message):
    status, body = site["daemon"].get(path)
    assert status == 400 and body["status"] == "error" and body["message"].startswith(message), body


def test_unknown_device_increments_are_404(site):
    status, body = site["daemon"].get("/api/traffic/usage/increments?mac=02:bd:00:00:00:99")
    assert status == 404 and body["message"].startswith("mac:")


def _uci_sections(daemon: Bandix, mac: str) -> list[str]:
    f = uci.load(daemon.config_dir / "bandix")
    out = [s.type for s in f.sections if (s.get("mac") or "") == mac]
    default = f.named("default_limit")
    return out + (["whitelist"] if default is not None and mac in default.get_list("whitelist") else [])


def test_forget_a_device_its_counters_go_and_its_rules_only_when_asked(site):
    vr, daemon = site["vr"], site["daemon"]
    c1, c2, c3 = vr.clients
    uci_path = daemon.config_dir / "bandix"
    for c in (c2, c3):
        assert daemon.send("POST", "/api/traffic/limits/schedule", {
            "mac": c.mac, "time_slot": {"start": "00:00", "end": "24:00", "days": [1, 2, 3, 4, 5, 6, 7]},
            "wan_rx_rate_limit": 90_000_000, "wan_tx_rate_limit": 0})[0] == 200
        assert daemon.send("POST", "/api/traffic/bindings", {"mac": c.mac, "hostname": f"box {c.name}"})[0] == 200
        assert daemon.send("POST", "/api/traffic/quotas", {
            "mac": c.mac, "period": "month", "bytes": 10**9, "direction": "both", "action": "block",
            "throttle_rx_rate": 0, "throttle_tx_rate": 0, "reset_day": 1, "reset_hour": 0})[0] == 200
        assert daemon.send("POST", "/api/traffic/rate_limit/whitelist", {"mac": c.mac})[0] == 200
    # Refused: nothing changes.
    before = uci_path.read_bytes()
    for body, message in ((["x"], "body: must be a JSON object"), ({"mac": "zz"}, "mac: 'zz' is not a MAC"),
                          ({"mac": c3.mac, "rules": "yes"}, "rules: must be true or false"),
                          ({"mac": c3.mac, "colour": 1}, "colour: unknown field")):
        status, answer = daemon.send("DELETE", "/api/traffic/devices", body)
        assert status == 400 and answer["message"].startswith(message), answer
    assert daemon.send("DELETE", "/api/traffic/devices", {"mac": "02:bd:00:00:00:99"}) == (
        404, {"status": "error", "message": "mac: no device 02:bd:00:00:00:99"})
    assert uci_path.read_bytes() == before and set(daemon.devices()) == {c1.mac, c2.mac, c3.mac}
    # c3 forgotten: counters, samples and history go; its rules, binding, quota stay.
    assert daemon.send("DELETE", "/api/traffic/devices", {"mac": c3.mac}) == (
        200, {"status": "success", "data": {"deleted": {"mac": c3.mac, "rules": False}}})
    assert c3.mac not in daemon.devices()
    assert daemon.get(f"/api/traffic/metrics?mac={c3.mac}")[0] == 404
    assert daemon.get(f"/api/traffic/metrics/day?mac={c3.mac}")[0] == 404
    assert c3.mac not in [d["mac"] for d in get(daemon, "/api/traffic/usage/ranking", start_ms=0)["data"]["devices"]]
    assert uci_path.read_bytes() == before
    assert sorted(_uci_sections(daemon, c3.mac)) == ["binding", "limit", "quota", "whitelist"]
    # The kernel's slots went too: at its next packets it starts from zero.
    settle(daemon)
    assert c3.mac not in daemon.devices()
    link_before = c3.ns.link_stats(c3.ifname)
    c3.ns.run(["ping", "-c", "3", "-i", "0.2", vr.SERVER_V4])
    settle(daemon)
    link_after = c3.ns.link_stats(c3.ifname)
    dev = daemon.devices()[c3.mac]
    frames = link_after["tx_packets"] - link_before["tx_packets"]
    sent = link_after["tx_bytes"] - link_before["tx_bytes"] - 14 * frames  # L3 bytes
    assert dev["total_tx_bytes"] == sent and dev["wan_tx_bytes"] == 3 * 84  # three echo requests, nothing older
    assert dev["hostname"] == "box c3"  # the binding stayed
    # c2 forgotten with its rules: UCI loses every section of it, and only of it.
    status, answer = daemon.send("DELETE", "/api/traffic/devices", {"mac": c2.mac, "rules": True})
    assert (status, answer["data"]) == (200, {"deleted": {"mac": c2.mac, "rules": True, "removed": {
        "rules": 1, "quotas": 1, "bindings": 1, "whitelist": 1}}})
    assert _uci_sections(daemon, c2.mac) == []
    assert sorted(_uci_sections(daemon, c3.mac)) == ["binding", "limit", "quota", "whitelist"]
    assert c2.mac not in daemon.devices()
    assert not [q for q in daemon.get("/api/traffic/quotas")[1]["data"]["quotas"] if q["mac"] == c2.mac]
