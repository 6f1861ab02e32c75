"""MAC address parsing: any case, ':' or '-' separated, stored as aa:bb:cc:dd:ee:ff."""

from __future__ import annotations

import re

_MAC = re.compile(r"[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}")


def normalize_mac(text: str) -> str:
    """Return the canonical form or raise ValueError."""
    if not isinstance(text, str) or not _MAC.fullmatch(text):
        raise ValueError(f"{text!r} is not a MAC address (expected aa:bb:cc:dd:ee:ff)")
    return text.lower().replace("-", ":")
