"""When a quota's period starts, in the router's local time: day, week and month, across DST."""

import calendar
import os
import time

import pytest

from bandix.quota import Quota

BERLIN = "CET-1CEST,M3.5.0,M10.5.0/3"  # as OpenWrt's system.timezone writes it


@pytest.fixture
def tz():
    before = os.environ.get("TZ")

    def set_tz(value: str) -> None:
        os.environ["TZ"] = value
        time.tzset()

    yield set_tz
    if before is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = before
    time.tzset()


def quota(period: str, reset_day: int = 1, reset_hour: int = 0) -> Quota:
    return Quota("02:bd:00:00:00:01", period, 10**9, "both", "block", 0, 0, reset_day, reset_hour)


def local(text: str) -> int:
    return int(time.mktime(time.strptime(text, "%Y-%m-%d %H:%M:%S")))


def test_day_week_and_month_start_at_the_local_reset_hour(tz):
    tz(BERLIN)
    now = local("2026-12-03 08:30:00")  # a Thursday
    assert quota("day", reset_hour=4).period_start(now) == local("2026-12-03 04:00:00")
    assert quota("day", reset_hour=9).period_start(now) == local("2026-12-02 09:00:00")
    assert quota("week", reset_day=1, reset_hour=0).period_start(now) == local("2026-11-30 00:00:00")
    assert quota("week", reset_day=4, reset_hour=9).period_start(now) == local("2026-11-26 09:00:00")
    assert quota("week", reset_day=4, reset_hour=8).period_start(now) == local("2026-12-03 08:00:00")
    assert quota("month", reset_day=3, reset_hour=8).period_start(now) == local("2026-12-03 08:00:00")
    assert quota("month", reset_day=15).period_start(now) == local("2026-11-15 00:00:00")
    assert quota("month", reset_day=28).period_start(local("2027-01-05 00:00:00")) == local("2026-12-28 00:00:00")


def test_a_dst_change_moves_the_utc_moment_not_the_local_hour(tz):
    tz(BERLIN)
    # 2026-03-29 02:00 CET the clocks go to 03:00 CEST: the period from the 28th 04:00 has 23 hours.
    day = quota("day", reset_hour=4)
    starts = [day.period_start(local(f"2026-03-{d} 12:00:00")) for d in (28, 29, 30)]
    assert starts == [calendar.timegm((2026, 3, 28, 3, 0, 0)), calendar.timegm((2026, 3, 29, 2, 0, 0)),
                      calendar.timegm((2026, 3, 30, 2, 0, 0))]
    assert starts[1] - starts[0] == 23 * 3600
    # A week over the change is 167 hours long.
    week = quota("week", reset_day=1, reset_hour=1)
    assert week.period_start(local("2026-03-30 12:00:00")) - week.period_start(local("2026-03-27 12:00:00")) \
        == 167 * 3600


def test_the_start_is_the_reset_moment_itself(tz):
    tz("UTC0")
    q = quota("day", reset_hour=5)
    at = calendar.timegm((2026, 12, 3, 5, 0, 0))
    assert q.period_start(at) == at and q.period_start(at - 1) == at - 86400
