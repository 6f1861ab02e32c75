"""Small-packet rate through the virtual router, without and with bandix.

Rounds alternate (without, with, without, ...) so that slow drifts of the
machine hit both sides alike, and medians shrug off the odd disturbed round.
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.vrouter import Client, VirtualRouter

PAYLOAD = 64
PORT = 5201


def udp_flood(vr: VirtualRouter, client: Client, seconds: float, reverse: bool = False) -> dict:
    """One iperf3 64-byte UDP run at full speed, client → server (or back with -R); its JSON.

    Not tests.traffic.iperf3: that one lets the server print to our stdout.
    """
    server = vr.internet.popen(["iperf3", "-s", "-1", "-p", str(PORT), "-B", vr.SERVER_V4],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        vr.internet.wait_listening(PORT)
        out = client.ns.run(["iperf3", "-c", vr.SERVER_V4, "-p", str(PORT), "-J", "-u", "-l", str(PAYLOAD),
                             "-b", "0", "-t", str(seconds), *(["-R"] if reverse else [])],
                            timeout=seconds + 30).stdout
    except BaseException:
        server.kill()
        raise
    finally:
        server.wait(10)
    return json.loads(out)


def received_pps(report: dict) -> float:
    """Packets that reached the receiver per second of the test.

    In iperf3 3.12 `end.sum_received.packets` is the highest sequence number
    seen, not a count of arrivals (it equals what was sent unless the tail was
    lost); arrivals are packets - lost_packets, which is also bytes / payload.
    `end.sum` mixes sides (sender's packets, receiver's losses) and is not used.
    """
    r = report["end"]["sum_received"]
    got = r["packets"] - r["lost_packets"]
    if got <= 0 or r["seconds"] <= 0 or abs(got - r["bytes"] // PAYLOAD) > 1:
        raise RuntimeError(f"unexpected iperf3 receiver summary: {r}")
    return got / r["seconds"]


@dataclass
class Rounds:
    """Received packets/s per round, one list per (direction, bandix on?)."""

    pps: dict[tuple[str, bool], list[float]] = field(default_factory=dict)

    def add(self, direction: str, with_bandix: bool, value: float) -> None:
        self.pps.setdefault((direction, with_bandix), []).append(value)

    def median(self, direction: str, with_bandix: bool) -> float:
        return statistics.median(self.pps[(direction, with_bandix)])

    def ratio(self, direction: str) -> float:
        return self.median(direction, True) / self.median(direction, False)

    def spread(self, direction: str) -> float:
        """Rough standard error of ratio(), from the round-to-round scatter (1.25 σ/√n per median).

        Says whether the machine was quiet enough for the target to be decided at all.
        """
        sides = [self.pps[(direction, on)] for on in (False, True)]
        if min(map(len, sides)) < 2:
            return math.nan
        rel2 = sum((statistics.stdev(xs) / statistics.median(xs)) ** 2 / len(xs) for xs in sides)
        return self.ratio(direction) * 1.2533 * math.sqrt(rel2)

    def pairwise(self, direction: str) -> float:
        """Median of with/without over adjacent rounds: less exposed to slow drifts."""
        return statistics.median(w / o for o, w in zip(self.pps[(direction, False)], self.pps[(direction, True)],
                                                        strict=True))


def alternate(vr: VirtualRouter, client: Client, rounds: int, seconds: float,
              set_bandix: Callable[[bool], None]) -> Rounds:
    """`rounds` pairs of (without, with); every phase measures each direction once."""
    out = Rounds()
    for _ in range(rounds):
        for on in (False, True):
            set_bandix(on)
            for d in ("upload", "download"):
                out.add(d, on, received_pps(udp_flood(vr, client, seconds, reverse=d == "download")))
    return out
