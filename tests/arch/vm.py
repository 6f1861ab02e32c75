"""One qemu run of a VM image, with a hard timeout, and its results.

The VM has no network card (`-nic none`): all its traffic stays between
namespaces inside it. Its disk is the cached image with `snapshot=on`
(writes vanish with qemu), and two 9p shares carry the checkout (read-only)
and an output directory (`tests/artifacts/arch/<arch>/`: the console, the
guest's log and results, the daemon's logs). qemu runs in its own session and
is killed, by its process group, when the timeout passes or the run is
interrupted.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.arch.images import ROOT, Arch, Image

ARTIFACTS = ROOT / "tests" / "artifacts" / "arch"
SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed$")
SHOWN = re.compile(r"^(PASS|FAIL) |^bandix-arch|^\d+ passed, \d+ failed$")


@dataclass
class Outcome:
    arch: str
    passed: int = 0
    failed: int = 0
    lines: list[str] = field(default_factory=list)  # PASS/FAIL lines from the guest
    error: str | None = None  # the VM did not deliver results
    seconds: float = 0.0


def command(arch: Arch, image: Image, site: Path, out: Path) -> list[str]:
    cmdline = f"root=/dev/vda rw console={arch.console} panic=1 quiet loglevel=3 init=/sbin/bandix-init"
    return [*arch.qemu, "-smp", "2", "-nographic", "-nic", "none", "-no-reboot",
            "-kernel", str(image.kernel), "-initrd", str(image.initrd), "-append", cmdline,
            "-drive", f"file={image.disk},if=none,id=root,format=raw,snapshot=on",
            "-device", f"{arch.block_device},drive=root",
            "-fsdev", f"local,id=payload,path={ROOT},security_model=none,readonly=on",
            "-device", f"{arch.p9_device},fsdev=payload,mount_tag=payload",
            "-fsdev", f"local,id=out,path={out},security_model=none",
            "-device", f"{arch.p9_device},fsdev=out,mount_tag=out"]


def run(arch: Arch, image: Image, site: Path, timeout: float) -> Outcome:
    """Boot the VM, stream its PASS/FAIL lines, and read its results file."""
    out = ARTIFACTS / arch.name
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    (out / "site").write_text(str(site.relative_to(ROOT)))
    outcome = Outcome(arch.name)
    started = time.monotonic()
    console = open(out / "console.log", "w", errors="replace")
    proc = subprocess.Popen(command(arch, image, site, out), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)

    def pump() -> None:
        for raw in proc.stdout:
            line = raw.decode(errors="replace").replace("\r", "").rstrip("\n")
            console.write(line + "\n")
            console.flush()
            if SHOWN.search(line):
                print(f"[{arch.name}] {line}", flush=True)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        outcome.error = f"timed out after {timeout:.0f} s"
    finally:
        if proc.poll() is None:
            _kill(proc)
        reader.join(10)
        console.close()
    outcome.seconds = time.monotonic() - started
    _read_results(out / "results.txt", outcome)
    return outcome


def _kill(proc: subprocess.Popen) -> None:
    """SIGKILL qemu's process group (it leads its own session), then reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _read_results(path: Path, outcome: Outcome) -> None:
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        outcome.error = outcome.error or "the guest wrote no results (see its console.log)"
        outcome.failed = max(outcome.failed, 1)
        return
    outcome.lines = [ln for ln in lines if ln.startswith(("PASS ", "FAIL "))]
    match = SUMMARY.match(lines[-1]) if lines else None
    if match is None:
        outcome.error = outcome.error or "the results have no summary line"
        outcome.failed = max(1, sum(ln.startswith("FAIL ") for ln in outcome.lines))
        return
    outcome.passed, outcome.failed = int(match.group(1)), int(match.group(2))
    if outcome.error:  # results of a run that then hung: count the hang as a failure
        outcome.failed += 1


def require_tools(arch: Arch) -> None:
    if shutil.which(arch.qemu[0]) is None:
        sys.exit(f"{arch.qemu[0]} is missing: `make test-arch` installs it (qemu-system-misc, qemu-system-arm)")
