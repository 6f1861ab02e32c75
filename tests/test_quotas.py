"""Quotas, the default limit with its whitelist, and rules edited in place, on the virtual router
with real iperf3 traffic and the real kernel programs.

The daemon's clock is never touched: where a test needs a local-time boundary
soon (a quota's reset hour, a rule's slot) the daemon runs with a POSIX TZ
shifted by whole seconds, as tests/test_limits.py does.
"""

import ctypes
import shutil
import subprocess
import time

from bandix.bpf import layout
from bandix.bpf.limits import read_entries
from bandix.bpf.maps import open_pinned
from tests.test_limits import ALL_WEEK, MBIT, goodput, kernel_limits, limit_rule

QUOTAS = "/api/traffic/quotas"
SCHEDULE = "/api/traffic/limits/schedule"
DEFAULT = "/api/traffic/rate_limit/default"
WHITELIST = "/api/traffic/rate_limit/whitelist"
MB = 1_000_000
LINE_RATE = 40 * MBIT  # iperf3 -b 40M: 5 MB in one second


def quota(mac: str, **kw) -> dict:
    return {"mac": mac, "period": "day", "bytes": 5 * MB, "direction": "both", "action": "block",
            "throttle_rx_rate": 0, "throttle_tx_rate": 0, "reset_day": 1, "reset_hour": 0, **kw}


def kernel_entries(pin_dir) -> dict:
    m = open_pinned(str(pin_dir / layout.MAP_LIMITS), "limits", 8, ctypes.sizeof(layout.Limit))
    try:
        return read_entries(m)
    finally:
        m.close()


def shifted_tz(lead_s: float) -> tuple[str, int]:
    """A TZ whose next local full hour is `lead_s` from now, and that hour (0-23)."""
    target = time.time() + lead_s
    shift = int((3600 - target % 3600) % 3600)
    return f"BDX-0:{shift // 60:02d}:{shift % 60:02d}", time.gmtime(target + shift + 1).tm_hour


def reaches(client, addr: str, port: int, timeout: float = 1.0) -> bool:
    """Whether a TCP connection to addr:port is answered, accepted or refused, within the timeout."""
    done = client.ns.run(["timeout", str(timeout), "bash", "-c", f"echo > /dev/tcp/{addr}/{port}"], check=False)
    return done.returncode != 124  # timeout's code: no answer at all


def test_a_used_up_quota_blocks_wan_not_lan_and_resets_at_its_hour(vrouter, bandix, tmp_pin_dir, capsys):
    c1, c2 = vrouter.clients[0], vrouter.clients[1]
    tz, reset_hour = shifted_tz(40)
    reset_at = time.time() + 40
    daemon = bandix(env={"TZ": tz})
    for c in (c1, c2):  # seen by the daemon before the quota is set
        c.ns.run(["ping", "-c", "1", "-W", "1", vrouter.SERVER_V4])
    daemon.wait_readings(2)
    status, body = daemon.send("POST", QUOTAS, quota(c1.mac, reset_hour=reset_hour))
    assert status == 200 and body["data"]["quota"]["id"]
    dev = daemon.devices()[c1.mac]
    assert (dev["quota_bytes"], dev["quota_used_bytes"], dev["quota_state"]) == (5 * MB, 0, "ok")
    assert daemon.devices()[c2.mac]["quota_state"] == "none"
    wan_before = dev["wan_tx_bytes"]
    both_before = dev["wan_rx_bytes"] + dev["wan_tx_bytes"]
    inet_before = vrouter.internet.link_stats(vrouter.INET_IF)["rx_bytes"]
    # UDP at a known line rate: 5 MB pass in the first second, the rest is dropped.
    server = vrouter.internet.popen(["iperf3", "-s", "-1", "-p", "5301", "-B", vrouter.SERVER_V4],
                                    stdout=subprocess.DEVNULL)
    vrouter.internet.wait_listening(5301)
    started = time.monotonic()
    client = c1.ns.popen(["iperf3", "-c", vrouter.SERVER_V4, "-p", "5301", "-u", "-b", "40M", "-l", "1400",
                          "-t", "4"], stdout=subprocess.DEVNULL)
    passed_at = blocked_at = None
    while time.monotonic() - started < 6 and blocked_at is None:
        dev = daemon.devices()[c1.mac]
        now = time.monotonic()
        if passed_at is None and dev["wan_tx_bytes"] - wan_before >= 5 * MB:
            passed_at = now
        if dev["quota_state"] == "blocked":
            blocked_at = now
        time.sleep(0.1)
    time.sleep(max(0.0, started + 4.5 - time.monotonic()))
    for proc in (client, server):  # blocked, they cannot finish their control exchange over WAN
        proc.kill()
        proc.wait()
    assert blocked_at is not None, daemon.devices()[c1.mac]
    # The kernel refuses the packet that would go over: the API shows it at its next reading.
    assert blocked_at - (passed_at or blocked_at) <= 2.0
    time.sleep(1.2)
    dev = daemon.devices()[c1.mac]
    over = dev["quota_used_bytes"] - 5 * MB
    assert 0 <= over <= LINE_RATE, over
    # Ground truth: what reached the internet side (IP + UDP over Ethernet) is the quota and no more
    # than one second at line rate beyond it.
    arrived = vrouter.internet.link_stats(vrouter.INET_IF)["rx_bytes"] - inet_before
    assert arrived <= 5 * MB * 1.03 + LINE_RATE, arrived
    # Counted as the device counters count: every WAN byte since the quota was set, both ways.
    assert dev["quota_used_bytes"] == dev["wan_rx_bytes"] + dev["wan_tx_bytes"] - both_before
    assert dev["quota_state"] == "blocked"
    with capsys.disabled():
        print(f"\n  5 MB quota at 40 Mbit/s: {over} bytes counted past it, {arrived - 5 * MB} bytes on the wire "
              f"past it (headers included); blocked shown {blocked_at - (passed_at or blocked_at):.2f} s after")
    # WAN is blocked both ways; the router itself (LAN) still answers.
    assert not reaches(c1, vrouter.SERVER_V4, 5301)
    assert reaches(c1, vrouter.bridge_addresses("br-lan")[0], 8686)
    assert reaches(c2, vrouter.SERVER_V4, 5301)
    metrics = daemon.ns.run(["curl", "-s", f"http://127.0.0.1:{daemon.port}/metrics"]).stdout
    assert f'bandix_device_quota_state{{mac="{c1.mac}",state="blocked"}} 1' in metrics
    assert f'bandix_device_quota_bytes{{mac="{c1.mac}"}} {5 * MB}' in metrics
    assert f'bandix_device_quota_used_bytes{{mac="{c1.mac}"}} {dev["quota_used_bytes"]}' in metrics
    # A restart (pins kept) keeps the count and the block.
    assert daemon.stop() == 0
    daemon = bandix(env={"TZ": tz})
    assert daemon.devices()[c1.mac]["quota_state"] == "blocked"
    assert not reaches(c1, vrouter.SERVER_V4, 5301)
    # The period ends at the reset hour, local time: unblocked within the promised 2 s.
    time.sleep(max(0.0, reset_at - time.time()) + 2)
    dev = daemon.devices()[c1.mac]
    assert (dev["quota_state"], dev["quota_used_bytes"]) == ("ok", 0), dev
    assert reaches(c1, vrouter.SERVER_V4, 5301)


def test_throttle_holds_the_given_rate_once_used_up(vrouter, bandix, tmp_pin_dir, capsys):
    c1 = vrouter.clients[0]
    daemon = bandix()
    body = quota(c1.mac, bytes=1 * MB, action="throttle", throttle_rx_rate=2 * MBIT, throttle_tx_rate=2 * MBIT)
    assert daemon.send("POST", QUOTAS, body)[0] == 200
    got = goodput(vrouter, c1, seconds=4)  # the first second (-O 1) uses the megabyte up
    assert 0.85 * 2 * MBIT <= got <= 1.05 * 2 * MBIT, got / (2 * MBIT)
    assert daemon.devices()[c1.mac]["quota_state"] == "throttled"
    down = goodput(vrouter, c1, "-R", seconds=4)
    assert 0.85 * 2 * MBIT <= down <= 1.05 * 2 * MBIT, down / (2 * MBIT)
    with capsys.disabled():
        print(f"\n  throttled to 2 Mbit/s: upload {got / (2 * MBIT):.1%}, download {down / (2 * MBIT):.1%}")


def renumber(vrouter, client, mac: str) -> None:
    """Give a client a MAC the router has never seen: a new device."""
    client.ns.ip("link", "set", client.ifname, "address", mac)
    vrouter.router.ip_batch([f"neigh replace {a} lladdr {mac} dev {client.bridge} nud permanent"
                             for a in (client.ipv4, client.ipv6)])
    vrouter.router.run(["bridge", "fdb", "replace", mac, "dev", client.port, "master", "static"])
    client.mac = mac


def test_default_limit_holds_except_for_the_whitelist_and_from_a_new_devices_first_packet(
        vrouter, bandix, tmp_pin_dir):
    c1, c2, c3 = vrouter.clients
    daemon = bandix()
    rate = 10 * MBIT
    assert daemon.send("POST", DEFAULT, {"wan_rx_rate_limit": rate, "wan_tx_rate_limit": rate})[0] == 200
    assert daemon.send("POST", WHITELIST, {"mac": c2.mac})[0] == 200
    status, body = daemon.send("POST", WHITELIST + "/enabled", {"enabled": True})
    assert status == 200 and body["data"] == {"enabled": True, "macs": [c2.mac]}
    entries = kernel_entries(tmp_pin_dir)
    assert entries[layout.DEFAULT_KEY][0].rate == (rate, rate)
    assert entries[bytes.fromhex(c2.mac.replace(":", "")) + b"\0\0"][0].rate == (0, 0)  # exempt
    got = goodput(vrouter, c1)
    assert 0.85 * rate <= got <= 1.05 * rate, got / rate
    assert daemon.devices()[c1.mac]["wan_tx_rate_limit"] == rate
    assert goodput(vrouter, c2, seconds=2) > 5 * rate  # on the whitelist
    # A device the router has never seen is limited from its first packet, before any reading.
    new_mac = "02:bd:00:00:0f:01"
    renumber(vrouter, c3, new_mac)
    got = goodput(vrouter, c3, "-R")
    assert 0.85 * rate <= got <= 1.05 * rate, got / rate
    copy = kernel_entries(tmp_pin_dir)[bytes.fromhex(new_mac.replace(":", "")) + b"\0\0"][0]
    assert copy.copy and copy.rate == (rate, rate)
    # Where a schedule applies too, the lower non-zero limit wins.
    assert daemon.send("POST", SCHEDULE, limit_rule(c1.mac, 2 * MBIT))[0] == 200
    assert daemon.send("POST", SCHEDULE, limit_rule(c3.mac, 50 * MBIT))[0] == 200
    limits = kernel_limits(tmp_pin_dir)
    assert limits[c1.mac] == (2 * MBIT, 2 * MBIT) and limits[c3.mac] == (rate, rate)
    # Off: nobody is held to the default any more.
    assert daemon.send("POST", WHITELIST + "/enabled", {"enabled": False})[0] == 200
    assert layout.DEFAULT_KEY not in kernel_entries(tmp_pin_dir)
    assert goodput(vrouter, c3, seconds=2) > 3 * rate  # its own rule of 50 Mbit/s alone


def test_put_changes_a_rule_in_place(vrouter, bandix, tmp_pin_dir):
    c1 = vrouter.clients[0]
    daemon = bandix()
    status, body = daemon.send("POST", SCHEDULE, limit_rule(c1.mac, 2 * MBIT))
    assert status == 200
    rule = body["data"]["limit"]
    assert rule["id"] and kernel_limits(tmp_pin_dir) == {c1.mac: (2 * MBIT, 2 * MBIT)}
    today = time.localtime().tm_wday + 1
    elsewhere = {"start": "00:00", "end": "24:00", "days": [today % 7 + 1]}  # tomorrow only
    status, body = daemon.send("PUT", SCHEDULE, {**limit_rule(c1.mac, 2 * MBIT, elsewhere), "id": rule["id"]})
    assert status == 200 and body["data"]["limit"]["id"] == rule["id"]
    assert kernel_limits(tmp_pin_dir) == {}  # the old slot stops at once
    assert [r["id"] for r in daemon.get(SCHEDULE)[1]["data"]["limits"]] == [rule["id"]]
    assert goodput(vrouter, c1, seconds=2) > 10 * 2 * MBIT
    status, _ = daemon.send("PUT", SCHEDULE, {**limit_rule(c1.mac, 5 * MBIT, ALL_WEEK), "id": rule["id"]})
    assert status == 200 and kernel_limits(tmp_pin_dir) == {c1.mac: (5 * MBIT, 5 * MBIT)}
    got = goodput(vrouter, c1, seconds=3)  # the new one holds
    assert 0.85 * 5 * MBIT <= got <= 1.05 * 5 * MBIT, got / (5 * MBIT)
    assert daemon.get(SCHEDULE)[1]["data"]["limits"] == [{**limit_rule(c1.mac, 5 * MBIT), "id": rule["id"]}]
    assert daemon.send("PUT", SCHEDULE, {**limit_rule(c1.mac, MBIT), "id": "nosuchrule"})[0] == 404
    status, body = daemon.send("DELETE", SCHEDULE, {"id": rule["id"]})
    assert (status, body["data"]) == (200, {"deleted": {"id": rule["id"]}})
    assert kernel_limits(tmp_pin_dir) == {} and daemon.get(SCHEDULE)[1]["data"]["limits"] == []


def test_quota_counts_survive_a_reboot_with_persistence(vrouter, bandix, tmp_pin_dir, tmp_path):
    c1, c2 = vrouter.clients[0], vrouter.clients[1]
    args = ("--traffic-persist-history", "--data-dir", str(tmp_path), "--traffic-flush-interval-seconds", "600")
    daemon = bandix(*args)
    assert daemon.send("POST", QUOTAS, quota(c1.mac, bytes=1 * MB))[0] == 200
    assert daemon.send("POST", QUOTAS, quota("*", bytes=500 * MB))[0] == 200  # c2 falls under the default
    server = vrouter.internet.popen(["iperf3", "-s", "-p", "5302", "-B", vrouter.SERVER_V4], stdout=subprocess.DEVNULL)
    try:
        vrouter.internet.wait_listening(5302)
        for c in (c2, c1):  # c1 last: its quota blocks the iperf3 control connection, which then hangs
            client = c.ns.popen(["iperf3", "-c", vrouter.SERVER_V4, "-p", "5302", "-u", "-b", "16M", "-t", "1"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                client.wait(5)
            except subprocess.TimeoutExpired:
                client.kill()
                client.wait()
    finally:
        server.kill()
        server.wait()
    daemon.wait_readings(2)
    before = daemon.devices()
    assert before[c1.mac]["quota_state"] == "blocked" and before[c2.mac]["quota_used_bytes"] > 1 * MB
    assert daemon.stop() == 0
    saved = (tmp_path / "quota_usage.json").read_text()
    assert c1.mac in saved and c2.mac in saved
    shutil.rmtree(tmp_pin_dir)  # a reboot: the pinned map with the counts is gone
    daemon = bandix(*args)
    assert "quota count of" in daemon.log()
    after = daemon.devices()
    for c in (c1, c2):
        assert after[c.mac]["quota_used_bytes"] == before[c.mac]["quota_used_bytes"], c.name
        assert after[c.mac]["quota_state"] == before[c.mac]["quota_state"], c.name
    assert not reaches(c1, vrouter.SERVER_V4, 5302)  # still blocked, before any packet of it was seen
    assert reaches(c2, vrouter.SERVER_V4, 5302)


def test_test_run_counts_the_quota_exactly_copies_the_default_and_blocks(tmp_pin_dir):
    """The programs themselves on crafted frames (BPF_PROG_TEST_RUN): no daemon, no clock."""
    import struct

    from bandix.bpf import loader
    from bandix.bpf.limits import Policy, read_entry, set_count, write_policy
    from bandix.bpf.testrun import run_program

    def frame(src: str) -> bytes:  # 1000 L3 bytes of UDP from a device to the internet
        return (bytes.fromhex("02bd01000001") + bytes.fromhex(src) + struct.pack("!H", 0x0800)
                + struct.pack("!BBHHHBBH4s4s", 0x45, 0, 1000, 0, 0, 64, 17, 0,
                              bytes([192, 168, 77, 11]), bytes([198, 51, 100, 10])) + bytes(980))

    loaded = loader.load(loader.repo_object(), tmp_pin_dir)
    try:
        fd = loaded.prog_fds[layout.PROG_INGRESS]
        limits, control = loaded.maps[layout.MAP_LIMITS], loaded.maps[layout.MAP_CONTROL]
        own, new = "02bd00000001", "02bd00000002"
        set_count(control, 2)
        # Its own quota: 10 packets' worth upload; then dropped.
        write_policy(limits, bytes.fromhex(own) + b"\0\0", Policy(quota_bytes=10_000, quota_flags=layout.QUOTA_TX
                                                                   | layout.QUOTA_BLOCK))
        verdicts = [run_program(fd, frame(own)) for _ in range(12)]
        assert verdicts == [-1] * 10 + [2, 2]  # TC_ACT_UNSPEC, then TC_ACT_SHOT
        assert read_entry(limits, bytes.fromhex(own) + b"\0\0")[1] == 10_000
        # A device without an entry takes a copy of the default at its first packet.
        default = Policy(quota_bytes=2_500, quota_flags=layout.QUOTA_RX | layout.QUOTA_TX | layout.QUOTA_BLOCK,
                         period_start=1234)
        write_policy(limits, layout.DEFAULT_KEY, default)
        assert [run_program(fd, frame(new)) for _ in range(4)] == [-1, -1, -1, 2]  # 1000 + 1000 + 1000 >= 2500
        policy, used = read_entry(limits, bytes.fromhex(new) + b"\0\0")
        assert policy == Policy(quota_bytes=2_500, quota_flags=default.quota_flags, period_start=1234, copy=True)
        assert used == 3_000 and read_entry(limits, layout.DEFAULT_KEY)[1] == 0
    finally:
        loaded.close()
