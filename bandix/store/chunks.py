"""The compact encoding of closed history buckets: one blob per chunk of a level.

A bucket is 17 integers: its index, the six statistics (avg, max, min, p90,
p95, p99) of WAN rx and of WAN tx, the WAN rx and tx bytes, and the LAN rx and
tx bytes. Kept as Python tuples they cost ~650 bytes, as fixed-width arrays 88;
sealed here a busy bucket costs 5–30 bytes, exactly (integers only, nothing
rounded), because:

- the index is the step from the previous bucket (1 when every bucket is busy);
- each average is the step from the previous bucket's average;
- max, min, the percentiles and the bytes are predicted from the previous
  bucket's shape scaled by this bucket's average (a device's rate
  distribution changes slowly, and bytes ≈ average × seconds), and only the
  difference from the prediction is kept;
- the LAN bytes (no rate to predict them from) are the step from the previous
  bucket's (0 for the many devices that talk only to the Internet);
- every value is a zig-zag varint (small magnitudes take one byte), written
  column by column (all the index steps, then all the rx averages, ...), and
  the whole chunk is deflated when that is smaller.

Decoding needs nothing but the blob. Its first byte says raw or deflated (the
low bit) and the format: blobs written before the LAN columns (first byte 0
or 1: 15 integers a bucket, schema 4 and older) decode with LAN bytes 0.

A level's open chunk, which grows a bucket at a time, keeps the same values
row by row instead (append_row, decode_rows: no column order, no deflate), so
appending costs one bucket's work; it is encoded as above when sealed.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence

WIDTH = 17  # idx, 12 statistics, wan rx_bytes, wan tx_bytes, lan rx_bytes, lan tx_bytes
WAN_WIDTH = 15  # a bucket of format 0 (before the LAN columns)
LAN = (15, 16)  # positions of the LAN bytes: each the step from the previous bucket's
RAW, DEFLATED = 0, 1  # the low bit of the first byte
FORMAT = 2  # the first byte is FORMAT | RAW or FORMAT | DEFLATED; 0 | ... is the 15-wide format
# Per direction: avg, then what is predicted from it (positions in the record).
_DIRS = ((1, (2, 3, 4, 5, 6, 13)), (7, (8, 9, 10, 11, 12, 14)))
_ZERO = [0] * WIDTH


def _put(out: bytearray, v: int) -> None:
    v = v << 1 if v >= 0 else (-v << 1) - 1  # zig-zag
    while v > 0x7F:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)


def _predict(avg: int, prev_avg: int, prev_v: int) -> int:
    return (avg * prev_v + prev_avg // 2) // prev_avg if prev_avg else prev_v


def _undelta(prev: Sequence[int], d: Sequence[int], width: int = WIDTH) -> list[int]:
    """The record append_row() kept as d (width WAN_WIDTH: a format-0 record, LAN bytes 0)."""
    r = [0] * WIDTH
    r[0] = prev[0] + d[0]
    c = 1
    for a, shaped in _DIRS:
        prev_avg = prev[a]
        avg = r[a] = prev_avg + d[c]
        c += 1
        for k in shaped:
            r[k] = _predict(avg, prev_avg, prev[k]) + d[c]
            c += 1
    if width == WIDTH:
        for k in LAN:
            r[k] = prev[k] + d[c]
            c += 1
    return r


def _varints(data: bytes | bytearray | memoryview) -> list[int]:
    values: list[int] = []
    v = shift = 0
    for byte in data:
        v |= (byte & 0x7F) << shift
        if byte & 0x80:
            shift += 7
            continue
        values.append(v >> 1 if not v & 1 else -((v + 1) >> 1))
        v = shift = 0
    return values


def encode(records: Iterable[Sequence[int]]) -> bytes:
    """Records (idx ascending, 17 non-negative integers each) as one blob."""
    rows, prev = bytearray(), None
    for r in records:
        append_row(rows, prev, r)
        prev = r
    return seal(rows)


def seal(rows: bytes | bytearray) -> bytes:
    """The blob of the records append_row() put in `rows`: the same values, column by column
    (deflate finds more alike), deflated when that is smaller."""
    values = _varints(rows)
    if len(values) % WIDTH:
        raise ValueError("truncated open history chunk")
    out = bytearray()
    _put(out, len(values) // WIDTH)
    for c in range(WIDTH):
        for v in values[c::WIDTH]:
            _put(out, v)
    packed = zlib.compress(bytes(out), 9)
    return bytes([FORMAT | DEFLATED]) + packed if len(packed) < len(out) else bytes([FORMAT | RAW]) + out


def decode(blob: bytes) -> list[tuple[int, ...]]:
    """The records of encode(), in order."""
    return [tuple(r) for r in decode_lists(blob)]


def decode_lists(blob: bytes) -> list[list[int]]:
    """decode() as lists (the API's rows are lists: no second copy)."""
    if not blob:
        return []
    fmt = blob[0] & ~DEFLATED
    if fmt not in (0, FORMAT):
        raise ValueError(f"history chunk of an unknown format {fmt}")
    width = WIDTH if fmt == FORMAT else WAN_WIDTH
    values = _varints(zlib.decompress(blob[1:]) if blob[0] & DEFLATED else memoryview(blob)[1:])
    if not values or len(values) != 1 + width * values[0]:
        raise ValueError("truncated history chunk")
    n = values[0]
    out: list[list[int]] = []
    prev: list[int] = [0] * WIDTH
    for i in range(n):
        prev = _undelta(prev, values[1 + i :: n], width)  # column c of record i is values[1 + c * n + i]
        out.append(prev)
    return out


# -- an open chunk: records appended one at a time, row by row --------------


def append_row(out: bytearray, prev: Sequence[int] | None, r: Sequence[int]) -> None:
    """Record r, which follows prev (None: the first), onto `out` as varints, row by row:
    appending costs one record's work, not the chunk's (seal() orders them by column)."""
    prev = prev or _ZERO
    _put(out, r[0] - prev[0])
    for a, shaped in _DIRS:
        avg, prev_avg = r[a], prev[a]
        _put(out, avg - prev_avg)
        for k in shaped:
            _put(out, r[k] - _predict(avg, prev_avg, prev[k]))
    for k in LAN:
        _put(out, r[k] - prev[k])


def decode_rows(data: bytes | bytearray) -> list[list[int]]:
    """The records append_row() put in `data`, in order."""
    values = _varints(data)
    if len(values) % WIDTH:
        raise ValueError("truncated open history chunk")
    out: list[list[int]] = []
    prev: list[int] = _ZERO
    for at in range(0, len(values), WIDTH):
        prev = _undelta(prev, values[at : at + WIDTH])
        out.append(prev)
    return out
