"""The .ipk files of `make ipk` (openwrt/ipk.py) and the feed they are read from.

No OpenWrt here: each test says which part of OpenWrt it stands in for
(opkg reading a package, the build system's Makefile conventions, the
router's Python running the installed tree).
"""

from __future__ import annotations

import ast
import gzip
import importlib
import importlib.metadata
import io
import os
import re
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BUILDER = REPO / "openwrt" / "ipk.py"
EPOCH = "1700000000"
# PKG_RELEASE is the repository's commit count (openwrt/bandix/Makefile).
VERSION = "0.1.0-r" + (subprocess.run(["git", "rev-list", "--count", "HEAD"], cwd=Path(__file__).parent,
                                      capture_output=True, text=True).stdout.strip() or "1")
SITE = "usr/lib/python3.11/site-packages"
BANDIX_DEPENDS = ("libc, python3-light, python3-ctypes, python3-logging, python3-sqlite3, python3-urllib, "
                  "python3-pyroute2, python3-falcon, python3-waitress, python3-dnslib, "
                  "libbpf, kmod-sched-core, kmod-sched-bpf")
POSTINST = ('#!/bin/sh\n[ "${IPKG_NO_SCRIPT}" = "1" ] && exit 0\n[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0\n'
            '. ${IPKG_INSTROOT}/lib/functions.sh\ndefault_postinst $0 $@\n')
PRERM = ('#!/bin/sh\n[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0\n. ${IPKG_INSTROOT}/lib/functions.sh\n'
         'default_prerm $0 $@\n')
# path in the package -> mode, for everything bandix installs outside site-packages
BANDIX_FILES = {
    "etc/config/bandix": 0o600,
    "etc/init.d/bandix": 0o755,
    "etc/uci-defaults/bandix": 0o755,
    "lib/bpf/bandix.o": 0o644,
    "lib/upgrade/keep.d/bandix": 0o644,
    "usr/sbin/bandix": 0o755,
}


def build(out: Path) -> list[Path]:
    env = {**os.environ, "SOURCE_DATE_EPOCH": EPOCH}
    result = subprocess.run([sys.executable, str(BUILDER), "--out", str(out)], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return [Path(line) for line in result.stdout.split()]


@pytest.fixture(scope="module")
def ipks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("ipk")
    return {p.name: p for p in build(out)}


class Ipk:
    """An .ipk opened the way opkg does: outer tar.gz, then control and data."""

    def __init__(self, path: Path) -> None:
        outer = tarfile.open(path, "r:gz")
        self.outer = outer.getmembers()
        self.members = {m.name: outer.extractfile(m).read() for m in self.outer}
        self.control = tarfile.open(fileobj=io.BytesIO(self.members["./control.tar.gz"]), mode="r:gz")
        self.data_raw = self.members["./data.tar.gz"]
        self.data = tarfile.open(fileobj=io.BytesIO(self.data_raw), mode="r:gz")

    def control_file(self, name: str) -> str:
        return self.control.extractfile(f"./{name}").read().decode()

    def fields(self) -> dict[str, str]:
        text = self.control_file("control")
        return dict(line.split(": ", 1) for line in text.splitlines() if not line.startswith(" "))

    def files(self) -> dict[str, tarfile.TarInfo]:
        return {m.name.removeprefix("./"): m for m in self.data.getmembers() if m.isfile()}

    def read(self, name: str) -> bytes:
        return self.data.extractfile(f"./{name}").read()


def test_builder_writes_one_package_per_target_and_the_luci_app(ipks: dict[str, Path]) -> None:
    """Stands in for the package index of two targets (x86_64, mips_24kc) and the `all` feed."""
    names = sorted(ipks)
    assert names[:3] == [f"bandix-quic_{VERSION}_all.ipk", f"bandix_{VERSION}_mips_24kc.ipk",
                         f"bandix_{VERSION}_x86_64.ipk"]
    assert len(names) == 4 and re.fullmatch(r"luci-app-bandix_git-\d\d\.\d{3}\.\d{5}-[0-9a-f]+-r1_all\.ipk", names[3])


def test_quic_names_are_an_optional_package(ipks: dict[str, Path]) -> None:
    """Stands in for `opkg info bandix-quic`: bandix itself does not need python3-cryptography (its
    Depends above has none); bandix-quic installs no files, only bandix and python3-cryptography."""
    ipk = Ipk(ipks[f"bandix-quic_{VERSION}_all.ipk"])
    fields = ipk.fields()
    assert (fields["Package"], fields["Depends"], fields["Architecture"]) == (
        "bandix-quic", "libc, bandix, python3-cryptography", "all")
    assert fields["Description"].startswith(" Lets bandix read the server name of QUIC")
    assert ipk.data.getnames() == ["."]


def test_pip_install_does_not_need_cryptography() -> None:
    """Stands in for `pip install .` / `pip install bandix[quic]`: cryptography is only in the extra."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert not [d for d in project["dependencies"] if d.startswith("cryptography")]
    assert project["optional-dependencies"]["quic"] == ["cryptography>=41"]


@pytest.mark.parametrize("arch", ["x86_64", "mips_24kc"])
def test_outer_archive_is_what_ipkg_build_writes(ipks: dict[str, Path], arch: str) -> None:
    """Stands in for opkg unpacking: scripts/ipkg-build's member order, owners and times."""
    ipk = Ipk(ipks[f"bandix_{VERSION}_{arch}.ipk"])
    assert [m.name for m in ipk.outer] == ["./debian-binary", "./data.tar.gz", "./control.tar.gz"]
    assert ipk.members["./debian-binary"] == b"2.0\n"
    for tar in (ipk.data, ipk.control):
        for m in tar.getmembers():
            assert (m.uid, m.gid, m.uname, m.gname, m.mtime) == (0, 0, "", "", int(EPOCH)), m.name
    assert ipk.data.getmembers()[0].name == "."
    assert sorted(n for n in ipk.control.getnames() if n != ".") == [
        "./conffiles", "./control", "./postinst", "./prerm"]


@pytest.mark.parametrize("arch", ["x86_64", "mips_24kc"])
def test_bandix_control_fields(ipks: dict[str, Path], arch: str) -> None:
    """Stands in for `opkg info bandix`: the fields include/package-pack.mk writes, from the feed Makefile."""
    ipk = Ipk(ipks[f"bandix_{VERSION}_{arch}.ipk"])
    data_size = len(gzip.decompress(ipk.data_raw))
    assert ipk.fields() == {
        "Package": "bandix",
        "Version": VERSION,
        "Depends": BANDIX_DEPENDS,
        "Source": "feeds/bandix/openwrt/bandix",
        "SourceName": "bandix",
        "License": "MIT",
        "Section": "net",
        "SourceDateEpoch": EPOCH,
        "Maintainer": "bandix developers",
        "Architecture": arch,
        "Installed-Size": str(data_size),
        "Description": " Counts every LAN device's traffic in the kernel with eBPF TC programs,",
    }
    assert ipk.control_file("conffiles") == "/etc/config/bandix\n"
    assert ipk.control_file("postinst") == POSTINST
    assert ipk.control_file("prerm") == PRERM
    modes = {m.name: m.mode for m in ipk.control.getmembers()}
    assert (modes["./postinst"], modes["./prerm"], modes["./control"]) == (0o755, 0o755, 0o644)


@pytest.mark.parametrize(("arch", "endian"), [("x86_64", 1), ("mips_24kc", 2)])
def test_bandix_files_modes_and_bpf_endianness(ipks: dict[str, Path], arch: str, endian: int) -> None:
    """Stands in for the router's file system after `opkg install`: paths, modes, the BPF
    object libbpf loads from /lib/bpf/bandix.o (ELF EI_DATA: 1 little, 2 big endian)."""
    ipk = Ipk(ipks[f"bandix_{VERSION}_{arch}.ipk"])
    files = ipk.files()
    outside = {name: m.mode for name, m in files.items() if not name.startswith(SITE)}
    assert outside == BANDIX_FILES
    elf = ipk.read("lib/bpf/bandix.o")
    assert elf[:4] == b"\x7fELF" and elf[5] == endian
    assert elf == (REPO / f"bpf/bandix.bpf{'el' if endian == 1 else 'eb'}.o").read_bytes()
    assert ipk.read("etc/init.d/bandix") == (REPO / "files/bandix.init").read_bytes()
    assert ipk.read("etc/config/bandix") == (REPO / "files/bandix.config").read_bytes()
    dirs = [m for m in ipk.data.getmembers() if m.isdir()]
    assert dirs and all(m.mode == 0o755 for m in dirs)


def test_bandix_python_tree_is_bytecode_only(ipks: dict[str, Path]) -> None:
    """Stands in for python3-package.mk's install: .pyc beside where the source was, no .py,
    the package data kept, every module of bandix/ present."""
    files = Ipk(ipks[f"bandix_{VERSION}_x86_64.ipk"]).files()
    site = {n.removeprefix(SITE + "/"): m for n, m in files.items() if n.startswith(SITE)}
    assert not [n for n in site if n.endswith(".py") or "__pycache__" in n]
    expected = {str(p.relative_to(REPO)) + "c" for p in (REPO / "bandix").rglob("*.py") if "__pycache__" not in p.parts}
    assert {n for n in site if n.endswith(".pyc")} == expected
    assert {"bandix/api/openapi.json", "bandix/web/charts.js", "bandix/web/index.html",
            "bandix/data/doh-resolvers.txt"} <= set(site)
    assert all(m.mode == 0o644 for m in site.values())


def test_installed_tree_runs_help(ipks: dict[str, Path], tmp_path: Path) -> None:
    """Stands in for the router running /usr/sbin/bandix with its python3 (3.11, like OpenWrt
    23.05/24.10) over the package's site-packages; the deps come from this venv."""
    tarfile.open(fileobj=io.BytesIO(Ipk(ipks[f"bandix_{VERSION}_x86_64.ipk"]).data_raw), mode="r:gz").extractall(
        tmp_path, filter="data")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / SITE), "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run([sys.executable, str(tmp_path / "usr/sbin/bandix"), "--help"],
                            env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: bandix [-h] [--iface IFACE]")
    probe = subprocess.run([sys.executable, "-c", "import bandix.config; print(bandix.config.__file__)"],
                           env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert probe.stdout.strip() == str(tmp_path / SITE / "bandix/config.pyc")


def test_luci_app_follows_luci_mk(ipks: dict[str, Path]) -> None:
    """Stands in for luci.mk: htdocs/ -> /www, root/ -> /, modes kept, po/ left out,
    charts.js copied from the dashboard by the app's Prepare hook."""
    name = next(n for n in ipks if n.startswith("luci-app-bandix_"))
    ipk = Ipk(ipks[name])
    app = REPO / "luci-app-bandix"
    expected = {f"www/{p.relative_to(app / 'htdocs')}": p for p in (app / "htdocs").rglob("*") if p.is_file()}
    expected |= {str(p.relative_to(app / "root")): p for p in (app / "root").rglob("*") if p.is_file()}
    expected["www/luci-static/resources/bandix/charts.js"] = REPO / "bandix/web/charts.js"
    files = ipk.files()
    assert set(files) == set(expected)
    for path, src in expected.items():
        assert ipk.read(path) == src.read_bytes(), path
        if "charts.js" not in path:
            assert files[path].mode == src.stat().st_mode & 0o777, path
    fields = ipk.fields()
    assert (fields["Package"], fields["Depends"], fields["Architecture"], fields["Section"]) == (
        "luci-app-bandix", "libc, luci-base, bandix, uclient-fetch", "all", "luci")
    assert fields["Source"] == "feeds/bandix/luci-app-bandix"
    assert "conffiles" not in " ".join(ipk.control.getnames())
    # luci.mk's postinst, as the feed build writes it: rpcd reads the new plugin and ACL only
    # after a SIGHUP (openwrt/rpcd main.c re-executes itself), LuCI's caches are dropped.
    assert ipk.control_file("postinst") == POSTINST
    assert ipk.control_file("postinst-pkg") == (
        '[ -n "${IPKG_INSTROOT}" ] || {\n\trm -f /tmp/luci-indexcache /tmp/luci-indexcache.*\n'
        "\trm -rf /tmp/luci-modulecache/\n\tkillall -HUP rpcd 2>/dev/null\n\texit 0\n}\n")


def test_postinst_on_a_live_system_clears_the_caches_and_hups_rpcd(ipks: dict[str, Path], tmp_path: Path) -> None:
    """The postinst-pkg run as opkg runs it on the router (IPKG_INSTROOT empty), with a killall
    stand-in recording its arguments and /tmp mapped here."""
    ipk = Ipk(ipks[next(n for n in ipks if n.startswith("luci-app-bandix_"))])
    script = ipk.control_file("postinst-pkg").replace("/tmp/", f"{tmp_path}/tmp/")
    (tmp_path / "tmp/luci-modulecache").mkdir(parents=True)
    for name in ("luci-indexcache", "luci-indexcache.a1b2.json", "luci-modulecache/x.lua", "keep.me"):
        (tmp_path / "tmp" / name).write_text("x")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin/killall").write_text(f'#!/bin/sh\necho "$*" >> {tmp_path}/killall.txt\n')
    (tmp_path / "bin/killall").chmod(0o755)
    done = subprocess.run(["/bin/sh", "-c", script], env={"PATH": f"{tmp_path}/bin:/usr/bin:/bin", "IPKG_INSTROOT": ""},
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "tmp").iterdir()) == ["keep.me"]
    assert (tmp_path / "killall.txt").read_text() == "-HUP rpcd\n"
    # In an image build (IPKG_INSTROOT set) nothing runs.
    (tmp_path / "killall.txt").unlink()
    subprocess.run(["/bin/sh", "-c", script], env={"PATH": f"{tmp_path}/bin:/usr/bin:/bin", "IPKG_INSTROOT": "/x"})
    assert not (tmp_path / "killall.txt").exists()


def test_build_is_reproducible(ipks: dict[str, Path], tmp_path: Path) -> None:
    """Stands in for OpenWrt's reproducible builds: same sources and SOURCE_DATE_EPOCH, same bytes."""
    again = {p.name: p.read_bytes() for p in build(tmp_path)}
    assert again == {name: path.read_bytes() for name, path in ipks.items()}


# -- the feed Makefiles ---------------------------------------------------

def _var(makefile: Path, name: str) -> str:
    m = re.search(rf"^{name}:=(.*)$", makefile.read_text(), re.M)
    assert m, f"{makefile}: no {name}"
    return m.group(1).strip()


def test_bandix_version_matches_pyproject() -> None:
    """Stands in for a release: the feed's PKG_VERSION is the Python package's version."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert _var(REPO / "openwrt/bandix/Makefile", "PKG_VERSION") == project["version"]


@pytest.mark.parametrize("dist", ["falcon", "waitress", "dnslib"])
def test_python_deps_are_pinned_to_the_tested_versions(dist: str) -> None:
    """Stands in for pypi.mk's download: version = the venv's tested one, a sha256 PKG_HASH."""
    makefile = REPO / f"openwrt/lang/python/python-{dist}/Makefile"
    assert _var(makefile, "PYPI_NAME") == dist
    assert _var(makefile, "PKG_VERSION") == importlib.metadata.version(dist)
    assert re.fullmatch(r"[0-9a-f]{64}", _var(makefile, "PKG_HASH"))
    text = makefile.read_text()
    assert "include $(TOPDIR)/feeds/packages/lang/python/pypi.mk" in text
    assert text.index("pypi.mk") < text.index("$(INCLUDE_DIR)/package.mk") < text.index("python3-package.mk")


# Standard library modules OpenWrt ships outside python3-light (lang/python/python3/files).
STDLIB_SPLITS = {"asyncio": "python3-asyncio", "ctypes": "python3-ctypes", "decimal": "python3-decimal",
                 "email": "python3-email", "logging": "python3-logging", "lzma": "python3-lzma",
                 "multiprocessing": "python3-multiprocessing", "sqlite3": "python3-sqlite3",
                 "ssl": "python3-openssl", "unittest": "python3-unittest", "urllib": "python3-urllib",
                 "uuid": "python3-uuid", "xml": "python3-xml", "unicodedata": "python3-codecs",
                 "dbm": "python3-dbm", "curses": "python3-ncurses", "readline": "python3-readline"}


def _optional_imports(tree: ast.AST) -> set[int]:
    """ids of the imports in a `try:` that catches ImportError: the code does without them
    (bandix top without curses), so the package must not pull their split in."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
                isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
                for h in node.handlers):
            out |= {id(n) for stmt in node.body for n in ast.walk(stmt) if isinstance(n, ast.Import | ast.ImportFrom)}
    return out


def _splits_imported(root: Path, skip: tuple[str, ...]) -> set[str]:
    """The python3-* stdlib splits the modules under root import (absolute imports, top level name;
    optional ones left out)."""
    imported = set()
    for path in root.rglob("*.py"):
        if any(part in skip for part in path.relative_to(root).parts):
            continue
        tree = ast.parse(path.read_text())
        optional = _optional_imports(tree)
        for node in ast.walk(tree):
            if id(node) in optional:
                continue
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    return {STDLIB_SPLITS[m] for m in imported if m in STDLIB_SPLITS}


@pytest.mark.parametrize(("makefile", "package", "module", "skip"), [
    ("openwrt/bandix/Makefile", "bandix", "bandix", ()),
    # falcon's wheel carries its benchmarks and test helpers; the app never imports them
    ("openwrt/lang/python/python-falcon/Makefile", "python3-falcon", "falcon", ("bench", "testing")),
    ("openwrt/lang/python/python-waitress/Makefile", "python3-waitress", "waitress", ()),
    # test_decode.py is left out of the package by its filespec
    ("openwrt/lang/python/python-dnslib/Makefile", "python3-dnslib", "dnslib", ("test_decode.py",)),
])
def test_depends_on_every_stdlib_split_it_imports(makefile: str, package: str, module: str,
                                                  skip: tuple[str, ...]) -> None:
    """Stands in for `make package/<name>/configure PY3=stdlib`: each split module the package's
    Python imports is in DEPENDS, and DEPENDS names no split it does not import (bandix from this
    checkout, the deps as the venv has the pinned version)."""
    from openwrt.ipkg import makefile as mk

    root = REPO / "bandix" if module == "bandix" else Path(importlib.import_module(module).__file__).parent
    fields = mk.parse(REPO / makefile).package_fields(package)
    declared = {d for d in mk.depends(fields["DEPENDS"]) if d in STDLIB_SPLITS.values()}
    assert declared == _splits_imported(root, skip)


def test_feed_makefiles_rebuild_and_upgrade_after_feeds_update() -> None:
    """Stands in for `./scripts/feeds update` + compile + `opkg upgrade`: package.mk puts the
    checksum of PKG_FILE_DEPENDS in the prepared stamp, so every source a Build/Prepare copies from
    outside the package directory must be listed; and the release grows with every commit."""
    from openwrt.ipkg import makefile

    mk = makefile.parse(REPO / "openwrt/bandix/Makefile")
    copied = set(re.findall(r"\$\(BANDIX_SRC\)/([\w.]+)", mk.defines["Build/Prepare"]))
    listed = set(re.findall(r"\$\(BANDIX_SRC\)/([\w.]+)", mk.variables["PKG_FILE_DEPENDS"]))
    assert copied and copied <= listed, copied - listed
    assert mk.var("PKG_RELEASE") == VERSION.rsplit("-r", 1)[1] and int(mk.var("PKG_RELEASE")) > 1
    luci = makefile.parse(REPO / "luci-app-bandix/Makefile")
    assert luci.variables["PKG_FILE_DEPENDS"] == "$(BANDIX_WEB_DIR)/charts.js"
    assert "+uclient-fetch" in luci.variables["LUCI_DEPENDS"].split()
