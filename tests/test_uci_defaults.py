"""files/bandix.defaults, the uci-defaults script opkg runs once at install.

Stand-in: OpenWrt's uci command line is tests/luci/bin/uci (its changes are staged
until `uci commit`, as uci's are); the script runs under this machine's sh with
its hexdump, as busybox's on the router.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from bandix import config, uci

REPO = Path(__file__).resolve().parents[1]
STANDINS = REPO / "tests/luci/bin"


def run_defaults(etc: Path, save: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{STANDINS}:{os.environ['PATH']}", "UCI_CONFIG_DIR": str(etc),
           "UCI_SAVE_DIR": str(save)}
    return subprocess.run(["sh", str(REPO / "files/bandix.defaults")], env=env, capture_output=True, text=True,
                          timeout=30, check=True)


def test_install_makes_a_token_once_and_never_prints_it(tmp_path):
    etc, save = tmp_path / "config", tmp_path / "uci-save"
    etc.mkdir()
    shutil.copy(REPO / "files/bandix.config", etc / "bandix")
    (etc / "network").write_text("config interface 'lan'\n\toption device 'br-lan'\n")
    done = run_defaults(etc, save)
    token = uci.load(etc / "bandix").named("config").get("api_token")
    assert token and re.fullmatch(r"[0-9a-f]{32}", token)
    assert token not in done.stdout + done.stderr
    assert not (save / "bandix").exists()  # committed, nothing left staged
    opts = config.merge({}, uci.load(etc / "bandix"), etc / "bandix")
    assert opts.api_token == token and opts.ifaces == ["br-lan"]
    run_defaults(etc, save)  # a second run (another package upgrade) keeps it
    assert uci.load(etc / "bandix").named("config").get("api_token") == token


def test_the_lan_device_is_still_taken_from_network(tmp_path):
    etc, save = tmp_path / "config", tmp_path / "uci-save"
    etc.mkdir()
    shutil.copy(REPO / "files/bandix.config", etc / "bandix")
    (etc / "network").write_text("config interface 'lan'\n\toption device 'eth0.1'\n")
    run_defaults(etc, save)
    section = uci.load(etc / "bandix").named("config")
    assert section.get_list("iface") == ["eth0.1"] and section.get("api_token")
