"""The realtime ring keeps exactly the last `capacity` samples, in order."""

import pytest

from bandix.store.realtime import Ring


def test_rows_have_the_api_shape_and_sums():
    ring = Ring(3)
    ring.append(1000, [1, 2, 3, 4], [10, 20, 30, 40])
    assert ring.rows() == [[1000, 1 + 3, 2 + 4, 1, 2, 3, 4, 10 + 30, 20 + 40, 10, 20, 30, 40]]


def test_wraps_keeping_the_newest_oldest_first():
    ring = Ring(3)
    for t in range(5):
        ring.append(t, [t] * 4, [t * 10] * 4)
    assert len(ring) == 3
    assert [r[0] for r in ring.rows()] == [2, 3, 4]
    assert [r[9] for r in ring.rows()] == [20, 30, 40]


def test_holds_64_bit_counters():
    ring = Ring(1)
    big = 2**64 - 1
    ring.append(1, [0, 0, 0, 0], [big, 0, 0, 0])
    assert ring.rows()[0][9] == big


def test_capacity_must_be_positive():
    with pytest.raises(ValueError):
        Ring(0)
