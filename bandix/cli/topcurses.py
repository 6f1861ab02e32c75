"""`bandix top` in a terminal: curses, keys to sort and filter.

Imported only when curses is there (OpenWrt's python3-ncurses) and both stdin
and stdout are a terminal; the table itself comes from top.py, so the screen
shows exactly the lines `--once` prints.
"""

from __future__ import annotations

import os
import time
from types import ModuleType
from typing import Any

from .top import COLUMNS, Api, View, status_line, table

HELP = "1-0 sort (again: reverse)  < > column  r reverse  / filter  q quit"
KEY_POLL_MS = 100  # keys are read this often between refreshes


class Screen:
    """The state of one curses session: last answer, view, filter being typed."""

    def __init__(self, curses: ModuleType, stdscr: Any, api: Api, view: View) -> None:
        self.curses, self.stdscr, self.api, self.view = curses, stdscr, api, view
        self.devices: list[dict] = []
        self.error: str | None = None
        self.typing: str | None = None  # the filter while it is typed ('/' ... Enter)

    def fetch(self) -> None:
        try:
            self.devices, self.error = self.api.devices(), None
        except OSError as exc:  # keep the last answer on screen, say why it is old
            self.error = str(exc)

    def draw(self) -> None:
        c, scr = self.curses, self.stdscr
        height, width = scr.getmaxyx()
        scr.erase()
        lines = table(self.devices, self.view, numbered=True)
        shown = len(lines) - 2
        self._put(0, status_line(self.api.url, self.devices, shown, self.view, self.error), width, c.A_BOLD)
        self._put(1, HELP, width, c.A_DIM)
        self._put(2, lines[0], width, c.A_REVERSE)
        body = lines[1:-1][:max(0, height - 5)]
        for i, line in enumerate(body):
            self._put(3 + i, line, width, c.A_NORMAL)
        self._put(3 + len(body), lines[-1], width, c.A_BOLD)
        if self.typing is not None:
            self._put(height - 1, f"filter: {self.typing}", width, c.A_NORMAL)
        scr.refresh()

    def _put(self, y: int, text: str, width: int, attr: int) -> None:
        height = self.stdscr.getmaxyx()[0]
        if 0 <= y < height and width > 1:
            try:
                self.stdscr.addnstr(y, 0, text, width - 1, attr)
            except self.curses.error:  # the bottom-right cell; a terminal shrinking meanwhile
                pass

    def key(self, ch: int) -> bool:
        """Handle one key; False to quit."""
        if ch < 0:
            return True
        if self.typing is not None:
            if ch in (10, 13, self.curses.KEY_ENTER):
                self.view.filter, self.typing = self.typing, None
            elif ch == 27:  # Esc: no filter at all
                self.view.filter, self.typing = "", None
            elif ch in (8, 127, self.curses.KEY_BACKSPACE):
                self.typing = self.typing[:-1]
                self.view.filter = self.typing
            elif 32 <= ch < 127:
                self.typing += chr(ch)
                self.view.filter = self.typing  # narrows as it is typed
            return True
        if ch in (ord("q"), ord("Q")):
            return False
        if ch == ord("/"):
            self.typing = self.view.filter
        elif ch == self.curses.KEY_RESIZE:
            self.curses.update_lines_cols()
        elif 0 <= ch < 256:
            self.view.key(chr(ch))
        return True


def run(curses: ModuleType, api: Api, view: View, count: int | None, interval: float) -> int:
    """The live view until q, Ctrl-C or `count` refreshes."""

    def loop(stdscr: Any) -> int:
        try:
            curses.curs_set(0)
        except curses.error:  # a terminal that cannot hide the cursor
            pass
        stdscr.timeout(KEY_POLL_MS)
        curses.set_escdelay(25)  # Esc ends the filter at once, not after curses' default second
        screen = Screen(curses, stdscr, api, view)
        shown = 0
        while True:
            screen.fetch()
            screen.draw()
            shown += 1
            due = time.monotonic() + interval
            while time.monotonic() < due:
                ch = stdscr.getch()
                if ch >= 0:
                    if not screen.key(ch):
                        return 0
                    screen.draw()  # a new order or filter shows at once, from the last answer
            if count is not None and shown >= count:
                return 0

    assert len(COLUMNS) <= 10  # one digit key per column
    # ncurses believes exported LINES/COLUMNS over the terminal itself (and never updates them
    # on a resize): an exported stale size would cut every line. Ours only, not the shell's.
    for name in ("LINES", "COLUMNS"):
        os.environ.pop(name, None)
    return curses.wrapper(loop)
