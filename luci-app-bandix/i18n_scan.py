#!/usr/bin/env python3
"""Write po/templates/bandix.pot from the app's sources, as LuCI's build/i18n-scan.pl does.

Strings: the literal first argument of _() in the JS files, "title" in menu.d
JSON and "description" in acl.d JSON. Entries are sorted by msgid, each with
the places it comes from (paths from the repository root, as in LuCI's
templates). Usage: python3 luci-app-bandix/i18n_scan.py > luci-app-bandix/po/templates/bandix.pot
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

APP = Path(__file__).resolve().parent
# _( 'text' ) or _( "text" ): a string literal with escapes, the whole first argument.
CALL = re.compile(r"""(?<![\w$.])_\(\s*('(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")\s*[,)]""")
JSON_KEYS = {"menu.d": "title", "acl.d": "description"}


def _js_string(literal: str) -> str:
    """The value of a JS string literal (the escapes LuCI's sources use)."""
    body = literal[1:-1]
    return re.sub(r"\\(u[0-9a-fA-F]{4}|.)", lambda m: chr(int(m[1][1:], 16)) if m[1][0] == "u" and len(m[1]) == 5
                  else {"n": "\n", "t": "\t"}.get(m[1], m[1]), body)


def scan_js(path: Path) -> list[tuple[str, int]]:
    text = path.read_text()
    return [(_js_string(m[1]), text.count("\n", 0, m.start()) + 1) for m in CALL.finditer(text)]


def scan_json(path: Path, key: str) -> list[tuple[str, int]]:
    lines = path.read_text().splitlines()
    found = []
    for i, line in enumerate(lines, 1):
        m = re.match(rf'\s*"{key}"\s*:\s*("(?:[^"\\]|\\.)*")', line)
        if m:
            found.append((json.loads(m[1]), i))
    return found


def collect(app: Path = APP) -> dict[str, list[str]]:
    """msgid -> places ("path:line")."""
    where: dict[str, list[str]] = {}
    root = app.parent
    for path in sorted(app.rglob("*")):
        if path.suffix == ".js" and "htdocs" in path.parts:
            found = scan_js(path)
        elif path.suffix == ".json" and path.parent.name in JSON_KEYS:
            found = scan_json(path, JSON_KEYS[path.parent.name])
        else:
            continue
        for msgid, line in found:
            if msgid:
                where.setdefault(msgid, []).append(f"{path.relative_to(root)}:{line}")
    return where


def _po_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t") + '"'


def render(where: dict[str, list[str]]) -> str:
    out = ['msgid ""', 'msgstr "Content-Type: text/plain; charset=UTF-8"', ""]
    for msgid in sorted(where):
        out += [f"#: {place}" for place in where[msgid]]
        out += [f"msgid {_po_string(msgid)}", 'msgstr ""', ""]
    return "\n".join(out)


if __name__ == "__main__":
    sys.stdout.write(render(collect()))
