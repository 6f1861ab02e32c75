"""One netlink socket for link, address and neighbour events, in a thread.

The socket is bound before the initial dumps are taken, so no change that
happens between the dump and the first event is missed (a change seen twice
is harmless: every handler is idempotent).
"""

from __future__ import annotations

import logging
import select
import threading
from collections.abc import Callable

from pyroute2 import IPRoute
from pyroute2.netlink.rtnl import (
    RTMGRP_IPV4_IFADDR,
    RTMGRP_IPV6_IFADDR,
    RTMGRP_LINK,
    RTMGRP_NEIGH,
)

log = logging.getLogger(__name__)

Handler = Callable[[object], None]
GROUPS = RTMGRP_LINK | RTMGRP_NEIGH | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR


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
        self._bound = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="netlink", daemon=True)

    def start(self) -> None:
        """Start the thread and return once its socket listens."""
        self._thread.start()
        self._bound.wait(10)
        if self._error:
            raise self._error

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        try:
            ipr = IPRoute()
            ipr.bind(groups=GROUPS)
        except BaseException as exc:  # reported by start()
            self._error = exc
            self._bound.set()
            return
        self._bound.set()
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([ipr.fileno()], [], [], 0.5)
                if not ready:
                    continue
                try:
                    msgs = ipr.get()
                except OSError as exc:  # ENOBUFS: the kernel dropped events
                    log.warning("netlink events were lost (%s): reading the tables again", exc)
                    if self._resync:
                        self._resync()
                    continue
                for msg in msgs:
                    self.dispatch(msg)
                if self._after_batch:
                    self._after_batch()
        except Exception:
            log.exception("netlink event thread failed; addresses and neighbours are no longer followed")
        finally:
            ipr.close()

    def dispatch(self, msg) -> None:
        for handler in self._handlers.get(msg.get("event"), ()):
            try:
                handler(msg)
            except Exception:
                log.exception("handling %s", msg.get("event"))
