"""Quota counts saved in the data directory, for a reboot (the pinned map keeps them across daemon restarts).

A small JSON file {mac: [period start, bytes used]}, replaced atomically at
the history's flush interval and at shutdown, and only when a count moved:
flash is written no more often than the history itself.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from pathlib import Path

from ..macaddr import normalize_mac

log = logging.getLogger(__name__)

FILE_NAME = "quota_usage.json"


class QuotaUsageFile:
    def __init__(self, data_dir: Path, interval_s: float) -> None:
        self.path = Path(data_dir) / FILE_NAME
        self._interval = interval_s
        self._next = time.monotonic() + interval_s
        self._saved: dict[str, tuple[int, int]] = {}

    def load(self) -> dict[str, tuple[int, int]]:
        """The saved counts; a missing or unreadable file is none (with a log line)."""
        try:
            raw = json.loads(self.path.read_text())
            saved = {normalize_mac(mac): (int(start), int(used)) for mac, (start, used) in raw.items()}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            log.error("cannot read the saved quota counts in %s (%s): starting without them", self.path, exc)
            return {}
        self._saved = saved
        return saved

    def maybe_save(self, usage: dict[str, tuple[int, int]], force: bool = False) -> None:
        if not force and time.monotonic() < self._next:
            return
        self._next = time.monotonic() + self._interval
        if usage == self._saved:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{FILE_NAME}.")
            with os.fdopen(fd, "w") as f:
                json.dump({mac: list(v) for mac, v in sorted(usage.items())}, f)
            os.replace(tmp, self.path)
            self._saved = dict(usage)
        except OSError as exc:
            log.error("saving the quota counts to %s failed (%s); retrying at the next flush", self.path, exc)
