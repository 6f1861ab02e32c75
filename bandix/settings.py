"""Rate-limit schedules and hostname bindings, kept in the UCI file.

Every change reads the file afresh, edits only the sections it concerns, and
replaces the file atomically, so edits made by hand or by `uci` in between
are kept. A section written by hand with a bad value is skipped with a log
line naming it; it never stops the daemon.
"""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path

from . import uci
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


def _rule_from_section(section: uci.Section) -> Rule:
    mac = parse_mac(section.get("mac"))
    days = section.get_list("days")
    try:
        day_numbers = [int(d) for d in days]
    except ValueError:
        raise ValidationError("days", f"{' '.join(days)!r} are not day numbers") from None
    slot = parse_slot({"start": section.get("start"), "end": section.get("end"), "days": day_numbers})
    rates = []
    for name in ("wan_rx_rate_limit", "wan_tx_rate_limit"):
        text = section.get(name) or "0"
        if not text.isdigit():
            raise ValidationError(name, f"{text!r} is not a whole number")
        rates.append(parse_rate(int(text), name))
    return Rule(mac, slot, *rates)


def _same_slot(section: uci.Section, mac: str, slot: TimeSlot) -> bool:
    try:
        rule = _rule_from_section(section)
    except ValidationError:
        return False
    return rule.mac == mac and rule.slot == slot


class Settings:
    """The rules and bindings in force, and the edits that change them."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self.rules: list[Rule] = []
        self.bindings: dict[str, str] = {}

    def load(self) -> None:
        """Read the file; raises uci.UciSyntaxError and OSError."""
        with self._lock:
            self._take(uci.load(self.path))

    def _take(self, f: uci.UciFile) -> None:
        rules, bindings = [], {}
        for i, section in enumerate(f.by_type(LIMIT)):
            try:
                rules.append(_rule_from_section(section))
            except ValidationError as exc:
                log.warning("%s: ignoring limit section %s: %s", self.path, section.name or f"#{i + 1}", exc)
        for i, section in enumerate(f.by_type(BINDING)):
            try:
                mac = parse_mac(section.get("mac"))
                name = parse_hostname(section.get("hostname") or "")
            except ValidationError as exc:
                log.warning("%s: ignoring binding section %s: %s", self.path, section.name or f"#{i + 1}", exc)
                continue
            if name:
                bindings[mac] = name
        self.rules, self.bindings = rules, bindings

    def _edit(self, change) -> object:
        with self._lock:
            f = uci.load(self.path)
            result = change(f)
            uci.save(self.path, f)
            self._take(f)
            return result

    def upsert_rule(self, rule: Rule) -> None:
        """Add a rule, or change the limits of the one with the same device and slot."""
        def change(f: uci.UciFile) -> None:
            section = next((s for s in f.by_type(LIMIT) if _same_slot(s, rule.mac, rule.slot)), None)
            if section is None:
                section = f.add(LIMIT)
                section.set("mac", rule.mac)
                section.set("start", format_minutes(rule.slot.start))
                section.set("end", format_minutes(rule.slot.end))
                section.set_list("days", [str(d) for d in rule.slot.days])
            section.set("wan_rx_rate_limit", str(rule.wan_rx_rate_limit))
            section.set("wan_tx_rate_limit", str(rule.wan_tx_rate_limit))

        self._edit(change)

    def delete_rule(self, mac: str, slot: TimeSlot) -> bool:
        """Remove the rules of this device and slot; False when there were none."""
        def change(f: uci.UciFile) -> bool:
            found = [s for s in f.by_type(LIMIT) if _same_slot(s, mac, slot)]
            for section in found:
                f.remove(section)
            return bool(found)

        return bool(self._edit(change))

    def set_options(self, options: dict[str, str]) -> None:
        """Set daemon options in `config bandix 'config'` (made if missing)."""
        def change(f: uci.UciFile) -> None:
            section = f.named("config") or f.add("bandix", "config")
            for name, value in options.items():
                section.set(name, value)

        self._edit(change)

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

