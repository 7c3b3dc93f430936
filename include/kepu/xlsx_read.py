"""Reading a submitted workbook (an application form, a summary sheet) in bounded memory.

openpyxl's normal mode builds every cell of every sheet as an object: a sheet formatted down a
million rows, or a hundred thousand real rows, costs gigabytes. Here sheets are streamed in
read-only mode and cut at a row and column cap; merged ranges and hyperlinks, which read-only
worksheets do not expose, are collected by a second streaming pass over the sheet's XML that
keeps no element it has passed. Before anything is parsed, every part's declared size is checked
(zipfile never inflates more than a member declares), and encrypted parts or parts compressed
with a method Python lacks are refused by :mod:`kepu.safezip`.
"""

from __future__ import annotations

import html
import logging
import posixpath
import re
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kepu.safezip import MemberError, check_member, open_member, open_zip, read_member

log = logging.getLogger(__name__)

_END_OF_DATA = re.compile(rb"</(?:\w+:)?sheetData\s*>|<(?:\w+:)?sheetData\s*/>")
_DIMENSION = re.compile(rb'<(?:\w+:)?dimension\s+ref="([A-Za-z0-9:$]+)"')
_ELEMENT = re.compile(rb"<(?:\w+:)?(mergeCell|hyperlink)\b([^>]*)>")
_RELATIONSHIP = re.compile(rb"<(?:\w+:)?Relationship\b([^>]*)>")
_ATTR = re.compile(rb'([\w:]+)\s*=\s*"([^"]*)"')
#: Merged ranges and hyperlinks of a form or a summary sheet fit in far less.
_MAX_TAIL_BYTES = 8 * 1024 * 1024

#: Largest part (sheet XML, shared strings, styles) of a submitted workbook.
MAX_PART_BYTES = 64 * 1024 * 1024
#: Largest shared-strings part: read-only mode still holds every shared string in memory.
MAX_SHARED_STRINGS_BYTES = 16 * 1024 * 1024
#: Rows looked at past the row cap to tell whether content was cut off.
_SCAN_PAST_CAP = 1000


class WorkbookError(Exception):
    """The workbook cannot be read; ``reason_zh``/``reason_en`` say why."""

    def __init__(self, reason_zh: str, reason_en: str) -> None:
        self.reason_zh = reason_zh
        self.reason_en = reason_en
        super().__init__(f"{reason_zh} / {reason_en}")


@dataclass
class SheetGrid:
    title: str
    rows: list[list[Any]]
    #: (min_row, min_col, max_row, max_col), 1-based, as Excel writes them.
    merged: list[tuple[int, int, int, int]] = field(default_factory=list)
    #: (row, column) 1-based → hyperlink target.
    links: dict[tuple[int, int], str] = field(default_factory=dict)
    rows_cut: bool = False
    cols_cut: bool = False


def _check_parts(zf: zipfile.ZipFile) -> None:
    for info in zf.infolist():
        cap = MAX_SHARED_STRINGS_BYTES if info.filename.lower().endswith("sharedstrings.xml") else MAX_PART_BYTES
        if info.filename.startswith("xl/media/"):
            continue  # pictures are never read
        try:
            check_member(info, cap)
        except MemberError as exc:
            raise WorkbookError(f"部件 {exc.name} {exc.reason_zh}", f"part {exc.name}: {exc.reason_en}") from exc


def _tail_after_sheet_data(zf: zipfile.ZipFile, part: str) -> bytes:
    """The bytes of a sheet part after its cell data, where merged ranges and hyperlinks are.

    The cell data is streamed past with a byte search, not parsed: it can be a million rows.
    """
    try:
        info = zf.getinfo(part)
    except KeyError:
        return b""
    keep = b""
    found = False
    with open_member(zf, info, MAX_PART_BYTES) as fh:
        while chunk := fh.read(1 << 20):
            buf = keep + chunk
            if not found:
                m = _END_OF_DATA.search(buf)
                if m is None:
                    keep = buf[-64:]
                    continue
                found = True
                buf = buf[m.end() :]
            keep = buf if len(buf) <= _MAX_TAIL_BYTES else buf[:_MAX_TAIL_BYTES]
            if len(buf) > _MAX_TAIL_BYTES:
                break
    return keep if found else b""


def _attrs(text: bytes) -> dict[str, str]:
    return {k.decode(): html.unescape(v.decode("utf-8", "replace")) for k, v in _ATTR.findall(text)}


def _rels(zf: zipfile.ZipFile, part: str) -> dict[str, str]:
    folder, name = posixpath.split(part)
    rels_part = posixpath.join(folder, "_rels", name + ".rels")
    try:
        data = read_member(zf, rels_part, _MAX_TAIL_BYTES)
    except KeyError:
        return {}
    out: dict[str, str] = {}
    for m in _RELATIONSHIP.finditer(data):
        a = _attrs(m.group(1))
        if a.get("TargetMode") == "External" or a.get("Type", "").endswith("/hyperlink"):
            out[a.get("Id", "")] = a.get("Target", "")
    return out


#: Whether workbooks opened in this thread (or task) now read only a sheet part's head for its <dimension>.
_BOUNDED: ContextVar[bool] = ContextVar("kepu_bounded_dimensions", default=False)
_INSTALL = threading.Lock()
_installed = False


def _install_bounded_get_size() -> None:
    """Put :func:`bounded_dimensions`' reading of the size in openpyxl, once: outside the block it reads as openpyxl
    does. Replacing the method for the block's length only would race: a block that ends in one thread while
    another is still opening a workbook would put openpyxl's back under it, or leave the replacement for good."""
    global _installed
    from openpyxl.utils.cell import range_boundaries
    from openpyxl.worksheet._read_only import ReadOnlyWorksheet

    with _INSTALL:
        if _installed:
            return
        original = ReadOnlyWorksheet._get_size

        def _get_size(self: Any) -> None:
            if not _BOUNDED.get():
                original(self)
                return
            with self._get_source() as src:
                head = src.read(1 << 16)
            m = _DIMENSION.search(head)
            if m is None:
                return
            try:
                dims = range_boundaries(m.group(1).decode())
            except (ValueError, TypeError):
                return
            if None not in dims:
                self._min_column, self._min_row, self._max_column, self._max_row = dims

        ReadOnlyWorksheet._get_size = _get_size
        _installed = True


@contextmanager
def bounded_dimensions() -> Iterator[None]:
    """Workbooks opened read-only inside this block (in this thread) look for each sheet's <dimension> in the part's
    first bytes (the element comes before the cell data). openpyxl parses the whole sheet when the element is
    missing, which a streaming writer leaves out: a page of a million rows is read to its end before its first row
    is asked for."""
    _install_bounded_get_size()
    token = _BOUNDED.set(True)
    try:
        yield
    finally:
        _BOUNDED.reset(token)


def _ref_range(ref: str) -> tuple[int, int, int, int] | None:
    from openpyxl.utils.cell import range_boundaries

    try:
        min_col, min_row, max_col, max_row = range_boundaries(ref)
    except (ValueError, TypeError):
        return None
    if None in (min_col, min_row, max_col, max_row):
        return None
    return int(min_row), int(min_col), int(max_row), int(max_col)


def read_sheets(path: Path, *, max_rows: int, max_cols: int, max_sheets: int = 50) -> list[SheetGrid]:
    """Every worksheet of ``path`` as values, at most ``max_rows`` × ``max_cols`` each.

    Raises :class:`WorkbookError` when the file is no readable workbook (random bytes, a truncated
    zip, broken XML, no workbook part, an oversized or encrypted part).
    """
    import openpyxl

    try:
        with open_zip(path) as zf:
            _check_parts(zf)
            if "xl/workbook.xml" not in zf.namelist():
                raise WorkbookError(
                    "压缩包中没有工作簿（xl/workbook.xml）", "the zip holds no workbook (xl/workbook.xml)"
                )
    except MemberError as exc:
        raise WorkbookError(exc.reason_zh, exc.reason_en) from exc
    try:
        with bounded_dimensions():
            wb = openpyxl.load_workbook(str(path), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises assorted errors on damaged files
        raise WorkbookError(
            f"无法打开工作簿（{type(exc).__name__}）", f"cannot open the workbook ({type(exc).__name__}: {exc})"
        ) from exc
    grids: list[SheetGrid] = []
    try:
        zf = wb._archive
        for ws in wb.worksheets[:max_sheets]:
            part = getattr(ws, "_worksheet_path", None)
            if part is None:
                continue
            grid = SheetGrid(str(ws.title), [])
            # One column past the cap tells whether anything was cut off there.
            past = 0
            for row in ws.iter_rows(max_col=max_cols + 1, values_only=True):
                if len(grid.rows) >= max_rows:
                    # Empty rows past the cap (formatting applied to whole columns) are not content.
                    past += 1
                    grid.rows_cut = any(v is not None and str(v).strip() for v in row)
                    if grid.rows_cut or past >= _SCAN_PAST_CAP:
                        break
                    continue
                if len(row) > max_cols:
                    grid.cols_cut = grid.cols_cut or any(v is not None for v in row[max_cols:])
                    row = row[:max_cols]
                grid.rows.append(list(row))
            tail = _tail_after_sheet_data(zf, part)
            rels = _rels(zf, part) if b"hyperlink" in tail else {}
            for m in _ELEMENT.finditer(tail):
                a = _attrs(m.group(2))
                rng = _ref_range(a.get("ref", ""))
                if rng is None or rng[0] > max_rows or rng[1] > max_cols:
                    continue
                if m.group(1) == b"mergeCell":
                    grid.merged.append(rng)
                else:
                    rid = next((v for k, v in a.items() if k.endswith(":id") or k == "id"), "")
                    target = rels.get(rid) or a.get("location")
                    if target:
                        grid.links[(rng[0], rng[1])] = target
            grids.append(grid)
    except WorkbookError:
        raise
    except MemberError as exc:
        raise WorkbookError(exc.reason_zh, exc.reason_en) from exc
    except Exception as exc:  # zip and inflate errors, lxml's XMLSyntaxError, openpyxl's errors on a broken sheet
        raise WorkbookError(
            f"工作表已损坏（{type(exc).__name__}）", f"a worksheet is damaged ({type(exc).__name__}: {exc})"
        ) from exc
    finally:
        wb.close()
    return grids
