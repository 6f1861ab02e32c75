"""`python -m bench`: measure, print ratios with PASS/MISS, exit non-zero only if nothing could be measured.

One VirtualRouter with one client (c1); bandix is the real daemon, so its LAN
prefix table is as in production. Daemon, our tc filters, pin dir, sysctl and
namespaces are cleaned up in finally blocks, on Ctrl-C and SIGTERM too.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

from bench import bpfcost, rate
from bench.connections import conntrack_figures
from bench.dns import dns_figures
from bench.fleet import fleet_figures
from bench.flows import flow_figures
from bench.footprint import footprint_figures
from bench.history import history_figures
from bench.usage import usage_figures
from tests.bandixd import Bandix, config_dir_for, remove_state
from tests.traffic import counters, delta, settle
from tests.vrouter import VirtualRouter

COST_TARGET = 2.0  # bandix ns/run at most this many times the empty program's
RATE_TARGET = 0.97  # packets/s with bandix at least this share of without
SETTLE_S = 0.5  # after a daemon start or stop, so its own start-up/shutdown work is not measured
# --with-limits: the UCI file of the daemon under test (rates far above the link's, a quota never used up)
WITH_LIMITS = """config default_limit 'default_limit'
	option enabled '1'
	option wan_rx_rate_limit '1250000000'
	option wan_tx_rate_limit '1250000000'

config quota 'bench'
	option mac '*'
	option period 'month'
	option bytes '1000000000000000'
"""


class DaemonSwitch:
    """Bandix on (started, filters attached) or off (SIGTERM: filters removed, pins kept).

    Restarting the real daemon is the only off switch that is both complete
    and clean: filters removed by hand would come back with its 5-second
    re-attach check, and SIGUSR2 leaves the programs attached on purpose.
    """

    def __init__(self, vr: VirtualRouter, pin_dir: Path, log_dir: Path) -> None:
        self.vr, self.pin_dir, self.log_dir = vr, pin_dir, log_dir
        self.daemon: Bandix | None = None
        self.cpu_s = self.wall_s = 0.0  # daemon CPU while on, start-up excluded
        self.extra_args: list[str] = []
        self._mark = (0.0, 0.0)

    @staticmethod
    def _cpu(pid: int) -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    def set(self, on: bool, check: bool = True) -> None:
        if on == (self.daemon is not None):
            return
        if on:
            d = Bandix(self.vr.router, ["--iface", "br-lan", "--enable-traffic", *self.extra_args], self.pin_dir,
                       name="bench")
            d.log_path = self.log_dir / f"bandix-{time.monotonic_ns()}.log"  # not under tests/
            self.daemon = d.start()
            self._mark = (self._cpu(d.proc.pid), time.monotonic())
        else:
            d, self.daemon = self.daemon, None
            with contextlib.suppress(OSError):
                self.cpu_s += self._cpu(d.proc.pid) - self._mark[0]
                self.wall_s += time.monotonic() - self._mark[1]
            code = d.stop()
            if code != 0 and check:
                raise RuntimeError(f"bandix exited with {code} on SIGTERM:\n{d.log()}")
        if check:  # "without" must mean no bandix filter at all, "with" both of them
            time.sleep(SETTLE_S)
            found = [prog for _, hook, prog in bpfcost.WINDOWS if prog in bpfcost.hook_programs(self.vr.router, hook)]
            if len(found) != (2 if on else 0):
                raise RuntimeError(f"bandix {'on' if on else 'off'} but its filters on br-lan are {found}")


def mark(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def program_cost(vr: VirtualRouter, switch: DaemonSwitch, seconds: float, windows: int,
                 previous: str) -> list[bpfcost.Cost]:
    """Figure 1: `windows` alternating windows per direction; the window with the median ratio is shown."""
    c1 = vr.clients[0]
    switch.set(True)
    before = counters(switch.daemon)
    bpfcost.attach_empty(vr.router)
    try:
        bpfcost.set_stats(True)
        runs = [[bpfcost.measure(vr.router, d, hook, prog, partial(rate.udp_flood, vr, c1, seconds, d == "download"))
                 for d, hook, prog in bpfcost.WINDOWS] for _ in range(windows)]
    finally:
        bpfcost.set_stats(False)
        bpfcost.detach_empty(vr.router)
    settle(switch.daemon)
    got = {d: delta(counters(switch.daemon), before, (c1.mac, "wan", d)).packets for d in ("tx", "rx")}
    print(f"\n1. TC program cost per run: kernel BPF stats (bpf_stats_enabled was {previous}; on here, off for 2.), "
          f"empty_tc at prio {bpfcost.EMPTY_PRIO} after bandix on the same br-lan hooks; {windows} windows each")
    print(f"   {'direction':9} {'program':15} {'runs':>9} {'bandix ns':>10} {'empty ns':>9} {'extra ns':>9}  "
          "ratio (median window) [all windows]")
    costs = []
    for per_window in zip(*runs, strict=True):
        c = sorted(per_window, key=lambda x: x.ratio)[len(per_window) // 2]
        costs.append(c)
        same = "" if all(abs(x.bandix_runs - x.empty_runs) <= x.empty_runs // 100 for x in per_window) \
            else "  (run counts differ!)"
        print(f"   {c.direction:9} {c.program:15} {c.bandix_runs:9d} {c.bandix_ns:10.1f} {c.empty_ns:9.1f} "
              f"{c.bandix_ns - c.empty_ns:9.1f}  {c.ratio:.2f}x {mark(c.ratio <= COST_TARGET)} "
              f"[{' '.join(f'{x.ratio:.2f}' for x in per_window)}]{same}")
    ran = [sum(x.bandix_runs for x in w) for w in zip(*runs, strict=True)]
    print(f"   bandix counted c1 wan tx {got['tx']} / rx {got['rx']} packets over the section; its programs ran "
          f"{ran[0]} / {ran[1]} times in the windows{'' if got['tx'] else '  WARNING: nothing counted'}")
    return costs


def packet_rate(vr: VirtualRouter, switch: DaemonSwitch, seconds: float, rounds: int,
                costs: list[bpfcost.Cost]) -> None:
    """Figure 2: medians of alternating rounds; each phase runs upload, then download."""
    res = rate.alternate(vr, vr.clients[0], rounds, seconds, switch.set)
    switch.set(False)
    print(f"\n2. Packet rate through the router: received packets/s, median of {rounds} alternating rounds per side")
    for d, cost in zip(("upload", "download"), costs, strict=True):
        runs = {on: " ".join(f"{v / 1e3:.0f}" for v in res.pps[(d, on)]) for on in (False, True)}
        print(f"   {d:8}  without {res.median(d, False) / 1e3:6.1f}k  [{runs[False]}]")
        print(f"   {'':8}  with    {res.median(d, True) / 1e3:6.1f}k  [{runs[True]}]")
        print(f"   {'':8}  ratio   {res.ratio(d):6.1%} ±{res.spread(d):.1%} {mark(res.ratio(d) >= RATE_TARGET)}"
              f"   (pairwise {res.pairwise(d):.1%}; at this rate {cost.program}'s own ns/run from 1. "
              f"= {cost.bandix_ns * res.median(d, False) / 1e9:.1%} of a core)")
    if switch.wall_s:
        print(f"   daemon CPU while on (after start-up): {switch.cpu_s / switch.wall_s:.1%} of one core")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=int, default=3, help="length of one iperf3 run (default 3)")
    p.add_argument("--rounds", type=int, default=8, help="rate rounds per side and direction (default 8)")
    p.add_argument("--windows", type=int, default=3, help="BPF-stats windows per direction (default 3)")
    p.add_argument("--only", type=int, choices=range(1, 10), action="append",
                   help="run only this figure (repeatable): 1 program cost, 2 packet rate, 3 250 devices, "
                        "4 conntrack, 5 DNS, 6 flows, 7 Prometheus scrapes and IPFIX export, 8 usage over a range, "
                        "9 footprint goals")
    p.add_argument("--with-flows", action="store_true",
                   help="figures 1 and 2 with --enable-flows (flow counting and hello capture) on")
    p.add_argument("--with-limits", action="store_true",
                   help="figures 1 and 2 with a default limit (10 Gbit/s) and a default quota (1 PB) on every "
                        "device: each WAN packet takes the policy path (bucket, quota count, spin lock)")
    a = p.parse_args(argv)
    if os.geteuid() != 0:
        print("bench: needs root (network namespaces, eBPF)", file=sys.stderr)
        return 2
    if not bpfcost.EMPTY_OBJ.is_file():
        print(f"bench: {bpfcost.EMPTY_OBJ} missing: run `make bpf`", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # finally blocks run on SIGTERM too
    iperf = subprocess.run(["iperf3", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    print(f"bandix bench: kernel {platform.release()}, {os.cpu_count()} CPUs, {iperf}, load {os.getloadavg()[0]:.2f}")
    print(f"targets: TC program <= {COST_TARGET:.2f}x the empty program's ns/run; "
          f"packet rate with bandix >= {RATE_TARGET:.0%} of without")
    print(f"traffic: c1 <-> {VirtualRouter.SERVER_V4}, iperf3 -u -l {rate.PAYLOAD} -b 0 -t {a.seconds} "
          "(upload; -R for download)")
    pin_dir = Path(f"/sys/fs/bpf/bandix-bench-{os.getpid()}")
    try:
        with (bpfcost.stats_sysctl() as previous, tempfile.TemporaryDirectory(prefix="bandix-bench-") as log_dir,
              VirtualRouter(clients=1) as vr):
            switch = DaemonSwitch(vr, pin_dir, Path(log_dir))
            try:
                vr.wait_quiet()
                only = set(a.only or range(1, 10))
                if a.with_flows:
                    switch.extra_args = ["--enable-flows", "--data-dir", str(Path(log_dir) / "data")]
                if a.with_limits:
                    config = config_dir_for(pin_dir)
                    config.mkdir(parents=True, exist_ok=True)
                    (config / "bandix").write_text(WITH_LIMITS)
                if only & {1, 2}:
                    costs = program_cost(vr, switch, a.seconds, a.windows, previous)
                if 2 in only:
                    packet_rate(vr, switch, a.seconds, a.rounds, costs)
            finally:
                switch.set(False, check=False)
            if 3 in only:
                history_figures(vr, pin_dir, Path(log_dir))
            if 4 in only:
                with VirtualRouter(clients=1) as vr4:
                    vr4.wait_quiet()
                    conntrack_figures(vr4)
            if 5 in only:
                dns_figures(Path(log_dir))
            if 6 in only:
                flow_figures()
            if 7 in only:
                fleet_figures(vr, pin_dir, Path(log_dir))
            if 8 in only:
                usage_figures()
            if 9 in only:
                footprint_figures(vr, pin_dir, Path(log_dir))
    except KeyboardInterrupt:
        print("\nbench: interrupted; cleaned up", file=sys.stderr)
        return 130
    except Exception as exc:
        print(f"\nbench: measurement failed: {exc}", file=sys.stderr)
        return 1
    finally:
        remove_state(pin_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
