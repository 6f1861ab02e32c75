"""Figure 7: what feeding a fleet's Prometheus and IPFIX collector costs.

a. A Prometheus scrape at 250 devices: the real daemon (devices simulated in
   its pinned slot table, as in figure 3), GET /metrics back to back; the
   daemon's CPU time per request beside a fixed file's (the HTTP server's and
   falcon's own part) and /api/traffic/devices (the same devices as JSON).
b. IPFIX records per second the exporter sustains: records encoded and sent
   over loopback to a bound socket, and to a port where nothing listens (every
   send refused, the records counted as not sent).
c. RSS added: the exporter's import on top of the daemon's, and 16,384 pending
   flows (a full default flow map), each in a fresh interpreter.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.history import DEVICES, FakeDevices
from tests.bandixd import Bandix, http_get, remove_state
from tests.vrouter import VirtualRouter

SCRAPES = 200
PATHS = ("/metrics", "/api/traffic/devices", "/app.css")
FLOWS = 16384


def cpu_s(pid: int) -> float:
    """utime + stime of the whole process, threads that ended included (each request has its own)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _scrape_cost(d: Bandix, path: str, n: int = SCRAPES) -> tuple[float, float, int]:
    """(daemon CPU ms per request, median wall ms, answer bytes) of n requests back to back."""
    pid = d.proc.pid
    idle0, t0 = cpu_s(pid), time.monotonic()
    time.sleep(5)
    idle_per_s = (cpu_s(pid) - idle0) / (time.monotonic() - t0)  # the 1 s readings of 250 devices
    walls, size = [], 0
    cpu0, t0 = cpu_s(pid), time.monotonic()
    for _ in range(n):
        w0 = time.perf_counter()
        status, _, body = http_get(d.ns, path, d.port)
        walls.append((time.perf_counter() - w0) * 1000)
        assert status == 200, path
        size = len(body.encode())
    cpu = cpu_s(pid) - cpu0 - idle_per_s * (time.monotonic() - t0)
    return cpu * 1000 / n, statistics.median(walls), size


def scrape_figures(vr: VirtualRouter, pin_dir: Path, log_dir: Path) -> None:
    d = Bandix(vr.router, ["--iface", "br-lan", "--enable-traffic"], pin_dir, name="bench-fleet")
    d.log_path = log_dir / "fleet.log"
    d.start()
    fake = None
    try:
        fake = FakeDevices(pin_dir)
        fake.start()
        time.sleep(3)
        costs = {p: _scrape_cost(d, p) for p in PATHS}
        series = sum(1 for line in http_get(d.ns, "/metrics", d.port)[2].splitlines() if not line.startswith("#"))
    finally:
        if fake:
            fake.stop()
        d.stop()
    print(f"   a. GET /metrics with {DEVICES} devices: {series} samples; {SCRAPES} requests back to back, the "
          "daemon's CPU (its idle readings taken out)")
    print(f"      {'path':24} {'CPU ms/request':>15} {'wall ms (median)':>17} {'answer KB':>10}")
    for p, (cpu, wall, size) in costs.items():
        print(f"      {p:24} {cpu:15.2f} {wall:17.2f} {size / 1024:10.1f}")
    cpu = costs["/metrics"][0]
    print(f"      /metrics is {cpu / costs['/app.css'][0]:.1f}x a fixed file and "
          f"{cpu / costs['/api/traffic/devices'][0]:.2f}x the devices JSON; scraped every 15 s (Prometheus' default) "
          f"that is {cpu / 15 / 10:.3f} % of a core, every second {cpu / 10:.2f} %")


def _moved(n: int) -> list:
    from bandix.collect.flows import Flow

    return [(Flow("up" if i % 2 else "down", 6, f"192.168.1.{i % 250 + 2}", 40000 + i // 250, "198.51.100.7", 443,
                  f"02:be:00:00:{i >> 8 & 0xFF:02x}:{i & 0xFF:02x}", label=(1, "dns", "example.test")), 1500, 1)
            for i in range(n)]


def _records_per_second(target: tuple[str, int]) -> tuple[float, int, int]:
    from bandix.export.exporter import IpfixExporter

    exporter = IpfixExporter(target, active_timeout_s=0, idle_timeout_s=0, template_refresh_s=1)
    moved = _moved(FLOWS)
    exporter.update(moved[:1], 0)  # the first send (templates): a refused one reports on the next
    rounds, t0 = 5, time.perf_counter()
    for r in range(rounds):
        exporter.update(moved, (r + 1) * 1000)  # every record due at once
    seconds = time.perf_counter() - t0
    exporter.close()
    return rounds * FLOWS / seconds, exporter.records_sent, exporter.records_not_sent


_RSS = """
import sys
def rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) / 1024
import bandix.daemon
base = rss()
from bandix.export.exporter import IpfixExporter
imported = rss()
from bench.fleet import _moved
moved = _moved(16384)
with_flows = rss()
exporter = IpfixExporter(('127.0.0.1', 9), 60, 15, 60)
exporter.update(moved, 0)
print(base, imported, rss() - with_flows, len(exporter.pending))
"""


def ipfix_figures() -> None:
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    try:
        listening = _records_per_second(sink.getsockname())
    finally:
        sink.close()
    closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now: each send meets the port unreachable of the one before
    refused = _records_per_second(("127.0.0.1", port))
    print(f"   b. IPFIX export of {FLOWS} moving flows per read, all due at once (one core, loopback):")
    print(f"      to a collector: {listening[0]:,.0f} records/s ({listening[1]} sent, {listening[2]} not sent)")
    print(f"      to a port nothing listens on: {refused[0]:,.0f} records/s ({refused[1]} sent, "
          f"{refused[2]} not sent); the flow collector itself reads about 87,000 flows/s (figure 6b)")
    out = subprocess.run([sys.executable, "-c", _RSS], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1]).stdout.split()
    base, imported, pending_mb, pending = float(out[0]), float(out[1]), float(out[2]), int(out[3])
    print(f"   c. RSS: the daemon's imports {base:.1f} MB; + the exporter's import {imported - base:.2f} MB; "
          f"+ {pending} pending records {pending_mb:.2f} MB ({pending_mb * 1024 * 1024 / pending:.0f} B each; "
          "the Flow objects are the flow table's own)")


def fleet_figures(vr: VirtualRouter, pin_dir: Path, log_dir: Path) -> None:
    print("\n7. Feeding a fleet: Prometheus scrapes and IPFIX export")
    own = pin_dir.with_name(pin_dir.name + "-fleet")  # figure 3's simulated devices stay in its pins
    try:
        scrape_figures(vr, own, log_dir)
    finally:
        remove_state(own)
    ipfix_figures()
