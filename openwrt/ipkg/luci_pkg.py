"""Stage a LuCI app by luci.mk's rules: htdocs/ -> /www, root/ -> /, luasrc/ ->
/usr/lib/lua/luci, modes kept (cp -pR); po/ goes to luci-i18n-* packages, not
here. Files a `Build/Prepare/...` hook of the app's Makefile installs into the
build dir are added too (luci-app-bandix takes charts.js from bandix/web).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

from . import makefile

TREES = {"htdocs": "www", "root": "", "luasrc": "usr/lib/lua/luci"}
_PREPARE_INSTALL = re.compile(r"\$\((INSTALL_BIN|INSTALL_DATA|INSTALL_CONF)\)\s+(\S+)\s+\$\(PKG_BUILD_DIR\)/(\S+)")


def git_version(app_dir: Path) -> str:
    """luci.mk's PKG_VERSION when the Makefile sets none: git-YY.DDD.SSSSS-hash of the last commit."""
    try:
        out = subprocess.run(["git", "log", "-1", "--format=%ct %h"], cwd=app_dir, check=True,
                             capture_output=True, text=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    if len(out) != 2:
        return "unknown"
    secs, short = int(out[0]), out[1]
    return f"git-{time.strftime('%y.%j', time.gmtime(secs))}.{secs % 86400:05d}-{short}"


def prepared_files(mk: makefile.Makefile, app_dir: Path) -> list[tuple[Path, str, int]]:
    """(source, path in the build dir, mode) of each install line of a Build/Prepare/* hook."""
    mk.variables.setdefault("CURDIR", str(app_dir))
    out = []
    for name, body in mk.defines.items():
        if not name.startswith("Build/Prepare/"):
            continue
        for kind, src, dest in _PREPARE_INSTALL.findall(body):
            out.append((Path(mk.expand(mk.expand(src))), dest, makefile.MODES[kind]))
    return out


def stage(app_dir: Path, root: Path) -> makefile.Makefile:
    mk = makefile.parse(app_dir / "Makefile")
    build = root.parent / "luci-build"  # the app's PKG_BUILD_DIR after Build/Prepare
    for tree in TREES:
        if (app_dir / tree).is_dir():
            shutil.copytree(app_dir / tree, build / tree, symlinks=True)
    for src, dest, mode in prepared_files(mk, app_dir):
        if not src.is_file():
            raise SystemExit(f"{app_dir / 'Makefile'}: {src} is missing")
        (build / dest).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, build / dest)
        (build / dest).chmod(mode)
    for tree, target in TREES.items():
        if (build / tree).is_dir():
            shutil.copytree(build / tree, root / target, symlinks=True, dirs_exist_ok=True)
    shutil.rmtree(build)
    return mk


def postinst_pkg(app_dir: Path, mk: makefile.Makefile, package: str) -> str:
    """luci.mk's postinst (openwrt/luci luci.mk, `ifndef Package/$(PKG_NAME)/postinst`): the app's
    own when its Makefile defines one, else luci.mk's: on a live system run the app's uci-defaults,
    drop LuCI's index and module caches and send rpcd SIGHUP, so that it reads the new exec plugin
    and ACL file (rpcd scans both only when it starts; SIGHUP re-executes it, sessions survive)."""
    own = mk.defines.get(f"Package/{package}/postinst")
    if own is not None:
        return own.replace("$$", "$").strip("\n") + "\n"
    scripts = sorted(p.name for p in (app_dir / "root/etc/uci-defaults").glob("*")) \
        if (app_dir / "root/etc/uci-defaults").is_dir() else []
    runs = "".join(f"\t(. /etc/uci-defaults/{s}) && rm -f /etc/uci-defaults/{s}\n" for s in scripts)
    return ('[ -n "${IPKG_INSTROOT}" ] || {\n' + runs + "\trm -f /tmp/luci-indexcache /tmp/luci-indexcache.*\n"
            "\trm -rf /tmp/luci-modulecache/\n\tkillall -HUP rpcd 2>/dev/null\n\texit 0\n}\n")
