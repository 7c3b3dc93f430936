"""Workbooks whose bytes depend on their content only.

openpyxl stamps the save time into ``docProps/core.xml`` and every zip member; the same content saved
twice therefore differs. :func:`workbook_bytes` writes fixed times instead, so a rerun with the same
inputs gives a byte-identical file (and the store skips the upload).
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openpyxl import Workbook
    from openpyxl.worksheet.worksheet import Worksheet

#: Zip member time: the earliest a zip file can hold.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_CORE_TIMES = re.compile(rb"(<dcterms:(created|modified)[^>]*>)[^<]*(</dcterms:\2>)")

CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def workbook_bytes(wb: Workbook, when: datetime) -> bytes:
    """The workbook as XLSX bytes with ``when`` as its creation and modification time everywhere."""
    from kepu.cells import neutralise_workbook

    neutralise_workbook(wb)
    stamp = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    wb.properties.creator = "kepu"
    wb.properties.lastModifiedBy = "kepu"
    raw = io.BytesIO()
    wb.save(raw)
    out = io.BytesIO()
    with zipfile.ZipFile(raw) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = _CORE_TIMES.sub(lambda m: m.group(1) + stamp + m.group(3), data)
            member = zipfile.ZipInfo(info.filename, date_time=_ZIP_TIME)
            member.compress_type = zipfile.ZIP_DEFLATED
            member.external_attr = info.external_attr
            dst.writestr(member, data)
    return out.getvalue()


def write_table(
    ws: Worksheet,
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    widths: Sequence[int],
    *,
    start_row: int = 1,
) -> None:
    """A bold header row, the rows, column widths, frozen header and a filter (the intake exports' look)."""
    from openpyxl.styles import Alignment, Font

    from kepu.cells import safe_cell

    for col, text in enumerate(headers, start=1):
        cell = ws.cell(row=start_row, column=col, value=text)
        cell.font = Font(bold=True)
    r = start_row
    for r, row in enumerate(rows, start=start_row + 1):
        for col, value in enumerate(row, start=1):
            ws.cell(row=r, column=col, value=safe_cell(value)).alignment = Alignment(wrap_text=True, vertical="top")
    for i, w in enumerate(widths, start=1):
        ws.column_dimensions[ws.cell(row=start_row, column=i).column_letter].width = w
    ws.freeze_panes = ws.cell(row=start_row + 1, column=1).coordinate
    if r > start_row:
        ws.auto_filter.ref = f"A{start_row}:{ws.cell(row=r, column=len(headers)).coordinate}"
