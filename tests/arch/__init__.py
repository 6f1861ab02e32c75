"""`make test-arch`: bandix on the real kernels of other architectures, in qemu VMs.

Routers run bandix on CPUs the development machine is not: big-endian MIPS
(the `bandix.bpfeb.o` object) and 32-bit ARM (ctypes layouts with 4-byte
pointers). Two Debian 12 VMs stand in for them: s390x (64-bit big-endian) and
armhf (32-bit little-endian, `-machine virt`). Each boots Debian's own kernel
and runs `tests/arch/guest.py` with Debian's python3 on the checkout (shared
read-only over 9p), then powers off.

- `images.py`: the VM images, built with mmdebstrap into a git-ignored cache
  whose file names carry a hash of their recipe.
- `payload.py`: pure-Python wheels of the daemon's dependencies, the versions
  of this `.venv`, installed for the guest (there is no s390x wheel of some).
- `vm.py`: one qemu run with a hard timeout; its results.
- `guest.py`: the checks, inside the VM.
"""
