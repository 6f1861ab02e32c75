"""Rate-limit schedules: validation, and which limit is in force at a moment.

A rule limits one device's WAN traffic during a weekly time slot. Days are
1 (Monday) to 7 (Sunday). A slot whose end is not after its start wraps past
midnight: 22:00–06:00 on Monday covers Monday 22:00 to Tuesday 06:00, and
an end equal to the start makes 24 hours from the start. Where
several rules match, the lowest non-zero limit wins in each direction; 0 means
no limit in that direction.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from .macaddr import normalize_mac

_HHMM = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_RATE = 12_500_000_000  # bytes/s (100 Gbit/s); the kernel's arithmetic holds up to 18 GB/s
MINUTES_PER_DAY = 1440


class ValidationError(ValueError):
    """Bad input; str() starts with the field it is about."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class TimeSlot:
    start: int  # minutes after midnight, 0..1439
    end: int  # 1..1440
    days: tuple[int, ...]  # sorted, 1 = Monday

    def covers(self, weekday: int, minute: int) -> bool:
        """Whether local `weekday` (1..7) at `minute` after midnight is inside."""
        if self.start < self.end:
            return weekday in self.days and self.start <= minute < self.end
        yesterday = 7 if weekday == 1 else weekday - 1
        return (weekday in self.days and minute >= self.start) or (yesterday in self.days and minute < self.end)

    def to_json(self) -> dict:
        return {"start": format_minutes(self.start), "end": format_minutes(self.end), "days": list(self.days)}


@dataclass(frozen=True)
class Rule:
    mac: str
    slot: TimeSlot
    wan_rx_rate_limit: int
    wan_tx_rate_limit: int
    id: str = ""  # its UCI section's name

    def to_json(self) -> dict:
        return {"id": self.id, "mac": self.mac, "time_slot": self.slot.to_json(),
                "wan_rx_rate_limit": self.wan_rx_rate_limit, "wan_tx_rate_limit": self.wan_tx_rate_limit}


def format_minutes(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def parse_time(value: object, field: str, end: bool = False) -> int:
    if not isinstance(value, str):
        raise ValidationError(field, "must be a string \"HH:MM\"")
    if end and value == "24:00":
        return MINUTES_PER_DAY
    match = _HHMM.fullmatch(value)
    if not match:
        raise ValidationError(field, f"{value!r} is not a time \"HH:MM\" (00:00 to 23:59{', or 24:00' if end else ''})")
    return int(match.group(1)) * 60 + int(match.group(2))


def parse_days(value: object, field: str = "time_slot.days") -> tuple[int, ...]:
    if not isinstance(value, list) or not value:
        raise ValidationError(field, "must be a non-empty list of days 1 (Monday) to 7 (Sunday)")
    for day in value:
        if type(day) is not int or not 1 <= day <= 7:
            raise ValidationError(field, f"{day!r} is not a day 1 (Monday) to 7 (Sunday)")
    if len(set(value)) != len(value):
        raise ValidationError(field, "a day is given twice")
    return tuple(sorted(value))


def parse_rate(value: object, field: str) -> int:
    if type(value) is not int or value < 0:
        raise ValidationError(field, "must be a non-negative whole number of bytes per second (0 = no limit)")
    if value > MAX_RATE:
        raise ValidationError(field, f"must be at most {MAX_RATE} bytes per second")
    return value


def parse_slot(value: object, field: str = "time_slot") -> TimeSlot:
    if not isinstance(value, dict):
        raise ValidationError(field, "must be an object with start, end and days")
    no_unknown(value, {"start", "end", "days"}, field + ".")
    start = parse_time(value.get("start"), f"{field}.start")
    end = parse_time(value.get("end"), f"{field}.end", end=True)
    return TimeSlot(start, end, parse_days(value.get("days"), f"{field}.days"))


def parse_mac(value: object, field: str = "mac") -> str:
    try:
        return normalize_mac(value)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ValidationError(field, str(exc)) from None


def no_unknown(body: dict, known: set[str], prefix: str = "") -> None:
    for key in body:
        if key not in known:
            raise ValidationError(f"{prefix}{key}", "unknown field")


def parse_id(value: object, field: str = "id") -> str:
    """A rule's or quota's id: the name of its UCI section."""
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise ValidationError(field, "must be an id: 1 to 64 letters, digits, _ or -")
    return value


_RULE_FIELDS = {"mac", "time_slot", "wan_rx_rate_limit", "wan_tx_rate_limit"}


def parse_rule(body: object, with_id: bool = False) -> Rule:
    """A rule from the API's JSON body (POST; PUT with its id)."""
    if not isinstance(body, dict):
        raise ValidationError("body", "must be a JSON object")
    no_unknown(body, _RULE_FIELDS | ({"id"} if with_id else set()))
    rule_id = parse_id(body.get("id")) if with_id else ""
    return Rule(parse_mac(body.get("mac")), parse_slot(body.get("time_slot")),
                parse_rate(body.get("wan_rx_rate_limit"), "wan_rx_rate_limit"),
                parse_rate(body.get("wan_tx_rate_limit"), "wan_tx_rate_limit"), rule_id)


def parse_rule_key(body: object) -> str | tuple[str, TimeSlot]:
    """What names the rules to delete: {id}, or the (mac, time slot) of the spec."""
    if not isinstance(body, dict):
        raise ValidationError("body", "must be a JSON object")
    if "id" in body:
        no_unknown(body, {"id"})
        return parse_id(body["id"])
    no_unknown(body, _RULE_FIELDS)
    for name in ("wan_rx_rate_limit", "wan_tx_rate_limit"):  # ignored, but only when valid
        if name in body:
            parse_rate(body[name], name)
    return parse_mac(body.get("mac")), parse_slot(body.get("time_slot"))


def effective_limits(rules: Iterable[Rule], weekday: int, minute: int) -> dict[str, tuple[int, int]]:
    """MAC → (wan_rx, wan_tx) limit in force; devices without any are absent."""
    out: dict[str, tuple[int, int]] = {}
    for rule in rules:
        if not rule.slot.covers(weekday, minute):
            continue
        rx, tx = out.get(rule.mac, (0, 0))
        rx = min(x for x in (rx, rule.wan_rx_rate_limit) if x) if rx or rule.wan_rx_rate_limit else 0
        tx = min(x for x in (tx, rule.wan_tx_rate_limit) if x) if tx or rule.wan_tx_rate_limit else 0
        if rx or tx:
            out[rule.mac] = (rx, tx)
    return out
