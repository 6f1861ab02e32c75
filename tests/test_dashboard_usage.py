"""The dashboard's usage page, online dots and "Forget device" in a real browser
(chromium through Playwright) against a daemon on the virtual router with busy devices."""

from __future__ import annotations

import time

import pytest

from tests import test_dashboard
from tests.bandixd import SHOTS, busy_site
from tests.test_dashboard import free_port
from tests.vrouter import PortForward

page = test_dashboard.page  # the same fresh page, failing the test on any console error


def shot(pg, name: str) -> None:
    path = SHOTS / f"{name}.png"
    pg.screenshot(path=str(path), full_page=True)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    with busy_site(tmp_path_factory.mktemp("data")) as (vr, daemon):
        port = free_port()
        with PortForward(("127.0.0.1", port), vr.router, ("127.0.0.1", 8686)):
            time.sleep(3)  # a few closed 2 s buckets of the download
            yield {"vr": vr, "daemon": daemon, "url": f"http://127.0.0.1:{port}/"}


def test_usage_page_ranks_devices_draws_increments_and_exports(page, site):
    vr, daemon = site["vr"], site["daemon"]
    c1 = vr.clients[0]
    page.goto(site["url"] + "#/usage")
    # "today" is answered by the test's year level (20 s buckets), refreshed every 10 s.
    page.locator("#usage-ranking tbody tr", has_text=c1.mac).wait_for(timeout=45000)
    rows = page.locator("#usage-ranking tbody tr").all_inner_texts()
    assert rows[0].split("\t")[:3] == ["1", c1.mac, c1.ipv4]  # the 4 Mbit/s download leads
    api = daemon.get("/api/traffic/usage/ranking?start_ms=0")[1]["data"]["devices"]
    assert [r.split("\t")[1] for r in rows] == [d["mac"] for d in api]  # the same order as the API
    shares = [float(r.split("\t")[6].rstrip(" %")) for r in rows]
    assert abs(sum(shares) - 100) < 0.5 and shares[0] > 90
    page.wait_for_function("() => Number(document.getElementById('chart-usage').dataset.bars) > 0", timeout=10000)
    # One device's increments: its row chosen, the chart titled with it.
    page.locator("#usage-ranking tbody tr", has_text=c1.mac).click()
    page.wait_for_function(f"() => document.querySelector('#chart-usage').previousElementSibling"
                           f".textContent.startsWith('{c1.mac}')", timeout=10000)
    # The export: a file, as its link says.
    href = page.get_attribute("#export-csv", "href")
    assert href.startswith("/api/traffic/usage/export?format=csv&aggregation=daily&start_ms=")
    resp = page.request.get(site["url"].rstrip("/") + href)
    assert resp.status == 200 and resp.headers["content-disposition"].startswith('attachment; filename="bandix-usage-')
    lines = resp.text().split("\r\n")
    assert lines[0] == "date,ts_ms,mac,ip,hostname,rx_bytes,tx_bytes,total_bytes" and c1.mac in lines[1]
    shot(page, "usage")
    # WAN + LAN: the page asks for network_type=all and lists what the API ranks for it.
    page.select_option("#usage-network", "all")
    page.wait_for_function("() => document.querySelector('#usage-ranking').closest('section')"
                           ".textContent.includes('WAN + LAN bytes from')", timeout=10000)
    assert "&network_type=all" in page.get_attribute("#export-csv", "href")
    api = daemon.get("/api/traffic/usage/ranking?start_ms=0&network_type=all")[1]["data"]["devices"]
    rows = page.locator("#usage-ranking tbody tr").all_inner_texts()
    assert [r.split("\t")[1] for r in rows] == [d["mac"] for d in api]


def test_devices_show_the_daemons_online_state_and_a_device_can_be_forgotten(page, site):
    vr, daemon = site["vr"], site["daemon"]
    for c in vr.clients:
        page.locator("tbody tr", has_text=c.mac).wait_for(timeout=10000)
    assert page.locator("tbody .dot.on").count() == len(vr.clients)
    title = page.get_attribute(f"tbody tr:has-text('{vr.clients[0].mac}') .dot", "title")
    assert title.startswith("online since ")
    shot(page, "devices-online")
    c3 = vr.clients[2]
    before = daemon.devices()[c3.mac]["total_tx_bytes"]
    page.goto(site["url"] + f"#/device/{c3.mac}")
    page.once("dialog", lambda d: d.accept())
    page.click("#forget")
    page.wait_for_url(site["url"] + "#/", timeout=5000)
    # Forgotten; it comes back from zero at its next pings (every 0.2 s).
    time.sleep(1.5)
    after = daemon.devices().get(c3.mac)
    assert after is None or after["total_tx_bytes"] < before
