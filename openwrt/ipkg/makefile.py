"""Just enough of an OpenWrt package Makefile to package it: variables,
`define` blocks and install lines. The feed Makefile stays the one place that
says what the package is; the builder reads it instead of repeating it.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

_ASSIGN = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s*(:=|\?=|\+=|=)\s*(.*)$")
_REF = re.compile(r"\$\(([A-Za-z0-9_]+)\)")
_INSTALL = re.compile(r"\$\((INSTALL_BIN|INSTALL_DATA|INSTALL_CONF)\)\s+(\S+)\s+\$\(1\)(\S+)")
_INSTALL_DIR = re.compile(r"\$\(INSTALL_DIR\)((?:\s+\$\(1\)\S*)+)")
_SHELL = re.compile(r"\$\(shell ([^()]*)\)")
MODES = {"INSTALL_BIN": 0o755, "INSTALL_DATA": 0o644, "INSTALL_CONF": 0o600}

# What include/bpf.mk defines and the packages here use.
EXTERNAL = {"BPF_DEPENDS": "@HAS_BPF_TOOLCHAIN"}


@dataclass
class Install:
    mode: int
    source: str  # as written, e.g. $(PKG_BUILD_DIR)/files/bandix.init
    dest: str  # absolute path in the package


@dataclass
class Makefile:
    path: Path
    variables: dict[str, str] = field(default_factory=dict)
    defines: dict[str, str] = field(default_factory=dict)

    def expand(self, text: str) -> str:
        """Replace $(VAR) with known variables (unknown ones stay as they are), then run
        each $(shell ...) in the Makefile's directory as make does."""
        known = {**EXTERNAL, "CURDIR": str(self.path.parent), **self.variables}
        for _ in range(8):  # nested references, e.g. BANDIX_SRC inside a $(shell ...)
            expanded = _REF.sub(lambda m: known.get(m.group(1), m.group(0)), text)
            if expanded == text:
                break
            text = expanded
        return _SHELL.sub(lambda m: _run(m.group(1), self.path.parent), text)

    def var(self, name: str, default: str | None = None) -> str:
        if name in self.variables:
            return self.expand(self.variables[name])
        if default is None:
            raise KeyError(f"{self.path}: {name} is not set")
        return default

    def package_fields(self, package: str) -> dict[str, str]:
        """The assignments inside `define Package/<name>`."""
        out: dict[str, str] = {}
        for line in _logical_lines(self.defines.get(f"Package/{package}", "")):
            m = _ASSIGN.match(line)
            if m:
                out[m.group(1)] = self.expand(m.group(3).strip())
        return out

    def text_block(self, name: str) -> str:
        return "\n".join(line.strip() for line in self.defines.get(name, "").splitlines()).strip()

    def installs(self, block: str) -> tuple[list[str], list[Install]]:
        """Directories and files an install block creates, in order."""
        dirs: list[str] = []
        files: list[Install] = []
        for line in _logical_lines(self.defines.get(block, "")):
            d = _INSTALL_DIR.search(line)
            if d:
                dirs += [p.removeprefix("$(1)") or "/" for p in d.group(1).split()]
            m = _INSTALL.search(line)
            if m:
                dest = m.group(3)
                if dest.endswith("/"):
                    dest += m.group(2).rsplit("/", 1)[-1]
                files.append(Install(MODES[m.group(1)], m.group(2), dest))
        return dirs, files


def _run(command: str, cwd: Path) -> str:
    """$(shell ...): stdout with newlines as spaces, trailing ones dropped."""
    done = subprocess.run(["/bin/sh", "-c", command], cwd=cwd, capture_output=True, text=True)
    return done.stdout.strip().replace("\n", " ")


def _logical_lines(text: str) -> list[str]:
    return re.sub(r"\\\n", " ", text).splitlines()


def parse(path: Path) -> Makefile:
    mk = Makefile(Path(path))
    block: list[str] | None = None
    name = ""
    for line in _logical_lines(Path(path).read_text(encoding="utf-8")):
        stripped = line.strip()
        if block is not None:
            if stripped == "endef":
                mk.defines[name] = "\n".join(block)
                block = None
            else:
                block.append(line)
            continue
        if stripped.startswith("define "):
            name, block = stripped.split(None, 1)[1], []
            continue
        if stripped.startswith("#") or not stripped:
            continue
        m = _ASSIGN.match(line)
        if m:
            var, op, value = m.group(1), m.group(2), m.group(3).strip()
            if op == "+=" and var in mk.variables:
                mk.variables[var] += " " + value
            elif op != "?=" or var not in mk.variables:
                mk.variables[var] = value
    return mk


def depends(field_value: str) -> list[str]:
    """A DEPENDS field as the control file lists it: libc first (package-defaults.mk),
    build-time conditions (@...) dropped, `+` removed."""
    out = ["libc"]
    for word in field_value.split():
        if word.startswith("@"):
            continue
        name = word.lstrip("+")
        if ":" in name or "$(" in name:
            raise ValueError(f"conditional or unexpanded dependency {word!r} is not supported here")
        if name not in out:
            out.append(name)
    return out
