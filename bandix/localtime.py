"""The router's local time zone, for schedules.

Order: the TZ environment variable, else the `timezone` option of UCI
`system` (a POSIX TZ string, as OpenWrt writes it), else /etc/TZ, else UTC.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from . import uci

log = logging.getLogger(__name__)


def system_timezone(config_dir: Path) -> str | None:
    try:
        f = uci.load(Path(config_dir) / "system")
    except (OSError, uci.UciSyntaxError):
        return None
    for section in f.by_type("system"):
        if section.get("timezone"):
            return section.get("timezone")
    return None


def setup_timezone(config_dir: Path, inherited: str | None) -> str:
    """Make time.localtime() use the router's zone; returns the TZ in force."""
    tz = inherited or system_timezone(config_dir)
    if not tz:
        try:
            tz = Path("/etc/TZ").read_text().strip() or None
        except OSError:
            tz = None
    os.environ["TZ"] = tz or "UTC0"
    time.tzset()
    return os.environ["TZ"]


def weekday_minute(now: float | None = None) -> tuple[int, int]:
    """Local (weekday 1 = Monday .. 7, minutes after midnight)."""
    t = time.localtime(now)
    return t.tm_wday + 1, t.tm_hour * 60 + t.tm_min
