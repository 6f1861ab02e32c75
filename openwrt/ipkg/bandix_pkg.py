"""Stage the `bandix` package for one target from openwrt/bandix/Makefile:
its fields, its install block, and the BPF object of the target's endianness
(what `$(call CompileBPF,...)` makes there, `make bpf` makes here).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from . import makefile, python

PACKAGE = "bandix"
MAKEFILE = Path("openwrt/bandix/Makefile")
_COMPILE_BPF = re.compile(r"\$\(call CompileBPF,\$\(PKG_BUILD_DIR\)/(\S+?)\.c\)")


def bpf_objects(mk: makefile.Makefile, endian: str) -> dict[str, str]:
    """Build-dir object -> this repo's `make bpf` output, e.g. bpf/bandix.bpf.o -> bpf/bandix.bpfeb.o."""
    out = {}
    for stem in _COMPILE_BPF.findall(mk.defines.get("Build/Compile", "")):
        out[f"{stem}.o"] = f"{stem.removesuffix('.bpf')}.bpf{endian}.o"
    return out


def stage(repo: Path, root: Path, endian: str, epoch: int) -> makefile.Makefile:
    """Fill root with the package's files; returns the parsed Makefile."""
    mk = makefile.parse(repo / MAKEFILE)
    objects = bpf_objects(mk, endian)
    dirs, files = mk.installs(f"Py3Package/{PACKAGE}/install")
    for d in dirs:
        (root / d.lstrip("/")).mkdir(parents=True, exist_ok=True)
    for item in files:
        rel = item.source.removeprefix("$(PKG_BUILD_DIR)/")
        src = repo / objects.get(rel, rel)
        if not src.is_file():
            raise SystemExit(f"{src} is missing" + (" (run `make bpf`)" if rel in objects else ""))
        dest = root / item.dest.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        dest.chmod(item.mode)
    python.install(repo, root, epoch)
    return mk
