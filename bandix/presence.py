"""Online state per device: seen in traffic, or confirmed reachable by the kernel's
neighbour table, within `offline_timeout` seconds.

Traffic counts when the device sent it: packets *to* a device that left (a
server retransmitting, a stale neighbour entry) prove nothing about it.

Why a tracker and not a comparison at each request: `online_since` is the start
of the current online spell, which only an observer of the transitions knows.
It runs after every reading (once a second), in the reading thread.
A device never seen, or offline, has `online_since` 0.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

DEFAULT_OFFLINE_TIMEOUT = 300  # seconds; UCI offline_timeout, --offline-timeout


class Presence:
    def __init__(self, last_sent: Callable[[], dict[str, int]], confirmed: Callable[[], dict[str, int]],
                 timeout_s: int = DEFAULT_OFFLINE_TIMEOUT) -> None:
        self._last_sent = last_sent  # mac → ms of the last packet the device sent
        self._confirmed = confirmed  # mac → ms the neighbour table last confirmed it
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._since: dict[str, int] = {}  # online devices → start of their online spell (ms)
        self.version = 0  # changes whenever a device goes online or offline

    def tick(self, now_ms: int) -> None:
        """Re-evaluate every device at `now_ms` (wall clock)."""
        seen = self._last_sent()
        confirmed = self._confirmed()
        limit = now_ms - self.timeout_s * 1000
        with self._lock:
            since = {}
            for mac, last in seen.items():
                at = max(last, confirmed.get(mac, 0))
                if at and at >= limit:
                    # A new spell starts at the activity that made it online.
                    since[mac] = self._since.get(mac, at)
            if since != self._since:  # kept otherwise: readers compare it by identity
                self._since = since
                self.version += 1

    def forget(self, mac: str) -> None:
        with self._lock:
            if mac in self._since:
                self._since = {m: t for m, t in self._since.items() if m != mac}
                self.version += 1

    def state(self, mac: str) -> tuple[bool, int]:
        """(online, online_since ms; 0 when offline)."""
        since = self._since.get(mac, 0)
        return bool(since), since

    def states(self) -> dict[str, int]:
        """Online devices → online_since (a dict replaced at every change, never changed in place)."""
        return self._since
