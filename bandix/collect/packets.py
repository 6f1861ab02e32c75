"""Packets the TC programs copy into a ring buffer (DNS, TLS/QUIC hellos):
the event header, and the loop that drains a ring in a collector's thread.

libbpf's callback only keeps the bytes; decoding happens between polls, so a
slow decoder never holds up the ring.
"""

from __future__ import annotations

import logging
import struct
import threading
import time
from collections.abc import Callable

from ..bpf import layout
from ..bpf.ringbuf import RingBuffer
from .dnsparse import Segment, parse_l3

log = logging.getLogger(__name__)

EVENT = struct.Struct("=QIHHBB6s")  # bandix_packet_event up to its data
assert EVENT.size == layout.PacketEvent.data.offset, "bandix_packet_event changed: update EVENT"
POLL_MS = 200


def decode(raw: bytes) -> tuple[int, str, Segment]:
    """(kernel time in ns, device MAC, the UDP/TCP segment); Malformed or struct.error if it is not one."""
    ts_ns, _ifindex, length, _orig, _dir, family, mac = EVENT.unpack_from(raw)
    return ts_ns, mac.hex(":"), parse_l3(raw[EVENT.size : EVENT.size + length], family)


def drain(ring_fd: int, stop: threading.Event, handle: Callable[[list[bytes]], None], what: str,
          every_second: Callable[[], None] | None = None) -> None:
    """Poll the ring until `stop`, handing each batch of events to `handle`."""
    pending: list[bytes] = []
    ring = RingBuffer(ring_fd, pending.append)
    next_second = 0.0
    try:
        while not stop.is_set():
            ring.poll(POLL_MS)
            if pending:
                events, pending[:] = list(pending), []
                handle(events)
            if every_second is not None and time.monotonic() >= next_second:
                next_second = time.monotonic() + 1
                every_second()
    except Exception:
        log.exception("%s stopped", what)
    finally:
        ring.close()
