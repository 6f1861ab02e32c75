"""Once a second: read the kernel's per-device counters into the store.

Within one daemon's life a device's counters only grow. On 32-bit routers the
kernel copies a 64-bit counter in two halves, so a read racing a carry can
see a value 4 GiB off; such a reading (a counter going down, or up by 2^32 or
more in a second) is read again, and skipped for that device if it stays odd.
Only a step that persists for several readings is believed (a real reset).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from ..bpf.counters import Counters, format_mac, read_devices
from ..bpf.maps import Map
from ..store.traffic import TrafficStore

log = logging.getLogger(__name__)

IMPLAUSIBLE_STEP = 1 << 32
BELIEVE_AFTER = 3  # consecutive odd readings after which a step is taken as real


def _implausible(values: list[int], last: list[int] | None) -> bool:
    return last is not None and any(v < p or v - p >= IMPLAUSIBLE_STEP for v, p in zip(values, last, strict=False))


class Reconciler:
    """Keeps the last accepted counters and filters torn readings out."""

    def __init__(self) -> None:
        self.last: Counters = {}
        self._strikes: dict[bytes, int] = {}

    def accept(self, counters: Counters, reread: Callable[[], Counters]) -> Counters:
        odd = [mac for mac, values in counters.items() if _implausible(values, self.last.get(mac))]
        again = reread() if odd else {}
        for mac in odd:
            values = again.get(mac)
            if values is not None and not _implausible(values, self.last[mac]):
                counters[mac] = values
                continue
            strikes = self._strikes[mac] = self._strikes.get(mac, 0) + 1
            if strikes < BELIEVE_AFTER:
                log.debug("skipping an inconsistent reading of %s", format_mac(mac))
                del counters[mac]
            else:
                log.warning("counters of %s stepped and stayed: taking them as restarted", format_mac(mac))
        for mac in counters:
            self._strikes.pop(mac, None)
        self.last.update(counters)
        return counters


class TrafficCollector:
    def __init__(self, slots: Map, overflow: Map, store: TrafficStore) -> None:
        self._slots = slots
        self._overflow = overflow
        self._store = store
        self._reconciler = Reconciler()

    def _read(self) -> Counters:
        return read_devices(self._slots, self._overflow)

    def forget(self, mac: bytes) -> None:
        self._reconciler.last.pop(mac, None)

    def tick(self) -> None:
        counters = self._reconciler.accept(self._read(), self._read)
        mono = time.monotonic()
        self._store.update(
            int(time.time() * 1000), mono, {format_mac(mac): values for mac, values in counters.items()}
        )
