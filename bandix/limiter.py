"""Once a second (and right after every change): put the limits in force into the kernel.

Only differences are written. At start the map is made to match, so limits
left by a previous bandix (a restart keeps the programs attached) are kept if
still in force and removed if not.
"""

from __future__ import annotations

import logging
import threading

from .bpf.limits import delete_limit, read_limits, set_count, write_limit
from .bpf.maps import Map
from .localtime import weekday_minute
from .schedule import effective_limits
from .settings import Settings

log = logging.getLogger(__name__)


def _raw(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


class Limiter:
    def __init__(self, limits: Map, control: Map, settings: Settings) -> None:
        self._limits = limits
        self._control = control
        self._settings = settings
        self._lock = threading.Lock()
        self._count = -1
        self._written: dict[str, tuple[int, int]] = {
            ":".join(f"{b:02x}" for b in mac): rates for mac, rates in read_limits(limits).items()
        }

    def apply(self, now: float | None = None) -> None:
        weekday, minute = weekday_minute(now)
        wanted = effective_limits(self._settings.rules, weekday, minute)
        with self._lock:
            for mac, rates in wanted.items():
                if self._written.get(mac) != rates:
                    write_limit(self._limits, _raw(mac), *rates)
                    log.info("limit for %s now %d B/s down, %d B/s up", mac, *rates)
            for mac in [m for m in self._written if m not in wanted]:
                delete_limit(self._limits, _raw(mac))
                log.info("limit for %s lifted", mac)
            if len(wanted) != self._count:
                set_count(self._control, len(wanted))
                self._count = len(wanted)
            self._written = wanted

    def all_in_force(self) -> dict[str, tuple[int, int]]:
        """mac → in_force(mac) for every limited device (replaced, never changed in place)."""
        return self._written

    def in_force(self, mac: str) -> tuple[int, int]:
        """(wan_rx, wan_tx) bytes/s in force now; 0 = none."""
        return self._written.get(mac, (0, 0))
