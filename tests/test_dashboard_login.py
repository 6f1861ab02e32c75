"""The dashboard off the router, in a real browser (chromium): login, cookie, CSRF.

The daemon listens on the LAN address; the browser in the root namespace reaches
it through a forward whose far end is client c1's namespace, so the daemon sees
a LAN device (c1) asking, as a laptop on the LAN would be. A second page, served
from another origin on this machine's loopback, plays the attacker's site.
"""

from __future__ import annotations

import http.server
import threading
import uuid
from pathlib import Path

import pytest

from bandix import uci
from tests.bandixd import SHOTS, Bandix, remove_state
from tests.test_dashboard import free_port
from tests.vrouter import PortForward, VirtualRouter

LAN = "192.168.77.1"
EVIL_PAGE = """<!doctype html><title>cats</title><script>
window.attempts = Promise.all([
  fetch('%(target)sapi/traffic/bindings', {method: 'POST', mode: 'no-cors', credentials: 'include',
    headers: {'Content-Type': 'text/plain'}, body: '{"mac": "02:bd:00:00:01:01", "hostname": "owned"}'}),
  fetch('%(target)sapi/traffic/bindings', {method: 'POST', mode: 'no-cors', credentials: 'include',
    body: new URLSearchParams({mac: '02:bd:00:00:01:01', hostname: 'owned'})}),
]).then(function () { return 'sent'; }, function (e) { return 'refused: ' + e; });
</script>"""


@pytest.fixture(scope="module")
def lan_dashboard():
    pins = Path("/sys/fs/bpf") / f"bandix-test-login-{uuid.uuid4().hex[:8]}"
    with VirtualRouter() as vr:
        vr.wait_quiet()
        flags = ["--iface", "br-lan", "--enable-traffic", "--listen", LAN, "--web-log"]
        daemon = Bandix(vr.router, flags, pins).start()
        try:
            for c in vr.clients:
                c.ns.run(["ping", "-c", "2", "-i", "0.1", vr.SERVER_V4])
            port = free_port()
            with PortForward(("127.0.0.1", port), vr.clients[0].ns, (LAN, 8686)):
                yield {"vr": vr, "daemon": daemon, "url": f"http://127.0.0.1:{port}/"}
        finally:
            daemon.stop()
            remove_state(pins)


def token_of(daemon) -> str:
    return uci.load(daemon.config_dir / "bandix").named("config").get("api_token")


class EvilSite:
    """An HTTP server on another port of this machine's loopback: another origin."""

    def __init__(self, target: str) -> None:
        body = (EVIL_PAGE % {"target": target}).encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> EvilSite:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


def test_login_then_the_dashboard_and_no_cross_site_write(browser, lan_dashboard):
    daemon, vr = lan_dashboard["daemon"], lan_dashboard["vr"]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(lan_dashboard["url"])
        page.locator("#login").wait_for(timeout=10000)  # the API said 401: the form, no table
        assert page.locator("tbody tr").count() == 0
        page.screenshot(path=str(SHOTS / "login.png"))
        page.fill("#token", "0" * 32)
        page.click("#login button")
        page.locator("#login .error", has_text="wrong token").wait_for(timeout=5000)
        page.fill("#token", token_of(daemon))
        page.click("#login button")
        for c in vr.clients:
            page.locator("tbody tr", has_text=c.mac).wait_for(timeout=10000)
        cookie = next(c for c in context.cookies() if c["name"] == "bandix_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert page.evaluate("document.cookie") == ""  # the page's scripts never see it
        # The dashboard's own write works with the cookie.
        status = page.evaluate("""() => fetch('/api/traffic/bindings', {method: 'POST',
            headers: {'Content-Type': 'application/json'},
            body: JSON.stringify({mac: '02:bd:00:00:01:02', hostname: 'laptop'})}).then(r => r.status)""")
        assert status == 200
        before = (daemon.config_dir / "bandix").read_bytes()
        assert b"laptop" in before
        # Another site open in the same browser tries to write: nothing changes. (Another port of
        # the same host is the same *site*, so the SameSite=Strict cookie goes along: the Origin
        # check is what refuses it.)
        with EvilSite(lan_dashboard["url"]) as evil:
            attacker = context.new_page()
            attacker.goto(evil.url)
            assert attacker.evaluate("window.attempts") == "sent"
            attacker.close()
        assert (daemon.config_dir / "bandix").read_bytes() == before
        refused = [line for line in daemon.log().splitlines() if "POST /api/traffic/bindings 403" in line]
        assert len(refused) == 2, daemon.log()[-2000:]  # both reached the daemon, as a LAN device (c1)
        assert all(vr.clients[0].ipv4 in line for line in refused)
    finally:
        context.close()
    assert errors == [], errors
