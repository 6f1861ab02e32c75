"""A virtual router with busy clients and bandix with every module, for the LuCI tests.

As tests/test_dashboard.py's site: client 1 downloads 4 Mbit/s (iperf3 UDP)
for the whole module, clients 2 and 3 ping the "internet" namespace.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

from tests.bandixd import Bandix, remove_state
from tests.vrouter import VirtualRouter


@contextlib.contextmanager
def busy_site(data: Path) -> Iterator[tuple[VirtualRouter, Bandix]]:
    pin_dir = Path("/sys/fs/bpf") / f"bandix-test-luci-{time.monotonic_ns()}"
    with VirtualRouter() as vr:
        vr.wait_quiet()
        daemon = Bandix(vr.router, ["--iface", "br-lan", "--enable-traffic", "--enable-connection", "--enable-dns",
                                    "--enable-flows", "--data-dir", str(data), "--test-level-seconds", "2,4,10,20"],
                        pin_dir).start()
        try:
            vr.internet.popen(["iperf3", "-s", "-p", "5201", "-B", vr.SERVER_V4])
            vr.internet.wait_listening(5201)
            vr.clients[0].ns.popen(["iperf3", "-c", vr.SERVER_V4, "-p", "5201", "-R", "-u", "-b", "4M", "-t", "300"])
            for c in vr.clients[1:]:
                c.ns.popen(["ping", "-i", "0.2", vr.SERVER_V4])
            daemon.wait_readings(2)
            yield vr, daemon
        finally:
            daemon.stop()
            remove_state(pin_dir)
