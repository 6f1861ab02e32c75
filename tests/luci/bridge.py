"""A test web server standing in for uhttpd + LuCI + rpcd + ubus.

- /cgi-bin/luci/admin/status/bandix/<page>: a page that loads the stand-in
  luci.js and requires view.bandix.<page>, as LuCI's menu does.
- /luci-static/resources/...: the stand-in LuCI modules (tests/luci/resources),
  else the app's htdocs; bandix/charts.js is bandix/web/charts.js, the copy the
  package's Prepare hook makes.
- POST /ubus: uhttpd's ubus JSON-RPC endpoint and rpcd as modelled in
  tests/luci/rpcd.py (session ACLs per call, ubus_rpc_session added to the
  arguments, plugins read when rpcd starts). luci.bandix is the real plugin
  installed in a router root of the bridge's own, run in the router namespace
  (stand-ins for uclient-fetch and uci on its PATH). `uci get` reads the
  daemon's UCI file with rpcd's uci read check; luci-rpc getNetworkDevices and
  getHostHints list the router namespace's links and neighbours.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.luci.rpcd import OK, Rpcd, UciModule, uhttpd_ubus
from tests.vrouter import NETNS_DIR, Netns

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "luci-app-bandix"
PLUGIN = APP / "root/usr/libexec/rpcd/luci.bandix"
STANDIN = Path(__file__).resolve().parent
APP_RESOURCES = APP / "htdocs/luci-static/resources"
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>LuCI stand-in</title>
<style>body{font:14px sans-serif;margin:1em} .table{border-collapse:collapse;width:100%}
.td,.th{border-bottom:1px solid #ddd;padding:.3em .5em;text-align:left}
.alert-message{background:#fec;padding:.5em}</style>
<script src="/luci-static/resources/luci.js"></script></head>
<body><div id="maincontent"><div id="view"></div></div>
<script>L.env.sessionid = 'SESSIONID';</script>
<script>L.require('view.bandix.VIEW').catch(function(e) { console.error('view failed: ' + (e.stack || e)); });</script>
</body></html>
"""


def plugin_env(config_dir: Path) -> dict[str, str]:
    """The plugin's environment: the stand-ins first on PATH, uci reading config_dir."""
    return {**os.environ, "PATH": f"{STANDIN / 'bin'}:{os.environ['PATH']}", "UCI_CONFIG_DIR": str(config_dir)}


def run_plugin(ns: Netns, config_dir: Path, *args: str, stdin: str = "", plugin: Path = PLUGIN
               ) -> subprocess.CompletedProcess:
    """The rpcd plugin as rpcd runs it, inside the router namespace."""
    return subprocess.run(["nsenter", f"--net={NETNS_DIR / ns.name}", str(plugin), *args], input=stdin,
                          capture_output=True, text=True, timeout=30, env=plugin_env(config_dir))


# What luci-base's own ACL file grants every logged-in LuCI user (group luci-base): the
# uci methods of LuCI's forms. Real LuCI ships more; these are the ones the views call.
LUCI_BASE_ACL = {"luci-base": {
    "read": {"ubus": {"uci": ["changes", "get"]}},
    "write": {"ubus": {"uci": ["add", "apply", "confirm", "delete", "order", "rename", "set"]}}}}
# rpcd's `config login` sections: LuCI's root, and a user allowed to look only.
LOGINS = {"root": {"read": ["*"], "write": ["*"]},
          "viewer": {"read": ["luci-base", "luci-app-bandix"], "write": []}}


def install_app(root: Path) -> None:
    """opkg's file part of `opkg install luci-app-bandix`: the plugin and the ACL file."""
    for rel in ("usr/libexec/rpcd/luci.bandix", "usr/share/rpcd/acl.d/luci-app-bandix.json"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(APP / "root" / rel, root / rel)


def router_root(path: Path, with_app: bool = True) -> Path:
    """A router filesystem with luci-base's ACL and, unless told otherwise, the app installed."""
    (path / "usr/libexec/rpcd").mkdir(parents=True, exist_ok=True)
    (path / "usr/share/rpcd/acl.d").mkdir(parents=True, exist_ok=True)
    (path / "usr/share/rpcd/acl.d/luci-base.json").write_text(json.dumps(LUCI_BASE_ACL))
    if with_app:
        install_app(path)
    return path


class Bridge:
    """The server, in a thread; .calls records every ubus call (object, method, params)."""

    def __init__(self, ns: Netns, config_dir: Path, root: Path | None = None, user: str = "root",
                 on_config_change=None) -> None:
        """on_config_change(package): procd's `service event config.change` (rpcd's uci apply sends it)."""
        self.ns, self.config_dir = ns, config_dir
        self.calls: list[tuple[str, str, dict]] = []
        self._tmp = None if root else tempfile.TemporaryDirectory(prefix="bandix-luci-root-")
        self.root = root or router_root(Path(self._tmp.name))
        self.rpcd = Rpcd(self.root, LOGINS, lambda path, argv, stdin: run_plugin(
            ns, config_dir, *argv, stdin=stdin, plugin=path))
        self.uci = UciModule(self.rpcd, config_dir, on_config_change or (lambda package: None))
        self.rpcd.builtins.update({"uci": self.uci, "luci-rpc": self._luci_rpc,
                                   "network.interface": lambda sid, m, a: (OK, {"interface": []}) if m == "dump"
                                   else (3, None),
                                   "network": lambda sid, m, a: (OK, None) if m == "get_proto_handlers" else (3, None)})
        self.sid = self.rpcd.login(user)
        bridge = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                if path == "/favicon.ico":
                    return self._send(204, "image/x-icon", b"")
                if path.startswith("/cgi-bin/luci/admin/status/bandix/"):
                    page = PAGE.replace("VIEW", path.rsplit("/", 1)[1]).replace("SESSIONID", bridge.sid)
                    return self._send(200, "text/html", page.encode())
                if path.startswith("/luci-static/resources/"):
                    file = bridge.resource(path[len("/luci-static/resources/"):])
                    if file:
                        return self._send(200, "application/javascript", file.read_bytes())
                self._send(404, "text/plain", b"not found")

            def do_POST(self) -> None:
                if self.path.startswith("/cgi-bin/luci/admin/uci/"):
                    return self._admin_uci(self.path.rsplit("/", 1)[1])
                if self.path != "/ubus":
                    return self._send(404, "text/plain", b"not found")
                try:
                    msg = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                except ValueError:
                    msg = None
                if isinstance(msg, dict) and isinstance(msg.get("params"), list) and len(msg["params"]) >= 4:
                    bridge.calls.append((msg["params"][1], msg["params"][2], msg["params"][3]))
                self._send(200, "application/json", json.dumps(uhttpd_ubus(bridge.rpcd, msg)).encode())

            def _admin_uci(self, action: str) -> None:
                """luci-base's admin/uci controller: apply_rollback and confirm call rpcd's uci
                apply/confirm with the page's session (L.env.sessionid)."""
                form = dict(p.split("=", 1) for p in self.rfile.read(int(self.headers["Content-Length"]))
                            .decode().split("&") if "=" in p)
                sid = urllib.parse.unquote(form.get("sid", ""))
                bridge.calls.append(("admin/uci", action, {}))
                if action in ("apply_rollback", "apply_unchecked"):
                    status, _ = bridge.uci(sid, "apply", {"rollback": action == "apply_rollback", "timeout": 90})
                    if status == 5:
                        return self._send(204, "text/plain", b"")
                    body = json.dumps({"token": sid[:16]}).encode()
                    return self._send(200 if status == 0 else 500, "application/json", body)
                if action == "confirm":
                    status, _ = bridge.uci(sid, "confirm", {})
                    return self._send(200 if status == 0 else 403, "application/json", b"{}")
                self._send(404, "text/plain", b"not found")

            def _send(self, status: int, kind: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Bridge:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self._tmp:
            self._tmp.cleanup()

    def resource(self, rel: str) -> Path | None:
        if ".." in rel.split("/"):
            return None
        if rel == "bandix/charts.js":
            return ROOT / "bandix/web/charts.js"
        for base in (STANDIN / "resources", APP_RESOURCES):
            if (base / rel).is_file():
                return base / rel
        return None

    def _luci_rpc(self, sid: str, method: str, args: dict) -> tuple[int, dict | None]:
        """luci-rpc (luci-base's rpcd plugin): the router namespace's links and neighbours."""
        if method == "getNetworkDevices":
            links = json.loads(self.ns.ip("-j", "link").stdout)
            return OK, {link["ifname"]: {"name": link["ifname"], "up": "UP" in link["flags"]} for link in links}
        if method == "getHostHints":
            neigh = json.loads(self.ns.ip("-j", "neigh").stdout or "[]")
            return OK, {n["lladdr"].upper(): {"ipaddrs": [n["dst"]]} for n in neigh if "lladdr" in n}
        return 3, None
