"""Run the real bandix daemon inside a namespace and talk to its API.

The daemon is started with `nsenter --net` rather than `ip netns exec`: the
latter gives the process a private mount namespace with a fresh /sys, where
pins would vanish with the process; nsenter keeps the host's bpffs, so pinned
counters survive a restart exactly as on a router.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.vrouter import NETNS_DIR, Netns, VirtualRouter

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "tests" / "artifacts"
SHOTS = ARTIFACTS / "screenshots"  # the browser tests' screenshots


class _NsConnection(http.client.HTTPConnection):
    """An HTTP connection whose socket lives in a given namespace."""

    def __init__(self, ns: Netns, host: str, port: int, timeout: float = 10.0) -> None:
        super().__init__(host, port, timeout=timeout)
        self._ns = ns

    def connect(self) -> None:
        sock = self._ns.socket()
        sock.settimeout(self.timeout)
        sock.connect((self.host, self.port))
        self.sock = sock


def http_request(ns: Netns, method: str, path: str, body: bytes | None = None, port: int = 8686,
                 host: str = "127.0.0.1") -> tuple[int, str, str]:
    """(status, content type, body) of one request inside `ns`."""
    conn = _NsConnection(ns, host, port)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type", ""), resp.read().decode()
    finally:
        conn.close()


def http_get(ns: Netns, path: str, port: int = 8686, host: str = "127.0.0.1") -> tuple[int, str, str]:
    return http_request(ns, "GET", path, port=port, host=host)


def dashboard_devices(data: dict, listed: dict | None = None) -> list[dict]:
    """A /api/dashboard/devices answer's data as one dict per device; who the devices
    are comes from `listed`, an earlier answer that carried them, when this one did not."""
    listed = listed or data
    numbers = data["values"]
    width = len(data["value_fields"])
    assert len(numbers) == width * len(listed["devices"])
    return [{**dict(zip(listed["device_fields"], row, strict=True)),
             **dict(zip(data["value_fields"], numbers[n * width:(n + 1) * width], strict=True))}
            for n, row in enumerate(listed["devices"])]


def config_dir_for(pin_dir: Path) -> Path:
    """The UCI directory of the daemons using this pin directory (kept across their restarts)."""
    return Path(tempfile.gettempdir()) / f"bandix-config-{pin_dir.name}"


def remove_state(pin_dir: Path) -> None:
    """Remove a pin directory and the UCI directory that goes with it."""
    shutil.rmtree(pin_dir, ignore_errors=True)
    shutil.rmtree(config_dir_for(pin_dir), ignore_errors=True)


def no_cryptography(where: Path) -> dict[str, str]:
    """Environment for a daemon that cannot import cryptography, as on a router without
    python3-cryptography: a package of that name first on its path that raises ImportError."""
    pkg = where / "cryptography"
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text("raise ImportError(\"No module named 'cryptography' (blocked for a test)\")\n")
    return {"PYTHONPATH": str(where)}


class Bandix:
    """One bandix daemon process in a namespace, started and stopped by PID."""

    def __init__(self, ns: Netns, args: list[str], pin_dir: Path, port: int = 8686, name: str = "bandix",
                 config_dir: Path | None = None, env: dict[str, str] | None = None) -> None:
        self.ns = ns
        self.port = port
        self.pin_dir = pin_dir
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        stamp = f"{os.getpid()}-{int(time.time() * 1000)}"
        self.log_path = ARTIFACTS / f"{name}-{stamp}.log"
        # Never the host's /etc/config: a daemon under test writes its UCI file here.
        self.config_dir = config_dir or config_dir_for(pin_dir)
        self.config_dir.mkdir(parents=True, exist_ok=True)
        self.args = ["--port", str(port), "--pin-dir", str(pin_dir), "--config-dir", str(self.config_dir), *args]
        self.env = env
        self.host = args[args.index("--listen") + 1] if "--listen" in args else "127.0.0.1"
        self.proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        return ["nsenter", f"--net={NETNS_DIR / self.ns.name}", sys.executable, "-m", "bandix", *self.args]

    def start(self, timeout: float = 20.0) -> Bandix:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env={**os.environ, **(self.env or {})})
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"bandix exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if http_get(self.ns, "/api/traffic/devices", self.port, self.host)[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop(signal.SIGKILL)
        raise TimeoutError(f"bandix did not answer within {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(self, path: str) -> tuple[int, Any]:
        status, _, body = http_get(self.ns, path, self.port, self.host)
        return status, json.loads(body)

    def send(self, method: str, path: str, body: object) -> tuple[int, Any]:
        """A JSON request (body: an object to encode, or raw bytes as they are)."""
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        status, _, text = http_request(self.ns, method, path, raw, self.port, self.host)
        return status, json.loads(text)

    def devices(self) -> dict[str, dict]:
        status, body = self.get("/api/traffic/devices")
        assert status == 200, body
        return {d["mac"]: d for d in body["data"]["devices"]}

    def wait_readings(self, n: int = 2) -> None:
        """Wait until the daemon has taken `n` more one-second readings."""
        def last_ts() -> int:
            rows = self.get("/api/traffic/metrics")[1]["data"]["metrics"]
            return rows[-1][0] if rows else 0

        start = last_ts()
        seen = 0
        deadline = time.monotonic() + n * 3 + 5
        while seen < n and time.monotonic() < deadline:
            time.sleep(0.2)
            now = last_ts()
            if now != start:
                seen += 1
                start = now
        assert seen >= n, "the daemon stopped taking readings"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@contextlib.contextmanager
def busy_router(args: list[str], config_dir: Path | None = None) -> Iterator[tuple[VirtualRouter, Bandix]]:
    """A router whose clients each sent a little WAN traffic, watched by one daemon.

    For test modules that share one daemon because their tests only read, or
    send input that must change nothing.
    """
    from tests.traffic import settle

    pin_dir = Path("/sys/fs/bpf") / f"bandix-test-{uuid.uuid4().hex[:8]}"
    with VirtualRouter() as router:
        router.wait_quiet()
        daemon = Bandix(router.router, ["--iface", "br-lan", *args], pin_dir, config_dir=config_dir).start()
        try:
            for c in router.clients:
                c.ns.run(["ping", "-c", "2", "-i", "0.1", router.SERVER_V4])
            settle(daemon)
            yield router, daemon
        finally:
            daemon.stop()
            remove_state(pin_dir)


@contextlib.contextmanager
def busy_site(data: Path) -> Iterator[tuple[VirtualRouter, Bandix]]:
    """A router whose client 1 downloads 4 Mbit/s (iperf3 UDP) for as long as the
    site lasts while clients 2 and 3 ping the internet, watched by a daemon with
    every module on: what the dashboard, LuCI and rpcd tests show."""
    pin_dir = Path("/sys/fs/bpf") / f"bandix-test-site-{time.monotonic_ns()}"
    with VirtualRouter() as vr:
        vr.wait_quiet()
        daemon = Bandix(vr.router, ["--iface", "br-lan", "--enable-traffic", "--enable-connection", "--enable-dns",
                                    "--enable-flows", "--data-dir", str(data), "--test-level-seconds", "2,4,10,20"],
                        pin_dir).start()
        try:
            vr.internet.popen(["iperf3", "-s", "-p", "5201", "-B", vr.SERVER_V4])
            vr.internet.wait_listening(5201)
            vr.clients[0].ns.popen(["iperf3", "-c", vr.SERVER_V4, "-p", "5201", "-R", "-u", "-b", "4M", "-t", "300"])
            for c in vr.clients[1:]:
                c.ns.popen(["ping", "-i", "0.2", vr.SERVER_V4])
            daemon.wait_readings(2)
            yield vr, daemon
        finally:
            daemon.stop()
            remove_state(pin_dir)
