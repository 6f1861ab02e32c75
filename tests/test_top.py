"""`bandix top` against a real daemon on the virtual router.

In a real terminal (tmux: keys sent, the pane read back as text) while iperf3
streams run: the busy devices with the API's rates, re-sorted and filtered by
keys.  On an idle router (counters still, so one reading is the truth):
`--once` and `--json` exactly as the API answers, plain lines when the output
is not a terminal or Python has no curses (OpenWrt without python3-ncurses).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bandix.cli.top import FIELDS, View, daemon_url, resolve, snapshot, table
from tests.bandixd import ROOT, SHOTS, Bandix, busy_router
from tests.test_limits import limit_rule
from tests.vrouter import NETNS_DIR, VirtualRouter

URL = "http://127.0.0.1:8686/"
UDP_LEN = 1448  # iperf3's UDP payload on a 1500-byte MTU
C1_BITS, C2_BITS = 8_000_000, 2_000_000  # iperf3 -b: payload bits per second
RATE_BOUND = 0.10  # the pane against the API read right after it; both against what iperf3 sends
HEADER = ("NAME             IP              MAC                 DOWN/sv      UP/s       RX       TX     LIMIT dn/up"
          "         QUOTA    ONLINE")


def l3_rate(bits: int) -> float:
    """Bytes per second at L3 of an iperf3 UDP stream: payload plus UDP and IPv4 headers."""
    return bits / 8 * (UDP_LEN + 28) / UDP_LEN


def top_command(ns: str, *args: str) -> list[str]:
    return ["nsenter", f"--net={NETNS_DIR / ns}", sys.executable, "-m", "bandix", "top", *args]


def run_top(ns: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(top_command(ns, *args), cwd=ROOT, capture_output=True, text=True, timeout=30)


def size(text: str) -> float:
    """A cell's bytes: 512B, 1.5K, 12.3M."""
    m = re.fullmatch(r"([0-9.]+)([BKMGT])", text)
    assert m, text
    return float(m.group(1)) * 1024 ** "BKMGT".index(m.group(2))


def compact(n: int) -> str:
    """What the table must show for n bytes (K = 1024, one decimal)."""
    for k, unit in enumerate("KMGT", start=1):
        if n < 1024 ** (k + 1):
            return f"{n}B" if n < 1024 else f"{n / 1024 ** k:.1f}{unit}"
    raise AssertionError(n)


class Tmux:
    """A private tmux server (its own socket) with one 160x40 window; killed at the end."""

    def __init__(self, command: list[str]) -> None:
        self.socket = f"bandix-top-{os.getpid()}-{time.monotonic_ns()}"
        shell = " ".join(shlex.quote(a) for a in command)
        # The exit status stays on the pane for the test to read.
        self._tmux("new-session", "-d", "-x", "160", "-y", "40", "-s", "top", "-c", str(ROOT),
                   f"{shell}; echo EXITED $?; sleep 30")

    def _tmux(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=10,
                              check=True)

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", "top", *keys)

    def pane(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "top").stdout

    def wait(self, predicate, timeout: float = 10.0) -> str:
        """The pane once it matches and is whole: curses may be half way through a redraw."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.pane()
            if predicate(text) and ("bandix top" not in text or "ONLINE" in text and "all (" in text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"pane never matched:\n{text}")
            time.sleep(0.1)

    def close(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self._tmux("kill-server")


def rows(pane: str, macs: list[str]) -> list[list[str]]:
    """The table rows of the pane, in screen order, as whitespace-split cells (NAME is '-' here)."""
    return [line.split() for line in pane.splitlines() if any(m in line for m in macs)]


@pytest.fixture(scope="module")
def busy():
    """c1 and c2 download UDP streams of 8 and 2 Mbit/s for as long as the module runs, c3 pings."""
    pin_dir = Path("/sys/fs/bpf") / f"bandix-test-top-{time.monotonic_ns()}"
    with VirtualRouter() as vr:
        vr.wait_quiet()
        daemon = Bandix(vr.router, ["--iface", "br-lan", "--enable-traffic"], pin_dir).start()
        try:
            c1, c2, c3 = vr.clients
            assert daemon.send("POST", "/api/traffic/limits/schedule", limit_rule(c3.mac, 625_000))[0] == 200
            for port in (5201, 5202):
                vr.internet.popen(["iperf3", "-s", "-p", str(port), "-B", vr.SERVER_V4], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
                vr.internet.wait_listening(port)
            for c, port, bits in ((c1, 5201, C1_BITS), (c2, 5202, C2_BITS)):
                c.ns.popen(["iperf3", "-c", vr.SERVER_V4, "-p", str(port), "-R", "-u", "-b", str(bits),
                            "-l", str(UDP_LEN), "-t", "300"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            c3.ns.popen(["ping", "-i", "0.2", vr.SERVER_V4], stdout=subprocess.DEVNULL)
            daemon.wait_readings(3)
            yield vr, daemon
        finally:
            daemon.stop()
            from tests.bandixd import remove_state
            remove_state(pin_dir)


def test_top_in_a_terminal_shows_the_api_rates_and_sorts_and_filters_by_key(busy):
    vr, daemon = busy
    c1, c2, c3 = vr.clients
    macs = [c.mac for c in vr.clients]
    term = Tmux(top_command(vr.router.name, "--url", URL))
    try:
        pane = term.wait(lambda t: len(rows(t, macs)) == 3 and "3 of 3 devices" in t)
        api = daemon.devices()
        shown = {r[2]: r for r in rows(pane, macs)}
        # Busiest download first (the default order), with the rates the API has.
        assert [r[2] for r in rows(pane, macs)] == [c1.mac, c2.mac, c3.mac], pane
        for c, bits in ((c1, C1_BITS), (c2, C2_BITS)):
            down = size(shown[c.mac][3])
            assert abs(down - api[c.mac]["total_rx_rate"]) <= RATE_BOUND * l3_rate(bits), (pane, api[c.mac])
            assert abs(down - l3_rate(bits)) <= RATE_BOUND * l3_rate(bits), (down, l3_rate(bits))
            assert shown[c.mac][1] == c.ipv4
        assert shown[c3.mac][7:8] == ["610.4K/610.4K"], pane  # its schedule rule: 625000 B/s each way
        assert "4:DOWN/sv" in pane and "q quit" in pane
        (SHOTS / "top.txt").write_text(pane)

        # 4 again: smallest download first; 3: by MAC, then the other way.
        for key, order, marker in (("4", [c3, c2, c1], "4:DOWN/s^"), ("3", [c1, c2, c3], "3:MAC^"),
                                   ("3", [c3, c2, c1], "3:MACv")):
            term.keys(key)
            pane = term.wait(lambda t, m=marker: m in t)
            assert [r[2] for r in rows(pane, macs)] == [c.mac for c in order], (key, pane)
        # / types a filter that narrows as typed; Enter keeps it, Esc clears it.
        term.keys("/", c2.ipv4, "Enter")
        pane = term.wait(lambda t: f"1 of 3 devices  filter '{c2.ipv4}'" in t)
        assert [r[2] for r in rows(pane, macs)] == [c2.mac], pane
        term.keys("/", "Escape")
        pane = term.wait(lambda t: "3 of 3 devices" in t and "filter" not in t.splitlines()[0])
        assert len(rows(pane, macs)) == 3
        term.keys("q")
        term.wait(lambda t: "EXITED 0" in t)
    finally:
        term.close()


def test_top_without_curses_in_a_terminal_prints_plain_tables(busy):
    vr, _ = busy
    code = "import sys; sys.modules['curses'] = None; from bandix.cli.main import main; sys.exit(main(sys.argv[1:]))"
    cmd = ["nsenter", f"--net={NETNS_DIR / vr.router.name}", sys.executable, "-c", code,
           "top", "--url", URL, "--count", "2", "--interval", "0.5"]
    term = Tmux(cmd)
    try:
        pane = term.wait(lambda t: "EXITED 0" in t)
        assert "no curses in this Python (opkg install python3-ncurses for keys); plain lines" in pane
        assert pane.count("bandix top  http://127.0.0.1:8686/") == 2 and pane.count("3 of 3 devices") == 2
    finally:
        term.close()


@pytest.fixture(scope="module")
def idle(tmp_path_factory):
    """A router whose clients pinged a little and went quiet: readings no longer change.
    c2 has a quota, c3 a schedule rule, so every column has something to show."""
    with busy_router(["--enable-traffic"]) as (vr, daemon):
        c1, c2, c3 = vr.clients
        quota = {"mac": c2.mac, "period": "day", "bytes": 1_000_000, "direction": "both", "action": "block",
                 "throttle_rx_rate": 0, "throttle_tx_rate": 0, "reset_day": 1, "reset_hour": 0}
        assert daemon.send("POST", "/api/traffic/quotas", quota)[0] == 200
        assert daemon.send("POST", "/api/traffic/limits/schedule", limit_rule(c3.mac, 125_000))[0] == 200
        daemon.wait_readings(2)
        yield vr, daemon


def still(daemon: Bandix) -> list[dict]:
    """The API's device list, once two readings in a row are the same."""
    before = daemon.get("/api/traffic/devices")[1]["data"]["devices"]
    while True:
        daemon.wait_readings(1)
        now = daemon.get("/api/traffic/devices")[1]["data"]["devices"]
        if now == before:
            return now
        before = now


def test_once_is_the_api_answer_as_a_table(idle):
    vr, daemon = idle
    c1, c2, c3 = vr.clients
    api = still(daemon)
    out = run_top(vr.router.name, "--url", URL, "--once")
    assert daemon.get("/api/traffic/devices")[1]["data"]["devices"] == api  # nothing moved meanwhile
    assert out.returncode == 0 and out.stderr == "", out
    lines = out.stdout.split("\n")
    assert re.fullmatch(r"bandix top  http://127\.0\.0\.1:8686/  \d\d:\d\d:\d\d  3 of 3 devices", lines[0])
    assert lines[1] == HEADER
    by_mac = {d["mac"]: d for d in api}
    quota = by_mac[c2.mac]
    assert quota["quota_state"] == "ok"
    expected_rows = []
    for c in sorted(vr.clients, key=lambda c: c.mac):  # every rate 0: ties are by MAC
        d = by_mac[c.mac]
        limit = "122.1K/122.1K" if c is c3 else "-"
        q = f"ok {100 * quota['quota_used_bytes'] // 1_000_000}%" if c is c2 else "-"
        expected_rows.append(f"{'-':<16} {c.ipv4:<15} {c.mac:<17} {'0B':>9} {'0B':>9} "
                             f"{compact(d['total_rx_bytes']):>8} {compact(d['total_tx_bytes']):>8} {limit:>15} "
                             f"{q:>13} {'yes' if d['online'] else 'no':>9}")
    assert lines[2:5] == expected_rows
    rx, tx = sum(d["total_rx_bytes"] for d in api), sum(d["total_tx_bytes"] for d in api)
    assert lines[5] == f"{'all (3)':<16} {'':<15} {'':<17} {'0B':>9} {'0B':>9} {compact(rx):>8} {compact(tx):>8}"
    assert lines[6:] == ["", ""] and "\x1b" not in out.stdout  # not a terminal: no escapes
    # Without --once, into a pipe: the same tables one after the other, plain lines each refresh.
    out = run_top(vr.router.name, "--url", URL, "--count", "2", "--interval", "0.5")
    tables = out.stdout.split("\n\n")
    assert out.returncode == 0 and len(tables) == 3 and tables[2] == "" and "\x1b" not in out.stdout, out
    assert [t.split("\n")[1:] for t in tables[:2]] == [lines[1:6]] * 2


def test_json_is_the_api_answer_sorted_and_filtered(idle):
    vr, daemon = idle
    c1, c2, c3 = vr.clients
    api = still(daemon)
    t0 = time.time() * 1000
    out = run_top(vr.router.name, "--url", URL, "--json")
    assert out.returncode == 0 and out.stderr == "", out
    doc = json.loads(out.stdout)
    assert t0 <= doc.pop("ts_ms") <= time.time() * 1000
    assert doc == {"sort": "down", "reverse": False, "filter": "",
                   "devices": [{k: d[k] for k in FIELDS if k in d} for d in sorted(api, key=lambda d: d["mac"])]}
    assert out.stdout.count("\n") == 1  # one line: once, unless --count
    out = run_top(vr.router.name, "--url", URL, "--json", "--sort", "mac", "--reverse", "--filter", c2.ipv4)
    assert [d["mac"] for d in json.loads(out.stdout)["devices"]] == [c2.mac]
    out = run_top(vr.router.name, "--url", URL, "--json", "--sort", "mac", "--reverse")
    assert [d["mac"] for d in json.loads(out.stdout)["devices"]] == [c3.mac, c2.mac, c1.mac]
    out = run_top(vr.router.name, "--url", URL, "--json", "--count", "2", "--interval", "0.5")
    assert [json.loads(line)["devices"] for line in out.stdout.splitlines()] == [doc["devices"]] * 2


def test_top_finds_the_daemon_from_uci(idle, tmp_path):
    vr, daemon = idle
    (tmp_path / "bandix").write_text("config bandix 'config'\n\toption port '8686'\n\toption listen '0.0.0.0'\n")
    out = run_top(vr.router.name, "--config-dir", str(tmp_path), "--json")
    assert out.returncode == 0, out
    assert [d["mac"] for d in json.loads(out.stdout)["devices"]] == sorted(c.mac for c in vr.clients)
    (tmp_path / "bandix").write_text("config bandix 'config'\n\toption port '8699'\n")
    out = run_top(vr.router.name, "--config-dir", str(tmp_path), "--once")
    assert (out.returncode, out.stdout) == (2, "")
    assert out.stderr == "bandix top: http://127.0.0.1:8699/: [Errno 111] Connection refused\n"


def test_bad_flags_exit_2_with_the_reason(idle):
    vr, _ = idle
    for args, reason in ((["--sort", "speed"], "argument -s/--sort: invalid choice: 'speed'"),
                         (["--interval", "0"], "argument -i/--interval: 0.0 is outside 0.2..3600 seconds"),
                         (["--count", "0"], "argument -n/--count: '0' is not a whole number of at least 1"),
                         (["--port", "70000"], "--port must be 1..65535"),
                         (["--url", "ftp://x/"], "--url 'ftp://x/': give http://HOST:PORT/")):
        out = run_top(vr.router.name, *args)
        assert out.returncode == 2 and out.stdout == "" and reason in out.stderr, (args, out.stderr)
    out = run_top(vr.router.name, "--help")
    assert out.returncode == 0 and "examples:" in out.stdout and "bandix top --once" in out.stdout


def test_daemon_url_follows_uci_and_sends_the_token_off_the_router_only(tmp_path):
    from bandix import cli, config

    assert (cli.top.DEFAULT_CONFIG_DIR, cli.top.UCI_PACKAGE, cli.top.UCI_SECTION) == (
        config.DEFAULT_CONFIG_DIR, config.UCI_PACKAGE, config.UCI_SECTION)
    token = "A" * 32
    cases = {"0.0.0.0": "http://127.0.0.1:8080/", "::": "http://[::1]:8080/",
             "192.168.1.1": "http://192.168.1.1:8080/", "127.0.0.1": "http://127.0.0.1:8080/"}
    for listen, url in cases.items():
        (tmp_path / "bandix").write_text(f"config bandix 'config'\n\toption port '8080'\n\toption listen '{listen}'\n"
                                         f"\toption api_token '{token}'\n")
        assert daemon_url(str(tmp_path)) == (url, token)
        args = type("Args", (), {"config_dir": str(tmp_path), "port": None, "url": None})()
        assert resolve(args) == (url, "" if listen in ("0.0.0.0", "::", "127.0.0.1") else token)
    assert daemon_url(str(tmp_path / "none")) == ("http://127.0.0.1:8686/", "")


def test_view_sorts_every_column_and_filters():
    devs = [{"mac": "02:00:00:00:00:0" + str(i), "ip": ip, "hostname": name, "total_rx_rate": rx, "total_tx_rate": 0,
             "total_rx_bytes": 0, "total_tx_bytes": 0, "wan_rx_rate_limit": 0, "wan_tx_rate_limit": 0,
             "quota_state": "none", "quota_used_bytes": 0, "quota_bytes": 0}
            for i, (ip, name, rx) in enumerate((("192.168.1.10", "Zed", 5), ("192.168.1.9", "amy", 9),
                                                ("fd00::1", "", 1)))]
    view = View()
    assert [d["hostname"] for d in view.rows(devs)] == ["amy", "Zed", ""]
    assert view.key("2") and [d["ip"] for d in view.rows(devs)] == ["192.168.1.9", "192.168.1.10", "fd00::1"]
    assert view.key("1") and [d["hostname"] for d in view.rows(devs)] == ["", "amy", "Zed"]
    assert view.key("1") and view.reverse and [d["hostname"] for d in view.rows(devs)] == ["Zed", "amy", ""]
    assert view.key(">") and (view.sort, view.reverse) == ("ip", False)
    assert not view.key("x")
    devs[0]["wan_rx_rate_limit"], devs[2]["wan_tx_rate_limit"] = 500_000, 125_000
    assert view.key("8") and [d["hostname"] for d in view.rows(devs)] == ["Zed", "", "amy"]  # limited, tightest first
    view.filter = "ZED"
    assert [d["hostname"] for d in view.rows(devs)] == ["Zed"]


def test_online_column_shows_the_field_when_the_daemon_has_it():
    base = {"ip": "", "hostname": "", "total_rx_rate": 0, "total_tx_rate": 0, "total_rx_bytes": 0,
            "total_tx_bytes": 0, "wan_rx_rate_limit": 0, "wan_tx_rate_limit": 0, "quota_state": "none",
            "quota_used_bytes": 0, "quota_bytes": 0}
    devs = [{**base, "mac": "02:00:00:00:00:01", "online": False}, {**base, "mac": "02:00:00:00:00:02", "online": True},
            {**base, "mac": "02:00:00:00:00:03"}]
    view = View(sort="online")
    lines = table(devs, view)
    assert [line.split()[-1] for line in lines[1:4]] == ["yes", "no", "-"]  # without it: blank after QUOTA "-"
    assert json.loads(json.dumps(snapshot(devs, view)))["devices"][0]["online"] is True
