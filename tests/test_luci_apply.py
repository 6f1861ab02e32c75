"""LuCI's Settings → Save & Apply in chromium, down to the daemon procd runs.

The chain, each part real or a model of the real one: the settings view (real) under the
stand-in LuCI runtime (tests/luci/resources: form parse → uci set/add → ui.changes.apply);
uhttpd's ubus endpoint, rpcd and its uci module (tests/luci/rpcd.py: staged per session,
`uci apply` commits and sends config.change); procd (tests/procd.py: the reload trigger runs
files/bandix.init's reload, instances compared as instance_update does); bandix itself (real,
on the virtual router). What a router owner checks: within 5 s of the click the daemon has the
limit, the name and the log level; a port or interface change restarts it on the new
port / bridge; what the daemon would refuse is refused by the form, and nothing is written.
"""

from __future__ import annotations

import time

import pytest

from tests.luci.bridge import Bridge
from tests.test_procd_reload import BASE, Router, uci_show
from tests.vrouter import VirtualRouter

MAC = "02:bd:00:00:00:42"


@pytest.fixture
def site(tmp_path):
    with VirtualRouter() as vr:
        vr.wait_quiet()
        vr.router.ip("link", "add", "br-guest", "type", "bridge")
        vr.router.ip("link", "set", "br-guest", "up")
        router = Router(vr, tmp_path)
        try:
            router.write(BASE)
            router.procd.reload_config(router.config, uci_show)
            assert router.procd.init(router.root / "etc/init.d/bandix", "start").returncode == 0
            router.wait(lambda: router.answers(8686), 20, "bandix answering on 8686")
            with Bridge(vr.router, router.config,
                        on_config_change=lambda package: router.procd.event("config.change",
                                                                            {"package": package})) as bridge:
                yield router, bridge
        finally:
            router.close()


@pytest.fixture
def page(browser, site):
    _router, bridge = site
    context = browser.new_context(viewport={"width": 1280, "height": 1400})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(f"{bridge.url}/cgi-bin/luci/admin/status/bandix/settings")
    pg.locator("select[id='widget.cbid.bandix.config.iface'] option").first.wait_for(state="attached", timeout=10000)
    yield pg
    context.close()
    assert errors == [], errors


def new_row(pg, section: str):
    """Add: the new section's row, its options as widgets."""
    pg.click(f"#cbi-bandix-{section} .cbi-button-add")
    row = pg.locator(f"#cbi-bandix-{section} tr[id^='cbi-bandix-new']").last
    row.wait_for(timeout=5000)
    return row


def refused(pg, message: str) -> None:
    """The form's save error, as LuCI shows it."""
    pg.locator(".alert-message", has_text=message).wait_for(timeout=5000)


def save_apply(pg) -> float:
    pg.click(".cbi-page-actions .cbi-button-apply")
    return time.monotonic()


def test_save_and_apply_reaches_the_running_daemon_within_5_s(site, page):
    router, bridge = site
    pg = page
    first = router.procd.instance("bandix")
    pid = first.proc.pid
    before = (router.config / "bandix").read_text()
    pg.select_option("select[id='widget.cbid.bandix.config.log_level']", "debug")
    limit = new_row(pg, "limit")
    limit.locator("td[data-name=mac] input").fill(MAC)
    limit.locator("td[data-name=start] input").fill("08:00")
    limit.locator("td[data-name=end] input").fill("08:00")
    limit.locator("td[data-name=wan_rx_rate_limit] input").fill("125000")
    limit.locator("td[data-name=wan_tx_rate_limit] input").fill("0")
    binding = new_row(pg, "binding")
    binding.locator("td[data-name=mac] input").fill(MAC)
    binding.locator("td[data-name=hostname] input").fill("TV:living")
    # What the daemon refuses, the form refuses: nothing is staged, written or applied.
    save_apply(pg)
    refused(pg, 'Option "To" contains an invalid input value. Must differ from the start')
    limit.locator("td[data-name=end] input").fill("20:00")
    save_apply(pg)
    refused(pg, 'Option "Name" contains an invalid input value. May hold letters, digits')
    assert (router.config / "bandix").read_text() == before
    assert ("admin/uci", "apply_rollback", {}) not in bridge.calls
    binding.locator("td[data-name=hostname] input").fill("Living room TV")
    router.syslog()
    router.wait_applied(MAC, "Living room TV", save_apply(pg))
    limits = router.get("/api/traffic/limits/schedule")[1]["data"]["limits"]
    assert [rule.pop("id") != "" for rule in limits] == [True]  # the name of the section LuCI added
    assert limits == [{
        "mac": MAC, "time_slot": {"start": "08:00", "end": "20:00", "days": [1, 2, 3, 4, 5, 6, 7]},
        "wan_rx_rate_limit": 125000, "wan_tx_rate_limit": 0}]
    assert first.started == [pid] and first.running  # SIGHUP, no restart
    pg.locator(".alert-message", has_text="Configuration changes applied.").wait_for(timeout=10000)
    pg.screenshot(path=str(router.tmp / "luci-settings-applied.png"), full_page=True)


def test_port_and_interface_changes_restart_it_on_the_new_port_and_bridge(site, page):
    router, _bridge = site
    pg = page
    first = router.procd.instance("bandix")
    pg.fill("input[id='widget.cbid.bandix.config.port']", "8687")
    pg.select_option("select[id='widget.cbid.bandix.config.iface']", ["br-guest", "br-lan"])
    save_apply(pg)
    router.wait(lambda: len(first.started) == 2 and router.answers(8687), 20, "a new bandix on 8687")
    assert not router.answers(8686)
    command = first.config["command"]
    assert [command[i + 1] for i, a in enumerate(command) if a == "--iface"] == ["br-guest", "br-lan"]
    router.wait(lambda: any(b"attached to br-guest" in m for m in router.messages), 10, "attached to br-guest")


def test_an_older_answer_never_replaces_a_newer_one(page):
    """api.follow (the views' refresh cycle) in the browser with two requests answered out of
    order, as when a DNS filter is typed while the last request still runs."""
    shown = page.evaluate("""() => L.require('bandix.api').then(api => new Promise(done => {
        const shown = [], answers = {};
        let n = 0;
        const load = () => new Promise(resolve => { answers[++n] = resolve; });
        const refresh = api.follow(document.createElement('div'), 'first', load, d => shown.push(d), 3600);
        refresh();            // asks with the old filter
        refresh();            // asks with the new one
        answers[2]('new filter');
        setTimeout(() => { answers[1]('old filter'); setTimeout(() => done(shown), 50); }, 50);
    }))""")
    assert shown == ["first", "new filter"]
