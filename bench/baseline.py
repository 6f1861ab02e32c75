"""Goals 3 and 5 of issue 17: the daemon's baseline RSS and its CPU at 250 devices.

Goal 3: the real daemon on a virtual router with 3 devices and every module on
(traffic, DNS, connections, flows with their database), after a minute's worth
of what a router sees: pings, DNS queries at a real DNS server, a QUIC Initial,
and the API asked for what the dashboard, LuCI and Prometheus ask for (devices,
metrics, a flow report, the OpenAPI document). RSS is read from /proc/PID/status
after the last request, so what is loaded on request and freed shows as freed.

Goal 5: the daemon with traffic counting only and 250 devices simulated in its
pinned slot table (bench/history.py's FakeDevices), CPU share of one core over
several windows (median shown).

`goal3()` and `goal5()` return a Figure each (bench/footprint.py prints them in
the goals table); `python -m bench.baseline` prints them on their own, and with
`--modules` also what each optional module adds to the RSS.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.bandixd import ROOT, Bandix, http_get, no_cryptography, remove_state
from tests.vrouter import VirtualRouter

# Measured with this file's scenarios at commit b208b93 (before issue 17), on the same machine.
BEFORE_RSS_MB = 56.5
BEFORE_QUIC_RSS_MB = 66.6
BEFORE_CPU = 0.0049
RSS_LIMIT_MB = 46.0
CPU_WINDOWS = 5
CPU_WINDOW_S = 20.0
EVERY_MODULE = ["--enable-traffic", "--enable-dns", "--enable-connection", "--enable-flows"]
API_PATHS = ("/api/traffic/devices", "/api/dashboard/devices", "/metrics", "/api/flows/top?by=domain",
             "/api/dns/queries", "/api/connection/devices", "/api/traffic/metrics/day", "/api/openapi.json")


@dataclass
class Figure:
    """One goal's figure: before this issue, now, and the limit `now` must not pass."""

    name: str
    before: float
    now: float
    limit: float
    unit: str  # "MB" or "core" (a share of one core)
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.now <= self.limit

    @property
    def mark(self) -> str:
        return "PASS" if self.ok else "MISS"

    def text(self, value: float) -> str:
        return f"{value:.1f} MB" if self.unit == "MB" else f"{value:.2%}"

    def line(self) -> str:
        return (f"{self.name}: before {self.text(self.before)}, now {self.text(self.now)}, "
                f"limit {self.text(self.limit)} {self.mark}{f' ({self.detail})' if self.detail else ''}")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_s(pid: int) -> float:
    """CPU time of all the process's threads, to the nanosecond (the scheduler's sum)."""
    total = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            text = (task / "sched").read_text()
        except FileNotFoundError:  # the thread ended
            continue
        for line in text.splitlines():
            if line.startswith("se.sum_exec_runtime"):
                total += float(line.split(":")[1]) / 1000
                break
    return total


class Site:
    """A virtual router with 3 devices, a DNS server in its internet, and one daemon."""

    def __init__(self, vr: VirtualRouter, log_dir: Path) -> None:
        self.vr, self.log_dir = vr, log_dir
        self.dns = vr.internet.popen([sys.executable, "-m", "tests.dnsserver", vr.SERVER_V4], cwd=ROOT,
                                     stdout=subprocess.PIPE)
        if self.dns.stdout.readline().strip() != b"listening":
            raise RuntimeError("the bench's DNS server did not start")

    def daemon(self, flags: list[str], name: str, env: dict[str, str] | None = None) -> Bandix:
        pin_dir = Path(f"/sys/fs/bpf/bandix-bench-{name}-{os.getpid()}")
        data = self.log_dir / f"data-{name}"
        d = Bandix(self.vr.router, ["--iface", "br-lan", *flags, "--data-dir", str(data)], pin_dir,
                   name=f"bench-{name}", env=env)
        d.log_path = self.log_dir / f"{name}.log"
        return d.start()

    def exercise(self, d: Bandix, quic: bool = True) -> None:
        """What a router sees in a minute, compressed: every module gets work, every kind
        of API request is asked."""
        vr = self.vr
        for c in vr.clients:
            c.ns.run(["ping", "-c", "3", "-i", "0.2", vr.SERVER_V4])
            for name in ("a.test", "www.cname.test", "many.test", "nx.test"):
                c.ns.run(["dig", "+tries=1", "+time=2", f"@{vr.SERVER_V4}", name], check=False)
        if quic:
            vr.clients[-1].ns.run([sys.executable, "-m", "tests.hellos", "quic", vr.SERVER_V4, "quic.test"],
                                  cwd=ROOT)
        for _ in range(3):
            for path in API_PATHS:
                status, _, body = http_get(d.ns, path, d.port)
                if status not in (200, 503):  # 503: that module is off
                    raise RuntimeError(f"GET {path}: {status} {body[:200]}")
            time.sleep(1)

    def rss(self, d: Bandix, quic: bool = True) -> float:
        self.exercise(d, quic)
        time.sleep(3)  # a flush of the flow tables and a reading or two after the last request
        return rss_mb(d.proc.pid)

    def close(self) -> None:
        self.dns.kill()
        self.dns.wait()


def _run(flags: list[str], name: str, log_dir: Path, quic: bool = True, env: dict[str, str] | None = None,
         vr: VirtualRouter | None = None) -> float:
    own = vr is None
    vr = vr or VirtualRouter(clients=3).start()
    site = None
    d = None
    try:
        vr.wait_quiet()
        site = Site(vr, log_dir)
        d = site.daemon(flags, name, env)
        return site.rss(d, quic)
    finally:
        if d:
            d.stop()
            remove_state(d.pin_dir)
        if site:
            site.close()
        if own:
            vr.close()


def goal3(log_dir: Path | None = None) -> Figure:
    """RSS of the daemon, 3 devices, every module on, no QUIC Initial seen; beside it the
    same after a QUIC Initial, when decrypting it has loaded cryptography."""
    with tempfile.TemporaryDirectory(prefix="bandix-baseline-") as tmp, VirtualRouter(clients=3) as vr:
        now = _run(EVERY_MODULE, "goal3", log_dir or Path(tmp), False, vr=vr)
        quic = _run(EVERY_MODULE, "goal3-quic", log_dir or Path(tmp), True, vr=vr)
    return Figure("3. baseline RSS, 3 devices, every module on", BEFORE_RSS_MB, now, RSS_LIMIT_MB, "MB",
                  f"after a QUIC Initial too: {quic:.1f} MB, before {BEFORE_QUIC_RSS_MB:.1f} MB")


def goal5(log_dir: Path | None = None) -> Figure:
    """CPU of the daemon with 250 devices (traffic counting), median of CPU_WINDOWS windows."""
    from bench.history import DEVICES, FakeDevices

    pin_dir = Path(f"/sys/fs/bpf/bandix-bench-goal5-{os.getpid()}")
    shares = []
    with tempfile.TemporaryDirectory(prefix="bandix-baseline-") as tmp, VirtualRouter(clients=1) as vr:
        vr.wait_quiet()
        d = Bandix(vr.router, ["--iface", "br-lan", "--enable-traffic"], pin_dir, name="bench-goal5")
        d.log_path = (log_dir or Path(tmp)) / "goal5.log"
        d.start()
        fake = None
        try:
            fake = FakeDevices(pin_dir)
            fake.start()
            time.sleep(3)
            for _ in range(CPU_WINDOWS):
                c0, t0 = cpu_s(d.proc.pid), time.monotonic()
                time.sleep(CPU_WINDOW_S)
                shares.append((cpu_s(d.proc.pid) - c0) / (time.monotonic() - t0))
            shown = len(d.devices())
        finally:
            if fake:
                fake.stop()
            d.stop()
            remove_state(pin_dir)
    now = statistics.median(shares)
    return Figure(f"5. daemon CPU, {DEVICES} devices", BEFORE_CPU, now, BEFORE_CPU * 1.10, "core",
                  f"{shown} devices in the API; windows of {CPU_WINDOW_S:.0f} s: "
                  + " ".join(f"{s:.2%}" for s in shares) + "; limit: before + 10 % noise")


MODULE_STEPS = (
    ("traffic", ["--enable-traffic"], False, False),
    ("+ dns", ["--enable-traffic", "--enable-dns"], False, False),
    ("+ connection", ["--enable-traffic", "--enable-dns", "--enable-connection"], False, False),
    ("+ flows (no QUIC seen)", EVERY_MODULE, False, False),
    ("+ a QUIC Initial (cryptography)", EVERY_MODULE, True, False),
    ("+ a QUIC Initial, no cryptography", EVERY_MODULE, True, True),
)


def module_costs(log_dir: Path) -> list[tuple[str, float]]:
    """RSS with modules added one by one, each in a fresh daemon on one shared router."""
    out = []
    with VirtualRouter(clients=3) as vr:
        for n, (name, flags, quic, blocked) in enumerate(MODULE_STEPS):
            env = no_cryptography(log_dir / "nocrypto") if blocked else None
            out.append((name, _run(flags, f"modules-{n}", log_dir, quic, env, vr)))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.baseline", description=__doc__.split("\n")[0])
    p.add_argument("--modules", action="store_true", help="also the RSS each module adds")
    p.add_argument("--only", type=int, choices=(3, 5), action="append", help="only this goal (repeatable)")
    a = p.parse_args(argv)
    if os.geteuid() != 0:
        print("bench.baseline: needs root (network namespaces, eBPF)", file=sys.stderr)
        return 2
    only = set(a.only or (3, 5))
    with tempfile.TemporaryDirectory(prefix="bandix-baseline-") as tmp:
        if 3 in only:
            print(goal3(Path(tmp)).line(), flush=True)
        if 5 in only:
            print(goal5(Path(tmp)).line(), flush=True)
        if a.modules:
            print("RSS as modules are added (3 devices, each a fresh daemon):")
            previous = None
            for name, mb in module_costs(Path(tmp)):
                delta = "" if previous is None else f"  {mb - previous:+.1f} MB"
                print(f"   {name:36} {mb:6.1f} MB{delta}", flush=True)
                previous = mb
    return 0


if __name__ == "__main__":
    sys.exit(main())
