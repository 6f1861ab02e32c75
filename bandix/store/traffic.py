"""Per-device traffic state: totals, rates, last-online time, realtime ring and
history levels, for every device and for all devices together.

Fed once a second with the kernel's cumulative counters. Rates come from
counter deltas over monotonic time (a wall-clock step never makes a rate
spike); sample and bucket stamps are wall-clock milliseconds. The all-devices
series is fed the per-second sums, so its statistics are those of the summed
series, never combinations of per-device statistics.

Totals are the kernel's counters plus an offset: the totals a device had when
its pinned counters were lost (a reboot), so they continue instead of
restarting at zero.
"""

from __future__ import annotations

import logging
import operator
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import NamedTuple

from .levels import DEFAULT_LEVELS, History, Level
from .realtime import COUNTERS, Ring

log = logging.getLogger(__name__)

# The kernel's counter fields, in bandix_dev_stats order.
FIELDS = (
    "lan_rx_bytes", "lan_rx_packets", "lan_tx_bytes", "lan_tx_packets",
    "wan_rx_bytes", "wan_rx_packets", "wan_tx_bytes", "wan_tx_packets",
)
BYTE_FIELDS = (0, 2, 4, 6)  # lan_rx, lan_tx, wan_rx, wan_tx bytes
WAN_RX, WAN_TX = 4, 6
LAN_RX, LAN_TX = 0, 2
ALL = "all"
# What live_numbers() gives per device: a devices table's changing cells.
LIVE_FIELDS = ("wan_rx_rate", "wan_tx_rate", "lan_rx_rate", "lan_tx_rate", "wan_rx_bytes", "wan_tx_bytes",
               "lan_bytes", "last_online_ts")
FORGET_CHECK_MS = 60_000  # at most; a quarter of the forgetting time when that is shorter
# After a restart, a wall clock behind the saved history (a router without a
# real-time clock, before NTP) holds history back until it catches up, for at
# most this long; then the clock is believed and the saved future dropped.
CLOCK_HOLD_S = 600


class Series:
    """What the API shows of one device, or of all: realtime ring and levels."""

    __slots__ = ("ring", "history")

    def __init__(self, retention_seconds: int, levels: tuple[Level, ...]) -> None:
        self.ring = Ring(retention_seconds)
        self.history = History(levels)


@dataclass
class Device:
    mac: str
    series: Series
    created_ms: int
    counters: list[int] = field(default_factory=lambda: [0] * len(FIELDS))  # the kernel's, last reading
    offset: list[int] = field(default_factory=lambda: [0] * len(FIELDS))
    rates: list[int] = field(default_factory=lambda: [0] * COUNTERS)  # bytes/s: lan_rx lan_tx wan_rx wan_tx
    last_online_ms: int = 0
    last_sent_ms: int = 0  # the last packet *from* the device (presence: traffic to it proves nothing)
    wan_delta: list[int] = field(default_factory=lambda: [0, 0])  # WAN rx, tx bytes not yet in a sample
    lan_delta: list[int] = field(default_factory=lambda: [0, 0])  # LAN rx, tx bytes likewise

    def totals(self) -> list[int]:
        return list(map(operator.add, self.offset, self.counters))


class DeviceView(NamedTuple):
    """A consistent copy of one device for readers outside the lock (a tuple:
    the dashboard asks for all of them every second)."""

    mac: str
    counters: tuple[int, ...]  # totals, in FIELDS order
    rates: tuple[int, ...]
    last_online_ms: int


@dataclass
class DeviceRecord:
    """A device as the database keeps it."""

    mac: str
    offset: list[int]
    kernel: list[int]
    last_online_ms: int
    created_ms: int


@dataclass
class LevelRecord:
    """One level of one series as the database keeps it."""

    # (chunk number, buckets, newest index, blob): sealed chunks, oldest first. In a
    # snapshot only those the database does not have yet; at restore, blob None = read
    # through the store's fetch_chunk when needed.
    sealed: list[tuple[int, int, int, bytes | None]]
    tail: bytes | None  # the open chunk's buckets (chunks.encode); None: unchanged since saved
    tail_version: int = 0


@dataclass
class SeriesRecord:
    ring: bytes | None  # None: not part of this snapshot (a periodic save)
    buffer: tuple[bytes, ...] | None
    levels: dict[str, LevelRecord]


@dataclass
class Snapshot:
    """Everything a restart needs, copied at one instant."""

    wall_ms: int
    mono: float | None  # monotonic time of the last reading
    devices: list[DeviceRecord]
    series: dict[str, SeriesRecord]
    forgotten: list[str] = field(default_factory=list)
    rewrite_from_ms: int | None = None  # the clock stepped back: stored buckets from here are stale
    final: bool = True  # with rings and sample buffers (a stop); periodic saves leave them out


def _view(d: Device) -> DeviceView:
    return DeviceView(d.mac, tuple(map(operator.add, d.offset, d.counters)), tuple(d.rates), d.last_online_ms)


class TrafficStore:
    """All devices plus the all-devices series; safe to read from API threads."""

    def __init__(
        self,
        retention_seconds: int,
        levels: tuple[Level, ...] = DEFAULT_LEVELS,
        fresh_counters: bool = False,
    ) -> None:
        self.retention_seconds = retention_seconds
        self.levels = levels
        self.level_by_name = {level.name: level for level in levels}
        self.forget_after_ms = max(level.retention_seconds for level in levels) * 1000
        # True when the kernel's counters were created at this start: whatever
        # they hold at the first reading is new traffic, not unknown history.
        self.fresh_counters = fresh_counters
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []
        # (series name, level name, chunk number) → a sealed chunk the database holds
        self.fetch_chunk: Callable[[str, str, int], bytes | None] | None = None
        self.reset()

    def reset(self) -> None:
        """Back to empty (also after a restore that failed half way)."""
        with self._lock:
            self._devices: dict[str, Device] = {}
            self._all = self._new_series(ALL)
            self._last_mono: float | None = None
            self.readings = 0  # how many update()s so far: what answers built from the store may be cached by
            self._last_ts: int | None = None
            self._next_forget_check = 0
            self._forgotten: list[str] = []  # for the kernel's slots (take_forgotten)
            self._forgotten_unsaved: list[str] = []  # for the database (snapshot)
            self._rewrite_from_ms: int | None = None
            self._hold_until_ms: int | None = None
            self._hold_deadline: float | None = None
            # live_numbers(): who asked since the last reading (their confirmed times),
            # and what that reading built (reading, confirmed, macs, numbers)
            self._live_asked: dict[str, int] | None = None
            self._live_built: tuple | None = None

    def _new_series(self, name: str) -> Series:
        series = Series(self.retention_seconds, self.levels)
        for level_name, rows in series.history.rows.items():
            rows.fetch = partial(self._fetch, name, level_name)
        return series

    def _fetch(self, name: str, level: str, no: int) -> bytes | None:
        return self.fetch_chunk(name, level, no) if self.fetch_chunk else None

    def _new_device(self, mac: str, ts_ms: int) -> Device:
        dev = self._devices[mac] = Device(mac, self._new_series(mac), created_ms=ts_ms)
        self._live_built = None  # built without it
        return dev

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call `listener` in the reading thread after every reading, outside the lock:
        for work that wants the devices while they are still in the CPU's caches."""
        self._listeners.append(listener)

    def update(self, ts_ms: int, mono: float, counters: dict[str, list[int]]) -> None:
        """Take one reading of every device's cumulative kernel counters."""
        with self._lock:
            self._update(ts_ms, mono, counters)
        for listener in self._listeners:
            try:
                listener()
            except Exception:  # a reader's bug must not stop the counting
                log.exception("a reading listener failed")

    def _update(self, ts_ms: int, mono: float, counters: dict[str, list[int]]) -> None:
        self.readings += 1
        first = self._last_mono is None and self._last_ts is None
        dt = None if self._last_mono is None else mono - self._last_mono
        self._last_mono = mono
        for mac, values in counters.items():
            dev = self._devices.get(mac)
            if dev is None:
                dev = self._new_device(mac, ts_ms)
                # Unknown history at the first reading of reused counters;
                # otherwise the device started from zero since then.
                if first and not self.fresh_counters:
                    dev.counters = list(values)
            self._advance(dev, ts_ms, dt, values)
        for mac, dev in self._devices.items():
            if mac not in counters:
                self._advance(dev, ts_ms, dt, dev.counters)
        self._live_built = None
        if self._live_asked is not None:  # asked for since the last reading
            self._live_built = (self.readings, self._live_asked, *self._live_pass(self._live_asked))
            self._live_asked = None
        if self._holding(ts_ms, mono):
            return
        if self._last_ts is not None and ts_ms < self._last_ts:
            self._step_back(ts_ms)
        self._last_ts = ts_ms
        self._record(ts_ms)
        if ts_ms >= self._next_forget_check:
            self._next_forget_check = ts_ms + min(FORGET_CHECK_MS, self.forget_after_ms // 4)
            self._forget_idle(ts_ms)

    def _advance(self, dev: Device, ts_ms: int, dt: float | None, values: list[int]) -> None:
        """Counters, rates and online time; WAN and LAN bytes wait in wan_delta, lan_delta for a sample."""
        previous = dev.counters
        if any(v < p for v, p in zip(values, previous, strict=True)):
            previous = [0] * len(FIELDS)  # the kernel's counters restarted
        delta = [v - p for v, p in zip(values, previous, strict=True)]
        if any(delta[1::2]):  # packets moved
            dev.last_online_ms = ts_ms
            if delta[3] or delta[7]:  # lan_tx, wan_tx packets: sent by the device
                dev.last_sent_ms = ts_ms
        dev.rates = [round(delta[f] / dt) if dt and dt > 0 else 0 for f in BYTE_FIELDS]
        dev.counters = list(values)
        dev.wan_delta[0] += delta[WAN_RX]
        dev.wan_delta[1] += delta[WAN_TX]
        dev.lan_delta[0] += delta[LAN_RX]
        dev.lan_delta[1] += delta[LAN_TX]

    def _holding(self, ts_ms: int, mono: float) -> bool:
        """True while the wall clock is behind the restored history (see CLOCK_HOLD_S)."""
        if self._hold_until_ms is None:
            return False
        if ts_ms >= self._hold_until_ms:
            self._hold_until_ms = None
            return False
        if self._hold_deadline is None:
            self._hold_deadline = mono + CLOCK_HOLD_S
            log.warning("the wall clock is behind the saved history: holding history back for up to %d s "
                        "while it catches up (NTP)", CLOCK_HOLD_S)
            return True
        if mono < self._hold_deadline:
            return True
        log.warning("the wall clock did not catch up with the saved history: believing it")
        self._hold_until_ms = None
        return False

    def _record(self, ts_ms: int) -> None:
        """One sample for every series: the realtime ring and the history levels."""
        sums = [0] * COUNTERS
        wan = [0, 0]
        lan = [0, 0]
        totals = [0] * COUNTERS
        for dev in self._devices.values():
            dev_totals = dev.totals()
            byte_totals = [dev_totals[f] for f in BYTE_FIELDS]
            dev.series.ring.append(ts_ms, dev.rates, byte_totals)
            dev.series.history.add(ts_ms, dev.rates[2], dev.rates[3], *dev.wan_delta, *dev.lan_delta)
            for i in range(COUNTERS):
                sums[i] += dev.rates[i]
                totals[i] += byte_totals[i]
            wan[0] += dev.wan_delta[0]
            wan[1] += dev.wan_delta[1]
            lan[0] += dev.lan_delta[0]
            lan[1] += dev.lan_delta[1]
            dev.wan_delta = [0, 0]
            dev.lan_delta = [0, 0]
        self._all.ring.append(ts_ms, sums, totals)
        self._all.history.add(ts_ms, sums[2], sums[3], *wan, *lan)

    def _step_back(self, ts_ms: int) -> None:
        dropped = 0
        for series in [self._all, *(d.series for d in self._devices.values())]:
            dropped += series.ring.drop_from(ts_ms)
            dropped += series.history.step_back(ts_ms // 1000)
        self._rewrite_from_ms = ts_ms if self._rewrite_from_ms is None else min(self._rewrite_from_ms, ts_ms)
        log.warning("the wall clock stepped back by %.1f s: dropped %d samples and buckets stamped after it",
                    (self._last_ts - ts_ms) / 1000, dropped)

    def _forget_idle(self, ts_ms: int) -> None:
        for mac in [m for m, d in self._devices.items()
                    if max(d.last_online_ms, d.created_ms) < ts_ms - self.forget_after_ms]:
            del self._devices[mac]
            self._live_built = None  # built with it
            self._forgotten.append(mac)
            self._forgotten_unsaved.append(mac)
            log.info("forgot %s: not seen for longer than the longest history", mac)

    def remove(self, mac: str) -> bool:
        """Forget one device now (DELETE /api/traffic/devices): its totals, samples and
        history; the database drops its rows at the next flush. False when unknown."""
        with self._lock:
            if self._devices.pop(mac, None) is None:
                return False
            self._live_built = None
            self._forgotten_unsaved.append(mac)
            return True

    def take_forgotten(self) -> list[str]:
        """Devices forgotten since the last call (their kernel slots can be freed)."""
        with self._lock:
            out, self._forgotten = self._forgotten, []
            return out

    # -- readers ----------------------------------------------------------

    def devices(self) -> list[DeviceView]:
        with self._lock:
            return [_view(d) for d in self._devices.values()]

    @property
    def last_reading_ms(self) -> int | None:
        """Stamp of the newest sample: the history buckets before its own are closed."""
        return self._last_ts

    def last_sent(self) -> dict[str, int]:
        """mac → ms of the last packet the device sent, for every device (the online state)."""
        with self._lock:
            return {mac: d.last_sent_ms for mac, d in self._devices.items()}

    def device(self, mac: str) -> DeviceView | None:
        with self._lock:
            dev = self._devices.get(mac)
            return _view(dev) if dev else None

    def live_numbers(self, confirmed: dict[str, int]) -> tuple[list[str], list[int]]:
        """Every device's MAC, and its LIVE_FIELDS in one flat list, both in the store's
        order (which only a device coming or going changes): what a devices table
        refreshes every second. `confirmed` (mac → ms) is a later last-online time
        from elsewhere. Asking arms the next reading to build them too, right after
        it moved the counters, while they are in the CPU's caches: built later from
        cold memory, they cost several times as much. The lists may be shared with
        other callers of the same reading: read them, do not change them."""
        with self._lock:
            self._live_asked = confirmed
            built = self._live_built
            if built is not None and built[0] == self.readings and built[1] is confirmed:
                return built[2], built[3]
            return self._live_pass(confirmed)

    def _live_pass(self, confirmed: dict[str, int]) -> tuple[list[str], list[int]]:
        out: list[int] = []
        for mac, dev in self._devices.items():
            r, o, c = dev.rates, dev.offset, dev.counters
            seen = confirmed.get(mac, 0)
            if seen < dev.last_online_ms:
                seen = dev.last_online_ms
            out += (r[2], r[3], r[0], r[1], o[4] + c[4], o[6] + c[6], o[0] + c[0] + o[2] + c[2], seen)
        return list(self._devices), out

    def _series(self, mac: str | None) -> Series | None:
        if mac is None:
            return self._all
        dev = self._devices.get(mac)
        return dev.series if dev else None

    def rows(self, mac: str | None) -> list[list[int]] | None:
        """Realtime rows of one device (None if unknown) or of all (mac None)."""
        with self._lock:
            series = self._series(mac)
            return series.ring.rows() if series else None

    def level_rows(self, level: str, mac: str | None, now_ms: int, since_ms: int = 0) -> list[list[int]] | None:
        """Closed buckets of one level within its retention (and from since_ms on); None for an unknown device."""
        lv = self.level_by_name[level]
        since = max(now_ms // 1000 // lv.interval - lv.capacity + 1, since_ms // 1000 // lv.interval)
        with self._lock:
            series = self._series(mac)
            return series.history.rows[level].rows(lv.interval, since) if series else None

    def level_usage(self, level: str, mac: str | None, now_ms: int, since_ms: int = 0) -> list[list[int]] | None:
        """level_rows()' buckets as [bucket start ms, WAN rx, WAN tx, LAN rx, LAN tx bytes], for
        usage; None for an unknown device."""
        lv = self.level_by_name[level]
        since = max(now_ms // 1000 // lv.interval - lv.capacity + 1, since_ms // 1000 // lv.interval)
        with self._lock:
            series = self._series(mac)
            return series.history.rows[level].usage(lv.interval, since) if series else None

    def level_json(self, level: str, mac: str | None, now_ms: int) -> Iterator[bytes] | None:
        """level_rows() as JSON, in pieces decoded as they are taken (outside the lock); None
        for an unknown device."""
        lv = self.level_by_name[level]
        since = now_ms // 1000 // lv.interval - lv.capacity + 1
        with self._lock:
            series = self._series(mac)
            return series.history.rows[level].json_stream(lv.interval, since) if series else None

    def level_bytes(self, level: str, start_ms: int, end_ms: int,
                    macs: list[str] | None = None) -> dict[str, list[tuple[int, int, int]]]:
        """Bytes per device per bucket of `level` in [start_ms, end_ms): mac (or ALL) →
        [(bucket start ms, WAN rx bytes, WAN tx bytes)], oldest first, buckets without WAN traffic left
        out. macs None: every device and ALL. A bucket counts when its start is in the range."""
        lv = self.level_by_name[level]
        ms = lv.interval * 1000
        first, stop = -(-start_ms // ms), -(-end_ms // ms)  # bucket indexes whose start is in range
        with self._lock:
            names = [ALL, *self._devices] if macs is None else macs
            out = {}
            for name in names:
                series = self._series(None if name == ALL else name)
                if series is not None:
                    out[name] = [(r[0] * ms, r[13], r[14]) for r in series.history.rows[level].records(first)
                                 if r[0] < stop and any(r[1:15])]  # WAN: LAN-only buckets left out
            return out

    # -- persistence ------------------------------------------------------

    def snapshot(self, final: bool = True) -> Snapshot:
        """A copy for the database: sealed chunks it does not have yet, every open chunk, and
        when final (a stop) the realtime rings and sample buffers too."""
        with self._lock:
            def record(series: Series) -> SeriesRecord:
                levels = {}
                for lv in self.levels:
                    rows = series.history.rows[lv.name]
                    tail = rows.tail_blob() if final or rows.tail_unsaved() else None
                    levels[lv.name] = LevelRecord(rows.unsaved(), tail, rows.tail_version)
                if not final:
                    return SeriesRecord(None, None, levels)
                return SeriesRecord(series.ring.dump(), series.history.buffer_state(), levels)

            snap = Snapshot(
                wall_ms=self._last_ts or 0,
                mono=self._last_mono,
                devices=[DeviceRecord(d.mac, list(d.offset), list(d.counters), d.last_online_ms, d.created_ms)
                         for d in self._devices.values()],
                series={ALL: record(self._all), **{m: record(d.series) for m, d in self._devices.items()}},
                forgotten=self._forgotten_unsaved,
                rewrite_from_ms=self._rewrite_from_ms,
                final=final,
            )
            self._forgotten_unsaved, self._rewrite_from_ms = [], None
            return snap

    def saved(self, snap: Snapshot) -> None:
        """The database now holds snap's sealed chunks: drop them from memory (reads fetch them)."""
        with self._lock:
            for name, rec in snap.series.items():
                series = self._series(None if name == ALL else name)
                if series is None:
                    continue
                for level_name, lrec in rec.levels.items():
                    rows = series.history.rows.get(level_name)
                    if rows is None:
                        continue
                    for no, _, _, blob in lrec.sealed:
                        if blob is not None:
                            rows.saved(no, blob)
                    if lrec.tail is not None:
                        rows.saved_tail(lrec.tail_version)

    def restore(self, snap: Snapshot, same_counters: bool, same_boot: bool) -> None:
        """Load a saved state before the first reading.

        same_counters: the pinned counters the state was taken from still exist,
        so the next delta is taken against them and the offsets stay. Otherwise
        the kernel restarted them at zero: the saved totals become the offsets.
        same_boot: the saved monotonic time is comparable with ours.
        """
        with self._lock:
            for rec in snap.devices:
                dev = self._new_device(rec.mac, rec.created_ms)
                dev.last_online_ms = dev.last_sent_ms = rec.last_online_ms
                if same_counters:
                    dev.offset, dev.counters = list(rec.offset), list(rec.kernel)
                else:
                    dev.offset = [o + k for o, k in zip(rec.offset, rec.kernel, strict=True)]
            for name, rec in snap.series.items():
                series = self._all if name == ALL else self._series(name)
                if series is None:
                    continue
                if rec.ring is not None:
                    series.ring.load(rec.ring)
                for level_name, lrec in rec.levels.items():
                    if level_name in self.level_by_name:
                        series.history.rows[level_name].restore(lrec.sealed, lrec.tail or b"")
                if rec.buffer is not None:
                    series.history.restore_buffer(rec.buffer)
            self._last_ts = snap.wall_ms or None
            self._hold_until_ms = self._last_ts
            if same_counters and same_boot:
                self._last_mono = snap.mono
