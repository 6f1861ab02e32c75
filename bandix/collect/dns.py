"""DNS monitoring: take the packets the TC programs copy into the ring buffer,
decode them, and keep them as records (store/dns.py).

One thread polls the ring buffer; libbpf's callback only keeps the bytes, and
decoding happens between polls. A packet that does not decode is counted and
skipped. Packets the ring buffer had no room for are counted by the kernel
(health slot DNS_LOST) and reported.
"""

from __future__ import annotations

import logging
import struct
import threading
import time
from collections.abc import Callable

from ..bpf import layout
from ..bpf.maps import Map
from ..store.dns import DnsStore
from .dnsparse import Malformed, Message, Segment, TcpStreams, parse_dns
from .packets import RingReader, decode

log = logging.getLogger(__name__)


class DnsCollector:
    def __init__(self, ring_fd: int, control: Map, health: Callable[[], list[int]], store: DnsStore) -> None:
        self._reader = RingReader(ring_fd, self.process, "DNS monitoring")
        self._control = control
        self._health = health
        self.store = store
        self._streams = TcpStreams()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lost_base = self._lost_now()
        self._wanted: set[str] = set()  # "records" (the DNS module), "flows" (domain attribution)
        self.listeners: list[Callable[[int, str, Segment, Message], None]] = []

    def _lost_now(self) -> int:
        values = self._health()
        return values[layout.HEALTH_DNS_LOST] if len(values) > layout.HEALTH_DNS_LOST else 0

    def set_capture(self, on: bool) -> None:
        """Tell the programs to copy DNS packets (or to stop)."""
        self._control.update(struct.pack("=I", layout.CONTROL_DNS), struct.pack("=I", 1 if on else 0))

    def want(self, who: str, on: bool) -> None:
        """DNS records and flow attribution both need the packets: capture runs while either wants it."""
        (self._wanted.add if on else self._wanted.discard)(who)
        if self._wanted and self._thread is None:
            self.set_capture(True)
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="dns", daemon=True)
            self._thread.start()
        elif not self._wanted and self._thread is not None:
            self.set_capture(False)
            self._stop.set()
            self._thread.join(5)
            self._thread = None

    def start(self) -> None:
        self.want("records", True)

    def stop(self) -> None:
        self.want("records", False)

    @property
    def running(self) -> bool:
        """Whether DNS records are kept (the DNS module is on)."""
        return "records" in self._wanted

    def _run(self) -> None:
        self._reader.run(self._stop, self._check_lost)

    def catch_up(self) -> None:
        """Handle every DNS packet already captured, in the calling thread (see RingReader)."""
        self._reader.catch_up()

    def close(self) -> None:
        self._reader.close()

    def _check_lost(self) -> None:
        lost = self._lost_now() - self._lost_base
        if lost > self.store.lost_events:
            log.warning("the DNS ring buffer overflowed: %d packets lost so far", lost)
            self.store.lost_events = lost

    def process(self, events: list[bytes]) -> None:
        offset_ns = time.time_ns() - time.monotonic_ns()  # kernel stamps are CLOCK_MONOTONIC
        for raw in events:
            try:
                ts_ns, mac_text, seg = decode(raw)
                payloads = self._streams.feed(seg) if seg.transport == "tcp" else [seg.payload]
                for payload in payloads:
                    msg = parse_dns(payload)
                    if "records" in self._wanted:
                        self.store.add(ts_ns, (ts_ns + offset_ns) // 1_000_000, mac_text, seg, msg, payload)
                    for listener in self.listeners:
                        try:
                            listener(ts_ns + offset_ns, mac_text, seg, msg)
                        except Exception:  # a listener's bug must not stop DNS monitoring
                            log.exception("a DNS listener failed")
            except (Malformed, struct.error) as exc:
                self.store.malformed += 1
                log.debug("skipping a DNS packet that does not decode: %s", exc)
