"""Schedules and bindings through the API: shapes, validation of every field,
nothing written on bad input, UCI as the store, SIGHUP, and hostnames."""

import signal
import time

import jsonschema
import pytest

from tests.bandixd import busy_router
from tests.test_api import OPENAPI

SCHEDULE = "/api/traffic/limits/schedule"
BINDINGS = "/api/traffic/bindings"
MAC = "02:bd:00:00:00:01"
SLOT = {"start": "22:00", "end": "06:00", "days": [1, 2, 3, 4, 5]}
GOOD = {"mac": MAC, "time_slot": SLOT, "wan_rx_rate_limit": 1048576, "wan_tx_rate_limit": 524288}
LEASES = "1795400000 02:bd:00:00:00:02 192.168.77.12 phone 01:02:bd:00:00:00:02\n" \
         "1795400000 02:bd:00:00:00:03 192.168.77.13 * *\n" \
         "duid 00:01:00:01:2a:2b:2c:2d:02:bd:00:00:00:01\n"


def validate(body, name):
    jsonschema.Draft202012Validator({"$ref": f"#/components/schemas/{name}",
                                     "components": OPENAPI["components"]}).validate(body)


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    config = tmp_path_factory.mktemp("config")
    leases = config / "dhcp.leases"
    leases.write_text(LEASES)
    (config / "bandix").write_text("# written by hand\nconfig bandix 'config'\n\toption traffic_enabled '1'\n")
    with busy_router(["--leases-file", str(leases)], config_dir=config) as shared:
        yield shared


@pytest.fixture
def daemon(api):
    d = api[1]
    assert d.proc.poll() is None
    return d


def uci_text(daemon) -> str:
    return (daemon.config_dir / "bandix").read_text()


def test_schedule_round_trip_in_the_seed_shape(daemon):
    status, body = daemon.send("POST", SCHEDULE, {**GOOD, "mac": MAC.upper().replace(":", "-")})
    assert status == 200
    rule_id = body["data"]["limit"]["id"]
    assert body["data"]["limit"] == {**GOOD, "id": rule_id}
    status, body = daemon.get(SCHEDULE)
    validate(body, "ScheduleResponse")
    assert body["data"]["limits"] == [{**GOOD, "id": rule_id}]
    text = uci_text(daemon)
    assert text.startswith("# written by hand\n") and "option traffic_enabled '1'" in text
    assert (f"config limit '{rule_id}'\n\toption mac '02:bd:00:00:00:01'\n\toption start '22:00'\n"
            "\toption end '06:00'\n") in text
    # The same device and slot again: its limits change, no second rule.
    assert daemon.send("POST", SCHEDULE, {**GOOD, "wan_tx_rate_limit": 0})[1]["data"]["limit"]["id"] == rule_id
    assert daemon.get(SCHEDULE)[1]["data"]["limits"] == [{**GOOD, "wan_tx_rate_limit": 0, "id": rule_id}]
    status, body = daemon.send("DELETE", SCHEDULE, {"mac": MAC, "time_slot": SLOT})
    assert status == 200
    assert daemon.get(SCHEDULE)[1]["data"]["limits"] == []
    status, body = daemon.send("DELETE", SCHEDULE, {"mac": MAC, "time_slot": SLOT})
    assert status == 404 and body["status"] == "error"
    # An end equal to the start is the 24 hours from the start (the wrap rule), not an error.
    whole = {**GOOD, "time_slot": {**SLOT, "end": SLOT["start"]}}
    status, body = daemon.send("POST", SCHEDULE, whole)
    assert status == 200 and body["data"]["limit"]["time_slot"] == whole["time_slot"], body
    assert daemon.send("DELETE", SCHEDULE, {"id": body["data"]["limit"]["id"]})[0] == 200
    assert daemon.get(SCHEDULE)[1]["data"]["limits"] == []


BAD_SCHEDULES = [
    (b"", "body"), (b"{not json", "body"), (b"[1, 2]", "body"), (b'"text"', "body"),
    ({**GOOD, "mac": "02:bd:00:00:00"}, "mac"), ({**GOOD, "mac": 12}, "mac"),
    ({k: v for k, v in GOOD.items() if k != "mac"}, "mac"),
    ({**GOOD, "time_slot": "22:00-06:00"}, "time_slot"),
    ({**GOOD, "time_slot": {**SLOT, "start": "7:00"}}, "time_slot.start"),
    ({**GOOD, "time_slot": {**SLOT, "start": "24:00"}}, "time_slot.start"),
    ({**GOOD, "time_slot": {**SLOT, "end": "24:30"}}, "time_slot.end"),
    ({**GOOD, "time_slot": {**SLOT, "days": []}}, "time_slot.days"),
    ({**GOOD, "time_slot": {**SLOT, "days": [0]}}, "time_slot.days"),
    ({**GOOD, "time_slot": {**SLOT, "days": [1, 1]}}, "time_slot.days"),
    ({**GOOD, "time_slot": {**SLOT, "days": ["1"]}}, "time_slot.days"),
    ({**GOOD, "time_slot": {**SLOT, "extra": 1}}, "time_slot.extra"),
    ({**GOOD, "wan_rx_rate_limit": -5}, "wan_rx_rate_limit"),
    ({**GOOD, "wan_rx_rate_limit": "1000"}, "wan_rx_rate_limit"),
    ({**GOOD, "wan_tx_rate_limit": True}, "wan_tx_rate_limit"),
    ({**GOOD, "wan_tx_rate_limit": 10**15}, "wan_tx_rate_limit"),
    ({**GOOD, "priority": 1}, "priority"),
]


@pytest.mark.parametrize("body, field", BAD_SCHEDULES, ids=[f for _, f in BAD_SCHEDULES])
def test_bad_schedules_are_refused_and_change_nothing(daemon, body, field):
    before = uci_text(daemon)
    for method in ("POST", "DELETE"):
        if method == "DELETE" and field.startswith("wan_"):
            continue  # DELETE does not need limits, but checks their type too
        status, reply = daemon.send(method, SCHEDULE, body)
        assert status == 400, (method, reply)
        validate(reply, "Error")
        assert reply["message"].startswith(field + ":"), reply["message"]
    assert uci_text(daemon) == before
    assert daemon.get(SCHEDULE)[1]["data"]["limits"] == []


def test_oversized_body_is_refused(daemon):
    """waitress refuses it (max_request_body_size) before the app reads it: its own text."""
    from tests.bandixd import http_request

    before = (daemon.config_dir / "bandix").read_bytes()
    status, _, _ = http_request(daemon.ns, "POST", SCHEDULE, b"{" + b" " * 70000 + b"}", daemon.port)
    assert status == 413 and (daemon.config_dir / "bandix").read_bytes() == before


def test_bindings_name_devices_and_an_empty_name_removes_them(api, daemon):
    router = api[0]
    c1, c2, c3 = router.clients
    devices = daemon.devices()
    assert devices[c2.mac]["hostname"] == "phone"  # from the leases file
    assert devices[c3.mac]["hostname"] == ""  # the lease has no name
    assert devices[c1.mac]["hostname"] == ""
    assert daemon.send("POST", BINDINGS, {"mac": c2.mac.upper(), "hostname": "Anna's phone"})[0] == 200
    assert daemon.send("POST", BINDINGS, {"mac": c1.mac, "hostname": "Wohnzimmer-TV"})[0] == 200
    status, body = daemon.get(BINDINGS)
    validate(body, "BindingsResponse")
    assert body["data"]["bindings"] == [{"mac": c1.mac, "hostname": "Wohnzimmer-TV"},
                                        {"mac": c2.mac, "hostname": "Anna's phone"}]
    devices = daemon.devices()
    assert devices[c2.mac]["hostname"] == "Anna's phone"  # the binding wins over the lease
    assert "option hostname 'Anna'\\''s phone'" in uci_text(daemon)
    assert daemon.send("POST", BINDINGS, {"mac": c2.mac, "hostname": ""})[0] == 200
    assert daemon.devices()[c2.mac]["hostname"] == "phone"
    assert [b["mac"] for b in daemon.get(BINDINGS)[1]["data"]["bindings"]] == [c1.mac]


@pytest.mark.parametrize("body, field", [
    ({"mac": "nope", "hostname": "x"}, "mac"),
    ({"mac": MAC, "hostname": "x" * 65}, "hostname"),
    ({"mac": MAC, "hostname": "bad<script>"}, "hostname"),
    ({"mac": MAC, "hostname": " padded"}, "hostname"),
    ({"mac": MAC, "hostname": 5}, "hostname"),
    ({"mac": MAC}, "hostname"),
    ({"mac": MAC, "hostname": "x", "ip": "1.2.3.4"}, "ip"),
])
def test_bad_bindings_are_refused_and_change_nothing(daemon, body, field):
    before = uci_text(daemon)
    status, reply = daemon.send("POST", BINDINGS, body)
    assert status == 400 and reply["message"].startswith(field + ":"), reply
    assert uci_text(daemon) == before


def test_sighup_reads_the_file_again_and_keeps_state(api, daemon):
    c1 = api[0].clients[0]
    before = daemon.devices()[c1.mac]
    rows = len(daemon.get("/api/traffic/metrics")[1]["data"]["metrics"])
    path = daemon.config_dir / "bandix"
    path.write_text(path.read_text() + "\nconfig limit 'by_hand'\n\toption mac '" + c1.mac.upper()
                    + "'\n\toption start '00:00'\n\toption end '24:00'\n\toption days '1 2 3 4 5 6 7'\n"
                    "\toption wan_rx_rate_limit '1000000'\n"
                    "\nconfig limit\n\toption mac 'garbage'\n")
    daemon.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and daemon.devices()[c1.mac]["wan_rx_rate_limit"] == 0:
        time.sleep(0.2)
    after = daemon.devices()[c1.mac]
    assert (after["wan_rx_rate_limit"], after["wan_tx_rate_limit"]) == (1000000, 0)
    assert after["total_tx_bytes"] >= before["total_tx_bytes"]  # nothing in memory was lost
    assert len(daemon.get("/api/traffic/metrics")[1]["data"]["metrics"]) >= rows
    log = daemon.log()
    assert "reloaded" in log and "ignoring limit section cfg" in log and "garbage" in log
    # A file that no longer parses: the previous configuration stays.
    path.write_text(path.read_text() + "\nconfig 'broken\n")
    daemon.proc.send_signal(signal.SIGHUP)
    time.sleep(2)
    assert daemon.proc.poll() is None
    assert daemon.devices()[c1.mac]["wan_rx_rate_limit"] == 1000000
    assert "reload failed, keeping the previous configuration" in daemon.log()
    path.write_text(path.read_text().replace("\nconfig 'broken\n", "").replace("1000000", "0"))
    daemon.proc.send_signal(signal.SIGHUP)
    time.sleep(2)
