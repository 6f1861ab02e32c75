"""Access to BPF maps by file descriptor: lookup, update, delete, dump.

Keys and values travel as bytes in the kernel's layout; the callers decide
what the bytes mean (see layout.py). Per-CPU values are handed back as one
bytes object holding every possible CPU's copy, each padded to 8 bytes, which
is how the kernel returns them.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from collections.abc import Iterator

from . import libbpf
from .libbpf import check, lib


class Map:
    """One BPF map, known by fd, with fixed key and value sizes."""

    def __init__(
        self,
        fd: int,
        name: str,
        key_size: int,
        value_size: int,
        percpu: bool = False,
        owns_fd: bool = False,
    ) -> None:
        self.fd = fd
        self.name = name
        self.key_size = key_size
        self.value_size = value_size
        self.percpu = percpu
        self.ncpus = libbpf.possible_cpus() if percpu else 1
        self.stride = (value_size + 7) & ~7 if percpu else value_size
        self.buffer_size = self.stride * self.ncpus
        self._owns_fd = owns_fd
        self._batch_ok = True

    def close(self) -> None:
        if self._owns_fd and self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def _key_buf(self, key: bytes) -> ctypes.Array:
        if len(key) != self.key_size:
            raise ValueError(f"{self.name}: key must be {self.key_size} bytes, got {len(key)}")
        return ctypes.create_string_buffer(key, self.key_size)

    def lookup(self, key: bytes) -> bytes | None:
        value = ctypes.create_string_buffer(self.buffer_size)
        ret = lib().bpf_map_lookup_elem(self.fd, self._key_buf(key), value)
        if ret == -errno.ENOENT:
            return None
        check(ret, f"lookup in {self.name}")
        return value.raw

    def update(self, key: bytes, value: bytes, flags: int = libbpf.BPF_ANY) -> None:
        if len(value) != self.buffer_size:
            raise ValueError(f"{self.name}: value must be {self.buffer_size} bytes")
        buf = ctypes.create_string_buffer(value, self.buffer_size)
        check(lib().bpf_map_update_elem(self.fd, self._key_buf(key), buf, flags), f"update of {self.name}")

    def delete(self, key: bytes) -> bool:
        """Delete `key`; False if it was not there."""
        ret = lib().bpf_map_delete_elem(self.fd, self._key_buf(key))
        if ret == -errno.ENOENT:
            return False
        check(ret, f"delete from {self.name}")
        return True

    def keys(self) -> Iterator[bytes]:
        """Every key, by get_next_key (works on every map type, LPM tries too)."""
        prev: ctypes.Array | None = None
        nxt = ctypes.create_string_buffer(self.key_size)
        while True:
            ret = lib().bpf_map_get_next_key(self.fd, prev, nxt)
            if ret == -errno.ENOENT:
                return
            check(ret, f"iterating {self.name}")
            yield nxt.raw
            prev = ctypes.create_string_buffer(nxt.raw, self.key_size)

    def dump(self) -> list[tuple[bytes, bytes]]:
        """Every (key, value), in batches where the kernel supports it."""
        if self._batch_ok:
            try:
                return self._dump_batch()
            except OSError as exc:
                if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, 524):
                    raise
                self._batch_ok = False  # kernel < 5.6: fall back for good
        out = []
        for key in self.keys():
            value = self.lookup(key)
            if value is not None:  # deleted between the two calls
                out.append((key, value))
        return out

    def _dump_batch(self) -> list[tuple[bytes, bytes]]:
        out: list[tuple[bytes, bytes]] = []
        for keys, values, count in self.batches():
            for i in range(count):
                out.append(
                    (
                        keys[i * self.key_size : (i + 1) * self.key_size],
                        values[i * self.buffer_size : (i + 1) * self.buffer_size],
                    )
                )
        return out

    def batches(self, batch: int = 256) -> Iterator[tuple[bytes, bytes, int]]:
        """Raw batch lookups: (keys, values, count) per syscall.

        Raises OSError (EINVAL/ENOTSUPP) on kernels without batch operations.
        """
        keys = ctypes.create_string_buffer(self.key_size * batch)
        values = ctypes.create_string_buffer(self.buffer_size * batch)
        token_size = max(self.key_size, 8)
        in_token = None
        out_token = ctypes.create_string_buffer(token_size)
        opts = libbpf.BatchOpts(sz=ctypes.sizeof(libbpf.BatchOpts))
        while True:
            count = ctypes.c_uint32(batch)
            ret = lib().bpf_map_lookup_batch(
                self.fd, in_token, out_token, keys, values, ctypes.byref(count), ctypes.byref(opts)
            )
            if ret < 0 and ret != -errno.ENOENT:
                check(ret, f"batch lookup in {self.name}")
            if count.value:
                yield keys.raw, values.raw, count.value
            if ret == -errno.ENOENT:
                return
            in_token = ctypes.create_string_buffer(out_token.raw, token_size)


def sum_percpu_u64(value: bytes, fields: int, ncpus: int, stride: int) -> tuple[int, ...]:
    """Sum a per-CPU value made of `fields` u64s over every CPU."""
    fmt = f"={fields}Q"
    totals = [0] * fields
    for cpu in range(ncpus):
        for i, v in enumerate(struct.unpack_from(fmt, value, cpu * stride)):
            totals[i] += v
    return tuple(totals)


def open_pinned(path: str, name: str, key_size: int, value_size: int, percpu: bool = False) -> Map:
    """Open a pinned map by path (for tools and tests that run beside the daemon)."""
    fd = check(lib().bpf_obj_get(path.encode()), f"opening pinned map {path}")
    return Map(fd, name, key_size, value_size, percpu=percpu, owns_fd=True)
