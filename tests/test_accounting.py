"""Per-device bytes and packets equal the kernel's own view of the same packets.

Each window runs one kind of traffic (one family, one zone) between one client
and a real server, then compares bandix's counters with the client interface's
kernel counters over the same window: to the byte and to the packet.
"""

import pytest

from tests.traffic import Flow, counters, delta, iperf3, l3_truth, settle

CASES = {
    # name: (family, zone)
    "ipv4-wan": (4, "wan"),
    "ipv6-wan": (6, "wan"),
    "ipv4-lan": (4, "lan"),
    "ipv6-lan": (6, "lan"),
}


def _target(vrouter, family: int, zone: str):
    if zone == "wan":
        return vrouter.internet, vrouter.SERVER_V4 if family == 4 else vrouter.SERVER_V6
    v4, v6 = vrouter.bridge_addresses("br-lan")
    return vrouter.router, v4 if family == 4 else v6


@pytest.mark.parametrize("case", CASES)
def test_counts_equal_kernel_counters_exactly(vrouter, bandix, case):
    family, zone = CASES[case]
    other = "lan" if zone == "wan" else "wan"
    daemon = bandix()
    c1, c2 = vrouter.clients[0], vrouter.clients[1]
    server_ns, server_ip = _target(vrouter, family, zone)
    settle(daemon)
    before, link_before = counters(daemon), c1.ns.link_stats("eth0")

    # Upload and download over TCP, a UDP stream, and pings: every packet size.
    iperf3(c1, server_ns, server_ip, "-n", "300K")
    iperf3(c1, server_ns, server_ip, "-n", "300K", "-R")
    iperf3(c1, server_ns, server_ip, "-u", "-b", "2M", "-n", "50K", "-l", "700")
    c1.ns.run(["ping", f"-{family}", "-c", "3", "-i", "0.05", "-s", "1000", server_ip])

    settle(daemon)
    after, link_after = counters(daemon), c1.ns.link_stats("eth0")
    truth = l3_truth(c1, link_before, link_after)
    assert truth["tx"].bytes > 100_000 and truth["rx"].bytes > 100_000  # iperf3 may cut the tail of -n
    for direction in ("rx", "tx"):
        assert delta(after, before, (c1.mac, zone, direction)) == truth[direction], direction
        assert delta(after, before, (c1.mac, other, direction)) == Flow(0, 0), direction
    # The idle device saw nothing.
    for key in after:
        if key[0] == c2.mac:
            assert delta(after, before, key) == Flow(0, 0), key


def test_api_bytes_agree_with_metrics(vrouter, bandix):
    daemon = bandix()
    c1 = vrouter.clients[0]
    iperf3(c1, vrouter.internet, vrouter.SERVER_V4, "-n", "200K")
    settle(daemon)
    flows = counters(daemon)
    dev = daemon.devices()[c1.mac]
    for zone in ("lan", "wan"):
        for direction in ("rx", "tx"):
            assert dev[f"{zone}_{direction}_bytes"] == flows[(c1.mac, zone, direction)].bytes
    assert dev["total_rx_bytes"] == dev["lan_rx_bytes"] + dev["wan_rx_bytes"]
    assert dev["total_tx_bytes"] == dev["lan_tx_bytes"] + dev["wan_tx_bytes"]
    assert dev["wan_tx_bytes"] > 100_000  # iperf3 -n may cut the tail of its 200K
