"""Rate limits enforced in the kernel, measured with iperf3 TCP on the virtual router.

Goodput is iperf3's receiver figure after the first second is omitted (-O 1,
TCP's slow start and the bucket's initial burst). TCP hands the kernel 64 KB
GSO packets, and the limiter passes or drops them whole: at 1 Mbit/s each one
is half a second of traffic, so that limit is measured over 8 seconds to keep
the window's edges from moving the figure by more than a few percent.
"""

import ctypes
import json
import signal
import struct
import subprocess
import time

import pytest

from bandix.bpf import layout
from bandix.bpf.limits import read_limits
from bandix.bpf.maps import open_pinned
from tests.traffic import iperf3

ALL_WEEK = {"start": "00:00", "end": "24:00", "days": [1, 2, 3, 4, 5, 6, 7]}
MBIT = 125_000  # bytes/s


def limit_rule(mac: str, rate: int, slot: dict = ALL_WEEK) -> dict:
    return {"mac": mac, "time_slot": slot, "wan_rx_rate_limit": rate, "wan_tx_rate_limit": rate}


def goodput(vrouter, client, *args: str, seconds: int = 4) -> float:
    """TCP goodput in bytes/s from `client` to the internet server (-R: from it)."""
    report = iperf3(client, vrouter.internet, vrouter.SERVER_V4, "-t", str(seconds), "-O", "1", *args)
    return report["end"]["sum_received"]["bits_per_second"] / 8


def kernel_limits(pin_dir) -> dict[str, tuple[int, int]]:
    m = open_pinned(str(pin_dir / layout.MAP_LIMITS), "limits", 8, ctypes.sizeof(layout.Limit))
    try:
        return {mac.hex(":"): rates for mac, rates in read_limits(m).items()}
    finally:
        m.close()


@pytest.fixture(scope="module")
def measured():
    """Goodput per (limit, direction), filled by the measurement test for the report."""
    return {}


def test_limits_hold_tcp_goodput_leave_lan_alone_and_survive_a_restart(vrouter, bandix, tmp_pin_dir, measured,
                                                                        capsys):
    c1, c2 = vrouter.clients[0], vrouter.clients[1]
    daemon = bandix()
    solo = goodput(vrouter, c2, seconds=2)  # the other device, alone and unlimited
    for mbit in (1, 10, 50):
        rate = mbit * MBIT
        posted = time.monotonic()
        assert daemon.send("POST", "/api/traffic/limits/schedule", limit_rule(c1.mac, rate))[0] == 200
        assert kernel_limits(tmp_pin_dir) == {c1.mac: (rate, rate)}
        assert time.monotonic() - posted < 2  # in force before the request returns
        for direction, args in (("upload", ()), ("download", ("-R",))):
            if mbit == 10 and direction == "upload":
                # Meanwhile the unlimited device runs at full speed.
                vrouter.internet.popen(["iperf3", "-s", "-1", "-p", "5400", "-B", vrouter.SERVER_V4],
                                       stdout=subprocess.DEVNULL)
                vrouter.internet.wait_listening(5400)
                other = c2.ns.popen(["iperf3", "-c", vrouter.SERVER_V4, "-p", "5400", "-t", "3", "-O", "1", "-J"],
                                    stdout=subprocess.PIPE)
            got = goodput(vrouter, c1, *args, seconds=8 if mbit == 1 else 3)
            measured[(mbit, direction)] = got / rate
            assert 0.85 * rate <= got <= 1.05 * rate, (mbit, direction, got / rate)
            if mbit == 10 and direction == "upload":
                out, _ = other.communicate(timeout=30)
                concurrent = json.loads(out)["end"]["sum_received"]["bits_per_second"] / 8
                assert concurrent > 0.6 * solo and concurrent > 20 * rate, (concurrent, solo)
    devices = daemon.devices()
    assert (devices[c1.mac]["wan_rx_rate_limit"], devices[c1.mac]["wan_tx_rate_limit"]) == (50 * MBIT, 50 * MBIT)
    assert devices[c2.mac]["wan_rx_rate_limit"] == 0
    # LAN traffic of the limited device is never limited.
    lan = iperf3(c1, vrouter.router, vrouter.bridge_addresses("br-lan")[0], "-t", "1")
    assert lan["end"]["sum_received"]["bits_per_second"] / 8 > 20 * 50 * MBIT
    # The limit lives in UCI: a restarted daemon enforces it again.
    assert daemon.stop(signal.SIGTERM) == 0
    assert f"option mac '{c1.mac}'" in (daemon.config_dir / "bandix").read_text()
    bandix()
    assert kernel_limits(tmp_pin_dir) == {c1.mac: (50 * MBIT, 50 * MBIT)}
    got = goodput(vrouter, c1, seconds=2)
    assert 0.85 * 50 * MBIT <= got <= 1.05 * 50 * MBIT
    with capsys.disabled():
        print("\n  goodput / limit: " + ", ".join(f"{m} Mbit/s {d} {r:.1%}" for (m, d), r in measured.items()))


def test_limit_ends_with_its_slot(vrouter, bandix, tmp_pin_dir):
    """The daemon's clock zone is shifted by whole seconds so its minute ends a few seconds into the test."""
    c1 = vrouter.clients[0]
    shift = (54 - int(time.time()) % 60) % 60  # local seconds-past-the-minute will be 54 now
    daemon = bandix(env={"TZ": f"BDX-0:00:{shift:02d}"})
    local = time.gmtime(time.time() + shift)
    if not 50 <= local.tm_sec <= 57:  # the daemon took too long to start: use the next minute
        time.sleep((54 - local.tm_sec) % 60)
        local = time.gmtime(time.time() + shift)
    minute = local.tm_hour * 60 + local.tm_min
    slot = {"start": f"{minute // 60:02d}:{minute % 60:02d}",
            "end": "24:00" if minute == 1439 else f"{(minute + 1) // 60:02d}:{(minute + 1) % 60:02d}",
            "days": [local.tm_wday + 1]}
    assert daemon.send("POST", "/api/traffic/limits/schedule", limit_rule(c1.mac, 2 * MBIT, slot))[0] == 200
    assert kernel_limits(tmp_pin_dir) == {c1.mac: (2 * MBIT, 2 * MBIT)}
    ends = time.time() + (60 - local.tm_sec)
    time.sleep(max(0.0, ends - time.time()) + 2)  # the slot's end plus the promised 2 s
    assert kernel_limits(tmp_pin_dir) == {}
    assert daemon.get("/api/traffic/limits/schedule")[1]["data"]["limits"]  # the rule itself stays
    assert "lifted" in daemon.log()


def test_test_run_arithmetic_holds_at_10_gbit_after_a_long_idle(tmp_pin_dir):
    """The programs themselves, run by the kernel on a crafted frame (BPF_PROG_TEST_RUN)."""
    from bandix.bpf import loader
    from bandix.bpf.limits import set_count, write_limit
    from bandix.bpf.testrun import run_program

    frame = (bytes.fromhex("02bd01000001") + bytes.fromhex("02bd00000001") + struct.pack("!H", 0x0800)
             + struct.pack("!BBHHHBBH4s4s", 0x45, 0, 1000, 0, 0, 64, 17, 0,
                           bytes([192, 168, 77, 11]), bytes([198, 51, 100, 10])) + bytes(980))
    loaded = loader.load(loader.repo_object(), tmp_pin_dir)
    try:
        fd = loaded.prog_fds[layout.PROG_INGRESS]
        limits, control = loaded.maps[layout.MAP_LIMITS], loaded.maps[layout.MAP_CONTROL]
        mac = bytes.fromhex("02bd00000001")
        set_count(control, 1)
        # 10 Gbit/s, stamp 0: the first refill sees the whole uptime as elapsed time.
        write_limit(limits, mac, 0, 1_250_000_000)
        raw = bytearray(limits.lookup(mac + b"\0\0"))
        struct.pack_into("=Q", raw, layout.Limit.tokens.offset + 8, 0)  # tokens[tx] = 0: the bucket is empty
        limits.update(mac + b"\0\0", bytes(raw), 4)
        assert run_program(fd, frame) == -1  # refilled, not wrapped around: passes (TC_ACT_UNSPEC)
        # 8000 B/s: the 128 KB bucket holds 131 packets of 1000 bytes, then drops.
        write_limit(limits, mac, 0, 8000)
        verdicts = [run_program(fd, frame) for _ in range(140)]
        assert verdicts.count(-1) in (131, 132) and verdicts[-1] == 2  # TC_ACT_SHOT
    finally:
        loaded.close()
