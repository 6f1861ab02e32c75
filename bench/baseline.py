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
import compileall
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.history import cpu_s, rss_mb
from tests.bandixd import ROOT, Bandix, http_get, no_cryptography, remove_state
from tests.vrouter import NETNS_DIR, VirtualRouter

# "Before" is the daemon of this commit (main before issue 17), run from `git archive` side by
# side with this checkout's in the same run. Without git, the figures recorded here at that commit.
BASE_COMMIT = "b208b93"
BEFORE_RSS_MB = 56.5
BEFORE_QUIC_RSS_MB = 66.6
BEFORE_CPU = 0.0102
CPU_NOISE = 1.10  # goal 5: now at most 10 % above before, measured over the same windows
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


def bytecode(tree: Path) -> None:
    """Compile tree/bandix to __pycache__, as a router has it (the feed installs bytecode only):
    a module imported from source is compiled in the daemon, and the compiler's memory stays
    in its RSS (this environment may set PYTHONDONTWRITEBYTECODE, so nothing else writes them)."""
    if not compileall.compile_dir(str(tree / "bandix"), quiet=1):
        raise RuntimeError(f"cannot compile {tree / 'bandix'}")


@contextlib.contextmanager
def base_tree() -> Iterator[Path | None]:
    """BASE_COMMIT's bandix/ and its BPF object, unpacked in a temporary directory (None without git)."""
    with tempfile.TemporaryDirectory(prefix="bandix-base-") as tmp:
        root = Path(tmp)
        try:
            archive = subprocess.run(["git", "archive", BASE_COMMIT, "bandix", "bpf"], cwd=ROOT, check=True,
                                     capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
            arch = f"/usr/include/{os.uname().machine}-linux-gnu"
            subprocess.run(["clang", "-O2", "-g", f"-I{arch}", "-target", "bpfel", "-c",
                            str(root / "bpf/bandix.bpf.c"), "-o", str(root / "bpf/bandix.bpfel.o")],
                           check=True, capture_output=True)
            bytecode(root)
        except (OSError, subprocess.CalledProcessError):
            yield None
            return
        yield root


class BaseBandix(Bandix):
    """The daemon of another source tree (its bandix/ first on sys.path; the editable
    install's finder comes after the path finder, so it is not consulted)."""

    def __init__(self, tree: Path, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self.tree = tree

    def command(self) -> list[str]:
        boot = (f"import sys; sys.path.insert(0, {str(self.tree)!r}); sys.argv[0] = 'bandix'; "
                "from bandix.cli.main import main; sys.exit(main())")
        return ["nsenter", f"--net={NETNS_DIR / self.ns.name}", sys.executable, "-c", boot, *self.args]


class Site:
    """A virtual router with 3 devices, a DNS server in its internet, and one daemon."""

    def __init__(self, vr: VirtualRouter, log_dir: Path) -> None:
        self.vr, self.log_dir = vr, log_dir
        self.dns = vr.internet.popen([sys.executable, "-m", "tests.dnsserver", vr.SERVER_V4], cwd=ROOT,
                                     stdout=subprocess.PIPE)
        if self.dns.stdout.readline().strip() != b"listening":
            raise RuntimeError("the bench's DNS server did not start")

    def daemon(self, flags: list[str], name: str, env: dict[str, str] | None = None,
               tree: Path | None = None) -> Bandix:
        """This checkout's daemon, or with `tree` the one of that source tree."""
        pin_dir = Path(f"/sys/fs/bpf/bandix-bench-{name}-{os.getpid()}")
        data = self.log_dir / f"data-{name}"
        args = ["--iface", "br-lan", *flags, "--data-dir", str(data)]
        if tree is not None:
            args += ["--bpf-object", str(tree / "bpf/bandix.bpfel.o")]
            d = BaseBandix(tree, self.vr.router, args, pin_dir, name=f"bench-{name}", env=env)
        else:
            d = Bandix(self.vr.router, args, pin_dir, name=f"bench-{name}", env=env)
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
         vr: VirtualRouter | None = None, tree: Path | None = None) -> float:
    own = vr is None
    vr = vr or VirtualRouter(clients=3).start()
    site = None
    d = None
    try:
        vr.wait_quiet()
        site = Site(vr, log_dir)
        d = site.daemon(flags, name, env, tree)
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
    same after a QUIC Initial, when decrypting it has loaded cryptography. Before: the
    daemon of BASE_COMMIT on the same router, in the same run."""
    bytecode(ROOT)
    with (tempfile.TemporaryDirectory(prefix="bandix-baseline-") as tmp, base_tree() as base,
          VirtualRouter(clients=3) as vr):
        where = log_dir or Path(tmp)
        now = _run(EVERY_MODULE, "goal3", where, False, vr=vr)
        quic = _run(EVERY_MODULE, "goal3-quic", where, True, vr=vr)
        before, before_quic, source = BEFORE_RSS_MB, BEFORE_QUIC_RSS_MB, f"recorded at {BASE_COMMIT}"
        if base is not None:
            before = _run(EVERY_MODULE, "goal3-base", where, False, vr=vr, tree=base)
            before_quic = _run(EVERY_MODULE, "goal3-base-quic", where, True, vr=vr, tree=base)
            source = f"{BASE_COMMIT} measured in this run"
    return Figure("3. baseline RSS, 3 devices, every module on", before, now, RSS_LIMIT_MB, "MB",
                  f"before = {source}; after a QUIC Initial too (cryptography loaded): "
                  f"{quic:.1f} MB, before {before_quic:.1f} MB")


def _fleet(vr: VirtualRouter, name: str, log_dir: Path, tree: Path | None) -> tuple[Bandix, object]:
    """A traffic-only daemon and 250 simulated devices in its slot table."""
    from bench.history import FakeDevices

    pin_dir = Path(f"/sys/fs/bpf/bandix-bench-{name}-{os.getpid()}")
    args = ["--iface", "br-lan", "--enable-traffic"]
    if tree is not None:
        args += ["--bpf-object", str(tree / "bpf/bandix.bpfel.o")]
        d = BaseBandix(tree, vr.router, args, pin_dir, name=f"bench-{name}")
    else:
        d = Bandix(vr.router, args, pin_dir, name=f"bench-{name}")
    d.log_path = log_dir / f"{name}.log"
    d.start()
    fake = FakeDevices(pin_dir)
    fake.start()
    return d, fake


def goal5(log_dir: Path | None = None) -> Figure:
    """CPU of the daemon with 250 devices (traffic counting), median of CPU_WINDOWS windows;
    BASE_COMMIT's daemon runs beside it on a router of its own over the same windows, so
    the machine's load weighs on both alike."""
    from bench.history import DEVICES

    bytecode(ROOT)

    runs: list[tuple[Bandix, object]] = []
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="bandix-baseline-"))
        base = stack.enter_context(base_tree())
        where = log_dir or Path(tmp)
        try:
            for name, tree in (("goal5", None), ("goal5-base", base)):
                if name.endswith("base") and tree is None:
                    continue
                vr = stack.enter_context(VirtualRouter(clients=1))
                vr.wait_quiet()
                runs.append(_fleet(vr, name, where, tree))
            time.sleep(3)
            shares: list[list[float]] = [[] for _ in runs]
            for _ in range(CPU_WINDOWS):
                marks = [(cpu_s(d.proc.pid), time.monotonic()) for d, _ in runs]
                time.sleep(CPU_WINDOW_S)
                for k, ((d, _), (c0, t0)) in enumerate(zip(runs, marks, strict=True)):
                    shares[k].append((cpu_s(d.proc.pid) - c0) / (time.monotonic() - t0))
            shown = len(runs[0][0].devices())
        finally:
            for d, fake in runs:
                fake.stop()
                d.stop()
                remove_state(d.pin_dir)
    now = statistics.median(shares[0])
    if len(runs) > 1:
        before, source = statistics.median(shares[1]), f"{BASE_COMMIT} beside it in the same windows"
    else:
        before, source = BEFORE_CPU, f"recorded at {BASE_COMMIT}"
    windows = "; ".join(" ".join(f"{x:.2%}" for x in s) for s in shares)
    return Figure(f"5. daemon CPU, {DEVICES} devices", before, now, before * CPU_NOISE, "core",
                  f"{shown} devices in the API; before = {source}; windows of {CPU_WINDOW_S:.0f} s "
                  f"(now; before): {windows}; limit: before + {CPU_NOISE - 1:.0%}")


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
    bytecode(ROOT)
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
