"""VM images of Debian 12, one per architecture, cached under `.cache/arch/`.

An image is a root filesystem made by `mmdebstrap` (foreign packages run
under qemu-user through binfmt_misc), turned into an ext4 file by
`mkfs.ext4 -d`, plus the kernel and the initramfs taken out of it for qemu's
`-kernel`/`-initrd`. The initramfs holds only what mounting the root needs
(`MODULES=list`), which keeps it small and quick to build. Every cached file
name carries a hash of the recipe it was built from, so a changed recipe is
rebuilt and an unchanged one is reused; files of older recipes are removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "arch"
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
BUILD_TIMEOUT_S = 1800
IMAGE_SIZE = "1G"
STOP = threading.Event()  # set by the main thread when interrupted: builds in other threads stop

# What the guest checks need: Debian's kernel, python3 and libbpf, and the
# virtual router's tools (tests/vrouter.py: ip, bridge, sysctl, nft, ss;
# tests/traffic.py: iperf3, ping). kmod: the kernel loads veth, bridge,
# nftables and cls_bpf modules on demand.
PACKAGES = ["mount", "kmod", "python3", "libbpf1", "iproute2", "iputils-ping", "procps", "nftables", "iperf3"]
# The initramfs mounts /dev/vda (ext4 on virtio-blk, over virtio-ccw or virtio-mmio); nothing else.
INITRAMFS_MODULES = ["virtio_blk", "virtio_mmio", "virtio_pci", "ext4"]

# PID 1 of the VM: mounts, then the 9p shares (payload read-only, out
# read-write), runs the checks from the payload and powers off. Whatever
# happens, the VM ends: `panic=1` plus qemu's -no-reboot turn an exit of
# PID 1 into the end of qemu.
INIT = """#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc 2>/dev/null
mount -t sysfs sys /sys 2>/dev/null
mount -t devtmpfs dev /dev 2>/dev/null
mount -t tmpfs tmp /tmp
mount -t tmpfs run /run
modprobe -a 9pnet_virtio 9p
mkdir -p /payload /out
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144 payload /payload
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 out /out
hostname bandix-arch
ip link set lo up
sh /payload/tests/arch/guest.sh
echo "bandix-arch: guest exited with $?"
sync
echo o > /proc/sysrq-trigger
sleep 30
"""


@dataclass(frozen=True)
class Arch:
    """One VM kind: the Debian architecture and how qemu runs it."""

    name: str  # Debian architecture
    kernel_package: str
    qemu: list[str]  # qemu binary and machine options
    console: str
    block_device: str  # qemu device of the root disk
    p9_device: str  # qemu device of a 9p share
    what: str  # for the README and the output

    def recipe(self) -> dict:
        """Everything the image is built from: its hash names the cache files."""
        return {"arch": self.name, "suite": SUITE, "mirror": MIRROR, "size": IMAGE_SIZE,
                "packages": [self.kernel_package, *PACKAGES], "initramfs": INITRAMFS_MODULES, "init": INIT}

    def recipe_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.recipe(), sort_keys=True).encode()).hexdigest()[:12]


ARCHES = {
    "s390x": Arch("s390x", "linux-image-s390x",
                  ["qemu-system-s390x", "-machine", "s390-ccw-virtio", "-cpu", "max", "-m", "2048"],
                  "ttysclp0", "virtio-blk-ccw", "virtio-9p-ccw", "64-bit big-endian"),
    # cortex-a7: the core of many 32-bit ARM routers (arm_cortex-a7 in OpenWrt); LPAE like the kernel.
    "armhf": Arch("armhf", "linux-image-armmp-lpae",
                  ["qemu-system-arm", "-machine", "virt", "-cpu", "cortex-a7", "-m", "1024"],
                  "ttyAMA0", "virtio-blk-device", "virtio-9p-device", "32-bit little-endian"),
}


@dataclass(frozen=True)
class Image:
    disk: Path
    kernel: Path
    initrd: Path

    def exists(self) -> bool:
        return self.disk.is_file() and self.kernel.is_file() and self.initrd.is_file()


def image_for(arch: Arch) -> Image:
    stem = CACHE / f"{arch.name}-{arch.recipe_hash()}"
    return Image(Path(f"{stem}.ext4"), Path(f"{stem}.vmlinuz"), Path(f"{stem}.initrd"))


def enable_binfmt(arch: Arch) -> None:
    """qemu-user for the foreign architecture's maintainer scripts (mmdebstrap needs it)."""
    misc = Path("/proc/sys/fs/binfmt_misc")
    if not (misc / "status").exists():
        subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(misc)], check=True)
    handler = "qemu-s390x" if arch.name == "s390x" else "qemu-arm"
    if not (misc / handler).exists():
        subprocess.run(["update-binfmts", "--enable", handler], check=True)
    subprocess.run(["arch-test", arch.name], check=True, stdout=subprocess.DEVNULL)


def _hooks(work: Path) -> Path:
    hook = work / "setup-hook.sh"
    hook.write_text(
        "#!/bin/sh\nset -e\n"
        'mkdir -p "$1/etc/initramfs-tools/conf.d" "$1/usr/share/initramfs-tools/modules.d"\n'
        'echo MODULES=list > "$1/etc/initramfs-tools/conf.d/bandix-arch"\n'
        f"printf '%s\\n' {' '.join(INITRAMFS_MODULES)} > \"$1/usr/share/initramfs-tools/modules.d/bandix-arch\"\n")
    hook.chmod(0o755)
    return hook


def run_group(cmd: list[str], timeout: float, log: Path) -> None:
    """Run cmd in its own session; on timeout or interruption stop its whole group.

    SIGTERM first, so mmdebstrap unmounts what it mounted in the chroot, then
    SIGKILL for whatever is left of the group.
    """
    with open(log, "a") as out:
        # stdin closed: mmdebstrap would read a sources.list from a non-tty stdin.
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        deadline = time.monotonic() + timeout
        try:
            while True:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    code = proc.wait(1)
                    break
                if STOP.is_set():
                    raise InterruptedError(f"{cmd[0]} stopped: the run was interrupted")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{cmd[0]} took more than {timeout:.0f} s: see {log}")
        except BaseException:
            for sig, grace in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, sig)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(grace)
                    break
            raise
    if code != 0:
        raise RuntimeError(f"{cmd[0]} failed with {code}: see {log}")


def _mounts_under(path: Path) -> list[str]:
    with open("/proc/self/mounts") as mounts:
        return [line.split()[1] for line in mounts if line.split()[1].startswith(str(path) + "/")]


def build(arch: Arch, log: Path) -> Image:
    """Build the image of `arch` into the cache (files appear whole, by rename)."""
    image = image_for(arch)
    CACHE.mkdir(parents=True, exist_ok=True)
    enable_binfmt(arch)
    started = time.monotonic()
    log.write_text("")
    for stale in CACHE.glob(f"build-{arch.name}-*"):  # left by an interrupted build
        if stale.is_dir() and not _mounts_under(stale):
            shutil.rmtree(stale, ignore_errors=True)
    work = Path(tempfile.mkdtemp(prefix=f"build-{arch.name}-", dir=CACHE))
    try:
        rootfs = work / "root"
        cmd = ["mmdebstrap", f"--arch={arch.name}", "--variant=essential",
               "--include=" + ",".join(arch.recipe()["packages"]),
               f"--setup-hook={_hooks(work)} \"$1\"", SUITE, str(rootfs), MIRROR]
        run_group(cmd, BUILD_TIMEOUT_S, log)
        init = rootfs / "sbin" / "bandix-init"
        init.write_text(INIT)
        init.chmod(0o755)
        boot = rootfs / "boot"
        kernel = next(boot.glob("vmlinuz-*"))
        initrd = next(boot.glob("initrd.img-*"))
        disk = work / "disk.ext4"
        run_group(["mkfs.ext4", "-q", "-F", "-L", "root", "-d", str(rootfs), str(disk), IMAGE_SIZE], 600, log)
        shutil.copyfile(kernel, work / "vmlinuz")
        shutil.copyfile(initrd, work / "initrd")
        for src, dst in ((work / "vmlinuz", image.kernel), (work / "initrd", image.initrd), (disk, image.disk)):
            os.replace(src, dst)
    finally:
        left = _mounts_under(work)
        if left:  # never rmtree through a mount (a /dev or /proc of the chroot)
            print(f"not removing {work}: still mounted: {', '.join(left)}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    _remove_other_recipes(arch, image)
    with open(log, "a") as out:
        out.write(f"built {image.disk.name} in {time.monotonic() - started:.0f} s\n")
    return image


def _remove_other_recipes(arch: Arch, keep: Image) -> None:
    mine = {keep.disk, keep.kernel, keep.initrd}
    for path in CACHE.glob(f"{arch.name}-*"):
        if path not in mine and path.is_file():
            path.unlink()


def ensure(arch: Arch, log: Path) -> tuple[Image, bool]:
    """The cached image, built first when missing; (image, whether it was built)."""
    image = image_for(arch)
    if image.exists():
        return image, False
    return build(arch, log), True
