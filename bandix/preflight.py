"""Checks before anything is loaded, each failing with one actionable line."""

from __future__ import annotations

import ctypes
import errno
import os

from .bpf import libbpf
from .errors import FatalError

CAP_NET_ADMIN = 12
CAP_SYS_ADMIN = 21
CAP_BPF = 39


def _effective_caps() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    return 0


def check_privileges() -> None:
    caps = _effective_caps()
    has_bpf = caps & (1 << CAP_BPF) or caps & (1 << CAP_SYS_ADMIN)
    if not (has_bpf and caps & (1 << CAP_NET_ADMIN)):
        raise FatalError(
            "bandix must run as root: loading and attaching eBPF programs needs CAP_BPF and CAP_NET_ADMIN"
        )


def check_libbpf() -> None:
    try:
        libbpf.lib()
    except libbpf.LibbpfMissing as exc:
        raise FatalError(
            f"{exc.strerror}; install libbpf (OpenWrt: opkg install libbpf, Debian: apt install libbpf1)"
        ) from None


def check_bpf_support() -> None:
    ret = libbpf.lib().libbpf_probe_bpf_prog_type(libbpf.BPF_PROG_TYPE_SCHED_CLS, None)
    if ret == 1:
        return
    code = -ret if ret < 0 else ctypes.get_errno()
    if code == errno.EPERM:
        raise FatalError("the kernel refused to load a BPF program (EPERM): run bandix as root, "
                         "and check kernel.unprivileged_bpf_disabled / lockdown")
    raise FatalError(
        f"this kernel cannot run bandix's eBPF programs ({os.strerror(code) if code else 'no sched_cls support'}): "
        "it needs CONFIG_BPF_SYSCALL and CONFIG_NET_CLS_BPF (OpenWrt: kmod-sched-bpf)"
    )
