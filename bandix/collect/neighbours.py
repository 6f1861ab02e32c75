"""IP ↔ MAC from the kernel neighbour table (netlink dump plus events).

A device keeps its last known addresses after its neighbour entry expires, so
the device list still shows where an offline device was; an address that moves
to another MAC is taken away from the old one.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from dataclasses import dataclass, field

NUD_INCOMPLETE = 0x01
NUD_FAILED = 0x20
NUD_NOARP = 0x40
_UNUSABLE = NUD_INCOMPLETE | NUD_FAILED | NUD_NOARP
USER_HZ = 100  # clock_t unit of nda_cacheinfo


@dataclass
class DeviceAddresses:
    """What the neighbour table says about one MAC."""

    ipv4: dict[str, float] = field(default_factory=dict)  # address → wall time last seen
    ipv6: dict[str, float] = field(default_factory=dict)
    confirmed: float = 0.0  # wall time the kernel last confirmed the device reachable


def _sort_key(item: tuple[str, float]) -> tuple[int, float]:
    addr = ipaddress.ip_address(item[0])
    # Prefer global addresses over link-local ones, then the most recent.
    return (0 if addr.is_link_local else 1, item[1])


def _newest_ipv4(dev: DeviceAddresses) -> str | None:
    return max(dev.ipv4.items(), key=lambda kv: kv[1])[0] if dev.ipv4 else None


def _shown(dev: DeviceAddresses) -> str:
    """The one address a device is listed with: the newest IPv4, else the best IPv6, else ""."""
    ipv4 = _newest_ipv4(dev)
    if ipv4:
        return ipv4
    if dev.ipv6:
        return max(dev.ipv6.items(), key=_sort_key)[0]
    return ""


class NeighbourTable:
    """Thread-safe map of the LAN's IP ↔ MAC associations."""

    def __init__(self, ifindexes: set[int]) -> None:
        self._ifindexes = set(ifindexes)
        self._lock = threading.Lock()
        self._by_mac: dict[str, DeviceAddresses] = {}
        self._by_ip: dict[str, str] = {}
        self._ifindex_of: dict[str, int] = {}
        self.addresses_version = 0  # changes whenever summary()'s address of some device changes
        self.confirmed_version = 0  # changes whenever confirmed_ms() changes

    def set_ifindexes(self, ifindexes: set[int]) -> None:
        with self._lock:
            self._ifindexes = set(ifindexes)

    def handle(self, msg) -> None:
        """Apply one RTM_NEWNEIGH / RTM_DELNEIGH message (dump or event)."""
        if msg["ifindex"] not in self._ifindexes:
            return
        ip = msg.get_attr("NDA_DST")
        mac = msg.get_attr("NDA_LLADDR")
        if not ip or not mac or len(mac) != 17:
            return
        mac = mac.lower()
        if int(mac[:2], 16) & 1:  # multicast mapping, not a device
            return
        if msg["event"] == "RTM_DELNEIGH" or msg["state"] & _UNUSABLE:
            return  # keep the last known address of an expired entry
        now = time.time()
        cache = msg.get_attr("NDA_CACHEINFO")
        confirmed = now - cache["ndm_confirmed"] / USER_HZ if cache is not None else 0.0
        self._ifindex_of[mac] = msg["ifindex"]
        self._learn(mac, ip, now, confirmed)

    def ifindex_of(self, mac: str) -> int | None:
        """The monitored interface the device was last seen on."""
        return self._ifindex_of.get(mac)

    def _learn(self, mac: str, ip: str, now: float, confirmed: float) -> None:
        family = "ipv6" if ":" in ip else "ipv4"
        with self._lock:
            previous = self._by_ip.get(ip)
            if previous is not None and previous != mac:
                old = self._by_mac[previous]
                shown = _shown(old)
                getattr(old, family).pop(ip, None)
                self.addresses_version += shown != _shown(old)
            self._by_ip[ip] = mac
            dev = self._by_mac.setdefault(mac, DeviceAddresses())
            shown = _shown(dev)  # "" for a new device: its first address is a change
            getattr(dev, family)[ip] = now
            if confirmed > dev.confirmed:
                dev.confirmed = confirmed
                self.confirmed_version += 1
            self.addresses_version += shown != _shown(dev)

    def summary(self) -> dict[str, tuple[str, float]]:
        """mac → (newest IPv4, else newest IPv6, else ""; confirmed time), under one lock."""
        with self._lock:
            return {mac: (_shown(dev), dev.confirmed) for mac, dev in self._by_mac.items()}

    def shown(self, mac: str) -> tuple[str, float]:
        """summary()[mac] of one device, ("", 0.0) when unknown."""
        with self._lock:
            dev = self._by_mac.get(mac)
            return (_shown(dev), dev.confirmed) if dev else ("", 0.0)

    def confirmed_ms(self) -> dict[str, int]:
        """mac → when the kernel last confirmed it reachable (ms since the epoch)."""
        with self._lock:
            return {mac: int(dev.confirmed * 1000) for mac, dev in self._by_mac.items()}

    def ipv4_of(self, mac: str) -> str | None:
        with self._lock:
            dev = self._by_mac.get(mac)
            return _newest_ipv4(dev) if dev else None

    def mac_of(self, ip: str) -> str | None:
        with self._lock:
            return self._by_ip.get(ip)
