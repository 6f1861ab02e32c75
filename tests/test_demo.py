"""`python -m tests.demo` end to end: every device shows up busy, and Ctrl-C leaves nothing.

The demo is what a newcomer runs first, so it is tested the way they use it: as a
process, through the forwarded port in the root namespace, stopped with a real
SIGINT.  Processes are identified by (pid, start time) so a reused PID is not
mistaken for a survivor.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.demo import DEVICES
from tests.vrouter import NETNS_DIR, VirtualRouter

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces, eBPF)")
REPO = Path(__file__).resolve().parents[1]
READY_WITHIN_S = 30.0
# Same layout as the demo's router: names → (MAC, IPv4), without building anything.
EXPECTED = {c.mac: (c.name, c.ipv4) for c in VirtualRouter(clients=[(n, "br-lan") for n in DEVICES]).clients}
RATES = ("lan_rx_rate", "lan_tx_rate", "wan_rx_rate", "wan_tx_rate")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def devices(port: int) -> dict[str, dict]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://127.0.0.1:{port}/api/traffic/devices", timeout=5) as resp:
        return {d["mac"]: d for d in json.load(resp)["data"]["devices"]}


def busy(dev: dict) -> bool:
    return dev["total_rx_rate"] + dev["total_tx_rate"] > 0


def start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat, None once the process is gone.

    A zombie counts as gone: it is dead, only waiting for init (its parent died
    first) to reap it.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else fields[19]


def descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.add(child)
            todo.append(child)
    return out


def demo_namespaces(prefix: str) -> list[str]:
    return sorted(n for n in os.listdir(NETNS_DIR) if n.startswith(prefix)) if NETNS_DIR.is_dir() else []


def started_processes(demo_pid: int, prefix: str) -> dict[int, str]:
    """Everything the demo started: its descendants and whatever runs in its namespaces."""
    pids = descendants(demo_pid)
    for ns in demo_namespaces(prefix):
        out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout
        pids |= {int(p) for p in out.split()}
    return {pid: st for pid in pids if (st := start_time(pid)) is not None}


@pytest.fixture
def demo(tmp_path):
    """The demo as a subprocess with its own session; killed and swept if a test fails early."""
    port = free_port()
    out = open(tmp_path / "demo.out", "w+")
    t0 = time.monotonic()
    # SIGINT back to default: under a shell without job control pytest may have it
    # ignored, and an ignored SIGINT would be inherited.
    proc = subprocess.Popen([sys.executable, "-m", "tests.demo", "--port", str(port)], cwd=REPO,
                            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    yield proc, port, t0, out
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    VirtualRouter.remove_stale()
    shutil.rmtree(f"/sys/fs/bpf/bandix-demo-{proc.pid}", ignore_errors=True)
    out.close()


def output(out) -> str:
    out.flush()
    out.seek(0)
    return out.read()[-4000:]


def test_demo_shows_every_device_busy_and_cleans_up_on_sigint(demo):
    proc, port, t0, out = demo
    prefix, pin_dir = f"bx{proc.pid}n", Path(f"/sys/fs/bpf/bandix-demo-{proc.pid}")

    seen: dict[str, dict] = {}
    while time.monotonic() - t0 < READY_WITHIN_S:
        assert proc.poll() is None, f"demo exited with {proc.returncode}:\n{output(out)}"
        try:
            seen = devices(port)
        except OSError:  # forward not listening yet, or the daemon not up yet
            pass
        if all(mac in seen and seen[mac]["ip"] == ip and busy(seen[mac]) for mac, (_, ip) in EXPECTED.items()):
            break
        time.sleep(0.5)
    ready_after = time.monotonic() - t0
    state = {name: (seen.get(mac, {}).get("ip"), busy(seen[mac]) if mac in seen else None)
             for mac, (name, _) in EXPECTED.items()}
    assert ready_after < READY_WITHIN_S, f"not every device busy with its IPv4: {state}\n{output(out)}"
    print(f"all {len(EXPECTED)} devices busy with their IPv4 after {ready_after:.1f}s")
    assert pin_dir.is_dir() and demo_namespaces(prefix)

    # Rates are live: every device's rates change and its totals grow within a few readings.
    first = devices(port)
    moved: set[str] = set()
    deadline = time.monotonic() + 20  # generous: the phone is idle for a few seconds at a time
    while moved != set(EXPECTED) and time.monotonic() < deadline:
        time.sleep(1)
        now = devices(port)
        moved |= {mac for mac in EXPECTED
                  if [now[mac][k] for k in RATES] != [first[mac][k] for k in RATES]
                  and now[mac]["total_rx_bytes"] + now[mac]["total_tx_bytes"]
                  > first[mac]["total_rx_bytes"] + first[mac]["total_tx_bytes"]}
    assert moved == set(EXPECTED), {EXPECTED[m][0] for m in set(EXPECTED) - moved}

    # The table the demo prints shows every device (it redraws every 2 s).
    deadline = time.monotonic() + 10
    while not all(n in output(out) for n in DEVICES) and time.monotonic() < deadline:
        time.sleep(0.5)

    procs = started_processes(proc.pid, prefix)
    assert len(procs) >= 10, procs  # daemon, servers, generator loops and their clients
    proc.send_signal(signal.SIGINT)
    assert proc.wait(60) == 0, output(out)
    text = output(out)
    assert f"dashboard http://127.0.0.1:{port}/" in text and all(n in text for n in DEVICES)

    assert demo_namespaces(prefix) == []
    survivors = {pid for pid, st in procs.items() if start_time(pid) == st}
    assert not survivors, {p: Path(f"/proc/{p}/status").read_text()[:300] for p in survivors}
    assert not pin_dir.exists()
    with pytest.raises(ConnectionRefusedError):  # the port forward is gone too
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
