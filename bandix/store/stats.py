"""Statistics of one bucket of one-second rate samples.

Percentiles use the nearest-rank definition: the p-th percentile of n sorted
samples is the one at rank ceil(p/100 · n), counting from 1. It is always one
of the samples, never an interpolation, and it is exact: computed from every
sample of the bucket, never from statistics of smaller buckets.
"""

from __future__ import annotations

from collections.abc import Sequence

PERCENTILES = (90, 95, 99)


def nearest_rank(sorted_samples: Sequence[int], p: int) -> int:
    rank = -(-p * len(sorted_samples) // 100)  # ceil in integers
    return sorted_samples[max(1, rank) - 1]


def summarize(samples: Sequence[int]) -> tuple[int, int, int, int, int, int]:
    """(avg, max, min, p90, p95, p99) of a non-empty bucket; avg rounded half up."""
    if not samples:
        raise ValueError("an empty bucket has no statistics")
    ordered = sorted(samples)
    n = len(ordered)
    avg = (2 * sum(ordered) + n) // (2 * n)
    return (avg, ordered[-1], ordered[0], *(nearest_rank(ordered, p) for p in PERCENTILES))
