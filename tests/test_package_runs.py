"""The packages of `make ipk` doing a router owner's first minutes, end to end:
`opkg install bandix luci-app-bandix`, the shipped /etc/config/bandix,
`/etc/init.d/bandix start`, then Status → Bandix asking the rpcd plugin.

Stand-ins, since no OpenWrt runs here:
- opkg: the x86_64 and LuCI packages' data.tar.gz are unpacked into a directory;
- procd and /lib/functions.sh: the packaged init script's start_service runs
  under the stand-ins of tests/test_initscript.py, and the command line it
  builds is started in the router namespace, with /etc/config, /tmp/bandix and
  /lib/bpf/bandix.o mapped into the unpacked tree and a test pin directory;
- the router's python3: this machine's Python 3.11 (the same minor) with the
  venv's falcon, waitress, pyroute2, dnslib and cryptography; bandix itself
  is the package's bytecode, not this checkout;
- rpcd and uhttpd's ubus endpoint: tests/luci/rpcd.py's models, reading the
  unpacked tree's plugin and ACL; uclient-fetch and uci: tests/luci/bin's;
- logd: none; the init script's --syslog is left out (tests/test_procd_reload.py
  checks the logging), so the daemon logs to stderr here.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from tests.bandixd import NETNS_DIR, Bandix, remove_state
from tests.luci.bridge import LOGINS, plugin_env
from tests.luci.rpcd import Rpcd, uhttpd_ubus
from tests.test_initscript import run as run_init_script
from tests.test_openwrt_ipk import SITE, Ipk, build
from tests.traffic import Flow, counters, delta, l3_truth, settle
from tests.vrouter import VirtualRouter


class PackagedBandix(Bandix):
    """The unpacked package's /usr/sbin/bandix, run by the init script's command line."""

    def __init__(self, ns, init_args: list[str], pin_dir: Path, root: Path, config_dir: Path) -> None:
        super().__init__(ns, [], pin_dir, config_dir=config_dir, name="packaged",
                         env={"PYTHONPATH": str(root / SITE)})
        self.args = [*init_args, "--pin-dir", str(pin_dir)]
        self.root = root

    def command(self) -> list[str]:
        return ["nsenter", f"--net={NETNS_DIR / self.ns.name}", sys.executable, str(self.root / "usr/sbin/bandix"),
                *self.args]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """`opkg install bandix luci-app-bandix` into a directory."""
    out, root = tmp_path_factory.mktemp("ipk"), tmp_path_factory.mktemp("root")
    for path in build(out):
        if path.name.startswith(("bandix_", "luci-app-bandix_")) and "mips" not in path.name:
            with tarfile.open(fileobj=io.BytesIO(Ipk(path).data_raw), mode="r:gz") as data:
                data.extractall(root, filter="tar")
    return root


def test_installed_package_counts_on_the_router_and_answers_the_luci_plugin(installed, tmp_path):
    root = installed
    config_dir, data_dir = tmp_path / "etc-config", tmp_path / "data"
    config_dir.mkdir()
    shutil.copy(root / "etc/config/bandix", config_dir / "bandix")
    started = run_init_script(tmp_path / "init", (root / "etc/config/bandix").read_text(),
                              init=root / "etc/init.d/bandix")
    command = started["command"]
    assert command[0] == "/usr/sbin/bandix"
    paths = {"/etc/config": str(config_dir), "/tmp/bandix": str(data_dir)}
    args = [paths.get(a, a) for a in command[1:] if a != "--syslog"] + ["--bpf-object", str(root / "lib/bpf/bandix.o")]
    # The interpreter finds the package's bytecode, not this checkout.
    probe = subprocess.run([sys.executable, "-c", "import sys, bandix.daemon as d; print(d.__file__)"],
                           env={"PYTHONPATH": str(root / SITE), "PATH": "/usr/bin:/bin"}, cwd=tmp_path,
                           capture_output=True, text=True, check=True)
    assert probe.stdout.strip() == str(root / SITE / "bandix/daemon.pyc")
    pin_dir = Path("/sys/fs/bpf") / f"bandix-test-pkg-{time.monotonic_ns()}"
    with VirtualRouter() as vr:
        vr.wait_quiet()
        daemon = PackagedBandix(vr.router, args, pin_dir, root, config_dir)
        daemon.start()
        try:
            c1 = vr.clients[0]
            settle(daemon)
            before, link_before = counters(daemon), c1.ns.link_stats("eth0")
            c1.ns.run(["ping", "-c", "5", "-i", "0.05", "-s", "1000", vr.SERVER_V4])
            settle(daemon)
            after, link_after = counters(daemon), c1.ns.link_stats("eth0")
            truth = l3_truth(c1, link_before, link_after)
            assert truth["tx"].packets >= 5
            for direction in ("rx", "tx"):  # exact, against the client's own interface counters
                assert delta(after, before, (c1.mac, "wan", direction)) == truth[direction], direction
                assert delta(after, before, (c1.mac, "lan", direction)) == Flow(0, 0), direction
            # Every module of the default file is on.
            assert daemon.get("/api/dns/config")[1]["data"]["enabled"] is True
            assert daemon.get("/api/connection/devices")[0] == 200
            assert daemon.get("/api/flows/top?by=ip")[0] == 200
            # Status → Bandix: LuCI's call through uhttpd and rpcd (which read the packaged plugin and
            # ACL when they start) to the packaged plugin, ubus_rpc_session added, the POST chunked.
            rpcd = Rpcd(root, LOGINS, lambda path, argv, stdin: subprocess.run(
                ["nsenter", f"--net={NETNS_DIR / vr.router.name}", str(path), *argv], input=stdin,
                capture_output=True, text=True, timeout=30, env=plugin_env(config_dir)))
            answer = uhttpd_ubus(rpcd, {"jsonrpc": "2.0", "id": 1, "method": "call",
                                        "params": [rpcd.login("root"), "luci.bandix", "devices", {}]})
            assert answer["result"][0] == 0, answer
            reply = answer["result"][1]
            assert reply["status"] == "success", reply
            rows = {r[0]: dict(zip(reply["data"]["device_fields"], r, strict=True)) for r in reply["data"]["devices"]}
            assert rows[c1.mac]["ip"] == c1.ipv4
            # Over SSH: the packaged `bandix top` finds the daemon from the shipped UCI file.
            top = subprocess.run(["nsenter", f"--net={NETNS_DIR / vr.router.name}", sys.executable,
                                  str(root / "usr/sbin/bandix"), "top", "--once", "--config-dir", str(config_dir)],
                                 env={"PYTHONPATH": str(root / SITE), "PATH": "/usr/bin:/bin"}, cwd=tmp_path,
                                 capture_output=True, text=True, timeout=30)
            assert top.returncode == 0 and top.stderr == "", top
            assert top.stdout.startswith("bandix top  http://127.0.0.1:8686/")
            assert any(line.split()[1:3] == [c1.ipv4, c1.mac] for line in top.stdout.splitlines()), top.stdout
        finally:
            daemon.stop()
            remove_state(pin_dir)
    assert daemon.proc.returncode == 0, daemon.log()
