"""Making text that came from submitters safe to put in a spreadsheet, a CSV file or a report.

Every writer of a workbook or CSV file (eligibility export, score sheets, decision sheets, the
certificate register, publication reports) passes its values through :func:`safe_cell`:

* control characters that XML 1.0 cannot hold (``\\x00``–``\\x08``, ``\\x0b``, ``\\x0c``,
  ``\\x0e``–``\\x1f``, ``\\x7f``) are replaced by U+FFFD, so openpyxl never raises
  ``IllegalCharacterError`` and the damage stays visible;
* a text starting with ``=`` ``+`` ``-`` ``@``, a tab or a carriage return (also their full-width
  forms ``＝＋－＠``, which Excel and WPS treat alike) gets a leading apostrophe, as the OWASP
  guidance on CSV injection advises: the cell shows the text and never runs it as a formula.

Numbers, dates and booleans pass unchanged: only text can carry a formula.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openpyxl import Workbook

#: What XML 1.0 forbids (and DEL, which no title needs); tab, line feed and carriage return stay.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")
REPLACEMENT = "\ufffd"


def clean_text(text: str) -> str:
    """``text`` with its control characters replaced (for HTML and logs, where formulas mean nothing)."""
    return _CONTROL.sub(REPLACEMENT, text)


def safe_cell(value: Any) -> Any:
    """A value that a spreadsheet shows as written: no live formula, no illegal character."""
    if not isinstance(value, str):
        return value
    text = _CONTROL.sub(REPLACEMENT, value)
    if text.startswith(_FORMULA_START):
        text = "'" + text
    return text


def safe_row(values: Iterable[Any]) -> list[Any]:
    return [safe_cell(v) for v in values]


def neutralise_workbook(wb: Workbook) -> int:
    """Neutralise every text cell of ``wb`` in place (a net under writers); return how many changed.

    Writers pass values through :func:`safe_cell` before they set them (openpyxl refuses an illegal
    character at assignment); this catches a formula that was set some other way.
    """
    changed = 0
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                value = cell.value
                if isinstance(value, str):
                    safe = safe_cell(value)
                    if safe != value:
                        cell.value = safe
                        changed += 1
    return changed
