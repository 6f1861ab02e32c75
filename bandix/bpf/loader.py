"""Open and load the BPF object with its maps pinned under the pin directory.

Pinned maps outlive the daemon: a restart (or a crash) continues from the
counters the kernel kept. The `control` map records which layout the pins were
made with; pins from another layout are removed rather than misread.
"""

from __future__ import annotations

import ctypes
import logging
import os
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path

from . import layout
from .libbpf import ObjectOpenOpts, check, check_ptr, lib
from .maps import Map, open_pinned

log = logging.getLogger(__name__)

INSTALLED_OBJECT = Path("/lib/bpf/bandix.o")
DEFAULT_PIN_DIR = "/sys/fs/bpf/bandix"
BPFFS_ROOT = "/sys/fs/bpf"


def repo_object() -> Path:
    """The object `make bpf` builds for this machine's byte order."""
    suffix = "bpfel" if sys.byteorder == "little" else "bpfeb"
    return Path(__file__).resolve().parents[2] / "bpf" / f"bandix.{suffix}.o"


def find_object(explicit: str | None) -> Path:
    """--bpf-object, then the installed path, then the repo's build output."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise FileNotFoundError(f"BPF object {path} not found (--bpf-object)")
        return path
    for path in (INSTALLED_OBJECT, repo_object()):
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"BPF object not found at {INSTALLED_OBJECT} or {repo_object()}: "
        "reinstall bandix, run `make bpf`, or pass --bpf-object"
    )


def bpffs_mounted(path: str = BPFFS_ROOT) -> bool:
    try:
        with open("/proc/self/mounts", encoding="utf-8") as mounts:
            return any(line.split()[1:3] == [path, "bpf"] for line in mounts)
    except OSError:
        return False


def _mount_bpffs() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(b"bpf", BPFFS_ROOT.encode(), b"bpf", 0, None) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{BPFFS_ROOT} is not a bpf filesystem and mounting one failed: {os.strerror(code)}")
    log.info("mounted bpffs at %s", BPFFS_ROOT)


def _read_pinned_layout(pin_dir: Path) -> int | None:
    try:
        m = open_pinned(str(pin_dir / layout.MAP_CONTROL), layout.MAP_CONTROL, 4, 4)
    except OSError:
        return None
    try:
        raw = m.lookup(struct.pack("=I", layout.CONTROL_LAYOUT))
        return struct.unpack("=I", raw)[0] if raw else None
    except OSError:
        return None
    finally:
        m.close()


def remove_pins(pin_dir: Path) -> None:
    """Remove the pins bandix made (and only those) from the pin directory."""
    for name in layout.PINNED_MAPS:
        try:
            (pin_dir / name).unlink()
        except FileNotFoundError:
            pass


def _prepare_pins(pin_dir: Path) -> bool:
    """Make the pin directory usable; True when existing counters will be reused."""
    if str(pin_dir).startswith(BPFFS_ROOT + "/") and not bpffs_mounted():
        _mount_bpffs()
    pin_dir.mkdir(parents=True, exist_ok=True)
    present = [n for n in layout.PINNED_MAPS if (pin_dir / n).exists()]
    if not present:
        return False
    found = _read_pinned_layout(pin_dir)
    if found == layout.LAYOUT_VERSION:
        return (pin_dir / layout.MAP_DEV_SLOTS).exists()
    log.warning(
        "pinned maps in %s have layout %s, this bandix uses %d: starting counters from zero",
        pin_dir, found if found is not None else "unknown", layout.LAYOUT_VERSION,
    )
    remove_pins(pin_dir)
    return False


@dataclass
class LoadedObject:
    """A loaded bandix object: program fds and its (pinned) maps."""

    path: Path
    pin_dir: Path
    reused_pins: bool
    _obj: int
    generation: int = 0  # random id of this set of pinned counters
    dns_events_fd: int = -1  # the ring buffer of DNS packets
    hello_events_fd: int = -1  # the ring buffer of TLS/QUIC hellos
    prog_fds: dict[str, int] = field(default_factory=dict)
    maps: dict[str, Map] = field(default_factory=dict)

    def close(self) -> None:
        """Release our references; pinned maps and attached programs live on."""
        if self._obj:
            lib().bpf_object__close(self._obj)
            self._obj = 0


_MAP_SHAPES = {
    layout.MAP_DEV_SLOTS: (4, ctypes.sizeof(layout.Slot), True),
    layout.MAP_DEV_OVERFLOW: (ctypes.sizeof(layout.MacKey), ctypes.sizeof(layout.DevStats), True),
    layout.MAP_LAN: (4, ctypes.sizeof(layout.Lan), False),
    layout.MAP_CONTROL: (4, 4, False),
    layout.MAP_HEALTH: (4, 8, True),
    layout.MAP_LIMITS: (ctypes.sizeof(layout.MacKey), ctypes.sizeof(layout.Limit), False),
    layout.MAP_FLOWS: (ctypes.sizeof(layout.FlowKey), ctypes.sizeof(layout.Flow), False),
}


def _find_map(obj: int, name: str) -> int:
    return check_ptr(lib().bpf_object__find_map_by_name(obj, name.encode()), f"map {name}")


def _map_fd(obj: int, name: str) -> int:
    return check(lib().bpf_map__fd(_find_map(obj, name)), f"fd of map {name}")


def _open_and_load(path: Path, pin_dir: Path, flow_entries: int) -> int:
    opts = ObjectOpenOpts(sz=ctypes.sizeof(ObjectOpenOpts), pin_root_path=str(pin_dir).encode())
    obj = check_ptr(lib().bpf_object__open_file(str(path).encode(), ctypes.byref(opts)), f"opening {path}")
    ret = lib().bpf_map__set_max_entries(_find_map(obj, layout.MAP_FLOWS), flow_entries)
    if ret >= 0:
        ret = lib().bpf_object__load(obj)
    if ret < 0:
        lib().bpf_object__close(obj)
        check(ret, f"loading {path}")
    return obj


def load(object_path: Path, pin_dir: Path, flow_entries: int = layout.FLOWS) -> LoadedObject:
    """Load the object, reusing compatible pins and replacing incompatible ones."""
    reused = _prepare_pins(pin_dir)
    try:
        obj = _open_and_load(object_path, pin_dir, flow_entries)
    except OSError as exc:
        if not reused:
            raise
        # Same layout number but a map the kernel will not reuse (e.g. a
        # different size): start over rather than refuse to run.
        log.warning("pinned maps in %s cannot be reused (%s): starting counters from zero", pin_dir, exc)
        remove_pins(pin_dir)
        reused = False
        obj = _open_and_load(object_path, pin_dir, flow_entries)
    loaded = LoadedObject(path=object_path, pin_dir=pin_dir, reused_pins=reused, _obj=obj)
    for prog in (layout.PROG_INGRESS, layout.PROG_EGRESS):
        handle = check_ptr(lib().bpf_object__find_program_by_name(obj, prog.encode()), f"program {prog}")
        loaded.prog_fds[prog] = check(lib().bpf_program__fd(handle), f"fd of {prog}")
    for name, (key_size, value_size, percpu) in _MAP_SHAPES.items():
        loaded.maps[name] = Map(_map_fd(obj, name), name, key_size, value_size, percpu=percpu)
    loaded.dns_events_fd = _map_fd(obj, layout.MAP_DNS_EVENTS)
    loaded.hello_events_fd = _map_fd(obj, layout.MAP_HELLO_EVENTS)
    control = loaded.maps[layout.MAP_CONTROL]
    control.update(struct.pack("=I", layout.CONTROL_LAYOUT), struct.pack("=I", layout.LAYOUT_VERSION))
    loaded.generation = _pin_generation(control)
    return loaded


def _pin_generation(control: Map) -> int:
    """The pins' random id, made when they are new (zero means not made yet)."""
    lo_key, hi_key = (struct.pack("=I", slot) for slot in layout.CONTROL_GENERATION)
    lo, hi = (struct.unpack("=I", control.lookup(k))[0] for k in (lo_key, hi_key))
    if lo == hi == 0:
        lo, hi = struct.unpack("=II", os.urandom(8))
        control.update(lo_key, struct.pack("=I", lo))
        control.update(hi_key, struct.pack("=I", hi))
    return hi << 32 | lo
