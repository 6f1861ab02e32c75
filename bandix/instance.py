"""One bandix per interface and per pin directory, enforced with flock.

A lock dies with its process, so a crashed bandix never blocks the next one;
the file holds the owner's PID only to name it in the refusal.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path

from .errors import FatalError

LOCK_DIR = Path(os.environ.get("BANDIX_LOCK_DIR", "/var/run/bandix"))


def _netns_id() -> int:
    return os.stat("/proc/self/ns/net").st_ino


class InstanceLocks:
    def __init__(self) -> None:
        self._held: list[tuple[int, Path]] = []

    def acquire(self, name: str, what: str) -> None:
        LOCK_DIR.mkdir(parents=True, exist_ok=True)
        path = LOCK_DIR / f"{name}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise FatalError(f"another bandix (pid {owner}) already uses {what}; stop it first") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._held.append((fd, path))

    def acquire_interface(self, ifname: str) -> None:
        self.acquire(f"iface-{_netns_id()}-{ifname}", f"interface {ifname}")

    def acquire_pin_dir(self, pin_dir: str) -> None:
        digest = hashlib.sha1(os.path.realpath(pin_dir).encode()).hexdigest()[:12]
        self.acquire(f"pins-{digest}", f"the pin directory {pin_dir}")

    def release(self) -> None:
        """Unlink, then unlock: a file left behind would only be litter."""
        for fd, path in self._held:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            os.close(fd)
        self._held.clear()
