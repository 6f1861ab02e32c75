"""Rate-limit schedules, the default limit and its whitelist, quotas and
hostname bindings, kept in the UCI file.

A rule's or quota's id is its section's name. New ones get a name; one
written by hand without a name has an id derived from its type, content and
place (`cfg` and 6 hex digits, as libuci names anonymous sections), stable
until it is changed, and is given that name when the API edits it.

Every change reads the file afresh, edits only the sections it concerns, and
replaces the file atomically, so edits made by hand or by `uci` in between
are kept. A section written by hand with a bad value is skipped with a log
line naming it; it never stops the daemon.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import uci
from .quota import DEFAULT_MAC, Quota, parse_quota
from .quota import FIELDS as QUOTA_FIELDS
from .schedule import (
    Rule,
    TimeSlot,
    ValidationError,
    format_minutes,
    parse_mac,
    parse_rate,
    parse_slot,
)

log = logging.getLogger(__name__)

LIMIT = "limit"
BINDING = "binding"
QUOTA = "quota"
DEFAULT_LIMIT = "default_limit"  # the one section of the default limit and its whitelist, by this name
HOSTNAME_MAX = 64
# Letters of any script, digits, space and a few punctuation marks people use in names.
_HOSTNAME = re.compile(r"[\w .'()&+@#-]+")


def parse_hostname(value: object) -> str:
    """A binding's hostname; '' removes the binding."""
    if not isinstance(value, str):
        raise ValidationError("hostname", "must be a string")
    if value == "":
        return value
    if value != value.strip():
        raise ValidationError("hostname", "must not start or end with spaces")
    if len(value) > HOSTNAME_MAX:
        raise ValidationError("hostname", f"must be at most {HOSTNAME_MAX} characters")
    if not _HOSTNAME.fullmatch(value):
        raise ValidationError("hostname", "may hold letters, digits, spaces and . ' ( ) & + @ # - _ only")
    return value


def _rate_option(section: uci.Section, name: str) -> int:
    text = section.get(name) or "0"
    if not text.isdigit():
        raise ValidationError(name, f"{text!r} is not a whole number")
    return parse_rate(int(text), name)


def _rule_from_section(section: uci.Section) -> Rule:
    mac = parse_mac(section.get("mac"))
    days = section.get_list("days")
    try:
        day_numbers = [int(d) for d in days]
    except ValueError:
        raise ValidationError("days", f"{' '.join(days)!r} are not day numbers") from None
    slot = parse_slot({"start": section.get("start"), "end": section.get("end"), "days": day_numbers})
    return Rule(mac, slot, _rate_option(section, "wan_rx_rate_limit"), _rate_option(section, "wan_tx_rate_limit"))


_NUMERIC_QUOTA = {"bytes", "throttle_rx_rate", "throttle_tx_rate", "reset_day", "reset_hour"}
# What an option left out means (LuCI drops empty ones); mac, period and bytes must be given.
_QUOTA_DEFAULTS = {"direction": "both", "action": "block", "throttle_rx_rate": "0", "throttle_tx_rate": "0",
                   "reset_day": "1", "reset_hour": "0"}


def _quota_from_section(section: uci.Section) -> Quota:
    body: dict[str, object] = {}
    for name in QUOTA_FIELDS:
        text = section.get(name)
        if text is None:
            text = _QUOTA_DEFAULTS.get(name)
        if text is None:
            raise ValidationError(name, "missing")
        if name in _NUMERIC_QUOTA:
            if not text.isdigit():
                raise ValidationError(name, f"{text!r} is not a whole number")
            body[name] = int(text)
        else:
            body[name] = text
    return parse_quota(body)


def _write_quota(section: uci.Section, quota: Quota) -> None:
    for name in QUOTA_FIELDS:
        section.set(name, str(getattr(quota, name)))


def _same_slot(section: uci.Section, mac: str, slot: TimeSlot) -> bool:
    try:
        rule = _rule_from_section(section)
    except ValidationError:
        return False
    return rule.mac == mac and rule.slot == slot


def section_ids(sections: list[uci.Section]) -> list[str]:
    """Each section's id: its name, or for an unnamed one `cfg` + 6 hex digits of its content and place."""
    out, seen = [], set()
    for section in sections:
        sid = section.name
        if sid is None:
            text = section.type + "".join(f"\0{k}={v}" for k, v in section.options().items())
            n = 0
            while sid is None or sid in seen:
                sid = "cfg" + hashlib.sha1(f"{text}\0{n}".encode()).hexdigest()[:6]
                n += 1
        seen.add(sid)
        out.append(sid)
    return out


def _by_id(f: uci.UciFile, type_: str, sid: str) -> uci.Section | None:
    """The section of this id, given the id as its name if it had none."""
    sections = f.by_type(type_)
    for section, section_id in zip(sections, section_ids(sections), strict=True):
        if section_id == sid:
            if section.name is None:
                section.name = sid
                section.header = uci.Statement("config", [type_, sid])
            return section
    return None


def _new_name(f: uci.UciFile, type_: str) -> str:
    taken = {s.name for s in f.sections}
    while True:
        name = f"{type_}_{secrets.token_hex(4)}"
        if name not in taken:
            return name


class _NotFound(Exception):
    """Raised inside an edit to leave the file as it is."""


def _write_rule(section: uci.Section, rule: Rule) -> None:
    section.set("mac", rule.mac)
    section.set("start", format_minutes(rule.slot.start))
    section.set("end", format_minutes(rule.slot.end))
    section.set_list("days", [str(d) for d in rule.slot.days])
    section.set("wan_rx_rate_limit", str(rule.wan_rx_rate_limit))
    section.set("wan_tx_rate_limit", str(rule.wan_tx_rate_limit))


@dataclass(frozen=True)
class DefaultLimit:
    """The limit of every device not on the whitelist, in force while `enabled`."""

    enabled: bool = False
    wan_rx_rate_limit: int = 0
    wan_tx_rate_limit: int = 0
    whitelist: frozenset[str] = field(default_factory=frozenset)

    @property
    def rates(self) -> tuple[int, int]:
        return (self.wan_rx_rate_limit, self.wan_tx_rate_limit) if self.enabled else (0, 0)


def _default_from_section(section: uci.Section | None) -> DefaultLimit:
    if section is None:
        return DefaultLimit()
    enabled = section.get("enabled") or "0"
    if enabled not in ("0", "1"):
        raise ValidationError("enabled", f"{enabled!r} is not 0 or 1")
    return DefaultLimit(enabled == "1", _rate_option(section, "wan_rx_rate_limit"),
                        _rate_option(section, "wan_tx_rate_limit"),
                        frozenset(parse_mac(m, "whitelist") for m in section.get_list("whitelist")))


class Settings:
    """The rules, default limit, quotas and bindings in force, and the edits that change them."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self.rules: list[Rule] = []
        self.bindings: dict[str, str] = {}
        self.default_limit = DefaultLimit()
        self.quotas: list[Quota] = []

    def load(self) -> None:
        """Read the file; raises uci.UciSyntaxError and OSError."""
        with self._lock:
            self._take(uci.load(self.path))

    def _take(self, f: uci.UciFile) -> None:
        rules, bindings, quotas = [], {}, []
        sections = f.by_type(LIMIT)
        for section, sid in zip(sections, section_ids(sections), strict=True):
            try:
                rules.append(replace(_rule_from_section(section), id=sid))
            except ValidationError as exc:
                log.warning("%s: ignoring limit section %s: %s", self.path, sid, exc)
        sections = f.by_type(QUOTA)
        for section, sid in zip(sections, section_ids(sections), strict=True):
            try:
                quota = replace(_quota_from_section(section), id=sid)
            except ValidationError as exc:
                log.warning("%s: ignoring quota section %s: %s", self.path, sid, exc)
                continue
            if any(q.mac == quota.mac for q in quotas):
                log.warning("%s: ignoring quota section %s: %s has a quota already", self.path, sid, quota.mac)
                continue
            quotas.append(quota)
        try:
            default = _default_from_section(f.named(DEFAULT_LIMIT))
        except ValidationError as exc:
            log.warning("%s: ignoring section %s: %s", self.path, DEFAULT_LIMIT, exc)
            default = DefaultLimit()
        for i, section in enumerate(f.by_type(BINDING)):
            try:
                mac = parse_mac(section.get("mac"))
                name = parse_hostname(section.get("hostname") or "")
            except ValidationError as exc:
                log.warning("%s: ignoring binding section %s: %s", self.path, section.name or f"#{i + 1}", exc)
                continue
            if name:
                bindings[mac] = name
        self.rules, self.bindings, self.quotas, self.default_limit = rules, bindings, quotas, default

    def _edit(self, change) -> object:
        with self._lock:
            f = uci.load(self.path)
            result = change(f)
            uci.save(self.path, f)
            self._take(f)
            return result

    def upsert_rule(self, rule: Rule) -> Rule:
        """Add a rule, or change the limits of the one with the same device and slot; the rule with its id."""
        def change(f: uci.UciFile) -> str:
            sections = f.by_type(LIMIT)
            found = next(((s, sid) for s, sid in zip(sections, section_ids(sections), strict=True)
                          if _same_slot(s, rule.mac, rule.slot)), None)
            if found is None:
                section = f.add(LIMIT, _new_name(f, LIMIT))
            else:
                section = _by_id(f, LIMIT, found[1])
            _write_rule(section, rule)
            return section.name

        return replace(rule, id=self._edit(change))

    def update_rule(self, rule: Rule) -> bool:
        """PUT: change the rule `rule.id` in place; False (nothing written) when there is none."""
        return self._rewrite(LIMIT, rule.id, lambda section: _write_rule(section, rule))

    def delete_rule(self, key: str | tuple[str, TimeSlot]) -> bool:
        """Remove the rule of this id, or the rules of this device and slot; False when there were none."""
        def change(f: uci.UciFile) -> bool:
            found = [s for s in f.by_type(LIMIT) if _same_slot(s, *key)]
            if not found:
                raise _NotFound
            for section in found:
                f.remove(section)
            return True

        return self._remove(LIMIT, key) if isinstance(key, str) else self._edit_or_missing(change)

    def _edit_or_missing(self, change) -> bool:
        """An edit that finds nothing to change writes nothing."""
        try:
            return bool(self._edit(change))
        except _NotFound:
            return False

    def _rewrite(self, type_: str, sid: str, write) -> bool:
        """Rewrite the section of this id in place; False when there is none."""
        def change(f: uci.UciFile) -> bool:
            section = _by_id(f, type_, sid)
            if section is None:
                raise _NotFound
            write(section)
            return True

        return self._edit_or_missing(change)

    def _remove(self, type_: str, sid: str) -> bool:
        def change(f: uci.UciFile) -> bool:
            section = _by_id(f, type_, sid)
            if section is None:
                raise _NotFound
            f.remove(section)
            return True

        return self._edit_or_missing(change)

    def _edit_default(self, change) -> None:
        def edit(f: uci.UciFile) -> None:
            change(f.named(DEFAULT_LIMIT) or f.add(DEFAULT_LIMIT, DEFAULT_LIMIT))

        self._edit(edit)

    def set_default_rates(self, rx: int, tx: int) -> None:
        def change(section: uci.Section) -> None:
            section.set("wan_rx_rate_limit", str(rx))
            section.set("wan_tx_rate_limit", str(tx))

        self._edit_default(change)

    def set_whitelist_enabled(self, enabled: bool) -> None:
        self._edit_default(lambda section: section.set("enabled", "1" if enabled else "0"))

    def set_whitelisted(self, mac: str, listed: bool) -> bool:
        """Put a device on the whitelist or take it off; False when that changes nothing."""
        if (mac in self.default_limit.whitelist) == listed:
            return False

        def change(section: uci.Section) -> None:
            macs = [m for m in section.get_list("whitelist") if m.lower().replace("-", ":") != mac]
            section.set_list("whitelist", macs + [mac] if listed else macs)

        self._edit_default(change)
        return True

    def upsert_quota(self, quota: Quota) -> Quota:
        """POST: a device's quota (or the default, mac "*"), replacing the one it had; the quota with its id."""
        def change(f: uci.UciFile) -> str:
            self._take(f)  # the file as it is now, edits by hand included
            sid = next((q.id for q in self.quotas if q.mac == quota.mac), None)
            section = (_by_id(f, QUOTA, sid) if sid else None) or f.add(QUOTA, _new_name(f, QUOTA))
            _write_quota(section, quota)
            return section.name

        return replace(quota, id=self._edit(change))

    def update_quota(self, quota: Quota) -> bool:
        """PUT: change the quota `quota.id` in place; False when there is none."""
        return self._rewrite(QUOTA, quota.id, lambda section: _write_quota(section, quota))

    def delete_quota(self, quota_id: str) -> bool:
        return self._remove(QUOTA, quota_id)

    def quota_of(self, mac: str) -> Quota | None:
        """The quota that applies to a device: its own, else the default unless it is whitelisted."""
        default = None
        for q in self.quotas:
            if q.mac == mac:
                return q
            if q.mac == DEFAULT_MAC:
                default = q
        return None if mac in self.default_limit.whitelist else default

    def set_options(self, options: dict[str, str]) -> None:
        """Set daemon options in `config bandix 'config'` (made if missing)."""
        def change(f: uci.UciFile) -> None:
            section = f.named("config") or f.add("bandix", "config")
            for name, value in options.items():
                section.set(name, value)

        self._edit(change)

    def remove_device(self, mac: str) -> dict[str, int]:
        """Everything the file says about one device (DELETE /api/traffic/devices with
        "rules": true) in one write: its limit rules, quota, binding and whitelist entry;
        how many of each went. Sections that do not parse are left alone."""
        def mac_of(section: uci.Section) -> str | None:
            try:
                return parse_mac(section.get("mac"))
            except ValidationError:
                return None

        def change(f: uci.UciFile) -> dict[str, int]:
            removed = {}
            for type_, key in ((LIMIT, "rules"), (QUOTA, "quotas"), (BINDING, "bindings")):
                found = [sec for sec in f.by_type(type_) if mac_of(sec) == mac]
                for section in found:
                    f.remove(section)
                removed[key] = len(found)
            default = f.named(DEFAULT_LIMIT)
            removed["whitelist"] = 0
            if default is not None:
                macs = default.get_list("whitelist")
                kept = [m for m in macs if m.lower().replace("-", ":") != mac]
                if len(kept) != len(macs):
                    default.set_list("whitelist", kept)
                    removed["whitelist"] = len(macs) - len(kept)
            if not any(removed.values()):
                raise _NotFound  # nothing to write
            return removed

        try:
            return self._edit(change)
        except _NotFound:
            return {"rules": 0, "quotas": 0, "bindings": 0, "whitelist": 0}

    def set_binding(self, mac: str, hostname: str) -> None:
        """Bind a hostname to a device; an empty one removes the binding."""
        def change(f: uci.UciFile) -> None:
            found = []
            for s in f.by_type(BINDING):
                try:
                    if parse_mac(s.get("mac")) == mac:
                        found.append(s)
                except ValidationError:
                    continue
            for extra in found[1:]:
                f.remove(extra)
            if not hostname:
                if found:
                    f.remove(found[0])
                return
            section = found[0] if found else f.add(BINDING)
            section.set("mac", mac)
            section.set("hostname", hostname)

        self._edit(change)

