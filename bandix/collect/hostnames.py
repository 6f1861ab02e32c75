"""Device names: a binding first, then the DHCP leases file (dnsmasq format).

dnsmasq writes one lease per line: expiry, MAC, IP, hostname ('*' when the
client sent none), client id. The file is read again when it changes.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..macaddr import normalize_mac
from ..settings import Settings

log = logging.getLogger(__name__)


def parse_leases(text: str) -> dict[str, str]:
    names: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 4 or parts[3] == "*":
            continue
        try:
            names[normalize_mac(parts[1])] = parts[3]
        except ValueError:
            continue  # DHCPv6 lines ("duid ...", IAIDs) name no MAC
    return names


class Hostnames:
    def __init__(self, settings: Settings, leases_file: str) -> None:
        self._settings = settings
        self.leases_file = Path(leases_file)
        self._stamp: tuple[int, int] | None = None
        self._leases: dict[str, str] = {}

    def refresh(self) -> None:
        """Re-read the leases file if it changed (cheap: one stat)."""
        try:
            st = os.stat(self.leases_file)
        except OSError:
            self._stamp, self._leases = None, {}
            return
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        try:
            self._leases = parse_leases(self.leases_file.read_text(errors="replace"))
        except OSError as exc:
            log.warning("cannot read %s: %s", self.leases_file, exc)
            return
        self._stamp = stamp

    def sources(self) -> tuple[dict[str, str], dict[str, str]]:
        """The bindings and the leases names: both replaced, never changed in
        place, so a caller can tell a change by comparing them."""
        return self._settings.bindings, self._leases

    def name(self, mac: str) -> str:
        return self._settings.bindings.get(mac) or self._leases.get(mac, "")
