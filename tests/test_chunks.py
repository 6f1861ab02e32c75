"""Closed buckets sealed into compact chunks: exact round trips, and a level's
buckets the same whether they sit in the tail, in sealed blobs in memory, or in
blobs only the database holds."""

import json
import zlib

from hypothesis import given, settings
from hypothesis import strategies as st

from bandix.store import chunks
from bandix.store.levels import LevelRows

u32 = st.integers(min_value=0, max_value=2**32 - 1)
u64 = st.integers(min_value=0, max_value=2**64 - 1)


def as_records(items):
    """(index step, 12 statistics, 4 byte counts) items as records of ascending index."""
    records, idx = [], 0
    for step, stats, *counts in items:
        idx += step
        records.append((idx, *stats, *counts))
    return records


@given(st.lists(st.tuples(st.integers(min_value=1, max_value=10**6), st.lists(u32, min_size=12, max_size=12),
                          u64, u64, u64, u64), max_size=80))
def test_chunk_round_trip_is_exact(items):
    records = as_records(items)
    blob = chunks.encode(records)
    assert blob[0] in (chunks.FORMAT | chunks.RAW, chunks.FORMAT | chunks.DEFLATED)
    assert chunks.decode(blob) == records


@given(st.lists(st.tuples(st.integers(min_value=1, max_value=10**6), st.lists(u32, min_size=12, max_size=12),
                          u64, u64, u64, u64), max_size=80))
def test_an_open_chunk_appended_row_by_row_reads_back_exact_and_seals_the_same(items):
    records = as_records(items)
    tail, prev = bytearray(), None
    for r in records:
        chunks.append_row(tail, prev, r)
        prev = r
    assert [tuple(r) for r in chunks.decode_rows(tail)] == records
    assert chunks.decode(chunks.encode(chunks.decode_rows(tail))) == records


def test_a_truncated_open_chunk_is_refused():
    tail = bytearray()
    chunks.append_row(tail, None, (7, *range(12), 5, 6, 7, 8))
    try:
        chunks.decode_rows(tail[:-1])
    except ValueError as exc:
        assert "truncated" in str(exc)
    else:
        raise AssertionError("decoded a truncated open chunk")


def wan_only_blob(records):
    """A chunk as bandix wrote it before the LAN columns (format 0: 15 integers a bucket, raw):
    today's encoding of LAN bytes 0 is the same columns plus one zero byte per bucket for each
    LAN column, at the end."""
    blob = chunks.encode([(*r, 0, 0) for r in records])
    body = zlib.decompress(blob[1:]) if blob[0] & chunks.DEFLATED else blob[1:]
    assert body[len(body) - 2 * len(records) :] == bytes(2 * len(records))
    return bytes([chunks.RAW]) + body[: len(body) - 2 * len(records)]


@given(st.lists(st.tuples(st.integers(min_value=1, max_value=10**6), st.lists(u32, min_size=12, max_size=12),
                          u64, u64), min_size=1, max_size=80))
def test_a_chunk_written_before_the_lan_columns_decodes_with_lan_bytes_0(items):
    records = as_records(items)
    old = wan_only_blob(records)
    assert chunks.decode(old) == [(*r, 0, 0) for r in records]
    deflated = bytes([chunks.DEFLATED]) + zlib.compress(old[1:], 9)
    assert chunks.decode(deflated) == [(*r, 0, 0) for r in records]


def test_a_chunk_of_an_unknown_format_is_refused():
    blob = chunks.encode([(1, *range(12), 5, 6, 7, 8)])
    try:
        chunks.decode(bytes([8]) + blob[1:])
    except ValueError as exc:
        assert "unknown format" in str(exc)
    else:
        raise AssertionError("decoded a chunk of format 8")


def test_a_busy_steady_bucket_costs_a_few_bytes():
    records = [(1000 + k, *(v * (100 + k % 3) for v in (10, 30, 1, 20, 24, 28) * 2), 3000 * (100 + k % 3),
                3000 * (100 + k % 3), 0, 0) for k in range(64)]
    assert len(chunks.encode(records)) / 64 < 8
    steady_lan = [(*r[:15], 50_000, 2_000) for r in records]  # a steady LAN stream adds little
    assert len(chunks.encode(steady_lan)) / 64 < 9


class Model:
    """The plain meaning of a level: the newest `capacity` buckets."""

    def __init__(self, capacity):
        self.capacity, self.rows = capacity, []

    def append(self, r):
        self.rows = (self.rows + [r])[-self.capacity :]

    def drop_from(self, idx):
        kept = [r for r in self.rows if r[0] < idx]
        dropped, self.rows = len(self.rows) - len(kept), kept
        return dropped


ops = st.lists(st.one_of(st.tuples(st.just("add"), st.integers(1, 9), u32),
                         st.tuples(st.just("drop"), st.integers(0, 40), st.just(0)),
                         st.tuples(st.just("save"), st.just(0), st.just(0))), max_size=120)


@settings(max_examples=300)
@given(st.integers(1, 30), st.integers(1, 8), st.booleans(), ops)
def test_level_in_chunks_reads_like_a_plain_list(capacity, chunk, database, steps):
    db: dict[int, bytes] = {}
    rows = LevelRows(capacity, chunk)
    if database:
        rows.fetch = db.get
    model, idx = Model(capacity), 0
    for op, a, b in steps:
        if op == "add":
            idx += a
            wan = b % 3 != 0  # else a bucket with LAN traffic only
            stats = [(b + k) % 2**32 for k in range(12)] if wan else [0] * 12
            r = (idx, *stats, b * 30 if wan else 0, b if wan else 0, b * 7 % 1000, b // 3 + (not wan))
            rows.append(r[0], tuple(r[1:13]), *r[13:])
            model.append(r)
        elif op == "drop":
            cut = max(0, idx - a)
            assert rows.drop_from(cut) == model.drop_from(cut)
            idx = max([r[0] for r in model.rows], default=cut)
        else:
            for no, _, _, blob in rows.unsaved():
                db[no] = blob
                rows.saved(no, blob)
        assert len(rows) == len(model.rows)
        assert rows.records() == model.rows
        assert rows.newest_idx() == (model.rows[-1][0] if model.rows else None)
    since = idx - 10
    assert rows.records(since) == [r for r in model.rows if r[0] >= since]
    # The API's rows: WAN only (the spec's 15 columns), the LAN-only buckets left out.
    assert rows.rows(30, since) == [[r[0] * 30_000, *r[1:15]] for r in model.rows
                                    if r[0] >= since and any(r[1:15])]
    assert rows.usage(30, since) == [[r[0] * 30_000, *r[13:]] for r in model.rows if r[0] >= since]
    assert json.loads(rows.json_rows(30, since)) == rows.rows(30, since)
    # Saved and restored (sealed chunks from the database, the tail as a blob): the same buckets.
    again = LevelRows(capacity, chunk)
    again.fetch = {**db, **{no: blob for no, _, _, blob in rows.unsaved()}}.get
    sealed = [(no, n, rows._newest(k), None) for k, (no, n) in enumerate(zip(rows._nos, rows._ns, strict=True))]
    again.restore(sealed, rows.tail_blob())
    assert again.records() == model.rows
