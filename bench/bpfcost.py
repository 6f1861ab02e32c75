"""Per-packet cost of bandix's TC programs, from the kernel's BPF statistics.

An empty program sits behind bandix's on the same br-lan hooks, so both run
on exactly the same packets in the same window: the ratio of their
run_time_ns / run_cnt deltas does not depend on the traffic rate, and the
empty one is the floor (mostly the clock reads of the statistics themselves).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.vrouter import Netns

SYSCTL = Path("/proc/sys/kernel/bpf_stats_enabled")
EMPTY_OBJ = Path(__file__).resolve().parent / "empty.bpfel.o"
EMPTY_PRIO = 65000  # after bandix's (auto 49152 or any lower --tc-priority)
# (direction, br-lan hook, bandix program): a device's upload enters br-lan, its download leaves it.
WINDOWS = (("upload", "ingress", "bandix_ingress"), ("download", "egress", "bandix_egress"))
HOOKS = tuple(hook for _, hook, _ in WINDOWS)
LAN = "br-lan"


@contextlib.contextmanager
def stats_sysctl() -> Iterator[str]:
    """Yield kernel.bpf_stats_enabled as found; put it back however we leave."""
    before = SYSCTL.read_text().strip()
    try:
        yield before
    finally:
        SYSCTL.write_text(before + "\n")


def set_stats(on: bool) -> None:
    """On for the cost figures; off for the rate (timing every run costs two clock reads)."""
    SYSCTL.write_text("1\n" if on else "0\n")


def attach_empty(router: Netns) -> None:
    for hook in HOOKS:
        router.run(["tc", "filter", "add", "dev", LAN, hook, "prio", str(EMPTY_PRIO),
                    "bpf", "da", "obj", str(EMPTY_OBJ), "sec", "tc"])


def detach_empty(router: Netns) -> None:
    """Remove only the filters we added (bandix's are the daemon's business)."""
    for hook in HOOKS:
        router.run(["tc", "filter", "del", "dev", LAN, hook, "prio", str(EMPTY_PRIO)], check=False)


def hook_programs(router: Netns, hook: str) -> dict[str, tuple[int, int]]:
    """Program name → (tc priority, program id) of every bpf filter on one hook of br-lan."""
    out = {}
    for f in json.loads(router.run(["tc", "-j", "filter", "show", "dev", LAN, hook]).stdout):
        prog = f.get("options", {}).get("prog")
        if prog:
            out[prog["name"]] = (f["pref"], prog["id"])
    return out


def run_stats(prog_id: int) -> tuple[int, int]:
    """(run_time_ns, run_cnt) of one program; bpftool omits both while they are 0."""
    info = json.loads(subprocess.run(["bpftool", "-j", "prog", "show", "id", str(prog_id)],
                                     check=True, capture_output=True, text=True).stdout)
    return info.get("run_time_ns", 0), info.get("run_cnt", 0)


@dataclass
class Cost:
    """One hook measured over one traffic window."""

    direction: str
    program: str
    bandix_ns: float
    empty_ns: float
    bandix_runs: int
    empty_runs: int

    @property
    def ratio(self) -> float:
        return self.bandix_ns / self.empty_ns


def measure(router: Netns, direction: str, hook: str, program: str, traffic: Callable[[], object]) -> Cost:
    """Deltas of both programs on `hook` over one call of `traffic`."""
    progs = hook_programs(router, hook)
    if program not in progs or "empty_tc" not in progs:
        raise RuntimeError(f"{hook} of {LAN} lacks {program} or empty_tc: {progs}")
    if progs[program][0] >= progs["empty_tc"][0]:
        raise RuntimeError(f"{program} (prio {progs[program][0]}) does not run before empty_tc")
    ids = (progs[program][1], progs["empty_tc"][1])
    before = [run_stats(i) for i in ids]
    traffic()
    (bt, bc), (et, ec) = ((t - t0, c - c0) for (t, c), (t0, c0) in zip(map(run_stats, ids), before, strict=True))
    if not bc or not ec:
        raise RuntimeError(f"no runs counted on {hook} (is kernel.bpf_stats_enabled honoured?)")
    return Cost(direction, program, bt / bc, et / ec, bc, ec)
