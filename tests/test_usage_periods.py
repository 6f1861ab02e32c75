"""bandix/store/usage.py without a router: which level and range answer, local hours
and days across DST changes, and sums per period."""

from __future__ import annotations

import os
import time

import pytest

from bandix.store import usage
from bandix.store.levels import DEFAULT_LEVELS

BERLIN = "CET-1CEST,M3.5.0,M10.5.0/3"  # as OpenWrt writes Europe/Berlin into system.timezone


@pytest.fixture
def tz():
    saved = os.environ.get("TZ")

    def set_tz(value: str) -> None:
        os.environ["TZ"] = value
        time.tzset()

    yield set_tz
    if saved is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = saved
    time.tzset()


def local(y: int, mo: int, d: int, h: int = 0) -> int:
    return int(time.mktime((y, mo, d, h, 0, 0, 0, 0, -1)))


def test_a_level_reaching_back_answers_in_whole_buckets():
    now = 1_800_000_000_123
    span = usage.choose_span(DEFAULT_LEVELS, now - 3_600_000 - 7, now + 10**9, now)
    assert span.level.name == "day" and span.start_ms % 30_000 == 0 and span.start_ms >= now - 3_600_000 - 7
    assert span.start_ms - (now - 3_600_000 - 7) < 30_000
    assert span.end_ms == now // 30_000 * 30_000  # the bucket holding the newest sample is open
    # The coarsest level whose bucket is at most 1 % of the range, among those reaching back.
    assert usage.choose_span(DEFAULT_LEVELS, now - 3 * 3_600_000, now, now).level.name == "day"  # 108 s < 180 s
    assert usage.choose_span(DEFAULT_LEVELS, now - 6 * 3_600_000, now, now).level.name == "week"  # 216 s
    assert usage.choose_span(DEFAULT_LEVELS, now - 2 * 86_400_000, now, now).level.name == "month"  # 1728 s
    assert usage.choose_span(DEFAULT_LEVELS, now - 20 * 86_400_000, now, now).level.name == "year"
    assert usage.choose_span(DEFAULT_LEVELS, now - 600_000, now, now).level.name == "day"  # the finest
    old = usage.choose_span(DEFAULT_LEVELS, 0, now, now)  # older than any retention: the year, from its oldest
    assert old.level.name == "year" and old.start_ms == (now // 3_600_000 - 8760 + 1) * 3_600_000
    assert usage.choose_span(DEFAULT_LEVELS, now - 1000, now, now).end_ms == usage.choose_span(
        DEFAULT_LEVELS, now - 1000, now, now).start_ms  # less than a bucket: empty


def test_local_days_across_dst_have_23_and_25_hours(tz):
    tz(BERLIN)
    span = usage.Span(DEFAULT_LEVELS[3], local(2026, 3, 28) * 1000, local(2026, 3, 31) * 1000)
    starts = usage.periods(span, "daily")
    assert [b - a for a, b in zip(starts, starts[1:] + [span.end_ms // 1000], strict=True)] == [86400, 82800, 86400]
    span = usage.Span(DEFAULT_LEVELS[3], local(2026, 10, 25) * 1000, local(2026, 10, 26) * 1000)
    hours = usage.periods(span, "hourly")
    assert len(hours) == 25 and all(b - a == 3600 for a, b in zip(hours, hours[1:], strict=False))
    assert [time.strftime("%H", time.localtime(h)) for h in hours[:5]] == ["00", "01", "02", "02", "03"]


def test_increments_sum_each_local_period_and_only_inside_the_span(tz):
    tz("IST-5:30")  # half an hour off UTC: local hours start at :30 UTC
    day0 = local(2026, 6, 1)
    # level_usage rows: [ts_ms, WAN rx, WAN tx, LAN rx, LAN tx]
    rows = [[(day0 - 1800) * 1000, 5, 5, 7, 7],  # before the span
            [day0 * 1000, 100, 1, 0, 0], [(day0 + 1770) * 1000, 20, 2, 50_000, 70],
            [(day0 + 3600) * 1000, 300, 3, 0, 0], [(day0 + 86400) * 1000, 4000, 4, 9, 10]]
    span = usage.Span(DEFAULT_LEVELS[0], day0 * 1000, (day0 + 86400 + 30) * 1000)
    days = usage.increments(rows, span, "daily")
    assert [(d["date"], d["rx_bytes"], d["tx_bytes"], d["total_bytes"]) for d in days] == [
        ("2026-06-01", 420, 6, 426), ("2026-06-02", 4000, 4, 4004)]
    assert [(d["rx_bytes"], d["tx_bytes"]) for d in usage.increments(rows, span, "daily", "lan")] == [
        (50_000, 70), (9, 10)]
    assert [(d["rx_bytes"], d["tx_bytes"]) for d in usage.increments(rows, span, "daily", "all")] == [
        (50_420, 76), (4009, 14)]
    hours = usage.increments(rows, usage.Span(DEFAULT_LEVELS[0], day0 * 1000, (day0 + 7200) * 1000), "hourly")
    assert [(h["date"], h["rx_bytes"]) for h in hours] == [("2026-06-01 00:00", 120), ("2026-06-01 01:00", 300)]
    assert time.gmtime(hours[0]["ts_ms"] // 1000).tm_min == 30
