"""luci-app-bandix: its files, its JS lint, and each view in headless chromium.

The views run under a minimal stand-in of LuCI's JS API (tests/luci/resources:
luci.js with L.require's module loading, E(), view and poll; rpc, ui, uci,
form and tools.widgets), served by a bridge standing in for uhttpd, rpcd and
ubus (tests/luci/bridge.py) that runs the real rpcd plugin against a real
daemon on the virtual router. What the stand-ins replace: LuCI's JS runtime
and widgets, uhttpd's ubus JSON-RPC endpoint, rpcd (plugin protocol and
ACL), uclient-fetch (curl) and uci. Screenshots: tests/artifacts/screenshots/luci-*.png.
"""

import importlib.util
import json
import re
import subprocess
import time

import pytest

from tests.bandixd import SHOTS, busy_site
from tests.luci.bridge import APP, ROOT, Bridge

VIEWS = APP / "htdocs/luci-static/resources/view/bandix"
ESLINT = [str(ROOT / ".eslint/node_modules/.bin/eslint"), "--config", "luci-app-bandix/eslint.config.mjs"]
JS_FILES = sorted(APP.glob("htdocs/**/*.js")) + sorted((ROOT / "bandix/web").glob("*.js"))


def _scanner():
    spec = importlib.util.spec_from_file_location("i18n_scan", APP / "i18n_scan.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- the package's files (no router needed) -------------------------------------------------------


def test_menu_points_at_existing_views_under_status():
    menu = json.loads((APP / "root/usr/share/luci/menu.d/luci-app-bandix.json").read_text())
    assert menu["admin/status/bandix"]["depends"] == {"acl": ["luci-app-bandix"], "uci": {"bandix": True}}
    pages = {k: v for k, v in menu.items() if k != "admin/status/bandix"}
    assert [v["title"] for v in sorted(pages.values(), key=lambda v: v["order"])] == [
        "Overview", "Device detail", "Usage", "Connections", "DNS", "Domains", "Settings"]
    for key, entry in pages.items():
        assert key == "admin/status/bandix/" + entry["action"]["path"].split("/")[1]
        assert entry["action"]["type"] == "view" and (VIEWS.parent / (entry["action"]["path"] + ".js")).is_file()
    assert sorted(p.stem for p in VIEWS.glob("*.js")) == sorted(k.rsplit("/", 1)[1] for k in pages)


def test_makefile_uses_luci_mk_and_ships_charts_js():
    text = (APP / "Makefile").read_text()
    for line in ("LUCI_DEPENDS:=+luci-base +bandix", "LUCI_PKGARCH:=all", "include $(TOPDIR)/feeds/luci/luci.mk",
                 "Hooks/Prepare/Post += Build/Prepare/BandixCharts"):
        assert line in text
    assert text.index("Hooks/Prepare/Post") < text.index("include $(TOPDIR)/feeds/luci/luci.mk")  # before BuildPackage
    assert (ROOT / "bandix/web/charts.js").is_file() and not list(APP.rglob("charts.js"))  # not kept twice


def test_pot_is_what_the_views_translate():
    scan = _scanner()
    assert (APP / "po/templates/bandix.pot").read_text() == scan.render(scan.collect())
    msgids = scan.collect()
    for path in APP.glob("htdocs/**/*.js"):
        text = path.read_text()
        calls = len(re.findall(r"(?<![\w$.])_\(", text))
        assert calls == len(scan.scan_js(path)), f"{path.name}: a _() whose argument is not a string literal"
    for title in ("Bandix", "Overview", "Device detail", "Settings",
                  "Grant access to bandix traffic data and settings"):
        assert title in msgids
    assert "Bandix: devices" in msgids and "Rate limit schedules" in msgids


def test_settings_options_are_the_daemons():
    """Every option the settings view writes is one the daemon (bandix/config.py, bandix/settings.py)
    or its init script (`enabled`) reads."""
    from bandix.config import _UCI

    text = (VIEWS / "settings.js").read_text()
    daemon_options = {option for option, _parse in _UCI.values() if option} | {"enabled"}
    used = set(re.findall(r"taboption\('\w+', (?:form|widgets)\.\w+, '(\w+)'", text))
    assert used and used <= daemon_options, used - daemon_options
    assert {"iface", "traffic_retention_seconds", "traffic_persist_history", "dns_enabled", "flows_enabled",
            "connection_enabled"} <= used
    limit = text[text.index("'limit'"):text.index("'default_limit'")]
    assert re.findall(r"s\.option\(form\.\w+, '(\w+)'", limit) == [
        "mac", "days", "start", "end", "wan_rx_rate_limit", "wan_tx_rate_limit"]
    default = text[text.index("'default_limit'"):text.index("'quota'")]
    assert re.findall(r"s\.option\(form\.\w+, '(\w+)'", default) == [
        "enabled", "wan_rx_rate_limit", "wan_tx_rate_limit", "whitelist"]
    quota = text[text.index("'quota'"):text.index("'binding'")]
    from bandix.quota import FIELDS
    assert re.findall(r"s\.option\(form\.\w+, '(\w+)'", quota) == list(FIELDS)
    binding = text[text.index("'binding'"):]
    assert re.findall(r"s\.option\(form\.\w+, '(\w+)'", binding) == ["mac", "hostname"]


def test_js_lint():
    """node compiles every script (views as LuCI does: a function body), then eslint as `make lint` runs it."""
    for path in JS_FILES:
        source = "require('fs').readFileSync(process.argv[1], 'utf8')"
        check = (f"new Function('window', 'document', 'L', {source})" if "htdocs" in path.parts
                 else f"require('vm').compileFunction({source})")
        done = subprocess.run(["node", "-e", check, str(path)], capture_output=True, text=True)
        assert done.returncode == 0, f"{path}: {done.stderr}"
    assert (ROOT / ".eslint/node_modules/.bin/eslint").is_file(), "no eslint: make test installs it"
    done = subprocess.run([*ESLINT, *map(str, JS_FILES)], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_lint_fails_on_a_broken_view(tmp_path):
    """The lint above can fail: an undefined name in a view is an error."""
    broken = VIEWS / "zz_broken_lint_probe.js"
    broken.write_text("'use strict';\n'require view';\n"
                      "return view.extend({ render: function() { return undefinedThing; } });\n")
    try:
        done = subprocess.run([*ESLINT, str(broken)], cwd=ROOT, capture_output=True, text=True)
    finally:
        broken.unlink()
    assert done.returncode == 1 and "'undefinedThing' is not defined" in done.stdout


# -- the views in a browser ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    with busy_site(tmp_path_factory.mktemp("data")) as (vr, daemon):
        with Bridge(vr.router, daemon.config_dir) as bridge:
            yield {"vr": vr, "daemon": daemon, "bridge": bridge}


@pytest.fixture
def open_view(browser, site):
    """open_view(name, query='') -> page; the test fails on any console error or uncaught exception."""
    contexts, errors = [], []

    def open_(name: str, query: str = ""):
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        contexts.append(context)
        pg = context.new_page()
        pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        pg.on("pageerror", lambda e: errors.append(str(e)))
        site["bridge"].calls.clear()
        pg.goto(f"{site['bridge'].url}/cgi-bin/luci/admin/status/bandix/{name}{query}")
        return pg

    yield open_
    for c in contexts:
        c.close()
    assert errors == [], errors


def points(canvas: str) -> str:
    """A predicate's start: how many points the view's chart drew (0 before the view is there)."""
    return f"() => Number((document.getElementById('{canvas}') || {{dataset: {{}}}}).dataset.points)"


def row_cells(pg, table: str, text: str) -> list[str]:
    return pg.locator(f"#{table} tr", has_text=text).first.locator("td").all_inner_texts()


def test_overview_lists_every_device_with_live_rates(open_view, site):
    vr = site["vr"]
    pg = open_view("overview")
    for c in vr.clients:
        pg.locator("#bandix-devices tr", has_text=c.mac).wait_for(timeout=10000)
    headers = pg.locator("#bandix-devices th").all_inner_texts()
    assert headers[:5] == ["Device", "IP address", "MAC address", "Download", "Upload"]
    for c in vr.clients:
        cells = row_cells(pg, "bandix-devices", c.mac)
        assert cells[1] == c.ipv4 and cells[2] == c.mac
    c1 = vr.clients[0].mac
    pg.wait_for_function(points("bandix-total-chart") + " >= 4", timeout=10000)
    down = row_cells(pg, "bandix-devices", c1)[3]
    assert down.endswith("Mbit/s") and 3.0 <= float(down.split()[0]) <= 5.0, down  # iperf3 -b 4M
    first = row_cells(pg, "bandix-devices", c1)[6]
    time.sleep(2.5)
    assert row_cells(pg, "bandix-devices", c1)[6] != first  # the totals grow under the download
    # One rpcd call per refresh, always the compact devices method.
    calls = site["bridge"].calls
    assert {(o, m) for o, m, _ in calls} == {("luci.bandix", "devices")}
    assert len(calls) <= 6
    assert pg.locator(".cbi-page-actions button").count() == 0  # a status page: no Save buttons
    pg.screenshot(path=str(SHOTS / "luci-overview.png"), full_page=True)


def test_device_view_draws_charts_and_saves_a_name(open_view, site):
    vr, daemon = site["vr"], site["daemon"]
    c1 = vr.clients[0]
    pg = open_view("device", f"?mac={c1.mac}")
    pg.wait_for_function(points("bandix-chart-realtime") + " > 2", timeout=15000)
    pg.wait_for_function(points("bandix-chart-history") + " > 0", timeout=30000)
    assert pg.inner_text("h2") == f"{c1.mac} · {c1.ipv4}"
    pg.locator("#bandix-connections .bandix-card").first.wait_for(timeout=15000)
    for call in site["bridge"].calls:
        assert call[:2] == ("luci.bandix", "device") and call[2]["mac"] == c1.mac
    pg.fill("#bandix-name", "Living room TV")
    pg.click("text=Save name")
    pg.locator(".alert-message", has_text="Name saved.").wait_for(timeout=5000)
    assert {"mac": c1.mac, "hostname": "Living room TV"} in daemon.get("/api/traffic/bindings")[1]["data"]["bindings"]
    pg.wait_for_function("() => (document.querySelector('h2') || {}).textContent?.startsWith('Living room TV')",
                         timeout=5000)
    pg.screenshot(path=str(SHOTS / "luci-device.png"), full_page=True)
    # A refusal shows the daemon's own message.
    pg.fill("#bandix-name", "<b>bold</b>")
    pg.click("text=Save name")
    pg.locator(".alert-message", has_text="hostname: may hold letters, digits, spaces and").wait_for(timeout=5000)
    assert pg.locator("#view b").count() == 0
    # No ?mac=: a picker of the devices.
    pg2 = open_view("device")
    pg2.locator("#bandix-device-picker option", has_text=vr.clients[1].ipv4).wait_for(state="attached", timeout=10000)
    assert pg2.locator("#bandix-device-picker option").count() == 1 + len(vr.clients)


def test_usage_view_ranks_draws_and_exports_a_file(open_view, site):
    vr, daemon = site["vr"], site["daemon"]
    c1 = vr.clients[0]
    pg = open_view("usage")
    # "today" is answered by the test's year level (20 s buckets), refreshed every 10 s.
    pg.locator("#bandix-usage-ranking tr", has_text=c1.ipv4).wait_for(timeout=45000)
    shown = daemon.devices()[c1.mac]["hostname"] or c1.mac  # the device test may have named it
    cells = row_cells(pg, "bandix-usage-ranking", c1.ipv4)
    assert cells[:3] == ["1", shown, c1.ipv4] and float(cells[6].rstrip(" %")) > 90  # the download leads
    pg.wait_for_function("() => Number((document.getElementById('bandix-usage-chart') || {dataset: {}})"
                         ".dataset.bars) > 0", timeout=10000)
    pg.locator("#bandix-usage-ranking a", has_text=shown).click()
    pg.locator("h3", has_text=f"{shown} — per hour").wait_for(timeout=10000)
    with pg.expect_download() as got:
        pg.click("#bandix-export-csv")
    download = got.value
    name = download.suggested_filename
    assert name.startswith("bandix-usage-daily-") and name.endswith(".csv")
    lines = open(download.path(), newline="").read().split("\r\n")
    assert lines[0] == "date,ts_ms,mac,ip,hostname,rx_bytes,tx_bytes,total_bytes" and c1.mac in lines[1]
    assert {m for _, m, _ in site["bridge"].calls} <= {"usage_ranking", "usage_increments", "usage_export"}
    pg.screenshot(path=str(SHOTS / "luci-usage.png"), full_page=True)
    # WAN + LAN: the view asks the daemon for network_type all, the export too.
    pg.select_option("#bandix-usage-network", "all")
    pg.locator(".cbi-section-descr", has_text="WAN + LAN bytes from").wait_for(timeout=10000)
    assert ("usage_ranking", {"network_type": "all"}) in [(m, {"network_type": a.get("network_type")})
                                                           for _, m, a in site["bridge"].calls]
    with pg.expect_download() as got:
        pg.click("#bandix-export-csv")
    assert got.value.suggested_filename.startswith("bandix-usage-all-daily-")
    # The overview says who is online as the daemon does.
    pg = open_view("overview")
    pg.locator("#bandix-devices tr", has_text=c1.mac).wait_for(timeout=10000)
    assert all(row_cells(pg, "bandix-devices", c.mac)[9] == "online" for c in vr.clients)
    assert all(d["online"] for d in daemon.devices().values())
    pg.screenshot(path=str(SHOTS / "luci-overview-online.png"), full_page=True)


def test_connections_dns_and_domains_views(open_view, site):
    vr = site["vr"]
    pg = open_view("connections")
    pg.locator("#bandix-connection-table tr", has_text=vr.clients[0].mac).wait_for(timeout=15000)
    pg.screenshot(path=str(SHOTS / "luci-connections.png"), full_page=True)

    vr.clients[2].ns.run(["dig", f"@{vr.SERVER_V4}", "example.test", "+tries=1", "+time=1"], check=False)
    pg = open_view("dns")
    pg.locator("#bandix-dns-table tr", has_text="example.test.").first.wait_for(timeout=10000)
    cells = row_cells(pg, "bandix-dns-table", "example.test.")
    record = site["daemon"].get("/api/dns/queries?domain=example.test&page_size=1")[1]["data"]["queries"][0]
    assert cells[1] == (record["device_name"] or record["device_mac"]) and cells[3] == record["domain"]
    pg.fill("input[data-filter=domain]", "no-such-name")
    pg.locator("#bandix-dns-table tr.placeholder").wait_for(timeout=5000)
    pg.screenshot(path=str(SHOTS / "luci-dns.png"), full_page=True)

    pg = open_view("domains")
    pg.locator("#bandix-report-table tr", has_text="(unknown)").first.wait_for(timeout=15000)
    pg.screenshot(path=str(SHOTS / "luci-domains.png"), full_page=True)


def test_settings_shows_the_uci_file(open_view, site):
    vr, daemon = site["vr"], site["daemon"]
    mac = vr.clients[1].mac
    rule = {"mac": mac, "time_slot": {"start": "22:00", "end": "06:00", "days": [6, 7]},
            "wan_rx_rate_limit": 125000, "wan_tx_rate_limit": 0}
    assert daemon.send("POST", "/api/traffic/limits/schedule", rule)[0] == 200
    assert daemon.send("POST", "/api/traffic/bindings", {"mac": mac, "hostname": "Kitchen tablet"})[0] == 200
    uci_file = daemon.config_dir / "bandix"
    head = "config bandix 'config'\n\tlist iface 'br-lan'\n\toption traffic_retention_seconds '900'\n"
    text = uci_file.read_text()
    uci_file.write_text(text.replace("config bandix 'config'\n", head) if "config bandix 'config'" in text
                        else head + "\n" + text)
    try:
        pg = open_view("settings")
        pg.locator("#cbi-bandix-limit tr.cbi-section-table-row").first.wait_for(timeout=10000)
        assert pg.eval_on_selector("select[id='widget.cbid.bandix.config.iface']",
                                   "s => [...s.selectedOptions].map(o => o.value)") == ["br-lan"]
        assert pg.input_value("input[id='widget.cbid.bandix.config.traffic_retention_seconds']") == "900"
        limit = pg.locator("#cbi-bandix-limit tr.cbi-section-table-row").first.locator("td").all_inner_texts()
        assert limit == [mac, "Sat, Sun", "22:00", "06:00", "125000", "0"]
        binding = pg.locator("#cbi-bandix-binding tr.cbi-section-table-row", has_text=mac)
        assert binding.locator("td").all_inner_texts() == [mac, "Kitchen tablet"]
        assert pg.locator(".cbi-page-actions button").count() == 3  # a form page: Save & Apply, Save, Reset
        pg.screenshot(path=str(SHOTS / "luci-settings.png"), full_page=True)
    finally:
        daemon.send("DELETE", "/api/traffic/limits/schedule", {"mac": mac, "time_slot": rule["time_slot"]})


def test_settings_show_the_default_limit_and_the_quotas(open_view, site):
    vr, daemon = site["vr"], site["daemon"]
    c1, c2 = vr.clients[0].mac, vr.clients[1].mac
    quota = {"mac": c1, "period": "month", "bytes": 20 * 2**30, "direction": "both", "action": "throttle",
             "throttle_rx_rate": 125000, "throttle_tx_rate": 62500, "reset_day": 1, "reset_hour": 4}
    ids = [daemon.send("POST", "/api/traffic/quotas", body)[1]["data"]["quota"]["id"]
           for body in (quota, {**quota, "mac": "*", "bytes": 5 * 2**30, "action": "block", "period": "day"})]
    daemon.send("POST", "/api/traffic/rate_limit/default", {"wan_rx_rate_limit": 1250000, "wan_tx_rate_limit": 250000})
    daemon.send("POST", "/api/traffic/rate_limit/whitelist", {"mac": c2})
    daemon.send("POST", "/api/traffic/rate_limit/whitelist/enabled", {"enabled": True})
    try:
        pg = open_view("settings")
        rows = pg.locator("#cbi-bandix-quota tr.cbi-section-table-row")
        rows.nth(1).wait_for(timeout=10000)
        # The stand-in grid shows raw values.
        assert rows.first.locator("td").all_inner_texts()[:9] == [
            c1, "month", str(20 * 2**30), "both", "throttle", "125000", "62500", "1", "4"]
        assert rows.nth(1).locator("td").all_inner_texts()[:5] == ["*", "day", str(5 * 2**30), "both", "block"]
        assert pg.is_checked("input[id='widget.cbid.bandix.default_limit.enabled']")
        assert pg.input_value("input[id='widget.cbid.bandix.default_limit.wan_rx_rate_limit']") == "1250000"
        assert pg.input_value("[id='widget.cbid.bandix.default_limit.whitelist'] input") == c2
        pg.locator("#cbi-bandix-quota").scroll_into_view_if_needed()
        pg.screenshot(path=str(SHOTS / "luci-settings-quotas.png"), full_page=True)
    finally:
        for quota_id in ids:
            daemon.send("DELETE", "/api/traffic/quotas", {"id": quota_id})
        daemon.send("POST", "/api/traffic/rate_limit/whitelist/enabled", {"enabled": False})
        daemon.send("DELETE", "/api/traffic/rate_limit/whitelist", {"mac": c2})


def test_device_view_forgets_the_device_through_rpcd(open_view, site):
    vr, daemon = site["vr"], site["daemon"]
    c3 = vr.clients[2]
    before = daemon.devices()[c3.mac]["total_tx_bytes"]
    pg = open_view("device", f"?mac={c3.mac}")
    pg.wait_for_function(points("bandix-chart-realtime") + " > 0", timeout=15000)
    assert "online since" in pg.inner_text("#view")
    pg.once("dialog", lambda d: d.accept())
    pg.click("#bandix-forget")
    pg.locator(".alert-message", has_text="Device forgotten.").wait_for(timeout=5000)
    assert ("luci.bandix", "forget_device", {"mac": c3.mac}) in [
        (o, m, {k: v for k, v in a.items() if k != "ubus_rpc_session"}) for o, m, a in site["bridge"].calls]
    after = daemon.devices().get(c3.mac)  # it pings every 0.2 s: back at once, from zero
    assert after is None or after["total_tx_bytes"] < before
