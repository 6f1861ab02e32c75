"""Once a second: read the kernel's per-device counters into the store."""

from __future__ import annotations

import time

from ..bpf.counters import format_mac, read_devices
from ..bpf.maps import Map
from ..store.traffic import TrafficStore


class TrafficCollector:
    def __init__(self, slots: Map, overflow: Map, store: TrafficStore) -> None:
        self._slots = slots
        self._overflow = overflow
        self._store = store

    def tick(self) -> None:
        counters = read_devices(self._slots, self._overflow)
        mono = time.monotonic()
        self._store.update(
            int(time.time() * 1000), mono, {format_mac(mac): values for mac, values in counters.items()}
        )
