"""Which peer addresses count as LAN: the LAN interfaces' own prefixes.

Follows netlink address events, so a renumbered prefix (a new IPv6 delegation)
is picked up without a restart. Link-local, multicast and broadcast addresses
are always LAN: such traffic never leaves the local network.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

ALWAYS_LAN: tuple[Network, ...] = tuple(
    ipaddress.ip_network(n)
    for n in ("169.254.0.0/16", "224.0.0.0/4", "255.255.255.255/32", "fe80::/10", "ff00::/8")
)


class LanPrefixes:
    """The LAN prefix set; calls `install` with the full list whenever it changes."""

    def __init__(
        self,
        ifindexes: set[int],
        additional: list[Network],
        install: Callable[[list[Network]], None],
    ) -> None:
        self._ifindexes = set(ifindexes)
        self._additional = list(additional)
        self._install = install
        self._lock = threading.Lock()
        self._addresses: dict[tuple[int, str, int], Network] = {}  # (ifindex, address, prefixlen) → prefix
        self._installed: list[Network] | None = None

    def set_ifindexes(self, ifindexes: set[int]) -> None:
        with self._lock:
            self._ifindexes = set(ifindexes)
            self._addresses = {k: v for k, v in self._addresses.items() if k[0] in self._ifindexes}
        self.sync()

    def set_additional(self, additional: list[Network]) -> None:
        with self._lock:
            self._additional = list(additional)
        self.sync()

    def handle(self, msg) -> None:
        """Apply one RTM_NEWADDR / RTM_DELADDR message (dump or event)."""
        if msg["index"] not in self._ifindexes:
            return
        addr = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
        if not addr:
            return
        key = (msg["index"], addr, msg["prefixlen"])
        with self._lock:
            if msg["event"] == "RTM_DELADDR":
                self._addresses.pop(key, None)
            else:
                self._addresses[key] = ipaddress.ip_network(f"{addr}/{msg['prefixlen']}", strict=False)

    def current(self) -> list[Network]:
        with self._lock:
            nets = set(self._addresses.values()) | set(self._additional) | set(ALWAYS_LAN)
        return sorted(nets, key=lambda n: (n.version, n.network_address, n.prefixlen))

    def sync(self) -> bool:
        """Install the set if it changed; True when it did."""
        nets = self.current()
        if nets == self._installed:
            return False
        self._install(nets)
        added = [str(n) for n in nets if self._installed is None or n not in self._installed]
        removed = [str(n) for n in (self._installed or []) if n not in nets]
        self._installed = nets
        log.info("LAN prefixes now %s (added %s, removed %s)",
                 ", ".join(map(str, nets)), added or "none", removed or "none")
        return True
