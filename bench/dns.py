"""Figure 5: DNS packets per second the capture pipeline keeps up with.

dnsperf in a client asks a dnsmasq in the internet namespace at fixed rates;
bandix on br-lan captures every query and response into its ring buffer and
records. A rate is kept up with when every packet became a record and the
ring buffer lost none.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from pathlib import Path

from tests.bandixd import Bandix, remove_state
from tests.vrouter import VirtualRouter

RATES = (2000, 5000, 10000, 20000)  # queries per second
SECONDS = 5
TARGET = 5000


def _stats(daemon: Bandix) -> dict:
    return daemon.get("/api/dns/stats")[1]["data"]["stats"]


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def dns_figures(log_dir: Path) -> None:
    print(f"\n5. DNS capture: dnsperf queries for {SECONDS} s at each rate; bandix records every packet?")
    pin_dir = Path(f"/sys/fs/bpf/bandix-bench-dns-{os.getpid()}")
    with VirtualRouter(clients=1) as vr, tempfile.NamedTemporaryFile("w", suffix=".txt") as queries:
        vr.wait_quiet()
        queries.write("bench.test A\n" * 100)
        queries.flush()
        vr.internet.popen(["dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts", "--user=root",
                           "--address=/bench.test/10.9.9.9", f"--listen-address={vr.SERVER_V4}",
                           "--bind-interfaces", "--dns-forward-max=10000"])
        vr.internet.wait_listening(53, udp=True)
        daemon = Bandix(vr.router, ["--iface", "br-lan", "--enable-dns", "--dns-max-records", "1000000"],
                        pin_dir, name="bench-dns")
        daemon.log_path = log_dir / "dns.log"
        daemon.start()
        best = 0
        try:
            print(f"   {'asked q/s':>9} {'answered':>9} {'packets':>8} {'recorded':>9} {'lost':>6} {'CPU %':>6}")
            for rate in RATES:
                before, cpu0 = _stats(daemon), _cpu(daemon.proc.pid)
                out = vr.clients[0].ns.run(["dnsperf", "-s", vr.SERVER_V4, "-d", queries.name, "-Q", str(rate),
                                             "-l", str(SECONDS), "-c", "20", "-q", "1000"],
                                            timeout=SECONDS + 30).stdout
                sent = int(re.search(r"Queries sent:\s+(\d+)", out).group(1))
                done = int(re.search(r"Queries completed:\s+(\d+)", out).group(1))
                time.sleep(1.5)  # the reader empties the ring
                after, cpu = _stats(daemon), _cpu(daemon.proc.pid) - cpu0
                recorded = (after["total_queries"] + after["total_responses"]
                            - before["total_queries"] - before["total_responses"])
                lost = after["lost_events"] - before["lost_events"]
                if lost == 0 and recorded == sent + done:
                    best = max(best, rate)
                print(f"   {rate:9d} {done:9d} {sent + done:8d} {recorded:9d} {lost:6d} "
                      f"{cpu / (SECONDS + 1.5) * 100:6.1f}")
        finally:
            daemon.stop()
            remove_state(pin_dir)
    print(f"   kept up without loss up to {best} queries/s (and as many responses); "
          f"target {TARGET}: {'PASS' if best >= TARGET else 'MISS'}")
