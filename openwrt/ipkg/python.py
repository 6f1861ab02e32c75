"""The Python package as python3-package.mk installs it: the wheel's files in
site-packages, compiled with `compileall -b -d /` (legacy .pyc beside the
source) and the sources deleted. The .pyc files are made by the host
Python, which must be the target's minor version: OpenWrt 23.05 and 24.10
ship Python 3.11, so does this machine.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

PYTHON_VERSION = "3.11"
SITE_PACKAGES = f"usr/lib/python{PYTHON_VERSION}/site-packages"


def wheel_files(repo: Path) -> list[Path]:
    """Files setuptools puts in the wheel: packages matched by
    [tool.setuptools.packages.find] include, their .py files and package-data."""
    project = tomllib.loads((repo / "pyproject.toml").read_text())
    tool = project["tool"]["setuptools"]
    include = tool["packages"]["find"]["include"]
    package_data: dict[str, list[str]] = tool.get("package-data", {})
    tops = [d for d in sorted(repo.iterdir())
            if d.is_dir() and any(fnmatch.fnmatch(d.name, p.split(".")[0]) for p in include)]
    out: list[Path] = []
    for init in sorted(i for top in tops for i in top.rglob("__init__.py")):
        pkg_dir = init.parent
        name = ".".join(pkg_dir.relative_to(repo).parts)
        if not any(fnmatch.fnmatch(name, pattern) for pattern in include):
            continue
        out += sorted(pkg_dir.glob("*.py"))
        for pattern in package_data.get(name, []):
            out += sorted(p for p in pkg_dir.glob(pattern) if p.is_file())
    return out


def install(repo: Path, root: Path, epoch: int) -> None:
    """Copy, compile, delete sources, drop empty dirs (Python3/CompileAll and friends)."""
    if f"{sys.version_info[0]}.{sys.version_info[1]}" != PYTHON_VERSION:
        raise SystemExit(f"the .pyc files need Python {PYTHON_VERSION} (the target's), not {sys.version.split()[0]}")
    site = root / SITE_PACKAGES
    for src in wheel_files(repo):
        dest = site / src.relative_to(repo)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        dest.chmod(0o644)
    env = {**os.environ, "PYTHONHASHSEED": str(epoch), "SOURCE_DATE_EPOCH": str(epoch)}
    env.pop("PYTHONPYCACHEPREFIX", None)
    subprocess.run([sys.executable, "-m", "compileall", "-q", "-r", "20", "-b", "-d", "/", str(root)],
                   check=True, env=env)
    for path in sorted(root.rglob("*.py")):
        path.unlink()
    for dirpath, _dirs, _files in sorted(os.walk(root), reverse=True):
        if dirpath != str(root) and not os.listdir(dirpath):
            os.rmdir(dirpath)
