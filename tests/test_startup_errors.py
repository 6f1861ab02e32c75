"""A start that cannot succeed ends with one line saying what to do, exit code
2, and nothing attached to the interface."""

import ctypes
import json
import os
import platform
import subprocess

import pytest

from tests.bandixd import Bandix

SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_ALLOW = 0x7FFF0000
BPF_SYSCALL = {"x86_64": 321, "aarch64": 280}


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def _deny_bpf_syscall() -> None:
    """In the child: make bpf(2) fail with ENOSYS, as on a kernel built without BPF."""
    insns = [
        (0x20, 0, 0, 0),                                # ld  [nr]
        (0x15, 0, 1, BPF_SYSCALL[platform.machine()]),  # jeq #__NR_bpf
        (0x06, 0, 0, SECCOMP_RET_ERRNO | 38),           # ret ERRNO(ENOSYS)
        (0x06, 0, 0, SECCOMP_RET_ALLOW),                # ret ALLOW
    ]
    prog = (_SockFilter * len(insns))(*[_SockFilter(*i) for i in insns])
    fprog = _SockFprog(len(insns), prog)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(38, 1, 0, 0, 0) or libc.prctl(22, 2, ctypes.byref(fprog), 0, 0):  # NO_NEW_PRIVS, SECCOMP
        raise OSError(ctypes.get_errno(), "seccomp")


def run(vrouter, tmp_pin_dir, *args: str, env: dict | None = None, preexec=None,
        enable: bool = True) -> subprocess.CompletedProcess:
    flags = ["--iface", "br-lan", *(["--enable-traffic"] if enable else []), *args]
    cmd = Bandix(vrouter.router, flags, tmp_pin_dir).command()
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30,
                          env={**os.environ, **(env or {})}, preexec_fn=preexec,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def assert_refused(vrouter, result: subprocess.CompletedProcess, message: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("bandix: error: "), result.stderr
    assert message in lines[-1], result.stderr
    assert "Traceback" not in result.stderr
    filters = json.loads(vrouter.router.run(["tc", "-j", "filter", "show", "dev", "br-lan", "ingress"]).stdout or "[]")
    assert not [f for f in filters if f.get("options", {}).get("bpf_name", "").startswith("bandix")]


@pytest.mark.parametrize("vrouter", [{"clients": 1}], indirect=True)
def test_missing_interface(vrouter, tmp_pin_dir):
    result = run(vrouter, tmp_pin_dir, "--iface", "br-nope")
    assert_refused(vrouter, result, "interface br-nope not found")


@pytest.mark.parametrize("vrouter", [{"clients": 1}], indirect=True)
def test_not_root(vrouter, tmp_pin_dir):
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"]
    # nsenter needs CAP_SYS_ADMIN, so privileges are dropped after it entered the namespace.
    cmd = Bandix(vrouter.router, ["--iface", "br-lan", "--enable-traffic"], tmp_pin_dir).command()
    nsenter, python_cmd = cmd[:2], cmd[2:]
    result = subprocess.run([*nsenter, *nobody, *python_cmd], capture_output=True, text=True, timeout=30,
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert_refused(vrouter, result, "must run as root")


@pytest.mark.parametrize("vrouter", [{"clients": 1}], indirect=True)
def test_missing_libbpf(vrouter, tmp_pin_dir):
    # The binding loads the library named here; a name that does not exist is
    # exactly what a router without the libbpf package sees.
    result = run(vrouter, tmp_pin_dir, env={"BANDIX_LIBBPF": "libbpf-absent.so.1"})
    assert_refused(vrouter, result, "install libbpf")


@pytest.mark.parametrize("vrouter", [{"clients": 1}], indirect=True)
def test_kernel_without_bpf(vrouter, tmp_pin_dir):
    result = run(vrouter, tmp_pin_dir, preexec=_deny_bpf_syscall)
    assert_refused(vrouter, result, "CONFIG_BPF_SYSCALL")


@pytest.mark.parametrize("vrouter", [{"clients": 1}], indirect=True)
def test_no_module_enabled(vrouter, tmp_pin_dir):
    result = run(vrouter, tmp_pin_dir, enable=False)
    assert_refused(vrouter, result, "no monitoring module enabled")


@pytest.mark.parametrize("vrouter", [{"clients": 1}], indirect=True)
def test_port_in_use(vrouter, tmp_pin_dir):
    listener = vrouter.router.socket()
    listener.bind(("127.0.0.1", 8686))
    listener.listen()
    try:
        result = run(vrouter, tmp_pin_dir)
    finally:
        listener.close()
    assert_refused(vrouter, result, "cannot listen on 127.0.0.1:8686")


@pytest.mark.parametrize("vrouter", [{"clients": 1}], indirect=True)
def test_missing_and_broken_objects(vrouter, tmp_pin_dir, tmp_path):
    result = run(vrouter, tmp_pin_dir, "--bpf-object", str(tmp_path / "none.o"))
    assert_refused(vrouter, result, "not found")
    broken = tmp_path / "broken.o"
    broken.write_bytes(b"\x7fELF not really")
    result = run(vrouter, tmp_pin_dir, "--bpf-object", str(broken))
    assert_refused(vrouter, result, "cannot load the eBPF programs")


@pytest.mark.parametrize("vrouter", [{"clients": 1}], indirect=True)
def test_bad_flag_values(vrouter, tmp_pin_dir):
    result = run(vrouter, tmp_pin_dir, "--additional-subnets", "10.0.0.0/99")
    assert result.returncode == 2
    assert "not an IPv4 or IPv6 prefix" in result.stderr
