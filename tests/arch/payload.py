"""The daemon's Python dependencies for the guests, as pure-Python wheels.

The guests run Debian's python3 (3.11, as here) with the same versions of
falcon, waitress, pyroute2 and dnslib as this `.venv` (and prometheus_client,
which tests/traffic.py reads /metrics with), installed from their
`py3-none-any` wheels: those run on every architecture, where compiled wheels
often do not exist (s390x, armhf). `cryptography` is left out on purpose:
only QUIC names need it, and a router without it must still run bandix.
The directory sits in the cache, named by a hash of the versions, and reaches
the guest inside the read-only checkout share.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.arch.images import CACHE

PACKAGES = ("falcon", "waitress", "pyroute2", "dnslib", "prometheus_client")
GUEST_PYTHON = "3.11"


def pins() -> list[str]:
    return [f"{name}=={importlib.metadata.version(name)}" for name in PACKAGES]


def site_dir() -> Path:
    digest = hashlib.sha256(" ".join([GUEST_PYTHON, *pins()]).encode()).hexdigest()[:12]
    return CACHE / f"site-{digest}"


def ensure(log: Path) -> tuple[Path, bool]:
    """The wheels' install directory, made when missing; (path, whether it was made)."""
    target = site_dir()
    if target.is_dir():
        return target, False
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="site-tmp-", dir=CACHE))
    tmp.chmod(0o755)
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--only-binary=:all:", "--platform", "any",
           "--implementation", "py", "--python-version", GUEST_PYTHON, "--target", str(tmp), *pins()]
    with open(log, "w") as out:
        subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, timeout=600)
    for old in CACHE.glob("site-*"):
        if old.is_dir() and old != tmp and not old.name.startswith("site-tmp-"):
            subprocess.run(["rm", "-rf", str(old)], check=True)
    os.replace(tmp, target)
    return target, True
