"""Logging: bandix's own loggers at the chosen level, to stderr or to syslog (OpenWrt's logd)."""

from __future__ import annotations

import logging
import os
import sys
from logging.handlers import SysLogHandler

from .config import LOG_LEVEL_NUMBERS, TRACE

# Priorities of the levels for syslog: logd (openwrt/ubox log/syslog.c) keeps the
# <PRI> of each message, so `logread` shows daemon.debug ... daemon.err as bandix means them.
_SYSLOG_PRIORITY = {"TRACE": "debug", "DEBUG": "debug", "INFO": "info", "WARNING": "warning",
                    "ERROR": "err", "CRITICAL": "crit"}


class _SyslogHandler(SysLogHandler):
    """RFC 3164 without a timestamp (the log daemon adds the only one), ident bandix[pid]."""

    append_nul = False

    def mapPriority(self, levelName: str) -> str:  # noqa: N802 - logging's name
        return _SYSLOG_PRIORITY.get(levelName, "warning")


def setup_logging(level: str, syslog: str | None = None) -> None:
    """bandix's own loggers at `level`; every other library (pyroute2's netlink core
    above all: hundreds of lines a second at debug) stays at warning.

    syslog: the log socket (/dev/log on OpenWrt, from the init script); without it,
    or when it cannot be opened, lines go to stderr with a timestamp.
    """
    logging.addLevelName(TRACE, "TRACE")
    handler: logging.Handler | None = None
    if syslog:
        try:
            handler = _SyslogHandler(address=syslog, facility=SysLogHandler.LOG_DAEMON)
            handler.ident = f"bandix[{os.getpid()}]: "
            handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        except OSError as exc:
            print(f"bandix: cannot log to {syslog} ({exc}): logging to stderr", file=sys.stderr)
            handler = None
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    set_log_level(level)


def set_log_level(level: str) -> None:
    """At start-up and on SIGHUP: the level of bandix's loggers only."""
    logging.getLogger("bandix").setLevel(LOG_LEVEL_NUMBERS[level])
