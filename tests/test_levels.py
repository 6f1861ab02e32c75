"""Bucket math: exact nearest-rank statistics, bucket edges, empty buckets,
capacity, and steps of the wall clock."""

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bandix.store.levels import DEFAULT_LEVELS, History, Level, LevelRows, check_levels
from bandix.store.stats import nearest_rank, summarize

SMALL = (Level("a", 2, 100), Level("b", 6, 100), Level("c", 12, 100))


def reference_percentile(samples, p):
    ordered = sorted(samples)
    return ordered[math.ceil(p / 100 * len(ordered)) - 1]


@given(st.lists(st.integers(min_value=0, max_value=2**32 - 1), min_size=1, max_size=400))
def test_summary_is_exact(samples):
    avg, mx, mn, p90, p95, p99 = summarize(samples)
    assert mx == max(samples) and mn == min(samples)
    assert abs(avg - sum(samples) / len(samples)) <= 0.5
    assert (p90, p95, p99) == tuple(reference_percentile(samples, p) for p in (90, 95, 99))


def test_nearest_rank_on_known_values():
    values = list(range(1, 101))  # 1..100
    assert [nearest_rank(values, p) for p in (90, 95, 99)] == [90, 95, 99]
    assert nearest_rank([7], 99) == 7
    assert nearest_rank([1, 2, 3], 90) == 3  # ceil(2.7) = 3
    with pytest.raises(ValueError):
        summarize([])


def test_default_levels_match_the_spec():
    assert [(lv.name, lv.interval, lv.capacity, lv.retention_seconds) for lv in DEFAULT_LEVELS] == [
        ("day", 30, 2880, 86400), ("week", 180, 3360, 604800),
        ("month", 600, 4320, 2592000), ("year", 3600, 8760, 31536000)]
    check_levels(DEFAULT_LEVELS)
    with pytest.raises(ValueError):
        check_levels((Level("a", 7, 10), Level("b", 12, 10)))


def feed(history, start_s, rates_rx, step=1):
    for k, r in enumerate(rates_rx):
        history.add((start_s + k * step) * 1000, r, 2 * r, r, 2 * r, 3 * r, 5 * r)


def test_buckets_close_at_their_edges_with_their_own_samples():
    h = History(SMALL)
    feed(h, 1000, list(range(1, 13)))  # seconds 1000..1011
    h.add(1012 * 1000, 0, 0, 0, 0)  # first sample of the next 12 s bucket closes all
    a = h.rows["a"].rows(2)
    assert [r[0] for r in a] == [1000_000 + 2000 * k for k in range(6)]
    assert a[0][1:7] == [2, 2, 1, 2, 2, 2]  # samples 1, 2: avg 1.5 → 2 (half up)
    assert a[0][13:] == [3, 6]  # WAN bytes of the bucket
    # The 12 s bucket [996, 1008) holds seconds 1000..1007; 1008.. are still open.
    assert h.rows["c"].rows(12) == [[996_000, *summarize(range(1, 9)), *summarize(range(2, 17, 2)), 36, 72]]
    # LAN bytes are kept beside them for usage, and the API's rows leave them out.
    assert h.rows["c"].usage(12) == [[996_000, 36, 72, 108, 180]]
    assert h.rows["c"].records()[0][13:] == (36, 72, 108, 180)


def test_a_bucket_with_lan_traffic_only_is_kept_for_usage_not_shown_in_the_api_rows():
    h = History(SMALL)
    for s in range(1000, 1004):
        h.add(s * 1000, 0, 0, 0, 0, 1500, 40)  # a LAN copy: no WAN rate, no WAN bytes
    h.add(1004 * 1000, 9, 9, 9, 9)
    h.add(1012 * 1000, 0, 0, 0, 0)
    assert [r[0] for r in h.rows["a"].rows(2)] == [1004_000]
    assert h.rows["a"].usage(2) == [[1000_000, 0, 0, 3000, 80], [1002_000, 0, 0, 3000, 80],
                                    [1004_000, 9, 9, 0, 0]]
    assert h.rows["c"].rows(12) == [[1000_000 - 4000, *summarize([0, 0, 0, 0, 9]), *summarize([0, 0, 0, 0, 9]),
                                     9, 9]]
    assert h.rows["c"].usage(12) == [[996_000, 9, 9, 6000, 160]]


def test_bucket_stamp_is_aligned_to_the_interval():
    h = History(SMALL)
    feed(h, 1001, [5, 5, 5])  # 1001..1003 → "a" buckets 1000 and 1002
    h.add(1020 * 1000, 0, 0, 0, 0)
    assert [r[0] for r in h.rows["a"].rows(2)] == [1000_000, 1002_000]
    assert [r[0] for r in h.rows["c"].rows(12)] == [996_000]


def test_empty_buckets_have_no_row():
    h = History(SMALL)
    feed(h, 1000, [1, 1])
    h.add(1010 * 1000, 3, 3, 3, 3)  # seconds 1002..1009: no samples
    h.add(1012 * 1000, 0, 0, 0, 0)
    assert [r[0] // 1000 for r in h.rows["a"].rows(2)] == [1000, 1010]


def test_capacity_keeps_the_newest_buckets():
    rows = LevelRows(3)
    for i in range(5):
        rows.append(i, tuple(range(12)), i, i)
    assert [r[0] for r in rows.rows(1)] == [2000, 3000, 4000]
    assert len(rows) == 3
    assert rows.drop_from(4) == 1 and [r[0] for r in rows.rows(1)] == [2000, 3000]
    rows.append(9, tuple(range(12)), 0, 0)
    assert [r[0] for r in rows.rows(1)] == [2000, 3000, 9000]


def test_forward_step_leaves_a_gap():
    h = History(SMALL)
    feed(h, 1000, [4, 4, 4])
    feed(h, 5000, [8, 8, 8])  # NTP moved the clock an hour ahead
    h.add(5012 * 1000, 0, 0, 0, 0)
    assert [r[0] // 1000 for r in h.rows["a"].rows(2)] == [1000, 1002, 5000, 5002]


def test_backward_step_drops_only_what_is_stamped_after_the_new_time():
    h = History(SMALL)
    feed(h, 1200, list(range(1, 11)))  # 1200..1209
    h.add(1205 * 1000, 50, 50, 50, 50)  # clock steps back 5 s
    feed(h, 1206, [60] * 6)  # up to 1211
    h.add(1212 * 1000, 0, 0, 0, 0)
    a = h.rows["a"].rows(2)
    assert [r[0] // 1000 for r in a] == [1200, 1202, 1204, 1206, 1208, 1210]
    assert a[2][1:4] == [28, 50, 5]  # bucket 1204 = samples 5 (at 1204) and 50 (at 1205 after the step)
    stamps = [r[0] for r in h.rows["c"].rows(12)]
    assert stamps == sorted(set(stamps))  # no bucket twice, still in order


def test_large_backward_step_loses_no_order():
    h = History(SMALL)
    feed(h, 2000, [1] * 30)
    feed(h, 1000, [2] * 30)
    h.add(2100 * 1000, 0, 0, 0, 0)
    for name, lv in (("a", 2), ("b", 6), ("c", 12)):
        stamps = [r[0] for r in h.rows[name].rows(lv)]
        assert stamps == sorted(set(stamps))
        assert all(s < 2000_000 or s >= 2100_000 - 12_000 for s in stamps)


def test_buffer_survives_a_restart():
    a, b = History(SMALL), History(SMALL)
    rates = [random.randrange(1000) for _ in range(20)]
    feed(a, 1200, rates)
    b_rows_before = {n: list(r.rows(1)) for n, r in a.rows.items()}
    b.restore_buffer(a.buffer_state())
    for name, rows in a.rows.items():
        for row in rows.records():
            b.rows[name].append(row[0], tuple(row[1:13]), *row[13:])
    feed(a, 1220, [7] * 5)
    feed(b, 1220, [7] * 5)
    assert {n: r.records() for n, r in a.rows.items()} == {n: r.records() for n, r in b.rows.items()}
    assert b_rows_before["c"] != a.rows["c"].rows(1)
