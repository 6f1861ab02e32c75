"""Data quotas: validation, and when a quota's period begins in the router's local time.

A quota allows a device `bytes` of WAN traffic (download, upload or both) per
day, week or month; the period starts at `reset_hour`:00 local time, on the
weekday `reset_day` (1 = Monday) for a week, on the day of the month
`reset_day` (1-28, so every month has it) for a month. Used up, the device's
WAN traffic is blocked or held to the throttle rates until the next period.
`mac` "*" is the default quota of every device without its own and not on
the whitelist.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .schedule import ValidationError, no_unknown, parse_id, parse_mac, parse_rate

PERIODS = ("day", "week", "month")
DIRECTIONS = ("rx", "tx", "both")
ACTIONS = ("block", "throttle")
DEFAULT_MAC = "*"
MAX_BYTES = 2**62  # more than any link carries in a month; the kernel's sum stays far from 2^64
FIELDS = ("mac", "period", "bytes", "direction", "action", "throttle_rx_rate", "throttle_tx_rate",
          "reset_day", "reset_hour")


@dataclass(frozen=True)
class Quota:
    mac: str  # a normalized MAC, or DEFAULT_MAC
    period: str
    bytes: int
    direction: str
    action: str
    throttle_rx_rate: int
    throttle_tx_rate: int
    reset_day: int
    reset_hour: int
    id: str = ""

    def to_json(self) -> dict:
        return {"id": self.id, **{name: getattr(self, name) for name in FIELDS}}

    def period_start(self, now: float | None = None) -> int:
        """Unix seconds the period holding `now` began (local time, DST included)."""
        now = time.time() if now is None else now
        t = time.localtime(now)
        if self.period == "day":
            start = _local(t.tm_year, t.tm_mon, t.tm_mday, self.reset_hour)
            return start if start <= now else _local(t.tm_year, t.tm_mon, t.tm_mday - 1, self.reset_hour)
        if self.period == "week":
            back = (t.tm_wday + 1 - self.reset_day) % 7
            start = _local(t.tm_year, t.tm_mon, t.tm_mday - back, self.reset_hour)
            return start if start <= now else _local(t.tm_year, t.tm_mon, t.tm_mday - back - 7, self.reset_hour)
        start = _local(t.tm_year, t.tm_mon, self.reset_day, self.reset_hour)
        return start if start <= now else _local(t.tm_year, t.tm_mon - 1, self.reset_day, self.reset_hour)


def _local(year: int, month: int, day: int, hour: int) -> int:
    """mktime normalizes day 0, day -3 and month 0 into the months before."""
    return int(time.mktime((year, month, day, hour, 0, 0, 0, 0, -1)))


def _choice(value: object, field: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValidationError(field, f"must be one of {', '.join(choices)}")
    return value  # type: ignore[return-value]


def _whole(value: object, field: str, lo: int, hi: int) -> int:
    if type(value) is not int or not lo <= value <= hi:
        raise ValidationError(field, f"must be a whole number from {lo} to {hi}")
    return value


def parse_quota(body: object, with_id: bool = False) -> Quota:
    """A quota from the API's JSON body (POST; PUT with its id)."""
    if not isinstance(body, dict):
        raise ValidationError("body", "must be a JSON object")
    no_unknown(body, set(FIELDS) | ({"id"} if with_id else set()))
    qid = parse_id(body.get("id")) if with_id else ""
    mac = DEFAULT_MAC if body.get("mac") == DEFAULT_MAC else parse_mac(body.get("mac"))
    period = _choice(body.get("period"), "period", PERIODS)
    return Quota(
        mac, period,
        _whole(body.get("bytes"), "bytes", 1, MAX_BYTES),
        _choice(body.get("direction"), "direction", DIRECTIONS),
        _choice(body.get("action"), "action", ACTIONS),
        parse_rate(body.get("throttle_rx_rate"), "throttle_rx_rate"),
        parse_rate(body.get("throttle_tx_rate"), "throttle_tx_rate"),
        _whole(body.get("reset_day"), "reset_day", 1, 7 if period == "week" else 28),
        _whole(body.get("reset_hour"), "reset_hour", 0, 23),
        qid,
    )

