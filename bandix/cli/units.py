"""Human units for the report tables."""

from __future__ import annotations


def human_bytes(n: int | float) -> str:
    """1536 → '1.5 KB' (powers of 1024, as the dashboard shows them)."""
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(value) < 1024 or unit == "TB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
