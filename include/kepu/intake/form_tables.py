"""Word and Excel files read as grids of cells (:mod:`kepu.intake.form_fields`); anything else is refused.

Only what the forms need is read, under caps: the main part of a .docx, the first rows and columns of each sheet
of an .xlsx. Old binary Word/WPS files, PDFs, pictures and damaged files raise :class:`MaterialError`
``M-UNREADABLE``, judged by content, not by name.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

from kepu.errors import MaterialError
from kepu.intake.form_fields import Cell, Segment, clean_value, find_labels, label_key
from kepu.safezip import MemberError, read_member

#: What a form file is, judged by its content.
FormFormat = Literal["docx", "xlsx"]

# --- Word ---------------------------------------------------------------------------------------------

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
_A_BLIP = "{http://schemas.openxmlformats.org/drawingml/2006/main}blip"
_V_IMAGEDATA = "{urn:schemas-microsoft-com:vml}imagedata"
_SKIP_TEXT = {_MC_FALLBACK, _W + "del", _W + "instrText", _W + "delText", _W + "tbl"}


def _text_of(el: Any) -> str:
    out: list[str] = []

    def walk(node: Any) -> None:
        for ch in node:
            tag = ch.tag
            if not isinstance(tag, str) or tag in _SKIP_TEXT:
                continue
            if tag == _W + "t":
                out.append(ch.text or "")
            elif tag == _W + "tab":
                out.append("\t")
            elif tag in (_W + "br", _W + "cr"):
                out.append("\n")
            elif tag == _W + "p":  # a paragraph inside a text box
                walk(ch)
                out.append("\n")
            else:
                walk(ch)

    walk(el)
    return "".join(out)


def count_images(el: Any) -> int:
    """Pictures under ``el``; the VML copy Word keeps in ``mc:Fallback`` is not counted twice."""
    n = sum(1 for _ in el.iter(_A_BLIP, _V_IMAGEDATA))
    if n:
        for fallback in el.iter(_MC_FALLBACK):
            # Only the outermost fallback counts: what is inside it was never counted.
            if not any(a.tag == _MC_FALLBACK for a in fallback.iterancestors() if a is not el):
                n -= sum(1 for _ in fallback.iter(_A_BLIP, _V_IMAGEDATA))
    return n


def _blocks(parent: Any) -> Iterator[Any]:
    """Paragraphs and tables of a body or cell, looking through content controls (w:sdt)."""
    for ch in parent:
        if ch.tag == _W + "sdt":
            for content in ch.iter(_W + "sdtContent"):
                yield from _blocks(content)
                break
        elif ch.tag in (_W + "p", _W + "tbl"):
            yield ch


def _children(parent: Any, tag: str) -> Iterator[Any]:
    for ch in parent:
        if ch.tag == tag:
            yield ch
        elif ch.tag in (_W + "sdt", _W + "customXml"):
            for content in ch.iter(_W + "sdtContent"):
                yield from _children(content, tag)
                break
            else:
                yield from _children(ch, tag)


def _int_attr(el: Any, path: str, default: int) -> int:
    node = el.find(path)
    if node is None:
        return default
    try:
        return int(node.get(_W + "val", default))
    except ValueError:
        return default


def _table_segments(tbl: Any, context: str, vocab: dict[str, str]) -> list[Segment]:
    """The table as a grid, and each nested table that holds labels as a grid of its own."""
    rows: list[list[Cell]] = []
    nested: list[Segment] = []
    above: dict[int, Cell] = {}
    for tr in _children(tbl, _W + "tr"):
        col = _int_attr(tr, f"{_W}trPr/{_W}gridBefore", 0)
        row: list[Cell] = []
        here: dict[int, Cell] = {}
        for tc in _children(tr, _W + "tc"):
            span = max(1, _int_attr(tc, f"{_W}tcPr/{_W}gridSpan", 1))
            vmerge = tc.find(f"{_W}tcPr/{_W}vMerge")
            # w:vMerge without a value, or with "continue", continues the cell above.
            continues = vmerge is not None and vmerge.get(_W + "val", "continue") == "continue"
            cell = above.get(col) if continues else None
            if cell is None:
                parts: list[str] = []
                for block in _blocks(tc):
                    if block.tag == _W + "p":
                        parts.append(_text_of(block))
                        continue
                    inner = _table_segments(block, "", vocab)
                    if any(find_labels(s.rows, vocab) for s in inner):
                        nested.extend(inner)
                    else:
                        parts.append("\n".join(s.text() for s in inner).strip())
                cell = Cell("\n".join(parts), col, span, count_images(tc))
            if not row or row[-1] is not cell:
                row.append(cell)
            for c in range(col, col + span):
                here[c] = cell
            col += span
        above = here
        rows.append(row)
    return [Segment(rows, context), *nested]


_RELS_NS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_OFFICE_DOCUMENT = "/officeDocument"


#: The package relationships of a form are a few hundred bytes.
_MAX_RELS_BYTES = 1 << 20
#: A form's main part is a few hundred kilobytes; parsed, a part this size already takes ~10x in memory.
_MAX_DOC_XML_BYTES = 16 * 1024 * 1024


def _main_part(zf: zipfile.ZipFile) -> str:
    """The main document part named by the package's relationships (``word/document.xml`` usually)."""
    from docx.oxml.parser import parse_xml
    from lxml import etree

    try:
        rels = parse_xml(read_member(zf, "_rels/.rels", _MAX_RELS_BYTES))
    except (KeyError, etree.XMLSyntaxError):
        return "word/document.xml"
    names = set(zf.namelist())
    for rel in rels.iter(_RELS_NS + "Relationship"):
        if rel.get("Type", "").endswith(_OFFICE_DOCUMENT) and rel.get("TargetMode") != "External":
            target = str(rel.get("Target", "")).lstrip("/")
            if target in names:
                return target
    return "word/document.xml"


def _docx_segments(path: Path, vocab: dict[str, str]) -> tuple[list[Segment], int]:
    # Only the main part is parsed (python-docx's own XML parser: no entities, no network);
    # opening the whole package with docx.Document would also load styles, numbering, headers
    # and settings that a form's fields never need, at 3x the cost.
    from docx.oxml.parser import parse_xml
    from lxml import etree

    try:
        with zipfile.ZipFile(path) as zf:
            root = parse_xml(read_member(zf, _main_part(zf), _MAX_DOC_XML_BYTES))
    except MemberError as exc:
        raise _unreadable(path, "large" if exc.cap else "damaged", f"{exc.name}: {exc.reason_en}") from exc
    except (zipfile.BadZipFile, KeyError, etree.XMLSyntaxError, zlib.error, EOFError, OSError, ValueError) as exc:
        raise _unreadable(path, "damaged", f"{type(exc).__name__}: {exc}") from exc
    body = root.find(_W + "body")
    if root.tag != _W + "document" or body is None:
        raise _unreadable(path, "damaged", f"the main part is <{etree.QName(root).localname}>, not a Word document")
    segments: list[Segment] = []
    loose: list[list[Cell]] = []
    context: list[str] = []
    for block in _blocks(body):
        if block.tag == _W + "p":
            text = _text_of(block)
            context.append(text)
            loose.append([Cell(text, 0, 1, count_images(block))])
        else:
            segments.extend(_table_segments(block, "\n".join(context[-6:]), vocab))
            context = []
    segments.append(Segment(loose))
    return segments, count_images(body)


# --- Excel --------------------------------------------------------------------------------------------

# A form fits in a screenful; formatting applied to whole columns makes max_row a million.
_XLSX_MAX_ROWS = 300
_XLSX_MAX_COLS = 40
_XLSX_MAX_SHEETS = 20


def _xl_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a phone number typed as a number
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat(" ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _xlsx_segments(path: Path) -> tuple[list[Segment], int]:
    from kepu.xlsx_read import WorkbookError, read_sheets

    try:
        # Streamed, cut at the caps: a sheet formatted down a million rows costs nothing.
        sheets = read_sheets(path, max_rows=_XLSX_MAX_ROWS, max_cols=_XLSX_MAX_COLS, max_sheets=_XLSX_MAX_SHEETS)
    except WorkbookError as exc:
        raise _unreadable(path, "damaged", exc.reason_en) from exc
    segments: list[Segment] = []
    for ws in sheets:
        origin: dict[tuple[int, int], tuple[int, int, int]] = {}
        for min_row, min_col, max_row, max_col in ws.merged:
            for r in range(min_row, min(max_row, _XLSX_MAX_ROWS) + 1):
                for c in range(min_col, min(max_col, _XLSX_MAX_COLS) + 1):
                    origin[(r, c)] = (min_row, min_col, max_col - min_col + 1)
        cells: dict[tuple[int, int], Cell] = {}
        rows: list[list[Cell]] = []
        width = max((len(r) for r in ws.rows), default=0)
        for r in range(1, len(ws.rows) + 1):
            row: list[Cell] = []
            c = 1
            while c <= width:
                r0, c0, span = origin.get((r, c), (r, c, 1))
                cell = cells.get((r0, c0))
                if cell is None:
                    values = ws.rows[r0 - 1] if r0 - 1 < len(ws.rows) else []
                    cell = Cell(_xl_text(values[c0 - 1] if c0 - 1 < len(values) else None), c0 - 1, span)
                    cells[(r0, c0)] = cell
                row.append(cell)
                c = max(c + 1, c0 + span)
            rows.append(row)
        segments.append(Segment(rows, ws.title, join_run=False))
    with zipfile.ZipFile(path) as zf:
        images = sum(1 for n in zf.namelist() if n.startswith("xl/media/"))
    return segments, images


# --- what a file is ------------------------------------------------------------------------------------

_OLE2 = bytes.fromhex("D0CF11E0A1B11AE1")
# Forms are a few pages; a larger XML part is a broken or hostile file, not a form.
_MAX_XML_BYTES = 64 * 1024 * 1024

_WHAT: dict[str, tuple[str, str]] = {
    "ole2": ("旧版 Word/WPS/Excel 二进制文件（.doc/.wps/.xls）", "an old binary Word/WPS/Excel file (.doc/.wps/.xls)"),
    "pdf": ("PDF 文件（作为扫描件留存）", "a PDF (kept as a scanned page)"),
    "image": ("图片（作为扫描件留存）", "a picture (kept as a scanned page)"),
    "rtf": ("RTF 文件", "an RTF file"),
    "html": ("网页格式文件（.htm/.mht）", "a web-page file (.htm/.mht)"),
    "odf": ("OpenDocument 文件（.odt/.ods）", "an OpenDocument file (.odt/.ods)"),
    "zip": ("压缩包，不是 Word/Excel 文档", "a zip archive that is not a Word/Excel document"),
    "damaged": ("已损坏的文件", "a damaged file"),
    "empty": ("空文件", "an empty file"),
    "unknown": ("无法识别格式的文件", "a file of unknown format"),
    "large": ("内容过大的文件", "a file with oversized content"),
}


def _unreadable(path: Path, what: str, detail: str = "") -> MaterialError:
    zh, en = _WHAT[what]
    extra = f" ({detail})" if detail else ""
    return MaterialError(
        "M-UNREADABLE",
        f"{path.name}：{zh}，无法读取申报表栏目，请提供 .docx 或 .xlsx 格式的申报表 / "
        f"{path.name} is {en}; its form fields cannot be read, a .docx or .xlsx form is needed{extra}",
    )


def _sniff(path: Path) -> FormFormat:
    """The form's format judged by content, not name; anything else raises M-UNREADABLE."""
    try:
        with path.open("rb") as fh:
            head = fh.read(512)
    except OSError as exc:
        raise MaterialError("M-UNREADABLE", f"{path.name}：无法打开 / cannot be opened ({exc.strerror})") from exc
    if not head:
        raise _unreadable(path, "empty")
    if head.startswith(_OLE2):
        raise _unreadable(path, "ole2")
    if head.startswith(b"%PDF"):
        raise _unreadable(path, "pdf")
    if head.startswith((b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"BM", b"II*\x00", b"MM\x00*")):
        raise _unreadable(path, "image")
    if head.startswith(b"{\\rtf"):
        raise _unreadable(path, "rtf")
    if not head.startswith(b"PK"):
        lowered = head.lower()
        if b"<html" in lowered or b"mime-version" in lowered:
            raise _unreadable(path, "html")
        raise _unreadable(path, "unknown")
    try:
        with zipfile.ZipFile(path) as zf:
            infos = {i.filename: i for i in zf.infolist()}
            if any(i.file_size > _MAX_XML_BYTES for n, i in infos.items() if n.endswith(".xml")):
                raise _unreadable(path, "large")
            if "word/document.xml" in infos:
                return "docx"
            if "xl/workbook.xml" in infos:
                return "xlsx"
            if "mimetype" in infos and read_member(zf, "mimetype", 1024).startswith(b"application/vnd.oasis"):
                raise _unreadable(path, "odf")
    except MemberError as exc:
        raise _unreadable(path, "damaged", f"{exc.name}: {exc.reason_en}") from exc
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise _unreadable(path, "damaged", str(exc)) from exc
    raise _unreadable(path, "zip")


# --- reading -----------------------------------------------------------------------------------------


def read_tables(path: Path, vocab: dict[str, str]) -> tuple[FormFormat, list[Segment], int]:
    """The file's format, its grids and the number of pictures it holds; M-UNREADABLE for anything else.

    ``vocab`` (label key → field name) tells the nested Word tables that hold labels, read as grids of their own.
    """
    fmt = _sniff(path)
    if fmt == "docx":
        segments, images = _docx_segments(path, vocab)
    else:
        segments, images = _xlsx_segments(path)
    return fmt, segments, images


def read_docx_fields(path: Path, labels: list[str]) -> dict[str, str]:
    """Map each wanted label to its value in a Word form (empty string when blank).

    Labels not present in the form are left out of the result. Template hints are removed.
    """
    if _sniff(path) != "docx":
        raise _unreadable(path, "unknown", "not a Word document")
    vocab = {label_key(lab): lab for lab in labels}
    segments, _ = _docx_segments(path, vocab)
    found: dict[str, str] = {}
    for seg in segments:
        for occ in find_labels(seg.rows, vocab):
            name = vocab[occ.label]
            value = clean_value(occ.value)
            if name not in found or (not found[name] and value):
                found[name] = value
    return found
