"""BPF_PROG_TEST_RUN through libbpf: run a loaded program on a crafted packet.

For tests and diagnostics: the kernel runs the real program, with its maps,
on the frame given, and returns the program's verdict.
"""

from __future__ import annotations

import ctypes

from .libbpf import check, lib


class TestRunOpts(ctypes.Structure):
    """struct bpf_test_run_opts (libbpf ≥ 0.7)."""

    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("data_in", ctypes.c_void_p),
        ("data_out", ctypes.c_void_p),
        ("data_size_in", ctypes.c_uint32),
        ("data_size_out", ctypes.c_uint32),
        ("ctx_in", ctypes.c_void_p),
        ("ctx_out", ctypes.c_void_p),
        ("ctx_size_in", ctypes.c_uint32),
        ("ctx_size_out", ctypes.c_uint32),
        ("retval", ctypes.c_uint32),
        ("repeat", ctypes.c_int),
        ("duration", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("cpu", ctypes.c_uint32),
        ("batch_size", ctypes.c_uint32),
    ]


def run_program(prog_fd: int, frame: bytes) -> int:
    """The program's return value for one run on `frame` (signed, e.g. -1 = TC_ACT_UNSPEC)."""
    fn = lib().bpf_prog_test_run_opts
    fn.restype, fn.argtypes = ctypes.c_int, [ctypes.c_int, ctypes.POINTER(TestRunOpts)]
    data = ctypes.create_string_buffer(frame, len(frame))
    opts = TestRunOpts(sz=ctypes.sizeof(TestRunOpts), data_in=ctypes.cast(data, ctypes.c_void_p),
                       data_size_in=len(frame), repeat=1)
    check(fn(prog_fd, ctypes.byref(opts)), "BPF_PROG_TEST_RUN")
    return ctypes.c_int32(opts.retval).value
