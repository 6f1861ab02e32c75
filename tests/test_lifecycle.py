"""Stop, restart and crash: filters, pins and counters behave as a router owner expects."""

import json
import signal
import time
from pathlib import Path

import pytest

from bandix.bpf import layout
from tests.traffic import counters, delta, iperf3, l3_truth, settle

ROOT = Path(__file__).resolve().parents[1]
EMPTY_OBJECT = ROOT / "bench" / "empty.bpfel.o"


def tc_filters(vrouter, hook: str, iface: str = "br-lan") -> list[dict]:
    out = vrouter.router.run(["tc", "-j", "filter", "show", "dev", iface, hook]).stdout
    return [f for f in json.loads(out or "[]") if "options" in f]


def filter_names(vrouter, hook: str, iface: str = "br-lan") -> list[str]:
    return [f["options"].get("bpf_name", "") for f in tc_filters(vrouter, hook, iface)]


def test_sigterm_removes_only_our_filters_and_keeps_pins(vrouter, bandix, tmp_pin_dir):
    # A foreign program on the same clsact, as qosify or SQM would have.
    for hook in ("ingress", "egress"):
        vrouter.router.run(["tc", "qdisc", "replace", "dev", "br-lan", "clsact"])
        vrouter.router.run(["tc", "filter", "add", "dev", "br-lan", hook, "prio", "65000",
                            "bpf", "da", "obj", str(EMPTY_OBJECT), "sec", "tc"])
    daemon = bandix()
    for hook in ("ingress", "egress"):
        names = filter_names(vrouter, hook)
        assert sum(n.startswith("bandix") for n in names) == 1, names
    assert daemon.stop(signal.SIGTERM) == 0
    for hook in ("ingress", "egress"):
        names = filter_names(vrouter, hook)
        assert not any(n.startswith("bandix") for n in names), names
        assert len(names) == 1  # the foreign filter stays
    assert sorted(p.name for p in tmp_pin_dir.iterdir()) == sorted(layout.PINNED_MAPS)
    assert "filters removed" in daemon.log()


def test_sigint_stops_cleanly(vrouter, bandix):
    daemon = bandix()
    assert daemon.stop(signal.SIGINT) == 0
    assert not any(n.startswith("bandix") for n in filter_names(vrouter, "ingress"))


def _restart_keeps_every_byte(vrouter, bandix, stop_signal):
    c1 = vrouter.clients[0]
    daemon = bandix()
    iperf3(c1, vrouter.internet, vrouter.SERVER_V4, "-n", "100K")
    settle(daemon)
    before, link_before = counters(daemon), c1.ns.link_stats("eth0")
    daemon.stop(stop_signal)

    # Traffic while no daemon runs: the kernel keeps counting into the pins.
    iperf3(c1, vrouter.internet, vrouter.SERVER_V4, "-n", "200K")
    iperf3(c1, vrouter.internet, vrouter.SERVER_V6, "-n", "200K", "-R")
    time.sleep(0.3)
    link_after = c1.ns.link_stats("eth0")

    daemon = bandix()
    settle(daemon)
    after = counters(daemon)
    truth = l3_truth(c1, link_before, link_after)
    assert delta(after, before, (c1.mac, "wan", "tx")) == truth["tx"]
    assert delta(after, before, (c1.mac, "wan", "rx")) == truth["rx"]
    # One filter per hook: the new daemon took over the old one in place.
    for hook in ("ingress", "egress"):
        assert sum(n.startswith("bandix") for n in filter_names(vrouter, hook)) == 1
    return daemon


def test_restart_with_sigusr2_loses_no_byte(vrouter, bandix):
    daemon = _restart_keeps_every_byte(vrouter, bandix, signal.SIGUSR2)
    assert "took over bandix filter" in daemon.log()


def test_crash_loses_no_byte(vrouter, bandix):
    _restart_keeps_every_byte(vrouter, bandix, signal.SIGKILL)


def test_counters_continue_after_a_stop(vrouter, bandix):
    c1 = vrouter.clients[0]
    daemon = bandix()
    iperf3(c1, vrouter.internet, vrouter.SERVER_V4, "-n", "100K")
    settle(daemon)
    total = daemon.devices()[c1.mac]["wan_tx_bytes"]
    assert daemon.stop(signal.SIGTERM) == 0
    daemon = bandix()
    assert daemon.devices()[c1.mac]["wan_tx_bytes"] == total
    assert "continue from the pins" in daemon.log()


def test_second_daemon_on_the_same_interface_is_refused(vrouter, bandix, tmp_pin_dir):
    first = bandix()
    with pytest.raises(RuntimeError, match="exited with 2") as exc:
        bandix("--pin-dir", str(tmp_pin_dir) + "-second", port=8687)
    assert "already uses interface br-lan" in str(exc.value)
    assert first.proc.poll() is None
    assert sum(n.startswith("bandix") for n in filter_names(vrouter, "ingress")) == 1


def test_filters_removed_by_hand_are_attached_again(vrouter, bandix):
    c1 = vrouter.clients[0]
    daemon = bandix()
    vrouter.router.run(["tc", "qdisc", "del", "dev", "br-lan", "clsact"])
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not any(n.startswith("bandix") for n in filter_names(vrouter, "egress")):
        time.sleep(0.3)
    assert any(n.startswith("bandix") for n in filter_names(vrouter, "ingress"))
    settle(daemon)
    before = counters(daemon)
    iperf3(c1, vrouter.internet, vrouter.SERVER_V4, "-n", "100K")
    settle(daemon)
    assert delta(counters(daemon), before, (c1.mac, "wan", "tx")).bytes > 50_000


def test_recreated_interface_is_attached_again(vrouter, bandix):
    """netifd rebuilds br-lan on a network restart: bandix follows the new one."""
    c1 = vrouter.clients[0]
    r = vrouter.router
    daemon = bandix()
    v4, v6 = vrouter.bridge_addresses("br-lan")
    r.ip("link", "del", "br-lan")
    r.ip_batch([
        f"link add br-lan address {vrouter.bridge_mac('br-lan')} type bridge stp_state 0 forward_delay 0",
        *(f"link set {c.port} master br-lan" for c in vrouter.clients),
        f"addr add {v4}/24 dev br-lan", f"addr add {v6}/64 dev br-lan nodad", "link set br-lan up",
        *(f"neigh replace {a} lladdr {c.mac} dev br-lan nud permanent"
          for c in vrouter.clients for a in (c.ipv4, c.ipv6)),
    ])
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not any(n.startswith("bandix") for n in filter_names(vrouter, "egress")):
        time.sleep(0.3)
    assert any(n.startswith("bandix") for n in filter_names(vrouter, "ingress"))
    assert "was recreated" in daemon.log()
    settle(daemon)
    before, link_before = counters(daemon), c1.ns.link_stats("eth0")
    iperf3(c1, vrouter.internet, vrouter.SERVER_V4, "-n", "100K")
    iperf3(c1, r, v4, "-n", "50K")  # LAN: the prefix of the new br-lan is known again
    settle(daemon)
    truth = l3_truth(c1, link_before, c1.ns.link_stats("eth0"))
    after = counters(daemon)
    tx = delta(after, before, (c1.mac, "wan", "tx")).bytes + delta(after, before, (c1.mac, "lan", "tx")).bytes
    assert tx == truth["tx"].bytes
    assert delta(after, before, (c1.mac, "lan", "tx")).bytes > 25_000
