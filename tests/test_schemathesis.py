"""schemathesis (a fuzzer nobody here wrote) over /api/openapi.json against the running daemon.

Every phase (examples, coverage, fuzzing, stateful), every check, a fixed seed and
bounded examples; schemathesis runs inside the router namespace and asks the daemon
on its loopback, so nothing leaves the virtual router. Then a negative-only run
(every request invalid by the document, so every one must be refused) must leave
the UCI file and the database byte for byte as they were.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.bandixd import busy_router
from tests.vrouter import NETNS_DIR

ST = Path(sys.executable).with_name("st")
CONFIG = Path(__file__).with_name("schemathesis.toml")
SEED = 15
SUMMARY = re.compile(r"^\s*=+ (.*) in [\d.]+s =+\s*$", re.M)


def run_st(daemon, workdir: Path, *args: str, timeout: float = 420) -> tuple[int, str]:
    """st run inside the router namespace; its cache goes to `workdir`, not the checkout."""
    cmd = ["nsenter", f"--net={NETNS_DIR / daemon.ns.name}", str(ST), "--config-file", str(CONFIG), "run",
           f"http://127.0.0.1:{daemon.port}/api/openapi.json", "--checks", "all", "--seed", str(SEED),
           "--workers", "1", "--no-color", "--request-timeout", "10", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=workdir)
    return done.returncode, done.stdout + done.stderr


def summary(output: str) -> str:
    found = SUMMARY.findall(output)
    return found[-1] if found else ""


def test_schemathesis_finds_no_failure_error_or_5xx(tmp_path):
    with busy_router(["--enable-traffic", "--enable-connection", "--enable-dns", "--enable-flows",
                      "--data-dir", str(tmp_path)]) as (_, daemon):
        rc, out = run_st(daemon, tmp_path, "--phases", "examples,coverage,fuzzing,stateful", "--max-examples", "30")
        line = summary(out)
        print(out[-3000:])
        print("schemathesis:", line)
        assert daemon.proc.poll() is None, "schemathesis crashed the daemon"
        assert "Traceback" not in daemon.log() and "failed" not in daemon.log(), daemon.log()[-3000:]
    assert rc == 0, out[-6000:]
    assert "failure" not in line and "error" not in line, line
    generated = re.search(r"(\d+) generated, (\d+) passed", out)
    assert generated and generated[1] == generated[2], out[-3000:]
    for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):  # each one ran and passed
        assert re.search(rf"✅ {phase}\b", out), (phase, out[-3000:])
    assert not re.search(r"\b5\d\d\b [A-Z]", out.split("SUMMARY")[-1]), out[-3000:]


def test_requests_the_document_forbids_change_nothing(tmp_path):
    """Without flows (their minute rows would change the database on their own, and
    /api/flows/top, left out, answers 503 without them), history saved only at start
    and stop."""
    data = tmp_path / "data"
    with busy_router(["--enable-traffic", "--enable-connection", "--enable-dns", "--traffic-persist-history",
                      "--traffic-flush-interval-seconds", "3600", "--data-dir", str(data)]) as (_, daemon):
        uci_file, db = daemon.config_dir / "bandix", data / "bandix.db"
        before = (uci_file.read_bytes(), db.read_bytes())
        rc, out = run_st(daemon, tmp_path, "--phases", "coverage,fuzzing", "--mode", "negative", "--max-examples", "20",
                         "--exclude-path", "/api/flows/top")
        after = (uci_file.read_bytes(), db.read_bytes())
        assert daemon.proc.poll() is None
    print("schemathesis (negative):", summary(out))
    assert before == after, "a request the document forbids changed the UCI file or the database"
    assert rc == 0, out[-6000:]
