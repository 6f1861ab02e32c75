"""bandix: per-device traffic monitor for routers, eBPF counters and a JSON API."""

__version__ = "0.1.0"
