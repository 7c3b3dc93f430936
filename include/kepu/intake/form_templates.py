"""The notice's forms as Word files: blank (附件1 科普号申报表, 附件2 微视频申报表) and filled examples.

The blank forms reproduce the notice's attachments: the same titles, rows, merged cells, hints and
pledge text, typos included (（可别附页）, （推荐单位公单）), so that what units receive looks like what
the association published. The filled examples are written the way units fill the forms and are read
back by :func:`kepu.intake.forms.read_form` (tests, sample inbox).
"""

from __future__ import annotations

import io
import logging
import math
import os
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from kepu.intake.form_fields import normalise_label
from kepu.intake.form_signoff import PLEDGE_TEXT

log = logging.getLogger(__name__)

VIDEO_TITLE = "2022年青少年科技教育活动微视频申报表"
ACCOUNT_TITLE = "2022年青少年科技教育活动科普号申报表"
NOTE = "注：签字须手写"
#: The pledge and the recommending unit's block of 附件2 print the year; the signer adds month and day.
FORM_YEAR = 2022

VIDEO_FIELDS: tuple[str, ...] = (
    "单位名称（申报人）",
    "是否为会员",
    "微视频名称",
    "类别（专业领域）",
    "播出时间",
    "主创人员（或单位）",
    "报送材料网盘链接地址",
    "联系电话",
    "电子邮箱",
    "内容简介",
    "作者承诺",
    "推荐单位",
)
ACCOUNT_FIELDS: tuple[str, ...] = (
    "科普号名称",
    "所属单位（团队、个人）",
    "负责人签名",
    "姓名",
    "工作单位",
    "职务",
    "职称",
    "专业领域",
    "粉丝量",
    "联系电话",
    "邮箱",
    "主要从事科普创作经历、主要成绩",
    "报送材料网盘链接地址",
    "推荐单位意见",
)

_COLS = 4
_VIDEO_WIDTHS_CM = (3.2, 5.0, 2.8, 4.6)
_ACCOUNT_WIDTHS_CM = (3.2, 4.6, 2.8, 5.0)


# --- pictures -------------------------------------------------------------------------------------------


def _png(width: int, height: int, pixel: Any) -> bytes:
    """A truecolour PNG; ``pixel(x, y)`` gives (r, g, b). No imaging library is needed for this."""
    raw = bytearray()
    for y in range(height):
        raw.append(0)  # filter type: none
        for x in range(width):
            raw.extend(pixel(x, y))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(raw))) + chunk(b"IEND", b"")
    )


def seal_png(size: int = 96) -> bytes:
    """A red ring, standing for a scanned unit seal."""
    c, outer, inner = (size - 1) / 2, size * 0.47, size * 0.40

    def pixel(x: int, y: int) -> tuple[int, int, int]:
        d = math.hypot(x - c, y - c)
        return (210, 30, 30) if inner <= d <= outer else (255, 255, 255)

    return _png(size, size, pixel)


def signature_png(width: int = 120, height: int = 40) -> bytes:
    """A dark scribble, standing for a scanned handwritten signature."""

    def pixel(x: int, y: int) -> tuple[int, int, int]:
        curve = height / 2 + height / 3 * math.sin(x / 7.0)
        return (20, 20, 60) if abs(y - curve) < 1.6 else (255, 255, 255)

    return _png(width, height, pixel)


# --- writing -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _SignOff:
    """What a signer adds to a sign-off block."""

    name: str = ""
    seal: str = ""
    day: date | None = None
    picture: bytes | None = None


def _date_line(day: date | None, *, printed_year: int | None) -> str:
    """``2022年   月   日`` as printed, or filled with the signing day."""
    if day is None:
        return f"{printed_year}年   月   日" if printed_year else "年   月   日"
    return f"{day.year}年 {day.month} 月 {day.day} 日"


def _document() -> Any:
    from docx import Document
    from docx.oxml.ns import qn
    from docx.shared import Pt

    doc = Document()
    normal = doc.styles["Normal"]
    normal.font.name = "仿宋"
    normal.font.size = Pt(12)
    # East Asian text takes its font from w:eastAsia, which python-docx does not set by itself.
    normal.element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), "仿宋")
    return doc


def _heading(doc: Any, attachment: str, title: str) -> None:
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Pt

    p = doc.add_paragraph()
    run = p.add_run(attachment)
    run.bold = True
    p = doc.add_paragraph()
    p.alignment = WD_ALIGN_PARAGRAPH.CENTER
    run = p.add_run(title)
    run.bold = True
    run.font.size = Pt(16)


def _table(doc: Any, rows: int, widths_cm: Sequence[float]) -> Any:
    from docx.enum.table import WD_TABLE_ALIGNMENT
    from docx.shared import Cm

    table = doc.add_table(rows=rows, cols=_COLS)
    table.style = "Table Grid"
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    for row in table.rows:
        for cell, w in zip(row.cells, widths_cm, strict=True):
            cell.width = Cm(w)
    return table


def _fill(cell: Any, lines: Sequence[str], *, center: bool = False, picture: bytes | None = None) -> None:
    """Replace a cell's content with one paragraph per line (Word's own layout of the notice's cells)."""
    from docx.enum.table import WD_CELL_VERTICAL_ALIGNMENT
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Cm

    lines = list(lines) or [""]
    paragraphs = cell.paragraphs
    paragraphs[0].text = lines[0]
    for extra in paragraphs[1:]:
        extra._element.getparent().remove(extra._element)
    for line in lines[1:]:
        cell.add_paragraph(line)
    cell.vertical_alignment = WD_CELL_VERTICAL_ALIGNMENT.CENTER
    if center:
        for p in cell.paragraphs:
            p.alignment = WD_ALIGN_PARAGRAPH.CENTER
    if picture is not None:
        cell.add_paragraph().add_run().add_picture(io.BytesIO(picture), width=Cm(2.5))


def _span(table: Any, row: int, first: int, last: int) -> Any:
    return table.cell(row, first).merge(table.cell(row, last)) if last > first else table.cell(row, first)


def _height(table: Any, row: int, cm: float) -> None:
    from docx.shared import Cm

    table.rows[row].height = Cm(cm)


def _values(values: dict[str, str], known: Sequence[str]) -> dict[str, str]:
    """``values`` keyed by the canonical field names; a key that is no field of the form is an error."""
    by_key = {normalise_label(n): n for n in known}
    out = {n: "" for n in known}
    for k, v in values.items():
        name = by_key.get(normalise_label(k))
        if name is None:
            raise ValueError(f"{k!r} is not a field of this form; fields: {', '.join(known)}")
        out[name] = v
    return out


def _save(doc: Any, path: Path) -> None:
    """Write under a temporary name and rename, so a half-written form never has the final name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    try:
        doc.save(str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _lines(text: str) -> list[str]:
    return text.split("\n") if text else [""]


def recommender_block(seal: str = "", day: date | None = None) -> list[str]:
    """The 推荐单位 block of 附件2 as printed: ``单位（盖章）：`` (with the unit typed beside it) and the date."""
    return [
        f"             单位（盖章）：{seal}",
        "",
        "                                " + _date_line(day, printed_year=FORM_YEAR),
    ]


def _video_document(
    v: dict[str, str],
    pledge: _SignOff,
    recommender: _SignOff,
    *,
    keep_hints: bool,
    block: Sequence[str] | None = None,
    block_in_table: bool = True,
) -> Any:
    doc = _document()
    _heading(doc, "附件2", VIDEO_TITLE)
    t = _table(doc, 9 if block_in_table else 8, _VIDEO_WIDTHS_CM)
    _fill(t.cell(0, 0), ["单位名称", "", "（申报人）"], center=True)
    _fill(t.cell(0, 1), _lines(v["单位名称（申报人）"]))
    _fill(t.cell(0, 2), ["是否为会员"], center=True)
    _fill(t.cell(0, 3), _lines(v["是否为会员"]))
    _fill(t.cell(1, 0), ["微视频名称"], center=True)
    _fill(_span(t, 1, 1, 3), _lines(v["微视频名称"]))
    _fill(t.cell(2, 0), ["类  别", "", "（专业领域）"], center=True)
    _fill(t.cell(2, 1), _lines(v["类别（专业领域）"]))
    _fill(t.cell(2, 2), ["播出时间"], center=True)
    _fill(t.cell(2, 3), _lines(v["播出时间"]))
    _fill(t.cell(3, 0), ["主创人员（或单位）（注明人员工作或学习单位及职务）"], center=True)
    _fill(_span(t, 3, 1, 3), _lines(v["主创人员（或单位）"]))
    _fill(_span(t, 4, 0, 3), [f"报送材料网盘链接地址（百度网盘）：{v['报送材料网盘链接地址']}"])
    _fill(t.cell(5, 0), ["联系电话"], center=True)
    _fill(t.cell(5, 1), _lines(v["联系电话"]))
    _fill(t.cell(5, 2), ["电子邮箱"], center=True)
    _fill(t.cell(5, 3), _lines(v["电子邮箱"]))
    _fill(t.cell(6, 0), ["内容简介"], center=True)
    synopsis = v["内容简介"]
    hint = ["（300字以内）"] if keep_hints or not synopsis else []
    _fill(_span(t, 6, 1, 3), [*hint, *(_lines(synopsis) if synopsis else [""])])
    _height(t, 6, 6.0)
    _fill(t.cell(7, 0), ["作者承诺"], center=True)
    _fill(
        _span(t, 7, 1, 3),
        [
            PLEDGE_TEXT,
            f"              姓名（签字）：{pledge.name}",
            "",
            f"            单位（盖章）：{pledge.seal}",
            "",
            "                        " + _date_line(pledge.day, printed_year=FORM_YEAR),
        ],
        picture=pledge.picture,
    )
    lines = list(block) if block is not None else recommender_block(recommender.seal, recommender.day)
    if block_in_table:
        _fill(t.cell(8, 0), ["推荐单位"], center=True)
        _fill(_span(t, 8, 1, 3), lines, picture=recommender.picture)
    else:
        # Some units move the block under the table and type it as paragraphs.
        doc.add_paragraph("推荐单位：")
        for line in lines:
            doc.add_paragraph(line)
    doc.add_paragraph(NOTE)
    return doc


def _account_document(
    v: dict[str, str], owner: _SignOff, opinion: _SignOff, *, keep_hints: bool, owner_name: str
) -> Any:
    doc = _document()
    _heading(doc, "附件1", ACCOUNT_TITLE)
    t = _table(doc, 11, _ACCOUNT_WIDTHS_CM)
    _fill(t.cell(0, 0), ["科普号名称"], center=True)
    _fill(_span(t, 0, 1, 3), _lines(v["科普号名称"]))
    _fill(t.cell(1, 0), ["所属单位", "（团队、个人）"], center=True)
    hint = ["（如以单位为主体注册，需单位盖章；如以团队或个人为主体注册，则无需盖章。）"]
    _fill(
        _span(t, 1, 1, 3),
        [
            *([owner_name] if owner_name else []),
            *(hint if keep_hints or not owner_name else []),
            f"负责人（签名）：{owner.name}",
            "",
            _date_line(owner.day, printed_year=None),
            "",
            f"（单位盖章）{owner.seal}",
        ],
        picture=owner.picture,
    )
    _fill(_span(t, 2, 0, 3), ["主要负责人信息"], center=True)
    pairs = (
        ("姓  名", "姓名", "工作单位", "工作单位"),
        ("职  务", "职务", "职  称", "职称"),
        ("专业领域", "专业领域", "粉丝量", "粉丝量"),
        ("联系电话", "联系电话", "邮  箱", "邮箱"),
    )
    for r, (label1, field1, label2, field2) in enumerate(pairs, start=3):
        _fill(t.cell(r, 0), [label1], center=True)
        _fill(t.cell(r, 1), _lines(v[field1]))
        _fill(t.cell(r, 2), [label2], center=True)
        _fill(t.cell(r, 3), _lines(v[field2]))
    _fill(_span(t, 7, 0, 3), ["主要从事科普创作经历、主要成绩"], center=True)
    experience = v["主要从事科普创作经历、主要成绩"]
    _fill(
        _span(t, 8, 0, 3),
        [*(["（可别附页）"] if keep_hints or not experience else []), *(_lines(experience) if experience else [""])],
    )
    _height(t, 8, 6.0)
    _fill(_span(t, 9, 0, 3), [f"报送材料网盘链接地址（百度网盘）：{v['报送材料网盘链接地址']}"])
    _fill(t.cell(10, 0), ["推荐单位意见"], center=True)
    _fill(
        _span(t, 10, 1, 3),
        [
            *(_lines(v["推荐单位意见"]) if v["推荐单位意见"] else [""]),
            "                    " + _date_line(opinion.day, printed_year=None),
            "",
            "                       （推荐单位公单）",
        ],
        picture=opinion.picture,
    )
    return doc


def write_templates(dest_dir: Path) -> list[Path]:
    """Write the blank 附件1 and 附件2 into ``dest_dir`` (created if needed); return their paths."""
    dest_dir = Path(dest_dir)
    account = dest_dir / f"附件1-{ACCOUNT_TITLE}.docx"
    video = dest_dir / f"附件2-{VIDEO_TITLE}.docx"
    write_filled_account_form(account, {}, pledge_signed=False)
    write_filled_video_form(video, {}, pledge_signed=False)
    log.info("wrote blank forms %s and %s", account, video)
    return [account, video]


def write_filled_video_form(
    path: Path,
    values: dict[str, str],
    *,
    pledge_signed: bool = True,
    signed_on: date = date(2022, 10, 8),
    pledge_seal: str = "",
    signature_picture: bool = False,
    keep_hints: bool = False,
    recommender_lines: Sequence[str] | None = None,
    recommender_in_table: bool = True,
) -> Path:
    """Write 附件2 filled with ``values`` (keyed by the campaign's field names, e.g. ``内容简介``).

    ``作者承诺`` in ``values`` is the signer's name (default: the first of 主创人员, else the applicant);
    with ``pledge_signed`` the name and ``signed_on`` are written into the pledge. ``推荐单位`` is the
    recommending unit written beside 单位（盖章）; without it the block stays as printed, to be stamped
    on paper. ``keep_hints`` leaves the template's hints in place before the typed text, as many
    units do. ``recommender_lines`` replaces the 推荐单位 block's lines as a unit retyped them, and
    ``recommender_in_table=False`` writes the block as paragraphs under the table.
    """
    v = _values(values, VIDEO_FIELDS)
    signer = v["作者承诺"] or _first_name(v["主创人员（或单位）"]) or v["单位名称（申报人）"]
    pledge = _SignOff(
        name=signer if pledge_signed else "",
        seal=pledge_seal,
        day=signed_on if pledge_signed else None,
        picture=signature_png() if signature_picture else None,
    )
    recommender = _SignOff(seal=v["推荐单位"], day=signed_on if v["推荐单位"] else None)
    path = Path(path)
    doc = _video_document(
        v, pledge, recommender, keep_hints=keep_hints, block=recommender_lines, block_in_table=recommender_in_table
    )
    _save(doc, path)
    return path


def write_filled_account_form(
    path: Path,
    values: dict[str, str],
    *,
    pledge_signed: bool = True,
    signed_on: date = date(2022, 10, 8),
    seal_picture: bool = False,
    keep_hints: bool = False,
) -> Path:
    """Write 附件1 filled with ``values`` (keyed by the campaign's field names, e.g. ``粉丝量``).

    ``负责人签名`` is the signer (default: 姓名); with ``pledge_signed`` the name and ``signed_on`` are
    written under 负责人（签名）. ``seal_picture`` pastes a seal picture into the 所属单位 block.
    """
    v = _values(values, ACCOUNT_FIELDS)
    signer = v["负责人签名"] or v["姓名"]
    owner = _SignOff(
        name=signer if pledge_signed else "",
        day=signed_on if pledge_signed else None,
        picture=seal_png() if seal_picture else None,
    )
    opinion = _SignOff(day=signed_on if v["推荐单位意见"] else None)
    path = Path(path)
    doc = _account_document(v, owner, opinion, keep_hints=keep_hints, owner_name=v["所属单位（团队、个人）"])
    _save(doc, path)
    return path


def _first_name(creators: str) -> str:
    for sep in ("、", "，", ",", "（", "(", " ", "；", ";"):
        creators = creators.split(sep)[0]
    return creators.strip()
