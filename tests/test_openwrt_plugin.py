"""luci-app-bandix's rpcd plugin and ACL under the models of rpcd, uhttpd and uclient-fetch,
against a small HTTP server of this test standing in for the daemon's /api/rpc (it records
each request as it came on the wire and answers what the test tells it). No router needed.

Stand-ins: rpcd and uhttpd's ubus endpoint are tests/luci/rpcd.py's models; uclient-fetch
and uci are tests/luci/bin's (chunked POST bodies, exit codes 0/4/8; `uci show`).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from tests.luci.bridge import APP, LOGINS, install_app, plugin_env, router_root
from tests.luci.rpcd import Rpcd, uhttpd_ubus

PLUGIN = APP / "root/usr/libexec/rpcd/luci.bandix"


class Daemon:
    """A one-request-at-a-time HTTP server on 127.0.0.1 that keeps the raw requests."""

    def __init__(self, status: int = 200, body: bytes = b'{"status": "success", "data": {}}') -> None:
        self.status, self.body = status, body
        self.requests: list[bytes] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                conn.settimeout(5)
                while b"\r\n0\r\n\r\n" not in data and not (b"\r\n\r\n" in data and b"POST" not in data[:5]):
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                self.requests.append(data)
                reason = {200: "OK", 400: "Bad Request", 411: "Length Required", 500: "Internal Server Error"}
                conn.sendall(f"HTTP/1.1 {self.status} {reason.get(self.status, 'X')}\r\nContent-Type: application/json"
                             f"\r\nContent-Length: {len(self.body)}\r\n\r\n".encode() + self.body)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def config_dir(tmp_path):
    return tmp_path


def call(config_dir: Path, method: str, args: str, uci_log: Path | None = None) -> dict:
    env = plugin_env(config_dir)
    if uci_log:
        env["UCI_LOG"] = str(uci_log)
    done = subprocess.run([str(PLUGIN), "call", method], input=args, capture_output=True, text=True, timeout=30,
                          env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # always one JSON object, as rpcd requires


def uci_file(config_dir: Path, port: int, listen: str = "127.0.0.1") -> None:
    (config_dir / "bandix").write_text(f"config bandix 'config'\n\toption port '{port}'\n\toption listen '{listen}'\n")


def test_post_body_goes_chunked_as_uclient_fetch_sends_it(config_dir):
    """The request on the wire: uclient-fetch's headers (the plugin's JSON type replacing its form type),
    no Content-Length, one chunk, then 0."""
    daemon = Daemon()
    try:
        uci_file(config_dir, daemon.port)
        args = '{"known": "x", "ubus_rpc_session": "' + "a" * 32 + '"}'
        assert call(config_dir, "devices", args) == {"status": "success", "data": {}}
        head, _, body = daemon.requests[0].partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        assert lines[0] == "POST /api/rpc?method=devices HTTP/1.1"
        assert lines[1:] == ["Host: 127.0.0.1", "User-Agent: uclient-fetch",
                             "Content-Type: application/json", "Transfer-Encoding: chunked"]
        assert body == f"{len(args):X}\r\n{args}\r\n0\r\n\r\n".encode()
    finally:
        daemon.close()


@pytest.mark.parametrize(("status", "code", "message"), [
    (400, 400, "bandix refused the arguments of device (HTTP 400; its log says why: logread -e bandix)"),
    (411, 400, "bandix refused the arguments of device (HTTP 411; its log says why: logread -e bandix)"),
    (500, 500, "bandix failed to answer device (HTTP 500; its log says why: logread -e bandix)"),
])
def test_http_errors_are_told_apart(config_dir, status, code, message):
    """uclient-fetch exits 8 for any non-2xx and prints "HTTP error N": a 5xx is not the arguments' fault."""
    daemon = Daemon(status, b'{"status": "error", "message": "x"}')
    try:
        uci_file(config_dir, daemon.port)
        assert call(config_dir, "device", '{"mac": "02:00:00:00:00:01"}') == {
            "status": "error", "code": code, "message": message}
    finally:
        daemon.close()


def test_no_daemon_is_503_and_the_message_is_valid_json_whatever_uci_holds(config_dir):
    """listen with a quote or a backslash: only address characters reach the URL; the reply parses."""
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    uci_file(config_dir, port, listen='10.0.0.1"\\\\x')
    assert call(config_dir, "devices", "{}") == {
        "status": "error", "code": 503,
        "message": f"bandix does not answer at http://127.0.0.1:{port}: is the service running "
                   "(/etc/init.d/bandix status)?"}


def test_one_uci_fork_per_call(config_dir, tmp_path):
    """A view polls every second: the address is read with one `uci show`, not a `uci get` per option."""
    daemon = Daemon()
    log = tmp_path / "uci.log"
    try:
        uci_file(config_dir, daemon.port)
        call(config_dir, "devices", "{}", uci_log=log)
        assert log.read_text().splitlines() == ["-q show bandix.config"]
    finally:
        daemon.close()


# -- rpcd and uhttpd ------------------------------------------------------------------------------


def rpcd_for(root: Path, config_dir: Path) -> Rpcd:
    return Rpcd(root, LOGINS, lambda path, argv, stdin: subprocess.run(
        [str(path), *argv], input=stdin, capture_output=True, text=True, timeout=30, env=plugin_env(config_dir)))


def ubus(rpcd: Rpcd, sid: str, obj: str, method: str, args: dict | None = None) -> dict:
    return uhttpd_ubus(rpcd, {"jsonrpc": "2.0", "id": 1, "method": "call", "params": [sid, obj, method, args or {}]})


def test_installed_app_needs_rpcd_hup_and_a_new_login(tmp_path, config_dir):
    """opkg install without telling rpcd: "Object not found" (exec plugins are read at start);
    after the postinst's SIGHUP the object exists and the sessions survive, each with the grants it
    got at login: a session from before the install still lacks the app's ACL."""
    uci_file(config_dir, 1)
    root = router_root(tmp_path / "root", with_app=False)
    rpcd = rpcd_for(root, config_dir)
    before = rpcd.login("root")
    install_app(root)
    assert ubus(rpcd, before, "luci.bandix", "devices")["error"] == {"code": -32000, "message": "Object not found"}
    rpcd.sighup()  # luci.mk's postinst: killall -HUP rpcd
    assert rpcd.starts == 2 and before in rpcd.sessions
    assert ubus(rpcd, before, "luci.bandix", "devices")["error"] == {"code": -32002, "message": "Access denied"}
    for user in ("root", "viewer"):
        reply = ubus(rpcd, rpcd.login(user), "luci.bandix", "devices")
        assert reply["result"][0] == 0 and reply["result"][1]["code"] == 503  # the plugin ran: no daemon on port 1


def test_acl_is_checked_per_session_and_method(tmp_path, config_dir):
    uci_file(config_dir, 1)
    rpcd = rpcd_for(router_root(tmp_path / "root"), config_dir)
    root, viewer = rpcd.login("root"), rpcd.login("viewer")
    denied = {"code": -32002, "message": "Access denied"}
    assert ubus(rpcd, viewer, "luci.bandix", "set_limit", {"mac": "x"})["error"] == denied
    assert ubus(rpcd, root, "luci.bandix", "set_limit", {"mac": "x"})["result"][0] == 0
    assert ubus(rpcd, "0" * 32, "luci.bandix", "devices")["error"] == denied  # not logged in
    assert ubus(rpcd, "f" * 32, "luci.bandix", "devices")["error"] == denied  # no such session
    assert ubus(rpcd, root, "luci.bandix", "reboot")["error"] == denied  # in no ACL (checked before the method)
    # uhttpd refuses a caller's own ubus_rpc_session and adds the real one.
    assert ubus(rpcd, root, "luci.bandix", "devices", {"ubus_rpc_session": root})["error"]["code"] == -32602


def test_a_viewer_may_make_every_call_of_the_settings_page(tmp_path, config_dir):
    """What the Interfaces widget's network state reads (luci-base network.js initNetworkState) and the
    form's uci reads are in the app's ACL: a non-root LuCI user is not refused any of them."""
    rpcd = rpcd_for(router_root(tmp_path / "root"), config_dir)
    viewer = rpcd.login("viewer")
    calls = [("ubus", "network.interface", "dump"), ("ubus", "luci-rpc", "getBoardJSON"),
             ("ubus", "luci-rpc", "getNetworkDevices"), ("ubus", "luci-rpc", "getWirelessDevices"),
             ("ubus", "luci-rpc", "getHostHints"), ("ubus", "network", "get_proto_handlers"),
             ("ubus", "uci", "get"), ("uci", "bandix", "read"), ("uci", "network", "read"),
             ("uci", "wireless", "read")]
    assert [c for c in calls if not rpcd.access(viewer, *c)] == []
    assert not rpcd.access(viewer, "uci", "bandix", "write")


def test_plugin_list_is_what_rpcd_registers(tmp_path, config_dir):
    rpcd = rpcd_for(router_root(tmp_path / "root"), config_dir)
    methods = rpcd.objects["luci.bandix"]["methods"]
    acl = json.loads((APP / "root/usr/share/rpcd/acl.d/luci-app-bandix.json").read_text())["luci-app-bandix"]
    assert sorted(methods) == sorted(acl["read"]["ubus"]["luci.bandix"] + acl["write"]["ubus"]["luci.bandix"])
    assert os.access(PLUGIN, os.X_OK)
