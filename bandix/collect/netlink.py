"""One netlink socket for link, address and neighbour events, in a thread.

A plain AF_NETLINK socket read with recv() and decoded by pyroute2's rtnl
marshal: every message of every datagram is dispatched as soon as it arrives
(pyroute2's own event API queues datagrams where select() cannot see them).
The socket is bound before the initial dumps are taken, so no change between
the dump and the first event is missed; handlers are idempotent, so a change
seen twice is harmless. If the kernel drops events (ENOBUFS), the tables are
read again in full.
"""

from __future__ import annotations

import logging
import select
import socket
import threading
from collections.abc import Callable

from pyroute2.netlink.rtnl import (
    RTMGRP_IPV4_IFADDR,
    RTMGRP_IPV6_IFADDR,
    RTMGRP_LINK,
    RTMGRP_NEIGH,
)
from pyroute2.netlink.rtnl.marshal import MarshalRtnl

from .. import pyroute  # noqa: F401  (before any pyroute2 import: see bandix/pyroute.py)

log = logging.getLogger(__name__)

Handler = Callable[[object], None]
GROUPS = RTMGRP_LINK | RTMGRP_NEIGH | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR
RCVBUF = 1 << 20  # a burst of neighbour events on a big LAN fits


class NetlinkWatcher:
    """Dispatches rtnetlink events to handlers by event name (RTM_NEWADDR, ...)."""

    def __init__(
        self,
        handlers: dict[str, list[Handler]],
        after_batch: Callable[[], None] | None = None,
        resync: Callable[[], None] | None = None,
    ) -> None:
        self._handlers = handlers
        self._after_batch = after_batch
        self._resync = resync
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        self._sock.bind((0, GROUPS))
        self._marshal = MarshalRtnl()
        self._thread = threading.Thread(target=self._run, name="netlink", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(5)
        self._sock.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._sock], [], [], 0.5)
                if not ready:
                    continue
                data = self._sock.recv(1 << 16)
            except OSError as exc:  # ENOBUFS: the kernel dropped events
                if self._stop.is_set():
                    return
                log.warning("netlink events were lost (%s): reading the tables again", exc)
                self._call(self._resync)
                continue
            for msg in self._marshal.parse(data):
                self.dispatch(msg)
            self._call(self._after_batch)

    def _call(self, fn: Callable[[], None] | None) -> None:
        if fn is None:
            return
        try:
            fn()
        except Exception:
            log.exception("netlink follow-up failed")

    def dispatch(self, msg) -> None:
        for handler in self._handlers.get(msg.get("event"), ()):
            try:
                handler(msg)
            except Exception:
                log.exception("handling %s", msg.get("event"))
