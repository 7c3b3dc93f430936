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

import logging
import posixpath
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kepu.safezip import READ_ERRORS, MemberError, check_member, open_member, open_zip

log = logging.getLogger(__name__)

_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_PKG_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}Relationship"

#: Largest part (sheet XML, shared strings, styles) of a submitted workbook.
MAX_PART_BYTES = 64 * 1024 * 1024
#: Largest shared-strings part: read-only mode still holds every shared string in memory.
MAX_SHARED_STRINGS_BYTES = 16 * 1024 * 1024


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


def _iter_elements(zf: zipfile.ZipFile, part: str, tags: set[str]) -> Iterator[Any]:
    """The wanted elements of one XML part, streamed; every passed element is dropped."""
    from lxml import etree

    try:
        info = zf.getinfo(part)
    except KeyError:
        return
    with open_member(zf, info, MAX_PART_BYTES) as fh:
        for _, elem in etree.iterparse(
            fh, events=("end",), resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False
        ):
            if elem.tag in tags:
                yield elem
            parent = elem.getparent()
            if parent is not None and elem.tag != f"{_MAIN}sheetData":
                elem.clear()
                while elem.getprevious() is not None:
                    del parent[0]


def _rels(zf: zipfile.ZipFile, part: str) -> dict[str, str]:
    folder, name = posixpath.split(part)
    rels_part = posixpath.join(folder, "_rels", name + ".rels")
    out: dict[str, str] = {}
    for rel in _iter_elements(zf, rels_part, {_PKG_REL}):
        if rel.get("TargetMode") == "External" or rel.get("Type", "").endswith("/hyperlink"):
            out[rel.get("Id", "")] = rel.get("Target", "")
    return out


def _ref_range(ref: str) -> tuple[int, int, int, int] | None:
    from openpyxl.utils.cell import range_boundaries

    try:
        min_col, min_row, max_col, max_row = range_boundaries(ref)
    except (ValueError, TypeError):
        return None
    if None in (min_col, min_row, max_col, max_row):
        return None
    return int(min_row), int(min_col), int(max_row), int(max_col)  # type: ignore[arg-type]


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
        wb = openpyxl.load_workbook(str(path), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises assorted errors on damaged files
        raise WorkbookError(
            f"无法打开工作簿（{type(exc).__name__}）", f"cannot open the workbook ({type(exc).__name__}: {exc})"
        ) from exc
    grids: list[SheetGrid] = []
    try:
        zf = wb._archive  # type: ignore[attr-defined]
        for ws in wb.worksheets[:max_sheets]:
            part = getattr(ws, "_worksheet_path", None)
            if part is None:
                continue
            grid = SheetGrid(str(ws.title), [])
            # One column past the cap tells whether anything was cut off there.
            for row in ws.iter_rows(max_col=max_cols + 1, values_only=True):
                if len(grid.rows) >= max_rows:
                    grid.rows_cut = grid.rows_cut or any(v is not None for v in row)
                    if grid.rows_cut:
                        break
                    continue
                if len(row) > max_cols:
                    grid.cols_cut = grid.cols_cut or any(v is not None for v in row[max_cols:])
                    row = row[:max_cols]
                grid.rows.append(list(row))
            rels = _rels(zf, part)
            for elem in _iter_elements(zf, part, {f"{_MAIN}mergeCell", f"{_MAIN}hyperlink"}):
                rng = _ref_range(elem.get("ref", ""))
                if rng is None or rng[0] > max_rows or rng[1] > max_cols:
                    continue
                if elem.tag == f"{_MAIN}mergeCell":
                    grid.merged.append(rng)
                else:
                    target = rels.get(elem.get(_REL_ID, "")) or elem.get("location")
                    if target:
                        grid.links[(rng[0], rng[1])] = target
            grids.append(grid)
    except WorkbookError:
        raise
    except MemberError as exc:
        raise WorkbookError(exc.reason_zh, exc.reason_en) from exc
    except (*READ_ERRORS, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise WorkbookError(
            f"工作表已损坏（{type(exc).__name__}）", f"a worksheet is damaged ({type(exc).__name__}: {exc})"
        ) from exc
    except Exception as exc:  # lxml's XMLSyntaxError and openpyxl's own errors on a broken sheet
        raise WorkbookError(
            f"工作表已损坏（{type(exc).__name__}）", f"a worksheet is damaged ({type(exc).__name__}: {exc})"
        ) from exc
    finally:
        wb.close()
    return grids
