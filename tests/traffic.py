"""Traffic generators and ground truth for the end-to-end tests.

Every generator is a real client (iperf3, ping) talking to a real server in a
namespace of the virtual router; the ground truth is the client interface's
own kernel counters, which see exactly the frames that cross br-lan.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from tests.bandixd import Bandix
from tests.vrouter import Client, Netns

ETH_HEADER = 14


@dataclass(frozen=True)
class Flow:
    """Bytes and packets of one device in one zone and direction."""

    bytes: int
    packets: int


def counters(daemon: Bandix) -> dict[tuple[str, str, str], Flow]:
    """(mac, zone, direction) → Flow, from the daemon's /metrics."""
    from tests.bandixd import http_get

    status, _, text = http_get(daemon.ns, "/metrics", daemon.port)
    assert status == 200
    values: dict[tuple[str, str, str], dict[str, int]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name in ("bandix_device_bytes_total", "bandix_device_packets_total"):
                key = (s.labels["mac"], s.labels["zone"], s.labels["direction"])
                values.setdefault(key, {})["bytes" if "bytes" in s.name else "packets"] = int(s.value)
    return {k: Flow(v["bytes"], v["packets"]) for k, v in values.items()}


def delta(after: dict, before: dict, key: tuple[str, str, str]) -> Flow:
    a, b = after.get(key, Flow(0, 0)), before.get(key, Flow(0, 0))
    return Flow(a.bytes - b.bytes, a.packets - b.packets)


def l3_truth(client: Client, before: dict[str, int], after: dict[str, int]) -> dict[str, Flow]:
    """What crossed the client's interface, as L3 bytes: 'rx' and 'tx' Flows."""
    out = {}
    for d in ("rx", "tx"):
        packets = after[f"{d}_packets"] - before[f"{d}_packets"]
        out[d] = Flow(after[f"{d}_bytes"] - before[f"{d}_bytes"] - ETH_HEADER * packets, packets)
    return out


def iperf3(client: Client, server_ns: Netns, server_ip: str, *args: str, port: int = 5201,
           timeout: float = 60.0) -> dict:
    """One iperf3 run from `client` to a one-shot server in `server_ns`; its JSON report.

    With -n, iperf3 stops once the bytes are written to the socket and the
    server may close before the tail arrives: what crossed the wire is less,
    so tests take their ground truth from interface counters, not from -n.
    """
    server = server_ns.popen(["iperf3", "-s", "-1", "-p", str(port), "-B", server_ip],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        server_ns.wait_listening(port)
        out = client.ns.run(["iperf3", "-c", server_ip, "-p", str(port), "-J", *args], timeout=timeout).stdout
        server.wait(10)
    finally:
        if server.poll() is None:  # the client failed: do not let the server mask its error
            server.kill()
            server.wait()
    return json.loads(out)


def settle(daemon: Bandix) -> None:
    """Let in-flight packets land and the daemon take two fresh readings."""
    time.sleep(0.3)
    daemon.wait_readings(2)
