"""Once a second (and right after every change): put the WAN policies in force into the kernel.

A device's policy is its rate limit (the lowest non-zero of its schedule rules
in force and, unless it is whitelisted, the default limit) and its quota (its
own, else the default one unless it is whitelisted). With a default in force
the map holds it under layout.DEFAULT_KEY and the programs copy it to each
new device at its first packet; devices that differ from it (their own
rules or quota, or exempt) have entries of their own.

Only differences are written; a rewritten entry keeps its quota count while
its period and counted directions stay the same, and starts at zero when a
new period begins. At start the map is read back, so limits and quota counts
left by a previous bandix (a restart keeps the programs attached and the map
pinned) carry on.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace

from .bpf import layout
from .bpf.limits import Policy, delete_entry, mac_key, read_entries, set_count, write_policy
from .bpf.maps import Map
from .localtime import weekday_minute
from .quota import DEFAULT_MAC, Quota
from .schedule import effective_limits
from .settings import Settings

log = logging.getLogger(__name__)

NO_POLICY = Policy()


def _mac(key: bytes) -> str:
    return key[:6].hex(":")


def lower_limit(a: int, b: int) -> int:
    """The lower non-zero of two limits (0 = none)."""
    return min(a, b) if a and b else a or b


@dataclass(frozen=True)
class QuotaStatus:
    bytes: int  # 0: no quota applies
    used: int
    state: str  # none | ok | blocked | throttled

    def to_json(self) -> dict:
        return {"quota_bytes": self.bytes, "quota_used_bytes": self.used, "quota_state": self.state}


NO_QUOTA = QuotaStatus(0, 0, "none")


def quota_policy(rates: tuple[int, int], quota: Quota | None, now: float) -> Policy:
    if quota is None:
        return Policy(rates)
    flags = {"rx": layout.QUOTA_RX, "tx": layout.QUOTA_TX, "both": layout.QUOTA_RX | layout.QUOTA_TX}[quota.direction]
    if quota.action == "block":
        return Policy(rates, quota.bytes, flags | layout.QUOTA_BLOCK, (0, 0), quota.period_start(now))
    throttled = (lower_limit(rates[0], quota.throttle_rx_rate), lower_limit(rates[1], quota.throttle_tx_rate))
    return Policy(rates, quota.bytes, flags, throttled, quota.period_start(now))


class Limiter:
    def __init__(self, limits: Map, control: Map, settings: Settings) -> None:
        self._limits = limits
        self._control = control
        self._settings = settings
        self._lock = threading.Lock()
        self._count = -1
        self._own: dict[str, Policy] = {}  # devices with entries of their own
        self._default = NO_POLICY
        self._in_force: dict[str, tuple[int, int]] = {}
        self._quotas: dict[str, tuple[Policy, int]] = {}  # mac -> (policy, used) of entries with a quota
        self._restore: dict[str, tuple[int, int]] = {}  # mac -> (period start, used) saved before a reboot

    def restore_usage(self, saved: dict[str, tuple[int, int]]) -> None:
        """Quota counts saved before the pins were lost (a reboot); taken where the period is still the same."""
        self._restore = dict(saved)

    def _wanted(self, now: float) -> tuple[dict[bytes, Policy], Policy]:
        s = self._settings
        weekday, minute = weekday_minute(now)
        scheduled = effective_limits(s.rules, weekday, minute)
        d = s.default_limit
        default = quota_policy(d.rates, next((q for q in s.quotas if q.mac == DEFAULT_MAC), None), now)
        wanted: dict[bytes, Policy] = {}
        macs = set(scheduled) | {q.mac for q in s.quotas if q.mac != DEFAULT_MAC}
        if default != NO_POLICY:
            macs |= d.whitelist
        for mac in macs:
            exempt = mac in d.whitelist
            rx, tx = scheduled.get(mac, (0, 0))
            if not exempt:
                rx, tx = lower_limit(rx, d.rates[0]), lower_limit(tx, d.rates[1])
            policy = quota_policy((rx, tx), s.quota_of(mac), now)
            if policy != NO_POLICY or default != NO_POLICY:
                wanted[mac_key(bytes.fromhex(mac.replace(":", "")))] = policy
        if default != NO_POLICY:
            wanted[layout.DEFAULT_KEY] = default
        return wanted, default

    def apply(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        wanted, default = self._wanted(now)
        copy = replace(default, copy=True)
        with self._lock:
            entries = read_entries(self._limits)
            self._take_restored(entries, wanted, copy)
            final: dict[bytes, tuple[Policy, int]] = {}
            for key, (policy, used) in entries.items():
                target = wanted.get(key) or (copy if default != NO_POLICY and key != layout.DEFAULT_KEY else None)
                if target is None:
                    delete_entry(self._limits, key)
                    log.info("limit for %s lifted", _mac(key))
                    continue
                if target != policy:
                    used = used if target.same_quota_count(policy) else 0
                    write_policy(self._limits, key, target, used)
                    self._log_change(key, target)
                final[key] = (target, used)
            for key in wanted.keys() - entries.keys():
                write_policy(self._limits, key, wanted[key])
                self._log_change(key, wanted[key])
                final[key] = (wanted[key], 0)
            if len(final) != self._count:
                set_count(self._control, len(final))
                self._count = len(final)
            self._own = {_mac(k): p for k, (p, _) in final.items() if k != layout.DEFAULT_KEY and not p.copy}
            self._default = default
            in_force = {mac: p.rate for mac, p in self._own.items() if any(p.rate)}
            if any(default.rate):
                in_force[DEFAULT_MAC] = default.rate
            if in_force != self._in_force:
                self._in_force = in_force
            self._quotas = {_mac(k): pu for k, pu in final.items() if k != layout.DEFAULT_KEY and pu[0].quota_bytes}

    def _take_restored(self, entries: dict, wanted: dict[bytes, Policy], copy: Policy) -> None:
        """After a reboot: put the saved quota counts of this period back before the devices' next packet."""
        restore, self._restore = self._restore, {}
        for mac, (period_start, used) in restore.items():
            key = mac_key(bytes.fromhex(mac.replace(":", "")))
            target = wanted.get(key) or (copy if copy.quota_bytes else None)
            if key in entries or target is None or not target.quota_bytes or target.period_start != period_start:
                continue
            write_policy(self._limits, key, target, used)
            entries[key] = (target, used)
            log.info("quota count of %s restored: %d bytes", mac, used)

    @staticmethod
    def _log_change(key: bytes, p: Policy) -> None:
        who = "default" if key == layout.DEFAULT_KEY else _mac(key)
        quota = f", quota {p.quota_bytes} bytes" if p.quota_bytes else ""
        log.info("limit for %s now %d B/s down, %d B/s up%s", who, *p.rate, quota)

    def all_in_force(self) -> dict[str, tuple[int, int]]:
        """mac → in_force(mac) for every device with a limit of its own, and "*" → the default
        limit (replaced when one changes, never changed in place)."""
        return self._in_force

    def in_force(self, mac: str) -> tuple[int, int]:
        """(wan_rx, wan_tx) bytes/s in force now; 0 = none."""
        own = self._own.get(mac)
        return own.rate if own is not None else self._default.rate

    def quota_status(self, mac: str) -> QuotaStatus:
        """The device's quota, what it used this period, and whether it is used up."""
        entry = self._quotas.get(mac)
        if entry is None:
            own = self._own.get(mac)
            policy = own if own is not None else self._default
            return QuotaStatus(policy.quota_bytes, 0, "ok") if policy.quota_bytes else NO_QUOTA
        policy, used = entry
        if used < policy.quota_bytes:
            return QuotaStatus(policy.quota_bytes, used, "ok")
        return QuotaStatus(policy.quota_bytes, used, "blocked" if policy.quota_flags & layout.QUOTA_BLOCK
                           else "throttled")

    def usage(self) -> dict[str, tuple[int, int]]:
        """mac -> (period start, bytes used) of every device under a quota, for saving."""
        return {mac: (p.period_start, used) for mac, (p, used) in self._quotas.items()}
