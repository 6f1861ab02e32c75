"""Thin ctypes binding to libbpf.so.1.

Only functions present in libbpf 1.1 (Debian bookworm, OpenWrt 23.05) are
bound, so the same code runs on the router and on a development machine. In
libbpf 1.x pointer-returning calls give NULL and set errno; int-returning
calls give a negative errno. Both are turned into OSError here.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
from typing import Any

LIBBPF_NAME = "libbpf.so.1"


class LibbpfMissing(OSError):
    """libbpf.so.1 could not be loaded."""


class ObjectOpenOpts(ctypes.Structure):
    """The leading fields of struct bpf_object_open_opts (libbpf ≥ 0.0.6).

    libbpf accepts a shorter struct than its own (the `sz` field says how much
    we know), so only the fields we set are declared.
    """

    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("object_name", ctypes.c_char_p),
        ("relaxed_maps", ctypes.c_bool),
        ("pin_root_path", ctypes.c_char_p),
    ]


class BatchOpts(ctypes.Structure):
    """struct bpf_map_batch_opts."""

    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("elem_flags", ctypes.c_uint64),
        ("flags", ctypes.c_uint64),
    ]


_P = ctypes.c_void_p
_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "bpf_object__open_file": (_P, [ctypes.c_char_p, ctypes.POINTER(ObjectOpenOpts)]),
    "bpf_object__load": (ctypes.c_int, [_P]),
    "bpf_object__close": (None, [_P]),
    "bpf_object__find_program_by_name": (_P, [_P, ctypes.c_char_p]),
    "bpf_object__find_map_by_name": (_P, [_P, ctypes.c_char_p]),
    "bpf_program__fd": (ctypes.c_int, [_P]),
    "bpf_map__fd": (ctypes.c_int, [_P]),
    "bpf_map__set_max_entries": (ctypes.c_int, [_P, ctypes.c_uint32]),
    "bpf_map__is_pinned": (ctypes.c_bool, [_P]),
    "bpf_map_lookup_elem": (ctypes.c_int, [ctypes.c_int, _P, _P]),
    "bpf_map_update_elem": (ctypes.c_int, [ctypes.c_int, _P, _P, ctypes.c_uint64]),
    "bpf_map_delete_elem": (ctypes.c_int, [ctypes.c_int, _P]),
    "bpf_map_get_next_key": (ctypes.c_int, [ctypes.c_int, _P, _P]),
    "bpf_map_lookup_batch": (
        ctypes.c_int,
        [ctypes.c_int, _P, _P, _P, _P, ctypes.POINTER(ctypes.c_uint32), ctypes.POINTER(BatchOpts)],
    ),
    "bpf_obj_get": (ctypes.c_int, [ctypes.c_char_p]),
    "libbpf_num_possible_cpus": (ctypes.c_int, []),
    "libbpf_probe_bpf_prog_type": (ctypes.c_int, [ctypes.c_int, _P]),
    "ring_buffer__new": (_P, [ctypes.c_int, _P, _P, _P]),
    "ring_buffer__consume": (ctypes.c_int, [_P]),
    "ring_buffer__epoll_fd": (ctypes.c_int, [_P]),
    "ring_buffer__free": (None, [_P]),
}

BPF_ANY = 0
BPF_NOEXIST = 1
BPF_PROG_TYPE_SCHED_CLS = 3

_lib: ctypes.CDLL | None = None


def lib() -> ctypes.CDLL:
    """Load libbpf once; raise LibbpfMissing with the reason if it is absent."""
    global _lib
    if _lib is None:
        name = os.environ.get("BANDIX_LIBBPF", LIBBPF_NAME)
        try:
            loaded = ctypes.CDLL(name, use_errno=True)
        except OSError as exc:
            raise LibbpfMissing(errno.ENOENT, f"cannot load {name}: {exc}") from exc
        for func, (restype, argtypes) in _SIGNATURES.items():
            fn = getattr(loaded, func)
            fn.restype = restype
            fn.argtypes = argtypes
        _lib = loaded
    return _lib


def check(ret: int, what: str) -> int:
    """Turn libbpf's negative-errno convention into OSError."""
    if ret < 0:
        code = -ret
        raise OSError(code, f"{what}: {os.strerror(code)}")
    return ret


def check_ptr(ptr: int | None, what: str) -> int:
    """Turn libbpf's NULL-plus-errno convention into OSError."""
    if not ptr:
        code = ctypes.get_errno() or errno.EINVAL
        raise OSError(code, f"{what}: {os.strerror(code)}")
    return ptr


def possible_cpus() -> int:
    """Number of possible CPUs: the stride of per-CPU map values."""
    return check(lib().libbpf_num_possible_cpus(), "libbpf_num_possible_cpus")


def probe_tc_programs() -> None:
    """Raise OSError unless the kernel can load a TC (sched_cls) program."""
    ret = lib().libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SCHED_CLS, None)
    if ret == 0:
        raise OSError(errno.EOPNOTSUPP, "the kernel cannot load sched_cls programs")
    check(ret, "probing BPF support")
