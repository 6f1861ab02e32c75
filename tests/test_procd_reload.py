"""files/bandix.init under the procd model (tests/procd.py) with a real daemon on the virtual router:
a UCI edit, then `reload_config`, reaches bandix as a router owner expects.

- limits, bindings, the log level (what bandix applies on SIGHUP): the same process has
  them within 5 s;
- the port, the interfaces (what it fixes at start-up): procd restarts it, the new
  process answers on the new port / counts on the new bridge.

Stand-ins: procd, rc.common, procd.sh and reload_config are tests/procd.py's model;
/lib/functions.sh is tests/test_initscript.py's; logd is a datagram socket of this test
(bandix's --syslog) and `logger` a file.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bandix import uci
from tests.bandixd import NETNS_DIR, ROOT, http_get, remove_state
from tests.procd import Procd
from tests.test_initscript import EXPORT, FUNCTIONS
from tests.vrouter import VirtualRouter

INIT = ROOT / "files" / "bandix.init"
LAUNCHER = ROOT / "files" / "bandix.launcher"
# As installed: uci-defaults has made the API token (else the daemon's first start writes one, and
# the first reload_config after it sees bandix changed).
BASE = """config bandix 'config'
	option api_token '0123456789abcdef0123456789abcdef'
	list iface 'br-lan'
	option port '8686'
	option listen '127.0.0.1'
	option data_dir '/tmp/bandix'
	option log_level 'info'
	option traffic_enabled '1'
"""


def uci_show(path: Path) -> str:
    """`uci show NAME` for reload_config's checksum: the parsed content, not the file's bytes."""
    lines = []
    for s in uci.load(path).sections:
        lines.append(f"{path.name}.{s.name}={s.type}")
        lines += [f"{path.name}.{s.name}.{o}={s.get_list(o)}" for o in s.options()]
    return "\n".join(lines)


class Router:
    """The router's filesystem, procd and logd for one test."""

    def __init__(self, vr: VirtualRouter, tmp: Path) -> None:
        self.vr, self.tmp = vr, tmp
        self.root = tmp / "root"
        self.config = self.root / "etc/config"
        self.config.mkdir(parents=True)
        (self.root / "etc/init.d").mkdir(parents=True)
        shutil.copy(INIT, self.root / "etc/init.d/bandix")
        (self.root / "lib/upgrade/keep.d").mkdir(parents=True)
        (self.config / "network").write_text("config interface 'lan'\n\toption device 'br-lan'\n")
        self.data = tmp / "data"
        self.pin_dir = Path("/sys/fs/bpf") / f"bandix-test-procd-{time.monotonic_ns()}"
        self.log_socket = tmp / "log"
        self.logd = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.logd.bind(str(self.log_socket))
        self.logd.settimeout(0.2)
        self.messages: list[bytes] = []  # what logd received, drained as logd does (a full queue blocks senders)
        self._logd = threading.Thread(target=self._drain, daemon=True)
        self._logd.start()
        standin = tmp / "standin"
        (standin / "bin").mkdir(parents=True)
        (standin / "functions.sh").write_text(FUNCTIONS)
        (standin / "export.py").write_text(EXPORT)
        logger = standin / "bin/logger"
        logger.write_text(f'#!/bin/sh\necho "$*" >> {tmp / "logger.txt"}\n')
        logger.chmod(0o755)
        env = {"PATH": f"{standin / 'bin'}:/usr/sbin:/usr/bin:/sbin:/bin", "PYTHON": sys.executable,
               "EXPORT_PY": str(standin / "export.py"), "REPO": str(ROOT), "UCI_CONFIG_DIR": str(self.config),
               "IPKG_INSTROOT": str(self.root), "FUNCTIONS_SH": str(standin / "functions.sh")}
        self.procd = Procd(self.spawn, self.root, standin, env)

    def spawn(self, command: list[str]) -> subprocess.Popen:
        """procd's fork+exec of the instance command, with the router's paths mapped here."""
        assert command[0] == "/usr/sbin/bandix", command
        paths = {"/etc/config": str(self.config), "/tmp/bandix": str(self.data), "/dev/log": str(self.log_socket)}
        args = [paths.get(a, a) for a in command[1:]]
        if "--syslog" in args:
            args.insert(args.index("--syslog") + 1, str(self.log_socket))
        log = open(self.tmp / "daemon.log", "ab")
        return subprocess.Popen(["nsenter", f"--net={NETNS_DIR / self.vr.router.name}", sys.executable, str(LAUNCHER),
                                 *args, "--pin-dir", str(self.pin_dir)], cwd=ROOT, stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})

    def write(self, text: str) -> None:
        (self.config / "bandix").write_text(text)

    def answers(self, port: int) -> bool:
        try:
            return http_get(self.vr.router, "/api/traffic/devices", port)[0] == 200
        except OSError:
            return False

    def get(self, path: str, port: int = 8686):
        import json
        status, _, body = http_get(self.vr.router, path, port)
        return status, json.loads(body)

    def wait(self, predicate, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} not within {timeout} s; procd: {self.procd.status()}\n"
                                     + (self.tmp / "daemon.log").read_text(errors="replace")[-3000:]
                                     + "\n".join(m.decode(errors="replace") for m in self.syslog()[-30:]))
            time.sleep(0.1)

    def _drain(self) -> None:
        while self.logd.fileno() >= 0:
            try:
                self.messages.append(self.logd.recv(65536))
            except TimeoutError:
                continue
            except OSError:
                return

    def wait_applied(self, mac: str, hostname: str, since: float) -> list[bytes]:
        """Within 5 s of `since`: the daemon has a limit, the name of mac and logs at debug; the log lines."""
        def applied() -> bool:
            limits = self.get("/api/traffic/limits/schedule")[1]["data"]["limits"]
            names = self.get("/api/traffic/bindings")[1]["data"]["bindings"]
            return bool(limits) and {"mac": mac, "hostname": hostname} in names
        self.wait(applied, 5 - (time.monotonic() - since), "the limit and the name")
        logs: list[bytes] = []
        self.wait(lambda: logs.extend(self.syslog()) or any(b"log level debug" in m for m in logs),
                  max(0.0, 5 - (time.monotonic() - since)), "the debug level")
        return logs

    def syslog(self) -> list[bytes]:
        """The messages received since the last call."""
        out, self.messages[:] = list(self.messages), []
        return out

    def close(self) -> None:
        self.procd.ubus("delete", {"name": "bandix"})
        inst_wait = time.monotonic() + 15
        while time.monotonic() < inst_wait and any(
                i.running for s in self.procd.services.values() for i in s["instances"].values()):
            time.sleep(0.1)
        self.logd.close()
        remove_state(self.pin_dir)


@pytest.fixture
def router(tmp_path):
    with VirtualRouter() as vr:
        vr.wait_quiet()
        r = Router(vr, tmp_path)
        try:
            r.write(BASE)
            r.procd.reload_config(r.config, uci_show)  # boot: the checksums of every config
            done = r.procd.init(r.root / "etc/init.d/bandix", "start")
            assert done.returncode == 0, done.stderr
            r.wait(lambda: r.answers(8686), 20, "bandix answering on 8686")
            yield r
        finally:
            r.close()


def test_limit_name_and_log_level_reach_the_running_daemon_within_5_s(router):
    """LuCI's Save & Apply or `uci commit; reload_config`: SIGHUP, the same process."""
    mac = "02:bd:00:00:00:42"
    first = router.procd.instance("bandix")
    pid = first.proc.pid
    assert router.get("/api/traffic/limits/schedule")[1]["data"]["limits"] == []
    router.syslog()
    router.write(BASE.replace("option log_level 'info'", "option log_level 'debug'") + f"""
config limit
	option mac '{mac}'
	list days '1'
	list days '2'
	option start '08:00'
	option end '20:00'
	option wan_rx_rate_limit '125000'
	option wan_tx_rate_limit '0'

config binding
	option mac '{mac}'
	option hostname 'Living room TV'
""")
    started = time.monotonic()
    assert router.procd.reload_config(router.config, uci_show) == ["bandix"]
    logs = router.wait_applied(mac, "Living room TV", started)
    limits = router.get("/api/traffic/limits/schedule")[1]["data"]["limits"]
    assert [rule.pop("id").startswith("cfg") for rule in limits] == [True]  # uci's name of an anonymous section
    assert limits == [{
        "mac": mac, "time_slot": {"start": "08:00", "end": "20:00", "days": [1, 2]},
        "wan_rx_rate_limit": 125000, "wan_tx_rate_limit": 0}]
    debug = [m for m in logs if b"log level debug" in m][0]
    assert debug == f"<31>bandix[{pid}]: bandix: log level debug".encode()  # daemon.debug, no timestamp
    assert first.proc.pid == pid and first.running and first.started == [pid]  # no restart
    assert not [m for m in logs if b"pyroute2" in m]


def test_port_and_interface_changes_restart_it(router):
    """Options bandix fixes at start-up: procd restarts it, and the new process has them."""
    first = router.procd.instance("bandix")
    pid = first.proc.pid
    router.write(BASE.replace("option port '8686'", "option port '8687'"))
    router.procd.reload_config(router.config, uci_show)
    router.wait(lambda: router.answers(8687), 20, "bandix answering on 8687")
    assert not router.answers(8686)
    assert len(first.started) == 2 and first.proc.pid != pid
    # br-guest: a second bridge of the router, then added to the interfaces.
    router.vr.router.ip("link", "add", "br-guest", "type", "bridge")
    router.vr.router.ip("link", "set", "br-guest", "up")
    router.write(BASE.replace("option port '8686'", "option port '8687'")
                 .replace("list iface 'br-lan'\n", "list iface 'br-lan'\n\tlist iface 'br-guest'\n"))
    router.procd.reload_config(router.config, uci_show)
    router.wait(lambda: len(first.started) == 3 and router.answers(8687), 20, "a third process on 8687")
    assert first.config["command"][first.config["command"].index("br-lan") + 1:][:2] == ["--iface", "br-guest"]
    router.wait(lambda: b"attached to br-guest" in (router.tmp / "daemon.log").read_bytes()
                or any(b"attached to br-guest" in m for m in router.syslog()), 10, "attached to br-guest")


def test_no_change_is_no_signal_and_no_restart(router):
    """A commit that changes nothing of bandix (another config) leaves it alone (reload_config's md5)."""
    first = router.procd.instance("bandix")
    (router.config / "network").write_text("config interface 'lan'\n\toption device 'br-lan'\n\toption mtu '1400'\n")
    assert router.procd.reload_config(router.config, uci_show) == ["network"]
    time.sleep(1.5)
    assert first.started == [first.proc.pid] and [m for m, _ in router.procd.ubus_log].count("signal") == 0


def test_debug_logging_is_bandix_only_each_line_with_its_priority_and_no_timestamp(router):
    """log_level debug on OpenWrt: every line comes from bandix's own loggers (pyroute2 stays at
    warning), as `<PRI>bandix[pid]: logger: message` with logd's priorities and no timestamp of its
    own. Prints what 10 s at debug cost the 64 KiB log ring."""
    import re
    router.write(BASE.replace("option log_level 'info'", "option log_level 'debug'"))
    router.syslog()
    router.procd.reload_config(router.config, uci_show)
    router.vr.clients[0].ns.run(["ping", "-c", "20", "-i", "0.2", router.vr.SERVER_V4])  # traffic while we listen
    time.sleep(10 - 4)
    lines = router.syslog()
    pid = router.procd.instance("bandix").proc.pid
    shape = re.compile(rb"<(2[7-9]|3[01])>bandix\[%d\]: bandix(\.[a-z_.]+)?: \S" % pid)
    assert lines and all(shape.match(m) for m in lines), [m for m in lines if not shape.match(m)][:5]
    assert not [m for m in lines if re.search(rb"\d\d:\d\d:\d\d", m[:60])]  # logd adds the only timestamp
    assert any(m.startswith(b"<31>") for m in lines)  # debug lines do reach logd
    print(f"\nat debug: {len(lines)} lines, {sum(map(len, lines))} bytes in 10 s, 0 from other libraries")
