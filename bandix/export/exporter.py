"""Flow records out to an IPFIX collector over UDP, without ever holding up counting.

Each flow read (the flow collector's thread, every flush interval) adds its
deltas to one pending record per flow and direction. A record leaves when its
flow has been idle for the idle timeout, or its first packets are older than
the active timeout: a long flow sends one record per active timeout, a short
one a single record after it ends. Times are those of the reads, so they are
exact to the flush interval.

The socket is non-blocking and connected: a full send buffer, a collector
that is down (ICMP port unreachable, reported on the next send) or no route
cost the records of that message, counted in `records_not_sent`, and nothing
else. Their sequence numbers are used all the same, so the collector sees the
gap. Templates go with the first message and again every template refresh
interval, as RFC 7011 section 8.4 asks of UDP exporters.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

from ..collect.flows import Flow
from . import ipfix


@dataclass(slots=True)
class _Pending:
    flow: Flow
    octets: int
    packets: int
    start_ms: int
    end_ms: int


class IpfixExporter:
    """Pending records and the socket; called from the flow collector's thread only."""

    def __init__(self, collector: tuple[str, int], active_timeout_s: int, idle_timeout_s: int,
                 template_refresh_s: int, domain_id: int = 1) -> None:
        family = socket.AF_INET6 if ":" in collector[0] else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        self.collector = collector
        self._connected = False
        self._connect()
        self.active_ms, self.idle_ms = active_timeout_s * 1000, idle_timeout_s * 1000
        self.template_refresh_s = template_refresh_s
        self.domain_id = domain_id
        self.pending: dict[tuple, _Pending] = {}
        self.records_sent = self.records_not_sent = self.messages_sent = 0
        self._sequence = 0
        self._templates_due = 0.0  # monotonic time; 0: with the first message

    def _connect(self) -> bool:
        """UDP: sets the peer and sends nothing, but fails without a route (the WAN not up yet): retried."""
        if not self._connected:
            try:
                self._sock.connect(self.collector)
                self._connected = True
            except OSError:
                pass
        return self._connected

    def update(self, moved: list[tuple[Flow, int, int]], now_ms: int) -> None:
        """Add one read's deltas, then send what is due."""
        for flow, octets, packets in moved:
            key = (flow.direction, flow.proto, flow.src, flow.sport, flow.dst, flow.dport)
            p = self.pending.get(key)
            if p is None:
                self.pending[key] = _Pending(flow, octets, packets, now_ms, now_ms)
            else:
                p.flow, p.octets, p.packets, p.end_ms = flow, p.octets + octets, p.packets + packets, now_ms
        due = [k for k, p in self.pending.items()
               if now_ms - p.end_ms >= self.idle_ms or now_ms - p.start_ms >= self.active_ms]
        self._send([self.pending.pop(k) for k in due])

    def close(self) -> None:
        """Send every pending record (the daemon stops), then close the socket."""
        pending, self.pending = list(self.pending.values()), {}
        self._send(pending)
        self._sock.close()

    def _send(self, due: list[_Pending]) -> None:
        templates = time.monotonic() >= self._templates_due
        if not due and not templates:
            return
        if not self._connect():
            self.records_not_sent += len(due)
            self._sequence += len(due)
            return
        records = [ipfix.encode_record(p.flow, p.octets, p.packets, p.start_ms, p.end_ms) for p in due]
        sent = ipfix.messages(records, int(time.time()), self._sequence, self.domain_id, templates)
        for n, (message, count) in enumerate(sent):
            self._sequence += count
            try:
                self._sock.send(message)
            except OSError:  # EAGAIN, ECONNREFUSED, ENETUNREACH...: the records are lost, counting goes on
                self.records_not_sent += count
                continue
            self.messages_sent += 1
            self.records_sent += count
            if templates and n == 0:  # the templates went with it
                self._templates_due = time.monotonic() + self.template_refresh_s
