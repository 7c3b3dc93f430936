"""Plain text tables for the command line that keep Chinese (double-width) text aligned."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _clip(text: str, width: int) -> str:
    out, used = "", 0
    for ch in text:
        w = _width(ch)
        if used + w > width - 1 and used + w > width:
            return out + "…"
        out, used = out + ch, used + w
    return out


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]], max_width: int = 44) -> str:
    """A plain text table that keeps Chinese (double-width) text aligned."""
    cells = [[_clip(str(c), max_width) for c in row] for row in [headers, *rows]]
    widths = [max(_width(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        lines.append("  ".join(c + " " * (widths[i] - _width(c)) for i, c in enumerate(row)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
