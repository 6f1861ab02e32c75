"""`make ipk`: installable .ipk files of bandix (one little-endian and one
big-endian target), bandix-quic and luci-app-bandix (Architecture: all), without the
OpenWrt SDK, in the layout and format the build system would produce.

Names, versions, dependencies and install lists come from the feed's
Makefiles (openwrt/bandix/Makefile, luci-app-bandix/Makefile), so this
script cannot drift from them. What it cannot do is what only a real build
does: compile the BPF object with the target toolchain's bpf.mk flags
(`make bpf` builds both endiannesses here) and build the Python deps.

    python openwrt/ipk.py [--out dist/ipk] [--target ARCH:el|eb ...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ipkg import archive, bandix_pkg, control, luci_pkg, makefile  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
FEED = "bandix"  # the feed's name in feeds.conf: `src-git bandix <url>` (repository root)
TARGETS = {"x86_64": "el", "mips_24kc": "eb"}
LUCI_APP = "luci-app-bandix"


def source_date_epoch() -> int:
    """SOURCE_DATE_EPOCH if set, else the last commit's time (as get_source_date_epoch.sh)."""
    if os.environ.get("SOURCE_DATE_EPOCH"):
        return int(os.environ["SOURCE_DATE_EPOCH"])
    try:
        out = subprocess.run(["git", "log", "-1", "--format=%ct"], cwd=REPO, check=True,
                             capture_output=True, text=True).stdout.strip()
        return int(out)
    except (OSError, subprocess.CalledProcessError, ValueError):
        return 0


def _normalize_dirs(root: Path) -> None:
    """install -d makes 0755 directories; git keeps no directory modes."""
    for dirpath, _dirs, _files in os.walk(root):
        os.chmod(dirpath, 0o755)


def _fields(mk: makefile.Makefile, package: str, version: str, arch: str, source: str, epoch: int,
            pkg_fields: dict[str, str]) -> dict[str, str]:
    return {
        "Package": package,
        "Version": version,
        "Depends": ", ".join(makefile.depends(pkg_fields.get("DEPENDS", ""))),
        "Source": source,
        "SourceName": mk.var("PKG_NAME", package),
        "License": mk.var("PKG_LICENSE", ""),
        "LicenseFiles": mk.var("PKG_LICENSE_FILES", ""),
        "Section": pkg_fields.get("SECTION", "opt"),
        "SourceDateEpoch": str(epoch),
        "URL": pkg_fields.get("URL", ""),
        "Maintainer": mk.var("PKG_MAINTAINER", ""),
        "Architecture": arch,
    }


def build_bandix(arch: str, endian: str, out: Path, work: Path, epoch: int) -> Path:
    pkg_dir = work / f"bandix-{arch}"
    pkg_dir.mkdir()
    mk = bandix_pkg.stage(REPO, pkg_dir, endian, epoch)
    _normalize_dirs(pkg_dir)
    version = f"{mk.var('PKG_VERSION')}-r{mk.var('PKG_RELEASE')}"
    pkg_fields = mk.package_fields("bandix")
    fields = _fields(mk, "bandix", version, arch, f"feeds/{FEED}/{bandix_pkg.MAKEFILE.parent}", epoch, pkg_fields)
    conffiles = mk.text_block("Package/bandix/conffiles").split()
    control.write(pkg_dir, fields, mk.defines.get("Package/bandix/description", pkg_fields.get("TITLE", "")),
                  conffiles)
    return archive.build(pkg_dir, out, epoch)


def build_meta(package: str, out: Path, work: Path, epoch: int) -> Path:
    """A package of the bandix Makefile that installs no files, only dependencies (bandix-quic)."""
    pkg_dir = work / package
    pkg_dir.mkdir()
    _normalize_dirs(pkg_dir)
    mk = makefile.parse(REPO / bandix_pkg.MAKEFILE)
    version = f"{mk.var('PKG_VERSION')}-r{mk.var('PKG_RELEASE')}"
    pkg_fields = mk.package_fields(package)
    fields = _fields(mk, package, version, pkg_fields.get("PKGARCH", "all"),
                     f"feeds/{FEED}/{bandix_pkg.MAKEFILE.parent}", epoch, pkg_fields)
    control.write(pkg_dir, fields, mk.defines.get(f"Package/{package}/description", pkg_fields.get("TITLE", "")), [])
    return archive.build(pkg_dir, out, epoch)


def build_luci(out: Path, work: Path, epoch: int) -> Path | None:
    app_dir = REPO / LUCI_APP
    if not (app_dir / "Makefile").is_file():
        print(f"{LUCI_APP}/Makefile is missing: no LuCI package built", file=sys.stderr)
        return None
    pkg_dir = work / LUCI_APP
    pkg_dir.mkdir()
    mk = luci_pkg.stage(app_dir, pkg_dir)
    _normalize_dirs(pkg_dir)
    version = f"{mk.var('PKG_VERSION', luci_pkg.git_version(app_dir))}-r{mk.var('PKG_RELEASE', '1')}"
    title = mk.var("LUCI_TITLE", f"LuCI {LUCI_APP}")
    pkg_fields = {"DEPENDS": mk.var("LUCI_DEPENDS", ""), "SECTION": "luci", "TITLE": title}
    fields = _fields(mk, LUCI_APP, version, mk.var("LUCI_PKGARCH", "all"), f"feeds/{FEED}/{LUCI_APP}", epoch,
                     pkg_fields)
    control.write(pkg_dir, fields, mk.var("LUCI_DESCRIPTION", title), [], luci_pkg.postinst_pkg(app_dir, mk, LUCI_APP))
    return archive.build(pkg_dir, out, epoch)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "dist" / "ipk", help="output directory (default dist/ipk)")
    parser.add_argument("--target", action="append", metavar="ARCH:el|eb",
                        help="package architecture and BPF endianness (default x86_64:el mips_24kc:eb)")
    args = parser.parse_args(argv)
    targets = dict(t.split(":", 1) for t in args.target) if args.target else TARGETS
    epoch = source_date_epoch()
    built = []
    with tempfile.TemporaryDirectory(prefix="bandix-ipk-") as tmp:
        work = Path(tmp)
        os.umask(0o022)
        for arch, endian in targets.items():
            built.append(build_bandix(arch, endian, args.out, work, epoch))
        built.append(build_meta("bandix-quic", args.out, work, epoch))
        luci = build_luci(args.out, work, epoch)
        if luci:
            built.append(luci)
    for path in built:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
