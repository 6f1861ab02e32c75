"""Which domain an address serves: learned from DNS answers and TLS/QUIC server
names, each valid for a capped TTL.

One address often serves several names (a CDN). Attribution then prefers the
name the device itself resolved or named, and says the answer is ambiguous.
The cache also counts what it does per domain, for `dns-cache-inspect`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

EXACT, AMBIGUOUS, UNKNOWN = "exact", "ambiguous", "unknown"
Label = tuple[str, str, str]  # (attribution, source "dns"/"sni"/"", domain or "")
NO_LABEL: Label = (UNKNOWN, "", "")
_RANK = {UNKNOWN: 0, AMBIGUOUS: 1, EXACT: 2}


def better(new: Label, old: Label) -> bool:
    """Whether `new` says more than `old`: exact over ambiguous over unknown."""
    return _RANK[new[0]] > _RANK[old[0]]


@dataclass(slots=True)
class Name:
    domain: str
    source: str  # "dns" or "sni": what taught it first
    expires: float  # monotonic seconds
    learned: float
    devices: set[str] = field(default_factory=set)  # MACs that resolved or named it


@dataclass
class CacheCounts:
    """What happened to one (source, domain) since the last take()."""

    learned: int = 0  # a new address for the domain
    refreshed: int = 0  # an address seen again before it expired
    expired: int = 0
    ips: set[str] = field(default_factory=set)


class DomainCache:
    def __init__(self, dns_ttl_cap: int, sni_ttl_cap: int, max_addresses: int = 65536) -> None:
        self.caps = {"dns": dns_ttl_cap, "sni": sni_ttl_cap}
        self.max_addresses = max_addresses
        self._by_ip: OrderedDict[str, dict[str, Name]] = OrderedDict()
        self._counts: dict[tuple[str, str], CacheCounts] = {}
        self._lock = threading.Lock()  # the DNS, hello and flow threads share it

    def __len__(self) -> int:
        return len(self._by_ip)

    def learn(self, ip: str, domain: str, ttl: int, source: str, mac: str, now: float) -> None:
        """`domain` lives at `ip` for `ttl` seconds (capped), as told to device `mac`."""
        ttl = max(0, min(ttl, self.caps[source]))
        with self._lock:
            names = self._by_ip.get(ip)
            if names is None:
                names = self._by_ip[ip] = {}
                while len(self._by_ip) > self.max_addresses:
                    self._by_ip.popitem(last=False)
            else:
                self._by_ip.move_to_end(ip)
            counts = self._counts.setdefault((source, domain), CacheCounts())
            counts.ips.add(ip)
            name = names.get(domain)
            if name is not None and name.expires > now:
                counts.refreshed += 1
                name.expires = max(name.expires, now + ttl)
            else:
                counts.learned += 1
                name = names[domain] = Name(domain, source, now + ttl, now)
            name.devices.add(mac)

    def live(self, ip: str, now: float) -> list[Name]:
        """The names `ip` serves now; expired ones are dropped (and counted)."""
        with self._lock:
            names = self._by_ip.get(ip)
            if not names:
                return []
            for domain in [d for d, n in names.items() if n.expires <= now]:
                gone = names.pop(domain)
                self._counts.setdefault((gone.source, domain), CacheCounts()).expired += 1
            if not names:
                del self._by_ip[ip]
            return list(names.values())

    def attribute(self, ip: str, mac: str, now: float) -> Label:
        """The label of traffic between device `mac` and `ip`."""
        names = self.live(ip, now)
        if not names:
            return NO_LABEL
        if len(names) == 1:
            return (EXACT, names[0].source, names[0].domain)
        own = [n for n in names if mac in n.devices] or names
        pick = max(own, key=lambda n: (n.source == "sni", n.learned))
        return (AMBIGUOUS, pick.source, pick.domain)

    def sweep(self, now: float) -> None:
        """Drop every expired name, so the counts say when names expire."""
        for ip in list(self._by_ip):
            self.live(ip, now)

    def take_counts(self) -> list[tuple[str, str, int, int, int, int]]:
        """(source, domain, learned, refreshed, expired, distinct ips) since the last call."""
        with self._lock:
            counts, self._counts = self._counts, {}
        return [(s, d, c.learned, c.refreshed, c.expired, len(c.ips)) for (s, d), c in counts.items()]

