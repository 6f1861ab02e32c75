"""Online state (`online`, `online_since`): a device that leaves turns offline after
offline_timeout and online again, with a new online_since, when it comes back."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from bandix.presence import Presence
from tests.bandixd import Bandix, http_get, remove_state
from tests.traffic import settle
from tests.vrouter import VirtualRouter

TIMEOUT_S = 4


def test_presence_spells():
    sent: dict[str, int] = {"a": 1000}
    confirmed: dict[str, int] = {}
    p = Presence(lambda: dict(sent), lambda: dict(confirmed), timeout_s=10)
    p.tick(2000)
    assert p.state("a") == (True, 1000) and p.state("b") == (False, 0)
    sent["a"] = 9000
    p.tick(10_500)
    assert p.state("a") == (True, 1000)  # still the same spell
    p.tick(19_000)
    assert p.state("a") == (True, 1000)  # 10 s after the last packet: still within the timeout...
    p.tick(19_001)
    assert p.state("a") == (False, 0)  # ...past it: offline
    version = p.version
    confirmed["a"] = 25_000  # the neighbour table confirms it reachable: a new spell
    p.tick(26_000)
    assert p.state("a") == (True, 25_000) and p.version == version + 1
    p.forget("a")
    assert p.state("a") == (False, 0)


def _online_metric(daemon: Bandix) -> dict[str, float]:
    status, _, text = http_get(daemon.ns, "/metrics", daemon.port)
    assert status == 200
    return {s.labels["mac"]: s.value for f in text_string_to_metric_families(text) for s in f.samples
            if s.name == "bandix_device_online"}


def _wait_for(daemon: Bandix, mac: str, online: bool, timeout: float) -> tuple[float, dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dev = daemon.devices()[mac]
        if dev["online"] is online:
            return time.time(), dev
        time.sleep(0.1)
    raise AssertionError(f"{mac} not {'online' if online else 'offline'} within {timeout}s: {dev}")


def test_device_leaves_turns_offline_after_the_timeout_and_comes_back():
    pin_dir = Path("/sys/fs/bpf") / f"bandix-test-{uuid.uuid4().hex[:8]}"
    with VirtualRouter(static_neighbours=False) as vr:
        vr.wait_quiet()
        daemon = Bandix(vr.router, ["--iface", "br-lan", "--enable-traffic", "--offline-timeout", str(TIMEOUT_S)],
                        pin_dir).start()
        try:
            c1, c2 = vr.clients[:2]
            stay = c2.ns.popen(["ping", "-i", "0.5", vr.SERVER_V4])  # c2 stays all along
            busy = c1.ns.popen(["ping", "-i", "0.2", vr.SERVER_V4])
            settle(daemon)
            first = daemon.devices()[c1.mac]
            assert first["online"] is True and 0 < first["online_since"] <= first["last_online_ts"]
            # c1 leaves: its bridge port goes down, and the router's own tries to reach it fail.
            busy.terminate()
            busy.wait()
            left = time.time()
            vr.router.ip("link", "set", c1.port, "down")
            vr.router.run(["ping", "-c", "2", "-i", "0.5", "-W", "1", c1.ipv4], check=False)
            went, dev = _wait_for(daemon, c1.mac, False, TIMEOUT_S + 6)
            # Offline once TIMEOUT_S passed since its last packet (sent at most a reading before it left).
            assert TIMEOUT_S - 1.5 <= went - left <= TIMEOUT_S + 2.5, went - left
            assert dev["online_since"] == 0 and dev["last_online_ts"] > 0
            assert daemon.devices()[c2.mac]["online"] is True
            assert _online_metric(daemon)[c1.mac] == 0 and _online_metric(daemon)[c2.mac] == 1
            deadline = time.monotonic() + 15
            while "FAILED" not in vr.router.run(["ip", "neigh", "show", c1.ipv4]).stdout:
                assert time.monotonic() < deadline, "the router's neighbour entry never failed"
                vr.router.run(["ping", "-c", "1", "-W", "1", c1.ipv4], check=False)
            time.sleep(1.5)
            assert daemon.devices()[c1.mac]["online"] is False  # a FAILED entry confirms nothing
            # It comes back: online again, a new spell.
            vr.router.ip("link", "set", c1.port, "up")
            back = time.time()
            c1.ns.run(["ping", "-c", "3", "-i", "0.2", vr.SERVER_V4])
            _, dev = _wait_for(daemon, c1.mac, True, 5)
            assert back - 0.5 <= dev["online_since"] / 1000 <= time.time()
            assert dev["online_since"] > first["online_since"]
            assert _online_metric(daemon)[c1.mac] == 1
            stay.terminate()
        finally:
            daemon.stop()
            remove_state(pin_dir)
