"""Which limit is in force when: slots, midnight, days, overlaps, time zones."""

import os
import time
from datetime import UTC, datetime

import pytest

from bandix.localtime import weekday_minute
from bandix.schedule import Rule, TimeSlot, ValidationError, effective_limits, parse_rule

MAC = "02:bd:00:00:00:01"
OTHER = "02:bd:00:00:00:02"
MON, TUE, WED, SUN = 1, 2, 3, 7


def rule(start, end, days, rx, tx, mac=MAC):
    return parse_rule({"mac": mac, "time_slot": {"start": start, "end": end, "days": days},
                       "wan_rx_rate_limit": rx, "wan_tx_rate_limit": tx})


def at(day, hhmm):
    h, m = map(int, hhmm.split(":"))
    return day, h * 60 + m


def test_slot_includes_start_and_excludes_end():
    r = [rule("09:00", "18:00", [MON], 100, 100)]
    assert effective_limits(r, *at(MON, "08:59")) == {}
    assert effective_limits(r, *at(MON, "09:00")) == {MAC: (100, 100)}
    assert effective_limits(r, *at(MON, "17:59")) == {MAC: (100, 100)}
    assert effective_limits(r, *at(MON, "18:00")) == {}
    assert effective_limits(r, *at(TUE, "10:00")) == {}


def test_slot_past_midnight_belongs_to_the_day_it_starts():
    r = [rule("22:00", "06:00", [MON], 5, 5)]
    assert effective_limits(r, *at(MON, "21:59")) == {}
    assert effective_limits(r, *at(MON, "22:00")) == {MAC: (5, 5)}
    assert effective_limits(r, *at(TUE, "05:59")) == {MAC: (5, 5)}
    assert effective_limits(r, *at(TUE, "06:00")) == {}
    assert effective_limits(r, *at(MON, "03:00")) == {}  # Sunday night was not in the rule
    sunday = [rule("23:00", "01:00", [SUN], 7, 7)]
    assert effective_limits(sunday, *at(MON, "00:30")) == {MAC: (7, 7)}  # the week wraps too


def test_whole_day_and_24_00():
    r = [rule("00:00", "24:00", [WED], 1, 1)]
    assert effective_limits(r, *at(WED, "00:00")) == effective_limits(r, *at(WED, "23:59")) == {MAC: (1, 1)}
    assert effective_limits(r, *at(TUE, "23:59")) == effective_limits(r, *at(4, "00:00")) == {}


def test_overlaps_take_the_lowest_nonzero_limit_per_direction():
    r = [rule("08:00", "20:00", [MON], 1000, 0), rule("12:00", "14:00", [MON], 3000, 200),
         rule("12:30", "13:00", [MON], 0, 0), rule("00:00", "24:00", [MON], 500, 0, mac=OTHER)]
    assert effective_limits(r, *at(MON, "09:00")) == {MAC: (1000, 0), OTHER: (500, 0)}
    assert effective_limits(r, *at(MON, "12:45")) == {MAC: (1000, 200), OTHER: (500, 0)}
    only_zero = [rule("00:00", "24:00", [MON], 0, 0)]
    assert effective_limits(only_zero, *at(MON, "12:00")) == {}


@pytest.fixture
def tz():
    saved = os.environ.get("TZ")

    def use(zone):
        os.environ["TZ"] = zone
        time.tzset()

    yield use
    if saved is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = saved
    time.tzset()


def utc(*args):
    return datetime(*args, tzinfo=UTC).timestamp()


def test_local_time_follows_the_zone_and_daylight_saving(tz):
    tz("CET-1CEST,M3.5.0,M10.5.0/3")  # Central Europe, as OpenWrt writes it
    r = [rule("02:00", "03:00", [SUN], 9, 9)]
    # 2026-03-29 is the last Sunday of March: at 01:00 UTC the clocks jump from 02:00 to 03:00.
    assert weekday_minute(utc(2026, 3, 29, 0, 59)) == at(SUN, "01:59")
    assert weekday_minute(utc(2026, 3, 29, 1, 0)) == at(SUN, "03:00")
    assert effective_limits(r, *weekday_minute(utc(2026, 3, 29, 1, 0))) == {}  # the hour never happened
    # 2026-10-25: 02:00-03:00 local happens twice; the rule holds both times.
    for hour in (0, 1):
        assert effective_limits(r, *weekday_minute(utc(2026, 10, 25, hour, 30))) == {MAC: (9, 9)}
    tz("UTC0")
    assert weekday_minute(utc(2026, 3, 29, 1, 0)) == at(SUN, "01:00")


@pytest.mark.parametrize("body, field", [
    ({"time_slot": {"start": "09:00", "end": "10:00", "days": [1]}, "wan_rx_rate_limit": 1,
      "wan_tx_rate_limit": 1}, "mac"),
    ({"mac": MAC, "wan_rx_rate_limit": 1, "wan_tx_rate_limit": 1}, "time_slot"),
    ({"mac": MAC, "time_slot": {"start": "9:00", "end": "10:00", "days": [1]},
      "wan_rx_rate_limit": 1, "wan_tx_rate_limit": 1}, "time_slot.start"),
    ({"mac": MAC, "time_slot": {"start": "24:00", "end": "10:00", "days": [1]},
      "wan_rx_rate_limit": 1, "wan_tx_rate_limit": 1}, "time_slot.start"),
    ({"mac": MAC, "time_slot": {"start": "09:00", "end": "24:01", "days": [1]},
      "wan_rx_rate_limit": 1, "wan_tx_rate_limit": 1}, "time_slot.end"),
    ({"mac": MAC, "time_slot": {"start": "09:00", "end": "10:00", "days": [1, 1]},
      "wan_rx_rate_limit": 1, "wan_tx_rate_limit": 1}, "time_slot.days"),
    ({"mac": MAC, "time_slot": {"start": "09:00", "end": "10:00", "days": [8]},
      "wan_rx_rate_limit": 1, "wan_tx_rate_limit": 1}, "time_slot.days"),
    ({"mac": MAC, "time_slot": {"start": "09:00", "end": "10:00", "days": [True]},
      "wan_rx_rate_limit": 1, "wan_tx_rate_limit": 1}, "time_slot.days"),
    ({"mac": MAC, "time_slot": {"start": "09:00", "end": "10:00", "days": [1]},
      "wan_rx_rate_limit": -1, "wan_tx_rate_limit": 1}, "wan_rx_rate_limit"),
    ({"mac": MAC, "time_slot": {"start": "09:00", "end": "10:00", "days": [1]},
      "wan_rx_rate_limit": 1, "wan_tx_rate_limit": 1.5}, "wan_tx_rate_limit"),
    ({"mac": MAC, "time_slot": {"start": "09:00", "end": "10:00", "days": [1], "tz": "x"},
      "wan_rx_rate_limit": 1, "wan_tx_rate_limit": 1}, "time_slot.tz"),
])
def test_validation_names_the_field(body, field):
    with pytest.raises(ValidationError) as exc:
        parse_rule(body)
    assert exc.value.field == field


def test_rules_are_normalised():
    r = parse_rule({"mac": "AA-BB-CC-DD-EE-FF", "time_slot": {"start": "09:00", "end": "24:00", "days": [5, 1]},
                    "wan_rx_rate_limit": 0, "wan_tx_rate_limit": 10})
    assert r == Rule("aa:bb:cc:dd:ee:ff", TimeSlot(540, 1440, (1, 5)), 0, 10)
    assert r.to_json()["time_slot"] == {"start": "09:00", "end": "24:00", "days": [1, 5]}


def test_an_end_equal_to_the_start_wraps_to_24_hours_from_the_start():
    """As the OpenAPI document says of any end not after the start (schemathesis sent it)."""
    r = [rule("22:00", "22:00", [MON], 100, 0)]
    assert effective_limits(r, *at(MON, "21:59")) == {}
    assert effective_limits(r, *at(MON, "22:00")) == {MAC: (100, 0)}
    assert effective_limits(r, *at(TUE, "21:59")) == {MAC: (100, 0)}
    assert effective_limits(r, *at(TUE, "22:00")) == {}
    whole_monday = [rule("00:00", "00:00", [MON], 5, 5)]
    assert effective_limits(whole_monday, *at(MON, "00:00")) == effective_limits(whole_monday, *at(MON, "23:59"))
    assert effective_limits(whole_monday, *at(TUE, "00:00")) == {} == effective_limits(whole_monday, *at(SUN, "23:59"))
