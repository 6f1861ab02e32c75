"""A test web server standing in for uhttpd + LuCI + rpcd + ubus.

- /cgi-bin/luci/admin/status/bandix/<page>: a page that loads the stand-in
  luci.js and requires view.bandix.<page>, as LuCI's menu does.
- /luci-static/resources/...: the stand-in LuCI modules (tests/luci/resources),
  else the app's htdocs; bandix/charts.js is bandix/web/charts.js, the copy the
  package's Prepare hook makes.
- POST /ubus: ubus JSON-RPC "call". luci.bandix runs the real rpcd plugin in
  the router namespace (stand-ins for uclient-fetch and uci on its PATH), as
  rpcd's exec plugin protocol does: `<plugin> call <method>`, JSON on stdin,
  a JSON object on stdout. `uci get` reads the daemon's UCI file; luci-rpc
  getNetworkDevices lists the router namespace's links.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bandix import uci
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
<script>L.require('view.bandix.VIEW').catch(function(e) { console.error('view failed: ' + (e.stack || e)); });</script>
</body></html>
"""


def plugin_env(config_dir: Path) -> dict[str, str]:
    """The plugin's environment: the stand-ins first on PATH, uci reading config_dir."""
    return {**os.environ, "PATH": f"{STANDIN / 'bin'}:{os.environ['PATH']}", "UCI_CONFIG_DIR": str(config_dir)}


def run_plugin(ns: Netns, config_dir: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    """The rpcd plugin as rpcd runs it, inside the router namespace."""
    return subprocess.run(["nsenter", f"--net={NETNS_DIR / ns.name}", str(PLUGIN), *args], input=stdin,
                          capture_output=True, text=True, timeout=30, env=plugin_env(config_dir))


def uci_values(path: Path) -> dict:
    """`ubus call uci get {"config": ...}`'s values for one UCI file."""
    out = {}
    for index, s in enumerate(uci.load(path).sections if path.exists() else []):
        name = s.name or f"cfg{index:02x}{abs(hash(s.type)) % 0x10000:04x}"
        values: dict = {".name": name, ".type": s.type, ".anonymous": s.name is None, ".index": index}
        for option in s.options():
            statements = [st for st in s.body if isinstance(st, uci.Statement) and st.args[0] == option]
            values[option] = s.get_list(option) if statements[0].keyword == "list" else s.get(option)
        out[name] = values
    return out


class Bridge:
    """The server, in a thread; .calls records every ubus call (object, method, params)."""

    def __init__(self, ns: Netns, config_dir: Path) -> None:
        self.ns, self.config_dir = ns, config_dir
        self.calls: list[tuple[str, str, dict]] = []
        bridge = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                if path == "/favicon.ico":
                    return self._send(204, "image/x-icon", b"")
                if path.startswith("/cgi-bin/luci/admin/status/bandix/"):
                    return self._send(200, "text/html", PAGE.replace("VIEW", path.rsplit("/", 1)[1]).encode())
                if path.startswith("/luci-static/resources/"):
                    file = bridge.resource(path[len("/luci-static/resources/"):])
                    if file:
                        return self._send(200, "application/javascript", file.read_bytes())
                self._send(404, "text/plain", b"not found")

            def do_POST(self) -> None:
                msg = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                _sid, obj, method, params = msg["params"]
                result = bridge.ubus(obj, method, params)
                self._send(200, "application/json", json.dumps({"jsonrpc": "2.0", "id": msg["id"],
                                                                "result": result}).encode())

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

    def resource(self, rel: str) -> Path | None:
        if ".." in rel.split("/"):
            return None
        if rel == "bandix/charts.js":
            return ROOT / "bandix/web/charts.js"
        for base in (STANDIN / "resources", APP_RESOURCES):
            if (base / rel).is_file():
                return base / rel
        return None

    def ubus(self, obj: str, method: str, params: dict) -> list:
        self.calls.append((obj, method, params))
        if obj == "luci.bandix":
            done = run_plugin(self.ns, self.config_dir, "call", method, stdin=json.dumps(params))
            return [0, json.loads(done.stdout)] if done.returncode == 0 else [9]
        if obj == "uci" and method == "get":
            return [0, {"values": uci_values(self.config_dir / params["config"])}]
        if obj == "luci-rpc" and method == "getNetworkDevices":
            links = json.loads(self.ns.ip("-j", "link").stdout)
            return [0, {link["ifname"]: {"name": link["ifname"], "up": "UP" in link["flags"]} for link in links}]
        return [3]  # UBUS_STATUS_METHOD_NOT_FOUND
