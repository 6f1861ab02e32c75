"""Read a BPF ring buffer through libbpf (ring_buffer__new / __consume / __epoll_fd)."""

from __future__ import annotations

import ctypes
from collections.abc import Callable

from .libbpf import check, check_ptr, lib

# int (*ring_buffer_sample_fn)(void *ctx, void *data, size_t size)
SAMPLE_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)


class RingBuffer:
    """Calls `handle(bytes)` for every record, from consume(), in the consuming thread."""

    def __init__(self, map_fd: int, handle: Callable[[bytes], None]) -> None:
        def sample(_ctx, data, size) -> int:
            handle(ctypes.string_at(data, size))
            return 0

        self._callback = SAMPLE_FN(sample)  # kept alive as long as libbpf may call it
        self._rb = check_ptr(lib().ring_buffer__new(map_fd, self._callback, None, None), "ring_buffer__new")

    def consume(self) -> int:
        """Deliver what is there without waiting; how many records."""
        return check(lib().ring_buffer__consume(self._rb), "ring_buffer__consume")

    def fileno(self) -> int:
        """An epoll descriptor that is readable while records wait, for poll()/select()."""
        return check(lib().ring_buffer__epoll_fd(self._rb), "ring_buffer__epoll_fd")

    def close(self) -> None:
        if self._rb:
            lib().ring_buffer__free(self._rb)
            self._rb = None
