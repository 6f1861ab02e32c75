"""Rules by id, the default limit and whitelist, and quotas through the API: shapes against the
OpenAPI document, UCI as the store, and every field of bad input refused with nothing written."""

import pytest

from tests.bandixd import busy_router
from tests.test_limits_api import uci_text, validate

SCHEDULE = "/api/traffic/limits/schedule"
DEFAULT = "/api/traffic/rate_limit/default"
WHITELIST = "/api/traffic/rate_limit/whitelist"
ENABLED = "/api/traffic/rate_limit/whitelist/enabled"
QUOTAS = "/api/traffic/quotas"
MAC = "02:bd:00:00:00:01"
SLOT = {"start": "08:00", "end": "09:00", "days": [6]}
RULE = {"mac": MAC, "time_slot": SLOT, "wan_rx_rate_limit": 1000, "wan_tx_rate_limit": 2000}
QUOTA = {"mac": MAC, "period": "week", "bytes": 5 * 10**9, "direction": "rx", "action": "throttle",
         "throttle_rx_rate": 125000, "throttle_tx_rate": 0, "reset_day": 7, "reset_hour": 4}
HAND = ("# written by hand\nconfig bandix 'config'\n\toption traffic_enabled '1'\n\n"
        "config limit\n\toption mac '02:bd:00:00:00:09'\n\toption start '00:00'\n\toption end '24:00'\n"
        "\tlist days '7'\n\toption wan_rx_rate_limit '100'\n")


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    config = tmp_path_factory.mktemp("config")
    (config / "bandix").write_text(HAND)
    with busy_router([], config_dir=config) as shared:
        yield shared


@pytest.fixture
def daemon(api):
    assert api[1].proc.poll() is None
    return api[1]


def test_rules_carry_ids_and_an_unnamed_section_keeps_its_id_until_named_by_an_edit(daemon):
    status, body = daemon.get(SCHEDULE)
    validate(body, "ScheduleResponse")
    (hand,) = body["data"]["limits"]
    assert hand["id"].startswith("cfg") and len(hand["id"]) == 9
    assert daemon.get(SCHEDULE)[1]["data"]["limits"][0]["id"] == hand["id"]  # stable
    status, body = daemon.send("PUT", SCHEDULE, {**RULE, "mac": "02:BD:00:00:00:09", "id": hand["id"]})
    assert status == 200, body
    validate(body, "StoredRuleResponse")
    assert body["data"]["limit"] == {**RULE, "mac": "02:bd:00:00:00:09", "id": hand["id"]}
    assert f"config limit '{hand['id']}'\n" in uci_text(daemon)
    assert daemon.get(SCHEDULE)[1]["data"]["limits"] == [body["data"]["limit"]]
    before = uci_text(daemon)
    assert daemon.send("PUT", SCHEDULE, {**RULE, "id": "limit_nosuch"})[0] == 404
    assert daemon.send("DELETE", SCHEDULE, {"id": "limit_nosuch"})[0] == 404
    assert uci_text(daemon) == before
    status, body = daemon.send("DELETE", SCHEDULE, {"id": hand["id"]})
    validate(body, "DeletedRuleResponse")
    assert daemon.get(SCHEDULE)[1]["data"]["limits"] == []


def test_default_limit_and_whitelist_round_trip(daemon):
    status, body = daemon.get(DEFAULT)
    validate(body, "DefaultLimitResponse")
    assert body["data"] == {"wan_rx_rate_limit": 0, "wan_tx_rate_limit": 0, "enabled": False}
    status, body = daemon.send("POST", DEFAULT, {"wan_rx_rate_limit": 250000, "wan_tx_rate_limit": 125000})
    assert body["data"] == {"wan_rx_rate_limit": 250000, "wan_tx_rate_limit": 125000, "enabled": False}
    status, body = daemon.send("POST", WHITELIST, {"mac": MAC.upper().replace(":", "-")})
    validate(body, "WhitelistResponse")
    assert body["data"] == {"enabled": False, "macs": [MAC]}
    assert daemon.send("POST", WHITELIST, {"mac": MAC})[1]["data"]["macs"] == [MAC]  # once only
    assert daemon.send("POST", ENABLED, {"enabled": True})[1]["data"] == {"enabled": True, "macs": [MAC]}
    assert ("config default_limit 'default_limit'\n\toption wan_rx_rate_limit '250000'\n"
            "\toption wan_tx_rate_limit '125000'\n\tlist whitelist '02:bd:00:00:00:01'\n\toption enabled '1'\n"
            ) in uci_text(daemon)
    assert daemon.get(WHITELIST)[1]["data"] == {"enabled": True, "macs": [MAC]}
    assert daemon.send("DELETE", WHITELIST, {"mac": MAC})[1]["data"]["macs"] == []
    before = uci_text(daemon)
    assert daemon.send("DELETE", WHITELIST, {"mac": MAC})[0] == 404
    assert daemon.send("POST", ENABLED, {"enabled": False})[0] == 200
    assert daemon.get(DEFAULT)[1]["data"]["enabled"] is False
    assert uci_text(daemon) == before.replace("option enabled '1'", "option enabled '0'")


def test_quotas_round_trip(daemon):
    status, body = daemon.send("POST", QUOTAS, QUOTA)
    assert status == 200, body
    validate(body, "QuotaResponse")
    qid = body["data"]["quota"]["id"]
    assert body["data"]["quota"] == {**QUOTA, "id": qid}
    assert f"config quota '{qid}'\n\toption mac '{MAC}'\n\toption period 'week'\n" in uci_text(daemon)
    # A second POST for the device replaces its quota, same id; "*" is the default one.
    assert daemon.send("POST", QUOTAS, {**QUOTA, "bytes": 10**6})[1]["data"]["quota"]["id"] == qid
    status, body = daemon.send("POST", QUOTAS, {**QUOTA, "mac": "*", "period": "month", "reset_day": 28})
    default_id = body["data"]["quota"]["id"]
    status, body = daemon.get(QUOTAS)
    validate(body, "QuotasResponse")
    assert [q["id"] for q in body["data"]["quotas"]] == [qid, default_id]
    status, body = daemon.send("PUT", QUOTAS, {**QUOTA, "id": qid, "period": "day", "action": "block"})
    assert status == 200 and body["data"]["quota"] == {**QUOTA, "id": qid, "period": "day", "action": "block"}
    before = uci_text(daemon)
    assert daemon.send("PUT", QUOTAS, {**QUOTA, "id": default_id})[0] == 409  # MAC has the quota qid
    assert daemon.send("PUT", QUOTAS, {**QUOTA, "id": "quota_nosuch"})[0] == 404
    assert daemon.send("DELETE", QUOTAS, {"id": "quota_nosuch"})[0] == 404
    assert uci_text(daemon) == before
    for device in daemon.devices().values():  # the default quota applies to every device
        validate({"status": "success", "data": {"devices": [device]}}, "DevicesResponse")
        assert device["quota_state"] == "ok" and device["quota_bytes"] > 0
    for q in (qid, default_id):
        status, body = daemon.send("DELETE", QUOTAS, {"id": q})
        validate(body, "DeletedQuotaResponse")
    assert daemon.get(QUOTAS)[1]["data"]["quotas"] == []
    assert all(d["quota_state"] == "none" for d in daemon.devices().values())


RAW = [(b"", "body"), (b"{not json", "body"), (b"[1]", "body"), (b'"x"', "body")]
BAD = {
    ("PUT", SCHEDULE): RAW + [
        (RULE, "id"), ({**RULE, "id": ""}, "id"), ({**RULE, "id": "a b"}, "id"), ({**RULE, "id": "x" * 65}, "id"),
        ({**RULE, "id": 5}, "id"), ({**RULE, "id": "r1", "mac": "zz"}, "mac"),
        ({**RULE, "id": "r1", "time_slot": {**SLOT, "days": [8]}}, "time_slot.days"),
        ({**RULE, "id": "r1", "wan_rx_rate_limit": -1}, "wan_rx_rate_limit"),
        ({**RULE, "id": "r1", "extra": 1}, "extra")],
    ("DELETE", SCHEDULE): [({"id": "r1", "mac": MAC}, "mac"), ({"id": "é"}, "id"), ({"id": None}, "id")],
    ("POST", DEFAULT): RAW + [
        ({"wan_rx_rate_limit": 1}, "wan_tx_rate_limit"), ({"wan_tx_rate_limit": 1}, "wan_rx_rate_limit"),
        ({"wan_rx_rate_limit": -1, "wan_tx_rate_limit": 0}, "wan_rx_rate_limit"),
        ({"wan_rx_rate_limit": 0, "wan_tx_rate_limit": 1.5}, "wan_tx_rate_limit"),
        ({"wan_rx_rate_limit": 0, "wan_tx_rate_limit": 10**15}, "wan_tx_rate_limit"),
        ({"wan_rx_rate_limit": 0, "wan_tx_rate_limit": 0, "enabled": True}, "enabled")],
    ("POST", WHITELIST): RAW + [({}, "mac"), ({"mac": "02:bd:00:00:00"}, "mac"), ({"mac": MAC, "x": 1}, "x"),
                                ({"mac": "*"}, "mac")],
    ("DELETE", WHITELIST): [({}, "mac"), ({"mac": 1}, "mac")],
    ("POST", ENABLED): RAW + [({}, "enabled"), ({"enabled": 1}, "enabled"), ({"enabled": "true"}, "enabled"),
                              ({"enabled": True, "x": 0}, "x")],
    ("POST", QUOTAS): RAW + [
        ({k: v for k, v in QUOTA.items() if k != "bytes"}, "bytes"), ({**QUOTA, "mac": "**"}, "mac"),
        ({**QUOTA, "period": "year"}, "period"), ({**QUOTA, "bytes": 0}, "bytes"), ({**QUOTA, "bytes": "5"}, "bytes"),
        ({**QUOTA, "bytes": 2**62 + 1}, "bytes"), ({**QUOTA, "direction": "up"}, "direction"),
        ({**QUOTA, "action": "drop"}, "action"), ({**QUOTA, "throttle_rx_rate": -1}, "throttle_rx_rate"),
        ({**QUOTA, "throttle_tx_rate": True}, "throttle_tx_rate"), ({**QUOTA, "reset_day": 8}, "reset_day"),
        ({**QUOTA, "period": "month", "reset_day": 29}, "reset_day"), ({**QUOTA, "reset_day": 0}, "reset_day"),
        ({**QUOTA, "reset_hour": 24}, "reset_hour"), ({**QUOTA, "id": "q1"}, "id"), ({**QUOTA, "x": 1}, "x")],
    ("PUT", QUOTAS): [(QUOTA, "id"), ({**QUOTA, "id": "q 1"}, "id"), ({**QUOTA, "id": "q1", "period": 1}, "period")],
    ("DELETE", QUOTAS): RAW + [({}, "id"), ({"id": "q1", "mac": MAC}, "mac"), ({"id": ["q1"]}, "id")],
}
CASES = [(method, path, body, field) for (method, path), cases in BAD.items() for body, field in cases]


@pytest.mark.parametrize("method, path, body, field", CASES,
                         ids=[f"{m}-{p.rsplit('/', 1)[1]}-{f}-{i}" for i, (m, p, _, f) in enumerate(CASES)])
def test_bad_input_is_refused_with_the_fields_name_and_changes_nothing(daemon, method, path, body, field):
    before = uci_text(daemon)
    status, reply = daemon.send(method, path, body)
    assert status == 400, reply
    validate(reply, "Error")
    assert reply["message"].startswith(field + ":"), reply["message"]
    assert uci_text(daemon) == before


def request_schema(method: str, path: str) -> dict:
    from tests.test_api import OPENAPI

    schema = OPENAPI["paths"][path][method.lower()]["requestBody"]["content"]["application/json"]["schema"]
    return {**schema, "components": OPENAPI["components"]}


GOOD = [("PUT", SCHEDULE, {**RULE, "id": "cfg0a1b2c", "mac": "02-BD-00-00-00-01"}), ("DELETE", SCHEDULE, {"id": "r1"}),
        ("DELETE", SCHEDULE, {"mac": MAC, "time_slot": SLOT}),
        ("POST", DEFAULT, {"wan_rx_rate_limit": 0, "wan_tx_rate_limit": 12_500_000_000}),
        ("POST", WHITELIST, {"mac": "02:BD:00:00:00:01"}), ("POST", ENABLED, {"enabled": False}),
        ("POST", QUOTAS, QUOTA), ("POST", QUOTAS, {**QUOTA, "mac": "*", "period": "month", "reset_day": 28}),
        ("POST", QUOTAS, {**QUOTA, "period": "day", "reset_day": 20}), ("PUT", QUOTAS, {**QUOTA, "id": "q-1"}),
        ("DELETE", QUOTAS, {"id": "q_1"})]


def test_the_document_takes_what_the_server_takes_and_refuses_the_rest():
    """What schemathesis relies on: the OpenAPI request schemas agree with the server's validation."""
    import jsonschema

    for method, path, body in GOOD:
        jsonschema.Draft202012Validator(request_schema(method, path)).validate(body)
    for method, path, body, field in CASES:
        if isinstance(body, bytes):
            continue  # not JSON at all
        assert not jsonschema.Draft202012Validator(request_schema(method, path)).is_valid(body), (method, path, field)


@pytest.mark.parametrize("method, path, body", GOOD, ids=[f"{m}-{p.rsplit('/', 1)[1]}-{i}" for i, (m, p, _) in
                                                          enumerate(GOOD)])
def test_what_the_document_takes_the_server_takes(daemon, method, path, body):
    status, reply = daemon.send(method, path, body)
    assert status in (200, 404), reply  # 404: a well-formed id or device that is not there
    if status == 404:
        assert method in ("PUT", "DELETE"), reply
