"""Write a package the way scripts/ipkg-build does: an outer tar.gz holding
./debian-binary, ./data.tar.gz and ./control.tar.gz; GNU tar format, names
sorted, owner root (0:0, numeric), every mtime the source date epoch, gzip
without name or time. Installed-Size is the size of the uncompressed data tar.
"""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
from pathlib import Path


def _info(name: str, mode: int, mtime: int, size: int = 0, kind: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode, info.mtime, info.size, info.type = mode, mtime, size, kind
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def tar_tree(root: Path, mtime: int, skip: str | None = None) -> bytes:
    """`tar --format=gnu --numeric-owner --sort=name -cp .` of root, uncompressed."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        def add(path: Path, name: str) -> None:
            st = path.lstat()
            mode = stat.S_IMODE(st.st_mode)
            if path.is_symlink():
                info = _info(name, mode, mtime, kind=tarfile.SYMTYPE)
                info.linkname = os.readlink(path)
                tar.addfile(info)
            elif path.is_dir():
                tar.addfile(_info(name, mode, mtime, kind=tarfile.DIRTYPE))
                for child in sorted(os.listdir(path), key=os.fsencode):
                    if name == "." and child == skip:
                        continue
                    add(path / child, f"{name}/{child}")
            else:
                with path.open("rb") as f:
                    tar.addfile(_info(name, mode, mtime, st.st_size), f)

        add(root, ".")
    return buf.getvalue()


def gz(data: bytes) -> bytes:
    """gzip -n: no file name, no time stamp."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0) as f:
        f.write(data)
    return buf.getvalue()


def _members(files: list[tuple[str, bytes]], mtime: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in files:
            tar.addfile(_info(name, 0o644, mtime, len(data)), io.BytesIO(data))
    return buf.getvalue()


def build(pkg_dir: Path, out_dir: Path, mtime: int) -> Path:
    """pkg_dir holds the package tree and CONTROL/ (control, conffiles, scripts)."""
    data = tar_tree(pkg_dir, mtime, skip="CONTROL")
    control_path = pkg_dir / "CONTROL" / "control"
    fields = control_path.read_text(encoding="utf-8")
    fields = "".join(f"Installed-Size: {len(data)}\n" if line.startswith("Installed-Size:") else line
                     for line in fields.splitlines(keepends=True))
    control_path.write_text(fields, encoding="utf-8")
    values = dict(line.split(": ", 1) for line in fields.splitlines() if ": " in line and not line.startswith(" "))
    control = gz(tar_tree(pkg_dir / "CONTROL", mtime))
    outer = _members([("./debian-binary", b"2.0\n"), ("./data.tar.gz", gz(data)),
                      ("./control.tar.gz", control)], mtime)
    out_dir.mkdir(parents=True, exist_ok=True)
    version = values["Version"].split(":", 1)[-1]
    target = out_dir / f"{values['Package']}_{version}_{values['Architecture']}.ipk"
    target.write_bytes(gz(outer))
    return target
