"""What the device list shows: every client, its address, and rates that match
the traffic generator."""

import statistics
import time

import pytest

from tests.traffic import iperf3, settle

UDP_LEN = 1200
UDP_L3 = UDP_LEN + 8 + 20  # + UDP and IPv4 headers: bandix counts L3 bytes


def test_every_client_appears_with_its_mac_and_ipv4(vrouter, bandix):
    daemon = bandix()
    for c in vrouter.clients:
        c.ns.run(["ping", "-c", "1", "-W", "2", vrouter.SERVER_V4])
    settle(daemon)
    devices = daemon.devices()
    assert set(devices) == {c.mac for c in vrouter.clients}
    for c in vrouter.clients:
        assert devices[c.mac]["ip"] == c.ipv4
        assert devices[c.mac]["last_online_ts"] > 0


@pytest.mark.parametrize("vrouter", [{"clients": 2, "static_neighbours": False}], indirect=True)
def test_addresses_are_learned_from_the_neighbour_table(vrouter, bandix):
    """With ARP/ND as on a real LAN, the kernel's neighbour events name the devices."""
    daemon = bandix()
    for c in vrouter.clients:
        c.ns.run(["ping", "-c", "1", "-W", "2", vrouter.bridge_addresses("br-lan")[0]])
    settle(daemon)
    devices = daemon.devices()
    for c in vrouter.clients:
        assert devices[c.mac]["ip"] == c.ipv4


@pytest.mark.parametrize("direction", ["upload", "download"])
def test_rate_matches_the_generator_within_5_percent(vrouter, bandix, direction):
    daemon = bandix()
    c1 = vrouter.clients[0]
    seconds = 8
    args = ["-u", "-b", "40M", "-l", str(UDP_LEN), "-t", str(seconds)]
    started = time.time() * 1000
    report = iperf3(c1, vrouter.internet, vrouter.SERVER_V4, *args, *(["-R"] if direction == "download" else []))
    settle(daemon)
    # Generator rate at L3: payload bytes per second scaled by the header overhead.
    summary = report["end"]["sum"]
    sent_rate = summary["bytes"] / summary["seconds"] * UDP_L3 / UDP_LEN
    status, body = daemon.get(f"/api/traffic/metrics?mac={c1.mac}")
    assert status == 200
    column = 6 if direction == "upload" else 5  # wan_tx_rate / wan_rx_rate
    # The steady middle of the run: skip the first and last two seconds.
    samples = [r[column] for r in body["data"]["metrics"] if started + 2000 <= r[0] <= started + (seconds - 2) * 1000]
    assert len(samples) >= seconds - 5
    measured = statistics.mean(samples)
    assert abs(measured - sent_rate) <= 0.05 * sent_rate, (measured, sent_rate, samples)
    # Realtime rows of the device and of all devices agree while it is the only one talking.
    all_rows = {r[0]: r for r in daemon.get("/api/traffic/metrics")[1]["data"]["metrics"]}
    for row in body["data"]["metrics"]:
        assert all_rows[row[0]][column] >= row[column]
