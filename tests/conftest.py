"""Shared fixtures. End-to-end tests need root: they build network namespaces
and load eBPF programs into the real kernel."""

import os
import signal
import uuid
from pathlib import Path

import pytest

PIN_ROOT = Path("/sys/fs/bpf")


def _interrupt(_signum, _frame):
    raise KeyboardInterrupt("stopped by SIGTERM")


def pytest_configure(config):
    """A stopped run (SIGTERM from make, CI, a timeout) unwinds like Ctrl-C, so
    fixtures still remove their namespaces, pins and processes."""
    signal.signal(signal.SIGTERM, _interrupt)


@pytest.fixture(scope="session", autouse=True)
def _require_root():
    if os.geteuid() != 0:
        pytest.exit("bandix tests need root (network namespaces, eBPF); run `make test` as root", returncode=2)


@pytest.fixture(scope="session", autouse=True)
def _fresh_artifacts():
    """Daemon logs of this run only, kept in tests/artifacts for failures."""
    from tests.bandixd import ARTIFACTS

    for old in ARTIFACTS.glob("bandix-*.log"):
        old.unlink()


@pytest.fixture
def tmp_pin_dir():
    """A private pin directory on the host's bpffs, removed afterwards."""
    from tests.bandixd import remove_state

    path = PIN_ROOT / f"bandix-test-{uuid.uuid4().hex[:8]}"
    yield path
    remove_state(path)


@pytest.fixture
def vrouter(request):
    """A started virtual router; parametrize indirectly with VirtualRouter kwargs."""
    from tests.vrouter import VirtualRouter

    kwargs = getattr(request, "param", {})
    router = VirtualRouter(**kwargs).start()
    try:
        router.wait_quiet()
        yield router
    finally:
        router.close()


@pytest.fixture
def bandix(vrouter, tmp_pin_dir):
    """Start bandix daemons in the router namespace; all are stopped afterwards."""
    from tests.bandixd import Bandix

    started: list[Bandix] = []

    def start(*args: str, ifaces: tuple[str, ...] = ("br-lan",), **kw) -> Bandix:
        flags = [f for name in ifaces for f in ("--iface", name)]
        daemon = Bandix(vrouter.router, [*flags, "--enable-traffic", *args], tmp_pin_dir, **kw)
        started.append(daemon)
        return daemon.start()

    yield start
    for daemon in started:
        daemon.stop()


@pytest.fixture(scope="session")
def browser():
    """Debian's chromium, headless, driven by Playwright (the dashboard and LuCI tests)."""
    import shutil

    from playwright.sync_api import sync_playwright

    from tests.bandixd import SHOTS

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium", args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()
