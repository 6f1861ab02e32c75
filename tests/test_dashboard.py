"""The dashboard in a real browser (Debian's chromium, driven by Playwright)
against a daemon on the virtual router with busy devices.

Screenshots of every page land in tests/artifacts/screenshots/.
"""

import json
import socket
import time

import pytest

from tests.bandixd import SHOTS, busy_site, dashboard_devices
from tests.test_api import validate
from tests.vrouter import PortForward

PAGES = ("devices", "device", "limits", "connections", "dns", "domains")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The busy site, its API forwarded to 127.0.0.1 for the browser."""
    with busy_site(tmp_path_factory.mktemp("data")) as (vr, daemon):
        port = free_port()
        with PortForward(("127.0.0.1", port), vr.router, ("127.0.0.1", 8686)):
            yield {"vr": vr, "daemon": daemon, "url": f"http://127.0.0.1:{port}/"}


@pytest.fixture
def page(browser, site):
    """A fresh page; fails the test on any console error or uncaught exception."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="light")
    pg = context.new_page()
    errors: list[str] = []
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(site["url"])
    pg.console_errors = errors
    yield pg
    context.close()
    assert errors == [], errors


def cell_texts(pg, mac: str) -> list[str]:
    return pg.locator("tbody tr", has_text=mac).first.locator("td").all_inner_texts()


def test_devices_table_shows_every_client_with_moving_rates(page, site):
    vr = site["vr"]
    for c in vr.clients:
        page.locator("tbody tr", has_text=c.mac).wait_for(timeout=10000)
    headers = page.locator("thead th").all_inner_texts()
    down, total = headers.index("Down"), headers.index("Downloaded")
    c1 = vr.clients[0].mac
    page.wait_for_function(
        "mac => [...document.querySelectorAll('tbody tr')].some(r => r.textContent.includes(mac) && "
        "/[1-9]/.test(r.children[3].textContent))", arg=c1, timeout=10000)
    first = cell_texts(page, c1)
    time.sleep(2.5)
    second = cell_texts(page, c1)
    assert first[total] != second[total]  # the totals grow under the download
    assert second[down].endswith("Mbit/s") and 3.0 <= float(second[down].split()[0]) <= 5.0  # iperf3 -b 4M
    ip = cell_texts(page, c1)[headers.index("IP")]
    assert ip == vr.clients[0].ipv4
    # Search narrows the table; sorting by name orders it.
    page.fill("input[type=search]", vr.clients[1].ipv4)
    assert page.locator("tbody tr").count() == 1
    page.fill("input[type=search]", "")
    page.click("th:has-text('MAC')")
    page.wait_for_timeout(1200)
    macs = [r.split("\t")[2] for r in page.locator("tbody tr").all_inner_texts()]
    assert macs == sorted(macs, reverse=True)
    page.screenshot(path=str(SHOTS / "devices.png"), full_page=True)
    # Units: bytes per second on request, remembered.
    page.click("#unit")
    page.wait_for_timeout(1200)
    assert cell_texts(page, c1)[down].endswith("/s") and "bit" not in cell_texts(page, c1)[down]
    page.click("#unit")


def test_device_view_draws_its_charts(page, site):
    c1 = site["vr"].clients[0].mac
    page.goto(site["url"] + f"#/device/{c1}")
    page.wait_for_function("() => Number(document.getElementById('chart-realtime').dataset.points) > 2",
                           timeout=15000)
    page.wait_for_function("() => Number(document.getElementById('chart-history').dataset.points) > 0",
                           timeout=30000)
    for chart in ("chart-realtime", "chart-history"):
        inked = page.evaluate("""id => {
            const c = document.getElementById(id), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }""", chart)
        assert inked > 2000, chart
    assert "Top domains" in page.inner_text("main")
    page.screenshot(path=str(SHOTS / "device.png"), full_page=True)


def test_schedule_editor_stores_rules_and_shows_the_apis_message(page, site):
    daemon, c2 = site["daemon"], site["vr"].clients[1]
    page.goto(site["url"] + "#/limits")
    page.fill("#rule-form input[name=mac]", c2.mac)
    page.fill("#rule-form input[name=start]", "08:00")
    page.fill("#rule-form input[name=end]", "20:30")
    page.fill("#rule-form input[name=down]", "8")
    page.fill("#rule-form input[name=up]", "2")
    page.click("#rule-form button[type=submit]")
    page.locator("#rules tbody tr", has_text=c2.mac).wait_for(timeout=5000)
    rules = daemon.get("/api/traffic/limits/schedule")[1]["data"]["limits"]
    assert {"mac": c2.mac, "time_slot": {"start": "08:00", "end": "20:30", "days": [1, 2, 3, 4, 5, 6, 7]},
            "wan_rx_rate_limit": 1_000_000, "wan_tx_rate_limit": 250_000} in [
        {k: v for k, v in r.items() if k != "id"} for r in rules]
    # An invalid rule: the API's own message, and nothing stored.
    bad = {"mac": c2.mac, "time_slot": {"start": "25:00", "end": "20:30", "days": [1, 2, 3, 4, 5, 6, 7]},
           "wan_rx_rate_limit": 1_000_000, "wan_tx_rate_limit": 0}
    status, body = daemon.send("POST", "/api/traffic/limits/schedule", bad)
    assert status == 400
    page.fill("#rule-form input[name=start]", "25:00")
    page.fill("#rule-form input[name=up]", "")
    page.click("#rule-form button[type=submit]")
    page.wait_for_function("() => document.getElementById('rule-error').textContent.length > 0", timeout=5000)
    assert page.inner_text("#rule-error") == body["message"]
    # Chromium logs every 4xx answer to fetch(); this one was asked for.
    page.console_errors.remove("Failed to load resource: the server responded with a status of 400 (Bad Request)")
    assert daemon.get("/api/traffic/limits/schedule")[1]["data"]["limits"] == rules
    # A binding names the device everywhere.
    page.fill("#binding-form input[name=mac]", c2.mac)
    page.fill("#binding-form input[name=hostname]", "Kitchen tablet")
    page.click("#binding-form button[type=submit]")
    page.locator("#bindings tbody tr", has_text="Kitchen tablet").wait_for(timeout=5000)
    page.screenshot(path=str(SHOTS / "limits.png"), full_page=True)
    page.goto(site["url"] + "#/")
    page.locator("tbody tr", has_text="Kitchen tablet").wait_for(timeout=5000)
    # Delete the rule again through the table.
    page.goto(site["url"] + "#/limits")
    page.locator("#rules tbody tr", has_text=c2.mac).locator("button", has_text="Delete").click()
    page.locator("#rules tbody tr", has_text="No rules").wait_for(timeout=5000)
    assert daemon.get("/api/traffic/limits/schedule")[1]["data"]["limits"] == []


def test_limits_page_edits_a_rule_in_place_sets_the_default_and_quotas(page, site):
    daemon, c1, c2 = site["daemon"], site["vr"].clients[0], site["vr"].clients[1]
    rule = {"mac": c1.mac, "time_slot": {"start": "07:00", "end": "08:00", "days": [1]},
            "wan_rx_rate_limit": 500_000, "wan_tx_rate_limit": 0}
    rule_id = daemon.send("POST", "/api/traffic/limits/schedule", rule)[1]["data"]["limit"]["id"]
    page.goto(site["url"] + "#/limits")
    page.locator("#rules tbody tr", has_text=c1.mac).locator("button", has_text="Edit").click()
    assert page.input_value("#rule-form input[name=down]") == "500"  # KB/s
    page.fill("#rule-form input[name=end]", "09:30")
    page.click("#rule-form button[type=submit]")
    page.locator("#rules tbody tr", has_text="07:00–09:30").wait_for(timeout=5000)
    assert daemon.get("/api/traffic/limits/schedule")[1]["data"]["limits"] == [
        {**rule, "id": rule_id, "time_slot": {**rule["time_slot"], "end": "09:30"}}]
    # The default limit, with c2 exempt.
    page.fill("#default-form input[name=down]", "40")
    page.fill("#default-form input[name=up]", "10")
    page.check("#default-form input[name=enabled]")
    page.click("#default-form button[type=submit]")
    page.fill("#whitelist-form input[name=mac]", c2.mac)
    page.click("#whitelist-form button[type=submit]")
    page.locator("#whitelist tbody tr", has_text=c2.mac).wait_for(timeout=5000)
    page.locator("#default-state", has_text="In force").wait_for(timeout=5000)
    assert daemon.get("/api/traffic/rate_limit/default")[1]["data"] == {
        "wan_rx_rate_limit": 5_000_000, "wan_tx_rate_limit": 1_250_000, "enabled": True}
    assert daemon.get("/api/traffic/rate_limit/whitelist")[1]["data"]["macs"] == [c2.mac]
    # A quota for c1 and the default one, as the form sends them.
    for mac, amount in ((c1.mac, "2"), ("*", "50")):
        page.fill("#quota-form input[name=mac]", mac)
        page.fill("#quota-form input[name=amount]", amount)
        page.select_option("#quota-form select[name=period]", "month")
        page.fill("#quota-form input[name=reset_day]", "15")
        page.fill("#quota-form input[name=reset_hour]", "6")
        page.click("#quota-form button[type=submit]")
        page.locator("#quotas tbody tr", has_text="day 15, 06:00").nth(0 if mac != "*" else 1).wait_for(timeout=5000)
    quotas = daemon.get("/api/traffic/quotas")[1]["data"]["quotas"]
    assert [(q["mac"], q["bytes"], q["period"], q["reset_day"], q["reset_hour"], q["action"]) for q in quotas] == [
        (c1.mac, 2 * 2**30, "month", 15, 6, "block"), ("*", 50 * 2**30, "month", 15, 6, "block")]
    page.reload()
    page.locator("#quotas tbody tr", has_text="within quota").first.wait_for(timeout=5000)
    page.screenshot(path=str(SHOTS / "limits-default-quotas.png"), full_page=True)
    for q in quotas:
        page.locator("#quotas tbody tr", has_text=label_of(q["mac"])).first.locator("button", has_text="Delete").click()
    page.locator("#quotas tbody tr", has_text="No quotas").wait_for(timeout=5000)
    daemon.send("POST", "/api/traffic/rate_limit/whitelist/enabled", {"enabled": False})
    daemon.send("DELETE", "/api/traffic/rate_limit/whitelist", {"mac": c2.mac})
    daemon.send("DELETE", "/api/traffic/limits/schedule", {"id": rule_id})


def label_of(mac: str) -> str:
    return "Every other device" if mac == "*" else mac


@pytest.mark.parametrize("name, text", [("connections", "Established"), ("dns", "Queries"),
                                        ("domains", "Where the traffic goes")])
def test_other_pages_render_the_daemons_data(page, site, name, text):
    if name == "dns":
        c3 = site["vr"].clients[2]
        c3.ns.run(["dig", f"@{site['vr'].SERVER_V4}", "example.test", "+tries=1", "+time=1"], check=False)
    page.goto(site["url"] + f"#/{name}")
    page.wait_for_function("t => document.querySelector('main').innerText.includes(t)", arg=text, timeout=10000)
    page.wait_for_function("() => document.getElementById('status').textContent.startsWith('updated')",
                           timeout=10000)
    if name == "connections":
        page.locator("tbody tr", has_text=site["vr"].clients[0].mac).wait_for(timeout=15000)
    if name == "dns":
        page.locator("tbody tr", has_text="example.test.").first.wait_for(timeout=10000)
    if name == "domains":  # c1's download, to an address nobody resolved
        page.locator("tbody tr", has_text="(unknown)").first.wait_for(timeout=10000)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_dark_theme_and_a_phone_screen(browser, site):
    context = browser.new_context(viewport={"width": 390, "height": 844}, color_scheme="dark", is_mobile=True)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.goto(site["url"])
    pg.locator("tbody tr", has_text=site["vr"].clients[0].mac).wait_for(timeout=10000)
    assert pg.evaluate("document.documentElement.dataset.theme") == "dark"
    assert pg.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # the table scrolls, not the page
    pg.screenshot(path=str(SHOTS / "devices-phone-dark.png"), full_page=True)
    pg.click("#theme")
    assert pg.evaluate("document.documentElement.dataset.theme") == "light"
    assert pg.evaluate("localStorage.getItem('bandix.theme')") == "light"
    context.close()
    assert errors == []


def test_the_dashboard_is_served_with_the_right_types(site):
    import urllib.request

    files = (("", "text/html"), ("app.js", "javascript"), ("charts.js", "javascript"), ("app.css", "text/css"))
    for path, kind in files:
        with urllib.request.urlopen(site["url"] + path, timeout=5) as resp:
            assert kind in resp.headers["Content-Type"], path
            assert resp.read()
    mac = site["vr"].clients[0].mac
    with urllib.request.urlopen(site["url"] + f"api/dashboard/device?mac={mac}&level=day&extras=1") as resp:
        body = json.load(resp)
    validate(body, "DashboardDeviceResponse")
    data = body["data"]
    assert data["device"]["mac"] == mac and len(data["metrics"]) > 2 and data["level"]["name"] == "day"
    assert data["connections"]["udp_connections"] >= 1 and data["domains"]
    newest = data["metrics"][-1][0]
    with urllib.request.urlopen(site["url"] + f"api/dashboard/device?mac={mac}&since={newest}") as resp:
        later = json.load(resp)["data"]
    assert all(r[0] > newest for r in later["metrics"]) and "level" not in later and "domains" not in later
    with urllib.request.urlopen(site["url"] + "api/dashboard/dns?page_size=5") as resp:
        validate(json.load(resp), "DashboardDnsResponse")
    for query in ("", f"mac={mac}&since=x", f"mac={mac}&level=hour", "mac=zz"):
        status, body = site["daemon"].get(f"/api/dashboard/device?{query}")
        assert status == 400, query
        validate(body, "Error")


def _devices_answer(site, known: str | None = None) -> dict:
    status, body = site["daemon"].get("/api/dashboard/devices" + (f"?known={known}" if known else ""))
    assert status == 200, body
    validate(body, "DashboardDevicesResponse")
    return body["data"]


def test_devices_answer_sends_who_the_devices_are_only_when_that_changed(site):
    vr, daemon = site["vr"], site["daemon"]
    # Same reading of the counters on both APIs (three requests within one second's tick).
    for _ in range(20):
        before = daemon.get("/api/traffic/devices")[1]["data"]["devices"]
        first = _devices_answer(site)
        after = daemon.get("/api/traffic/devices")[1]["data"]["devices"]
        if before == after:
            break
    else:
        pytest.fail("no two readings of /api/traffic/devices were equal")
    shown = dashboard_devices(first)  # value_fields per device
    full = {d["mac"]: d for d in after}
    assert sorted(d["mac"] for d in shown) == sorted(full)  # the same devices (the page sorts them)
    for d in shown:
        assert d == {**{k: full[d["mac"]][k] for k in first["device_fields"] + first["value_fields"][:-2]},
                     "lan_bytes": full[d["mac"]]["lan_rx_bytes"] + full[d["mac"]]["lan_tx_bytes"],
                     "last_online_ts": full[d["mac"]]["last_online_ts"]}
    assert {d["mac"]: d["ip"] for d in shown}.items() >= {c.mac: c.ipv4 for c in vr.clients}.items()
    # Still current: only the numbers come, for the same devices.
    again = _devices_answer(site, first["version"])
    assert again["version"] == first["version"] and "devices" not in again and "device_fields" not in again
    assert [d["mac"] for d in dashboard_devices(again, first)] == [d["mac"] for d in shown]
    # That poll is answered by the HTTP server itself; any other query goes through falcon, alike.
    via_falcon = _devices_answer(site, first["version"] + "&unused=1")
    assert via_falcon.keys() == again.keys() and via_falcon["version"] == first["version"]
    assert [d["mac"] for d in dashboard_devices(via_falcon, first)] == [d["mac"] for d in shown]
    # A binding and a limit in force change who a device is: the list comes again.
    c3 = vr.clients[2]
    rule = {"mac": c3.mac, "time_slot": {"start": "00:00", "end": "24:00", "days": [1, 2, 3, 4, 5, 6, 7]},
            "wan_rx_rate_limit": 3_000_000, "wan_tx_rate_limit": 0}
    try:
        assert daemon.send("POST", "/api/traffic/bindings", {"mac": c3.mac, "hostname": "Hall sensor"})[0] == 200
        renamed = _devices_answer(site, first["version"])
        assert renamed["version"] != first["version"]
        row = next(dict(zip(renamed["device_fields"], d, strict=True)) for d in renamed["devices"] if d[0] == c3.mac)
        assert row["hostname"] == "Hall sensor" and row["wan_rx_rate_limit"] == 0
        assert daemon.send("POST", "/api/traffic/limits/schedule", rule)[0] == 200
        limited = _devices_answer(site, renamed["version"])
        assert limited["version"] != renamed["version"]
        row = next(dict(zip(limited["device_fields"], d, strict=True)) for d in limited["devices"] if d[0] == c3.mac)
        assert (row["wan_rx_rate_limit"], row["wan_tx_rate_limit"]) == (3_000_000, 0)
        assert "devices" not in _devices_answer(site, limited["version"])
    finally:
        daemon.send("DELETE", "/api/traffic/limits/schedule", {"mac": c3.mac, "time_slot": rule["time_slot"]})
        daemon.send("POST", "/api/traffic/bindings", {"mac": c3.mac, "hostname": ""})
    # A version the daemon never gave (or one from before a restart) gets the list; `known` twice is an error.
    assert "devices" in _devices_answer(site, "0-1")
    status, body = daemon.get("/api/dashboard/devices?known=a&known=b")
    assert status == 400 and body["message"] == "known: given more than once"
