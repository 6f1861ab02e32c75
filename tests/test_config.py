"""Command-line flags: the upstream names and defaults, validation with clear errors."""

import ipaddress

import pytest

from bandix.config import parse_args
from bandix.macaddr import normalize_mac


def test_defaults_follow_upstream(tmp_path):
    o = parse_args(["--iface", "br-lan", "--config-dir", str(tmp_path)])
    assert o.ifaces == ["br-lan"]
    assert (o.port, o.listen, o.data_dir, o.log_level, o.tc_priority) == (8686, "127.0.0.1", "bandix-data", "info", 0)
    assert (o.traffic_retention_seconds, o.traffic_flush_interval_seconds, o.dns_max_records) == (600, 600, 10000)
    assert not (o.enable_traffic or o.enable_dns or o.enable_connection or o.web_log or o.traffic_persist_history)


def test_iface_repeats_and_subnets_parse(tmp_path):
    o = parse_args(["--config-dir", str(tmp_path), "--iface", "br-lan", "--iface", "br-guest", "--enable-traffic",
                    "--additional-subnets", "10.8.0.5/24, fd00:8::/64"])
    assert o.ifaces == ["br-lan", "br-guest"]
    assert o.additional_subnets == [ipaddress.ip_network("10.8.0.0/24"), ipaddress.ip_network("fd00:8::/64")]


@pytest.mark.parametrize("argv, message", [
    ([], "no LAN interface"),
    (["--iface", "br-lan", "--port", "0"], "outside 1..65535"),
    (["--iface", "br-lan", "--port", "http"], "not a whole number"),
    (["--iface", "br-lan", "--tc-priority", "-1"], "outside 0..65535"),
    (["--iface", "a" * 16], "not a valid interface name"),
    (["--iface", "br-lan", "--listen", "localhost"], "not an IP address"),
    (["--iface", "br-lan", "--additional-subnets", "10.0.0.0/33"], "not an IPv4 or IPv6 prefix"),
    (["--iface", "br-lan", "--log-level", "verbose"], "is not one of"),
    (["--iface", "br-lan", "--traffic-retention-seconds", "0"], "outside 1..86400"),
])
def test_bad_flags_exit_2_naming_the_problem(argv, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        parse_args(["--config-dir", str(tmp_path), *argv])
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


UCI_CONFIG = """
config bandix 'config'
	list iface 'br-lan'
	list iface 'br-guest'
	option port '9000'
	option traffic_enabled '1'
	option traffic_persist_history 'yes'
	option additional_subnets '10.8.0.0/24 fd00:8::/64'
	option log_level 'debug'
"""


def test_uci_sets_options_and_flags_win(tmp_path):
    (tmp_path / "bandix").write_text(UCI_CONFIG)
    o = parse_args(["--config-dir", str(tmp_path), "--port", "9100"])
    assert o.ifaces == ["br-lan", "br-guest"] and o.port == 9100 and o.log_level == "debug"
    assert o.enable_traffic and o.traffic_persist_history
    assert [str(n) for n in o.additional_subnets] == ["10.8.0.0/24", "fd00:8::/64"]
    assert parse_args(["--config-dir", str(tmp_path), "--iface", "eth9"]).ifaces == ["eth9"]


@pytest.mark.parametrize("line, message", [
    ("option port 'http'", "option port: 'http' is not a whole number"),
    ("option traffic_enabled 'maybe'", "option traffic_enabled: 'maybe' is not a boolean"),
    ("list iface 'a/b'", "option iface: 'a/b' is not a valid interface name"),
    ("option port", "'option' takes 2 arguments"),
])
def test_bad_uci_values_exit_2_naming_file_and_option(tmp_path, capsys, line, message):
    (tmp_path / "bandix").write_text(f"config bandix 'config'\n\t{line}\n")
    with pytest.raises(SystemExit) as exc:
        parse_args(["--config-dir", str(tmp_path), "--iface", "br-lan"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "bandix") in err and message in err
