"""luci-app-bandix's rpcd exec plugin against a real daemon on the virtual router.

The plugin (root/usr/libexec/rpcd/luci.bandix) runs as rpcd runs it: `list`,
and `call METHOD` with the JSON arguments on stdin, inside the router
namespace. Stand-ins for OpenWrt parts: rpcd and uhttpd's ubus endpoint are
tests/luci/rpcd.py's models (ubus_rpc_session added to every call's
arguments); uclient-fetch is tests/luci/bin's model of it (POST bodies sent
chunked, as the real one does: answered 411 by a server that needs a
Content-Length); uci reads the daemon's UCI directory with bandix's own parser.
"""

import json
import shutil
import subprocess
import time

import pytest

from tests.bandixd import busy_site, dashboard_devices
from tests.luci.bridge import APP, Bridge, run_plugin
from tests.luci.rpcd import uhttpd_ubus
from tests.test_api import validate

ACL = json.loads((APP / "root/usr/share/rpcd/acl.d/luci-app-bandix.json").read_text())["luci-app-bandix"]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    with busy_site(tmp_path_factory.mktemp("data")) as shared:
        yield shared


def call(site, method: str, args: dict | None = None, config_dir=None) -> dict:
    vr, daemon = site
    done = run_plugin(vr.router, config_dir or daemon.config_dir, "call", method,
                      stdin=json.dumps(args) if args is not None else "")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def plugin_list(site) -> dict:
    vr, daemon = site
    done = run_plugin(vr.router, daemon.config_dir, "list")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_list_is_the_daemons_method_table_and_the_acl_splits_it(site):
    status, body = site[1].get("/api/rpc")
    assert status == 200
    validate(body, "RpcMethodsResponse")
    table = body["data"]
    assert plugin_list(site) == table["methods"]
    read = ACL["read"]["ubus"]["luci.bandix"]
    write = ACL["write"]["ubus"]["luci.bandix"]
    assert sorted(read) == sorted(table["read"]) and sorted(write) == sorted(table["write"])
    assert not set(read) & set(write) and sorted(read + write) == sorted(table["methods"])
    assert set(write) == {"set_limit", "put_limit", "delete_limit", "set_default_limit", "add_whitelist",
                          "delete_whitelist", "set_whitelist_enabled", "set_quota", "put_quota", "delete_quota",
                          "set_binding", "forget_device", "set_dns_config"}
    assert ACL["read"]["uci"] == ["bandix", "network", "wireless"] and ACL["write"]["uci"] == ["bandix"]


def by_mac(data: dict) -> dict[str, dict]:
    """The devices answer as {mac: {field: value}}."""
    return {d["mac"]: d for d in dashboard_devices(data)}


def test_devices_is_the_dashboards_answer(site):
    vr, daemon = site
    reply = call(site, "devices", {})
    status, direct = daemon.get("/api/dashboard/devices")
    assert reply["status"] == "success"
    validate(reply, "DashboardDevicesResponse")
    data = reply["data"]
    for key in ("device_fields", "value_fields", "version"):
        assert data[key] == direct["data"][key], key
    devices, later = by_mac(data), by_mac(direct["data"])
    assert set(devices) == {c.mac for c in vr.clients}
    for c in vr.clients:
        assert devices[c.mac]["ip"] == later[c.mac]["ip"] == c.ipv4
    c1 = vr.clients[0].mac
    assert 0 < devices[c1]["wan_rx_bytes"] <= later[c1]["wan_rx_bytes"]
    assert 3.0e6 <= devices[c1]["wan_rx_rate"] * 8 <= 5.0e6  # iperf3 -b 4M
    # With the version it holds, a page gets the numbers only.
    again = call(site, "devices", {"known": data["version"]})["data"]
    assert "devices" not in again and {d["mac"] for d in dashboard_devices(again, data)} == set(devices)
    assert call(site, "devices")["data"]["version"] == data["version"]  # rpcd may give no stdin: read as {}


def test_device_with_history_and_extras(site):
    vr, daemon = site
    mac = vr.clients[0].mac
    deadline = time.monotonic() + 15  # connections are counted every 5 s
    while True:
        reply = call(site, "device", {"mac": mac, "since": "0", "level": "day", "extras": True})
        if reply["data"]["connections"] or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    validate(reply, "DashboardDeviceResponse")
    data = reply["data"]
    assert data["device"]["mac"] == mac and data["device"]["ip"] == vr.clients[0].ipv4
    assert len(data["metrics"]) >= 2 and data["level"]["name"] == "day"
    assert data["connections"]["udp_connections"] >= 1
    newest = data["metrics"][-1][0]
    later = call(site, "device", {"mac": mac, "since": str(newest)})["data"]
    assert all(r[0] > newest for r in later["metrics"]) and "level" not in later and "domains" not in later


@pytest.mark.parametrize("method, args, route", [
    ("device", {"mac": "zz"}, "/api/dashboard/device?mac=zz"),
    ("device", {"mac": "02:bd:00:00:00:99"}, "/api/dashboard/device?mac=02:bd:00:00:00:99"),
    ("dns", {"page_size": 5000}, "/api/dashboard/dns?page_size=5000"),
    ("flows_top", {"by": "colour"}, "/api/flows/top?by=colour"),
])
def test_a_handlers_refusal_reaches_luci_with_its_message(site, method, args, route):
    status, direct = site[1].get(route)
    assert status in (400, 404)
    reply = call(site, method, args)
    validate(reply, "RpcResult")
    assert reply == {"status": "error", "code": status, "message": direct["message"]}


def test_writes_go_through_the_same_handlers(site):
    vr, daemon = site
    mac = vr.clients[1].mac
    assert call(site, "set_binding", {"mac": mac, "hostname": "Kitchen tablet"}) == {
        "status": "success", "data": {"binding": {"mac": mac, "hostname": "Kitchen tablet"}}}
    assert {"mac": mac, "hostname": "Kitchen tablet"} in call(site, "bindings")["data"]["bindings"]
    bad = call(site, "set_binding", {"mac": mac, "hostname": " padded"})
    assert bad == {"status": "error", "code": 400, "message": "hostname: must not start or end with spaces"}
    rule = {"mac": mac, "time_slot": {"start": "08:00", "end": "20:30", "days": [1, 2, 3]},
            "wan_rx_rate_limit": 1_000_000, "wan_tx_rate_limit": 0}
    stored = call(site, "set_limit", rule)["data"]["limit"]
    assert stored == {**rule, "id": stored["id"]}
    assert call(site, "schedule")["data"]["limits"] == [stored]
    assert call(site, "put_limit", {**rule, "id": stored["id"], "wan_tx_rate_limit": 5})["data"]["limit"] == {
        **stored, "wan_tx_rate_limit": 5}
    assert call(site, "delete_limit", {"mac": mac, "time_slot": rule["time_slot"]})["status"] == "success"
    # A quota over 2^31 bytes passes the plugin whole (declared 64: an INT64 for rpcd).
    quota = {"mac": mac, "period": "month", "bytes": 50 * 10**9, "direction": "both", "action": "block",
             "throttle_rx_rate": 0, "throttle_tx_rate": 0, "reset_day": 1, "reset_hour": 0}
    stored = call(site, "set_quota", quota)["data"]["quota"]
    assert call(site, "quotas")["data"]["quotas"] == [{**quota, "id": stored["id"]}]
    assert call(site, "delete_quota", {"id": stored["id"]})["status"] == "success"
    assert daemon.get("/api/traffic/limits/schedule")[1]["data"]["limits"] == []
    assert call(site, "set_binding", {"mac": mac, "hostname": ""})["status"] == "success"


def test_usage_through_the_plugin_and_the_export_as_a_file_in_json(site):
    vr, daemon = site
    time.sleep(2.5)  # a few 2 s buckets of the site's download
    now_ms = int(time.time() * 1000)
    # The last 30 s: the finest level reaches back that far (a range older than every
    # level's retention is answered from the longest, whose buckets may not have closed yet).
    reply = call(site, "usage_ranking", {"start_ms": str(now_ms - 30_000), "end_ms": str(now_ms)})
    validate(reply, "UsageRankingResponse")
    ranked = reply["data"]["devices"]
    assert ranked[0]["mac"] == vr.clients[0].mac and ranked[0]["total_bytes"] > 0  # the iperf3 download
    span = {k: reply["data"][k] for k in ("start_ms", "end_ms")}
    status, direct = daemon.get(f"/api/traffic/usage/ranking?start_ms={span['start_ms']}&end_ms={span['end_ms']}")
    assert status == 200 and direct["data"] == reply["data"]  # the same range: the same answer
    inc = call(site, "usage_increments", {"mac": vr.clients[0].mac, "start_ms": str(span["start_ms"]),
                                          "end_ms": str(span["end_ms"]), "aggregation": "daily"})
    validate(inc, "UsageIncrementsResponse")
    assert sum(i["total_bytes"] for i in inc["data"]["increments"]) == ranked[0]["total_bytes"]
    csv_file = call(site, "usage_export", {"format": "csv", "start_ms": str(span["start_ms"]),
                                           "end_ms": str(span["end_ms"])})
    assert csv_file["status"] == "success" and csv_file["data"]["filename"].endswith(".csv")
    assert csv_file["data"]["content_type"] == "text/csv; charset=utf-8"
    lines = csv_file["data"]["content"].split("\r\n")
    assert lines[0] == "date,ts_ms,mac,ip,hostname,rx_bytes,tx_bytes,total_bytes"
    first = lines[1].split(",")
    assert first[2] == vr.clients[0].mac and int(first[7]) == ranked[0]["total_bytes"]
    bad = call(site, "usage_ranking", {"start_ms": "5", "end_ms": "5"})
    assert bad == {"status": "error", "code": 400, "message": "end_ms: must be after start_ms"}


@pytest.mark.parametrize("args, message", [
    ({"mac": "02:bd:00:00:00:01", "colour": "red"},
     "colour: unknown argument of device (known: mac, since, level, extras)"),
    ({"mac": 5}, "mac: must be a string"),
    ({"mac": "02:bd:00:00:00:01", "since": 5}, "since: must be a string"),
    ({"mac": "02:bd:00:00:00:01", "extras": "yes"}, "extras: must be true or false"),
])
def test_bad_arguments_are_400_at_the_daemon_and_an_error_object_from_the_plugin(site, args, message):
    vr, daemon = site
    status, body = daemon.send("POST", "/api/rpc?method=device", args)
    assert (status, body) == (400, {"status": "error", "message": message})
    assert call(site, "device", args) == {
        "status": "error", "code": 400,
        "message": "bandix refused the arguments of device (HTTP 400; its log says why: logread -e bandix)"}
    status, body = daemon.send("POST", "/api/rpc?method=reboot", {})
    assert status == 400 and body["message"].startswith("method: unknown 'reboot'; one of devices, device,")
    assert call(site, "reboot", {}) == {"status": "error", "code": 400, "message": "method: unknown"}


def test_port_comes_from_uci_and_a_silent_daemon_is_a_clear_error(site, tmp_path):
    (tmp_path / "bandix").write_text("config bandix 'config'\n\toption port '1'\n")
    assert call(site, "devices", {}, config_dir=tmp_path) == {
        "status": "error", "code": 503,
        "message": "bandix does not answer at http://127.0.0.1:1: is the service running (/etc/init.d/bandix status)?"}
    port = site[1].port
    (tmp_path / "bandix").write_text(f"config bandix 'config'\n\toption port '{port}'\n\toption listen '0.0.0.0'\n")
    assert call(site, "devices", {}, config_dir=tmp_path)["status"] == "success"


def test_the_plugin_is_posix_sh():
    plugin = APP / "root/usr/libexec/rpcd/luci.bandix"
    assert plugin.read_text().startswith("#!/bin/sh\n") and plugin.stat().st_mode & 0o111
    for shell in ("dash", "busybox"):
        if shutil.which(shell):
            cmd = [shell, "sh", "-n", str(plugin)] if shell == "busybox" else [shell, "-n", str(plugin)]
            assert subprocess.run(cmd, capture_output=True).returncode == 0


def test_the_session_uhttpd_adds_is_accepted_and_other_unknown_arguments_are_not(site):
    """uhttpd's ubus handler adds ubus_rpc_session to every call's arguments (openwrt/uhttpd ubus.c
    uh_ubus_send_request) and the plugin forwards them: the daemon ignores that one only."""
    _vr, daemon = site
    sid = "0123456789abcdef0123456789abcdef"
    status, body = daemon.send("POST", "/api/rpc?method=devices", {"ubus_rpc_session": sid})
    assert status == 200 and body["status"] == "success"
    status, body = daemon.send("POST", "/api/rpc?method=bindings", {"ubus_rpc_session": sid, "x": 1})
    assert (status, body["message"]) == (400, "x: unknown argument of bindings (known: none)")


def test_a_luci_call_through_uhttpd_and_rpcd_reaches_the_daemon(site):
    """LuCI's rpc call as uhttpd and rpcd pass it on: session checked, ubus_rpc_session added,
    the plugin's POST sent chunked by uclient-fetch. (Needs a daemon that reads chunked bodies.)"""
    vr, daemon = site
    with Bridge(vr.router, daemon.config_dir) as bridge:
        reply = uhttpd_ubus(bridge.rpcd, {"jsonrpc": "2.0", "id": 7, "method": "call",
                                          "params": [bridge.sid, "luci.bandix", "bindings", {}]})
    assert reply["id"] == 7 and reply["result"][0] == 0
    assert reply["result"][1]["status"] == "success", reply
