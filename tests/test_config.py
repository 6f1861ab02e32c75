"""Command-line flags: the upstream names and defaults, validation with clear errors."""

import ipaddress

import pytest

from bandix.config import parse_args
from bandix.macaddr import normalize_mac


def test_defaults_follow_upstream():
    o = parse_args(["--iface", "br-lan"])
    assert o.ifaces == ["br-lan"]
    assert (o.port, o.listen, o.data_dir, o.log_level, o.tc_priority) == (8686, "127.0.0.1", "bandix-data", "info", 0)
    assert (o.traffic_retention_seconds, o.traffic_flush_interval_seconds, o.dns_max_records) == (600, 600, 10000)
    assert not (o.enable_traffic or o.enable_dns or o.enable_connection or o.web_log or o.traffic_persist_history)


def test_iface_repeats_and_subnets_parse():
    o = parse_args(["--iface", "br-lan", "--iface", "br-guest", "--enable-traffic",
                    "--additional-subnets", "10.8.0.5/24, fd00:8::/64"])
    assert o.ifaces == ["br-lan", "br-guest"]
    assert o.additional_subnets == [ipaddress.ip_network("10.8.0.0/24"), ipaddress.ip_network("fd00:8::/64")]


@pytest.mark.parametrize("argv, message", [
    ([], "--iface"),
    (["--iface", "br-lan", "--port", "0"], "outside 1..65535"),
    (["--iface", "br-lan", "--port", "http"], "not a whole number"),
    (["--iface", "br-lan", "--tc-priority", "-1"], "outside 0..65535"),
    (["--iface", "a" * 16], "not a valid interface name"),
    (["--iface", "br-lan", "--listen", "localhost"], "not an IP address"),
    (["--iface", "br-lan", "--additional-subnets", "10.0.0.0/33"], "not an IPv4 or IPv6 prefix"),
    (["--iface", "br-lan", "--log-level", "verbose"], "invalid choice"),
    (["--iface", "br-lan", "--traffic-retention-seconds", "0"], "outside 1..86400"),
])
def test_bad_flags_exit_2_naming_the_problem(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        parse_args(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("text, expected", [
    ("AA:BB:CC:DD:EE:FF", "aa:bb:cc:dd:ee:ff"),
    ("aa-bb-cc-dd-ee-0f", "aa:bb:cc:dd:ee:0f"),
])
def test_mac_forms(text, expected):
    assert normalize_mac(text) == expected


@pytest.mark.parametrize("text", ["", "aa:bb:cc:dd:ee", "aa:bb-cc:dd:ee:ff", "gg:bb:cc:dd:ee:ff",
                                  "aa:bb:cc:dd:ee:ff:00", "aabb.ccdd.eeff", "aa:bb:cc:dd:ee:ff\n"])
def test_bad_macs(text):
    with pytest.raises(ValueError):
        normalize_mac(text)
