"""`make demo`: a virtual home router with six busy devices, watched live by bandix.

Everything runs inside network namespaces (tests/vrouter.py): the real daemon on
the router's br-lan, real iperf3/ping clients and servers, so what the table and
the API show is real kernel traffic.  As at home, the router's dnsmasq hands out
the addresses and every device asks for one with udhcpc, sending its name: the
names bandix shows come from dnsmasq's leases file.  The household's policy is
set through the API: the tablet has a daily data quota that runs out within
seconds and then blocks it, and a guest's phone is held to the default limit
(everyone else is on the whitelist).  The dashboard and API are forwarded to the
root namespace for a browser or curl.  Ctrl-C or SIGTERM removes every namespace,
process (dnsmasq and the udhcpc clients included), pin and the forward, and exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.bandixd import Bandix, remove_state
from tests.vrouter import Netns, PortForward, VirtualRouter

DEVICES = ("laptop", "phone", "tv", "nas", "tablet", "guest")
QUOTA_DEVICE = "tablet"  # a daily quota, blocked once used up
LIMITED_DEVICE = "guest"  # the default limit; every other device is on the whitelist
QUOTA_BYTES = 20_000_000  # WAN bytes a day, both directions; the tablet's 16 Mbit/s uses it up in about 10 s
DEFAULT_LIMIT = (500_000, 125_000)  # bytes/s down, up: 4 and 1 Mbit/s
API_PORT = 8686  # where the daemon listens inside the router namespace
REFRESH_S = 2.0
PIN_ROOT = Path("/sys/fs/bpf")
# One iperf3 server port per client: an iperf3 server runs one test at a time.
PORTS = {"tv": 5201, "laptop": 5202, "phone": 5203, "nas": 5204, "tablet": 5205, "guest": 5206}

EXAMPLES = """\
examples:
  make demo                                   (same as: python -m tests.demo, as root)
  python -m tests.demo --port 9000            API on http://127.0.0.1:9000/ instead
  python -m tests.demo --duration 60          stop by itself after a minute
  curl -s http://127.0.0.1:8686/api/traffic/devices | python3 -m json.tool
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m tests.demo", epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Build a virtual OpenWrt-like router with six busy devices (laptop, phone, tv, nas, tablet, "
        "guest) that take their addresses from the router's dnsmasq, run bandix on its br-lan with a data quota "
        "on the tablet and the default limit on the guest, and show live per-device rates. Needs root. "
        "Ctrl-C stops and cleans up.")
    p.add_argument("--port", type=int, default=8686,
                   help="root-namespace port the API is forwarded to (default 8686)")
    p.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                   help="stop after this many seconds (default: run until Ctrl-C/SIGTERM)")
    args = p.parse_args(argv)
    if not 0 <= args.port <= 65535:
        p.error("--port must be 0..65535")
    if args.duration is not None and args.duration <= 0:
        p.error("--duration must be positive")
    return args


def forever(script: str) -> list[str]:
    """bash repeating script until killed; a failed run (server not up, busy) retries after 1 s.

    `iperf3 -c` runs under a timeout: a lost UDP stream leaves the client waiting forever.
    --foreground keeps it in bash's process group, which kill_all() signals.
    """
    script = script.replace("iperf3 -c", "timeout --foreground -k 2 30 iperf3 -c")
    return ["bash", "-c", f"while :; do {script}; sleep 1; done"]


def start_servers(vr: VirtualRouter, workdir: Path) -> None:
    """The DNS and web servers of the flow tests, so the DNS and Domains pages have something to show."""
    inet = vr.internet
    inet.ip_batch([f"addr add {a}/32 dev lo" for a in ("198.51.100.21", "198.51.100.23", "198.51.100.30")])
    cert, key = workdir / "cert.pem", workdir / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-subj", "/CN=bandix demo", "-days", "1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    root = Path(__file__).resolve().parents[1]
    for args in (["tests.dnsserver", vr.SERVER_V4], ["tests.webserver", str(cert), str(key)]):
        inet.popen([sys.executable, "-m", *args], cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    inet.wait_listening(53, udp=True)
    inet.wait_listening(443)


def start_traffic(vr: VirtualRouter) -> None:
    """iperf3 servers, then every device's client loops; rates vary over time on purpose."""
    s4, s6 = vr.SERVER_V4, vr.SERVER_V6
    r4, r6 = vr.bridge_addresses("br-lan")
    # UDP replies of an unbound server would leave from inet0's address, which NAT cannot
    # match back to the flow: tv's UDP server binds to the server address.
    servers: list[tuple[Netns, int, str]] = [(vr.internet, PORTS["tv"], f"-B {s4}"),
                                             (vr.internet, PORTS["laptop"], ""), (vr.internet, PORTS["phone"], ""),
                                             (vr.router, PORTS["nas"], ""),  # LAN: the router's own address
                                             (vr.internet, PORTS["tablet"], ""), (vr.internet, PORTS["guest"], "")]
    for ns, port, bind in servers:
        spawn(ns, forever(f"iperf3 -s -p {port} {bind} --idle-timeout 20"))
    for ns, port, _ in servers:
        ns.wait_listening(port)
    ip = {n: vr.client(n).ns for n in DEVICES}
    # tv: a UDP video stream from the internet whose bitrate steps every 12 s (adaptive streaming).
    spawn(ip["tv"], forever(f"for b in 3M 6M 2M 8M 4M; do iperf3 -c {s4} -p {PORTS['tv']} -u -R -l 1200 "
                            f"-t 12 -b $b || sleep 1; done"))
    # laptop: uploads over IPv4 at a random 2-9 Mbit/s, then a short fast IPv6 download.
    spawn(ip["laptop"], forever(f"iperf3 -c {s4} -p {PORTS['laptop']} -t 10 -b $((RANDOM % 8 + 2))M; "
                                f"iperf3 -c {s6} -p {PORTS['laptop']} -R -t 4 -b 20M"))
    # phone: pings (IPv4 and IPv6) and small random IPv6 downloads with random pauses.
    spawn(ip["phone"], forever(f"ping -q -i 0.5 {s4}"))
    spawn(ip["phone"], forever(f"ping -q -i 0.7 {s6}"))
    spawn(ip["phone"], forever(f"iperf3 -c {s6} -p {PORTS['phone']} -R -n $((RANDOM % 400 + 50))K -b 10M; "
                               "sleep $((RANDOM % 3))"))
    # phone browses: resolves names at the DNS server, then fetches over HTTPS (TLS server
    # names), plain HTTP (DNS answers) and from an address nobody resolved.
    spawn(ip["phone"], forever(f"dig @{s4} alpha.test +short; dig @{s4} www.video.test +short; "
                               "curl -sk -o /dev/null --resolve alpha.test:443:198.51.100.21 "
                               "https://alpha.test/$((RANDOM % 300 + 20))000; "
                               "curl -s -o /dev/null http://198.51.100.23/$((RANDOM % 500 + 50))000; "
                               "curl -s -o /dev/null http://198.51.100.30/100000; sleep 4"))
    # nas: LAN backup to the router over IPv4, then a restore over IPv6 at a random rate.
    spawn(ip["nas"], forever(f"iperf3 -c {r4} -p {PORTS['nas']} -t 8 -b 30M; "
                             f"iperf3 -c {r6} -p {PORTS['nas']} -R -t 6 -b $((RANDOM % 20 + 5))M"))
    # tablet: streams video at 16 Mbit/s until its quota blocks it (the client then times out and retries),
    # and keeps reaching the router itself over the LAN, as a blocked device still does.
    spawn(ip["tablet"], forever(f"iperf3 -c {s4} -p {PORTS['tablet']} -R -t 20 -b 16M"))
    spawn(ip["tablet"], forever(f"ping -q -i 0.5 {r4}"))
    # guest: downloads as fast as TCP goes, then uploads: the default limit holds it.
    spawn(ip["guest"], forever(f"iperf3 -c {s4} -p {PORTS['guest']} -R -t 20; "
                               f"iperf3 -c {s4} -p {PORTS['guest']} -t 5"))


def set_policy(daemon: Bandix, vr: VirtualRouter) -> None:
    """The household's rules, through the API as the dashboard sets them."""
    mac = {c.name: c.mac for c in vr.clients}
    steps: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/api/traffic/quotas", {"mac": mac[QUOTA_DEVICE], "period": "day", "bytes": QUOTA_BYTES,
                                         "direction": "both", "action": "block", "throttle_rx_rate": 0,
                                         "throttle_tx_rate": 0, "reset_day": 1, "reset_hour": 0}),
        ("POST", "/api/traffic/rate_limit/default", {"wan_rx_rate_limit": DEFAULT_LIMIT[0],
                                                     "wan_tx_rate_limit": DEFAULT_LIMIT[1]}),
        *(("POST", "/api/traffic/rate_limit/whitelist", {"mac": mac[n]}) for n in DEVICES if n != LIMITED_DEVICE),
        ("POST", "/api/traffic/rate_limit/whitelist/enabled", {"enabled": True})]
    for method, path, body in steps:
        status, answer = daemon.send(method, path, body)
        if status != 200:
            raise RuntimeError(f"{method} {path}: {status} {answer}")


def spawn(ns: Netns, cmd: list[str]) -> None:
    """A quiet background process in ns; its own session, so a terminal Ctrl-C reaches the demo, not it."""
    ns.popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def human(n: float) -> str:
    """1024-based compact size: 512B, 1.5K, 12.3M."""
    for unit in ("B", "K", "M", "G"):
        if n < 1024:
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024
    return f"{n:.1f}T"


def fetch(url: str) -> list[dict[str, Any]]:
    """GET the device list through the forward (proxies off: it is always local)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=5) as resp:
        return json.load(resp)["data"]["devices"]


def table(devices: list[dict[str, Any]]) -> list[str]:
    """One line per device: its name from the DHCP leases, rates per second, totals since the
    daemon started, the WAN limit in force (down/up) and the quota state."""
    fmt = "{:<7} {:<15} {:<17} {:>9} {:>9} {:>9} {:>9} {:>8} {:>8} {:>13} {:<8}"
    lines = [fmt.format("device", "IP", "MAC", "WAN down", "WAN up", "LAN down", "LAN up", "total dn", "total up",
                        "limit dn/up", "quota")]
    sums = [0, 0, 0, 0]
    for d in devices:
        rates = [d["wan_rx_rate"], d["wan_tx_rate"], d["lan_rx_rate"], d["lan_tx_rate"]]
        sums = [a + b for a, b in zip(sums, rates, strict=True)]
        limits = (d["wan_rx_rate_limit"], d["wan_tx_rate_limit"])
        limit = "/".join(human(r) if r else "-" for r in limits) if any(limits) else "-"
        quota = d.get("quota_state", "none")
        lines.append(fmt.format(d["hostname"] or "?", d["ip"] or "-", d["mac"], *(human(r) + "/s" for r in rates),
                                human(d["total_rx_bytes"]), human(d["total_tx_bytes"]), limit,
                                "-" if quota == "none" else quota))
    lines.append(fmt.format("all", "", "", *(human(r) + "/s" for r in sums), "", "", "", ""))
    return lines


def watch(url: str, daemon: Bandix, duration: float | None) -> int:
    """Redraw the table every REFRESH_S until the duration ends (0) or the daemon dies (1)."""
    started = time.monotonic()
    tty = sys.stdout.isatty()
    while duration is None or time.monotonic() - started < duration:
        if daemon.proc is not None and daemon.proc.poll() is not None:
            print(f"bandix exited with {daemon.proc.returncode}; log {daemon.log_path}:\n{daemon.log()[-2000:]}",
                  file=sys.stderr)
            return 1
        try:
            lines = table(fetch(url))
        except (OSError, ValueError, KeyError) as exc:  # a slow tick must not end the demo
            lines = [f"API not answering: {exc}"]
        up = int(time.monotonic() - started)
        head = (f"bandix demo  dashboard {url.removesuffix('api/traffic/devices')}  up {up // 60}:{up % 60:02d}  "
                "rates per second, totals in bytes  Ctrl-C stops")
        print(("\033[H\033[2J" if tty else "") + "\n".join([head, *lines]) + ("" if tty else "\n"), flush=True)
        wait = REFRESH_S if duration is None else min(REFRESH_S, duration - (time.monotonic() - started))
        time.sleep(max(0.0, wait))
    return 0


def cleanup(steps: list[tuple[str, Any]]) -> None:
    """Run every step even if one fails; signals are ignored meanwhile so cleanup always ends."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for what, step in steps:
        try:
            step()
        except Exception as exc:
            print(f"demo: cleanup: {what} failed: {exc}", file=sys.stderr)


def _interrupted(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("demo: needs root (network namespaces, eBPF): sudo make demo", file=sys.stderr)
        return 2
    # Explicit, so Ctrl-C works even when started with SIGINT ignored (background job of a script).
    signal.signal(signal.SIGINT, _interrupted)
    signal.signal(signal.SIGTERM, _interrupted)
    vr = VirtualRouter(clients=[(n, "br-lan") for n in DEVICES], static_neighbours=False, dhcp=True)
    pin_dir = PIN_ROOT / f"bandix-demo-{os.getpid()}"
    # A private lock directory: the daemon's lock files would otherwise stay in /var/run/bandix.
    lock_dir = Path(tempfile.mkdtemp(prefix="bandix-demo-locks-"))
    os.environ["BANDIX_LOCK_DIR"] = str(lock_dir)
    workdir = Path(tempfile.mkdtemp(prefix="bandix-demo-"))
    daemon: Bandix | None = None
    forward: PortForward | None = None
    code = 0
    try:
        try:
            forward = PortForward(("127.0.0.1", args.port), vr.router, ("127.0.0.1", API_PORT))
        except OSError as exc:
            print(f"demo: cannot listen on 127.0.0.1:{args.port}: {exc.strerror}; try --port", file=sys.stderr)
            return 2
        dashboard = f"http://127.0.0.1:{forward.port}/"
        url = f"{dashboard}api/traffic/devices"
        print(f"demo: building the virtual router (namespaces {vr.prefix}*)", flush=True)
        vr.start()
        print(f"demo: DHCP leases from dnsmasq in {vr.leases_file}: "
              + ", ".join(f"{c.name} {c.ipv4}" for c in vr.clients), flush=True)
        daemon = Bandix(vr.router, ["--iface", "br-lan", "--enable-traffic", "--enable-connection", "--enable-dns",
                                    "--enable-flows", "--data-dir", str(workdir / "data"),
                                    "--leases-file", str(vr.leases_file)], pin_dir, port=API_PORT, name="bandix-demo")
        print(f"demo: starting bandix on br-lan (pins {pin_dir}, log {daemon.log_path})", flush=True)
        daemon.start()
        set_policy(daemon, vr)
        print(f"demo: {QUOTA_DEVICE} has a daily quota of {QUOTA_BYTES // 1_000_000} MB (then blocked); "
              f"{LIMITED_DEVICE} is held to the default limit of {DEFAULT_LIMIT[0] * 8 // 1_000_000} Mbit/s down, "
              f"{DEFAULT_LIMIT[1] * 8 // 1_000_000} Mbit/s up", flush=True)
        start_servers(vr, workdir)
        start_traffic(vr)
        print(f"demo: traffic running; dashboard at {dashboard} (API at {url})", flush=True)
        code = watch(url, daemon, args.duration)
    except KeyboardInterrupt:
        code = 0
    except Exception as exc:
        print(f"demo: failed: {exc}", file=sys.stderr)
        code = 1
    finally:
        print("demo: stopping and cleaning up", file=sys.stderr, flush=True)
        cleanup([
            ("port forward", lambda: forward and forward.close()),
            ("bandix", lambda: daemon and daemon.stop()),  # before the namespaces go: it removes its filters
            ("namespaces, dnsmasq and the DHCP clients", vr.close),
            ("pin and config directories", lambda: remove_state(pin_dir)),
            ("lock directory", lambda: shutil.rmtree(lock_dir, ignore_errors=True)),
            ("data directory", lambda: shutil.rmtree(workdir, ignore_errors=True)),
        ])
    return code


if __name__ == "__main__":
    sys.exit(main())
