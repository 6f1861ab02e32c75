"""Packets the TC programs copy into a ring buffer (DNS, TLS/QUIC hellos):
the event header, and the reader that drains a ring in a collector's thread.

libbpf's callback only keeps the bytes; decoding happens between polls, so a
slow decoder never holds up the ring.
"""

from __future__ import annotations

import logging
import select
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


class RingReader:
    """A ring's events handed to `handle` in kernel order, batch by batch.

    A collector's thread runs `run`; any other thread that must see every event
    written before it asks (the flow collector, before it labels flows with
    the names DNS answers and hellos carry) calls `catch_up`. One lock keeps
    the two from handing out events at the same time or out of order.
    """

    def __init__(self, ring_fd: int, handle: Callable[[list[bytes]], None], what: str) -> None:
        self._handle = handle
        self._what = what
        self._lock = threading.Lock()
        self._pending: list[bytes] = []
        self._fd = ring_fd
        self._ring: RingBuffer | None = None  # mapped on first use: a ring no module reads costs no RSS
        self._closed = False

    def _opened(self) -> RingBuffer | None:
        """The ring, mapped now if it was not yet (under the lock); None once closed."""
        if self._ring is None and not self._closed:
            self._ring = RingBuffer(self._fd, self._pending.append)
        return self._ring

    def run(self, stop: threading.Event, every_second: Callable[[], None] | None = None) -> None:
        """Read the ring until `stop`; `every_second` runs between reads."""
        next_second = 0.0
        try:
            waiter = select.poll()
            with self._lock:
                ring = self._opened()
                if ring is None:
                    return
                waiter.register(ring.fileno(), select.POLLIN)
            while not stop.is_set():
                waiter.poll(POLL_MS)
                self.catch_up()
                if every_second is not None and time.monotonic() >= next_second:
                    next_second = time.monotonic() + 1
                    every_second()
            self.catch_up()  # what arrived before the stop
        except Exception:
            log.exception("%s stopped", self._what)

    def catch_up(self) -> None:
        """Handle every event already in the ring, in the calling thread."""
        with self._lock:
            ring = self._opened()
            if ring is None:
                return
            ring.consume()
            if self._pending:
                events, self._pending[:] = list(self._pending), []
                self._handle(events)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._ring is not None:
                self._ring.close()
                self._ring = None
