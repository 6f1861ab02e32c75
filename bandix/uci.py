"""Read and write UCI files (/etc/config/*) the way libuci does, keeping what
we do not touch: comments, blank lines, order, quoting and unknown options.

Grammar: statements `package NAME`, `config TYPE [NAME]`, `option NAME VALUE`
and `list NAME VALUE`, one per line. A word is any run of unquoted text,
'single-quoted' text (no escapes), "double-quoted" text (backslash escapes)
and backslash-escaped characters, concatenated; quoted text may span lines.
An unquoted `#` starts a comment up to the end of the line.

Statements we change are rendered the way `uci export` writes them; all
others keep their original text. Writes replace the file atomically.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

_NAME = re.compile(r"[A-Za-z0-9_-]+")
_KEYWORDS = {"package": (1, 1), "config": (1, 2), "option": (2, 2), "list": (2, 2)}


class UciSyntaxError(ValueError):
    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")


@dataclass
class Statement:
    keyword: str
    args: list[str]
    text: str | None = None  # the original source, including its newline; None once changed

    def render(self) -> str:
        if self.text is not None:
            return self.text
        if self.keyword == "config":
            return f"config {self.args[0]}" + (f" {quote(self.args[1])}" if len(self.args) > 1 else "") + "\n"
        if self.keyword == "package":
            return f"package {quote(self.args[0])}\n"
        return f"\t{self.keyword} {self.args[0]} {quote(self.args[1])}\n"


@dataclass
class Section:
    type: str
    name: str | None
    header: Statement
    body: list[Statement | str] = field(default_factory=list)  # statements, and raw comment/blank text

    def _statements(self, option: str) -> list[Statement]:
        return [s for s in self.body if isinstance(s, Statement) and s.args[0] == option]

    def get(self, option: str) -> str | None:
        """An option's value; a list reads as its values joined by spaces."""
        found = self._statements(option)
        if not found:
            return None
        return " ".join(s.args[1] for s in found) if found[0].keyword == "list" else found[-1].args[1]

    def get_list(self, option: str) -> list[str]:
        """A list's values, or an option's value split on whitespace (uci accepts both)."""
        found = self._statements(option)
        if found and found[0].keyword == "option":
            return found[-1].args[1].split()
        return [s.args[1] for s in found]

    def options(self) -> dict[str, str]:
        return {s.args[0]: self.get(s.args[0]) or "" for s in self.body if isinstance(s, Statement)}

    def set(self, option: str, value: str) -> None:
        found = self._statements(option)
        if len(found) == 1 and found[0].keyword == "option":
            if found[0].args[1] != value:
                found[0].args[1] = value
                found[0].text = None
            return
        self._replace(option, [Statement("option", [option, value])])

    def set_list(self, option: str, values: list[str]) -> None:
        found = self._statements(option)
        if [s.args[1] for s in found] == values and all(s.keyword == "list" for s in found):
            return
        self._replace(option, [Statement("list", [option, v]) for v in values])

    def delete(self, option: str) -> None:
        self.body = [s for s in self.body if not (isinstance(s, Statement) and s.args[0] == option)]

    def _replace(self, option: str, statements: list[Statement]) -> None:
        positions = [i for i, s in enumerate(self.body) if isinstance(s, Statement) and s.args[0] == option]
        if positions:
            at = positions[0]
            self.body = [s for i, s in enumerate(self.body) if i not in positions[1:]]
            self.body[at : at + 1] = statements
            return
        # After the last statement, before the blank lines that separate sections.
        last = max((i for i, s in enumerate(self.body) if isinstance(s, Statement)), default=-1)
        self.body[last + 1 : last + 1] = statements


@dataclass
class UciFile:
    preamble: list[Statement | str] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)

    def by_type(self, type_: str) -> list[Section]:
        return [s for s in self.sections if s.type == type_]

    def named(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.name == name), None)

    def add(self, type_: str, name: str | None = None) -> Section:
        """A new section at the end, after a blank line."""
        text = self.dumps()
        if text and not text.endswith("\n\n"):
            tail = self.sections[-1].body if self.sections else self.preamble
            tail.append("\n" if text.endswith("\n") else "\n\n")
        section = Section(type_, name, Statement("config", [type_] + ([name] if name else [])))
        self.sections.append(section)
        return section

    def remove(self, section: Section) -> None:
        self.sections.remove(section)

    def dumps(self) -> str:
        out = [s.render() if isinstance(s, Statement) else s for s in self.preamble]
        for section in self.sections:
            out.append(section.header.render())
            out.extend(s.render() if isinstance(s, Statement) else s for s in section.body)
        return "".join(out)


def quote(value: str) -> str:
    """As `uci export` writes a value: single quotes, a ' inside as '\\''."""
    return "'" + value.replace("'", "'\\''") + "'"


def parse(text: str, path: str = "<uci>") -> UciFile:
    result = UciFile()
    target: list[Statement | str] = result.preamble
    pos, line = 0, 1
    while pos < len(text):
        start, start_line = pos, line
        words, pos, line = _statement_words(text, pos, line, path)
        source = text[start:pos]
        if not words:
            if target and isinstance(target[-1], str):
                target[-1] += source
            else:
                target.append(source)
            continue
        keyword, args = words[0], words[1:]
        if keyword not in _KEYWORDS:
            raise UciSyntaxError(path, start_line, f"unknown statement {keyword!r}")
        lo, hi = _KEYWORDS[keyword]
        if not lo <= len(args) <= hi:
            raise UciSyntaxError(path, start_line, f"'{keyword}' takes {lo if lo == hi else f'{lo} or {hi}'} "
                                                   f"argument{'s' if hi > 1 else ''}")
        stmt = Statement(keyword, args, source)
        if keyword in ("option", "list") and not _NAME.fullmatch(args[0]):
            raise UciSyntaxError(path, start_line, f"invalid option name {args[0]!r}")
        if keyword == "config":
            if not _NAME.fullmatch(args[0]) or (len(args) == 2 and not _NAME.fullmatch(args[1])):
                raise UciSyntaxError(path, start_line, "invalid section type or name")
            section = Section(args[0], args[1] if len(args) == 2 else None, stmt)
            result.sections.append(section)
            target = section.body
        elif keyword in ("option", "list"):
            if not result.sections:
                raise UciSyntaxError(path, start_line, f"'{keyword}' outside a section")
            target.append(stmt)
        else:
            target.append(stmt)
    return result


def _statement_words(text: str, pos: int, line: int, path: str) -> tuple[list[str], int, int]:
    """The words of the statement starting at pos, up to and including its newline."""
    words: list[str] = []
    word: list[str] | None = None
    n = len(text)
    while pos < n:
        c = text[pos]
        if c == "\n":
            pos += 1
            line += 1
            break
        if c in " \t\r":
            if word is not None:
                words.append("".join(word))
                word = None
            pos += 1
        elif c == "#":
            end = text.find("\n", pos)
            pos = n if end < 0 else end
        elif c == "\\":
            if pos + 1 >= n or text[pos + 1] == "\n":
                raise UciSyntaxError(path, line, "backslash at the end of a line")
            word = (word or []) + [text[pos + 1]]
            pos += 2
        elif c in "'\"":
            end = pos + 1
            chars: list[str] = []
            while True:
                if end >= n:
                    raise UciSyntaxError(path, line, f"unterminated {c} quote")
                ch = text[end]
                if ch == c:
                    break
                if ch == "\\" and c == '"' and end + 1 < n:
                    end += 1
                    ch = text[end]
                if ch == "\n":
                    line += 1
                chars.append(ch)
                end += 1
            word = (word or []) + chars
            pos = end + 1
        else:
            word = (word or []) + [c]
            pos += 1
    if word is not None:
        words.append("".join(word))
    return words, pos, line


def load(path: Path) -> UciFile:
    """Parse a file; a missing file is an empty one."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return UciFile()
    return parse(text, str(path))


def save(path: Path, uci: UciFile) -> None:
    """Replace the file atomically, keeping its permissions."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(uci.dumps())
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
