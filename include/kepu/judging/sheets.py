"""Score sheets: one workbook per judge, and reading a returned one back.

A sheet holds an instructions page (the rubric with weights and ranges) and one scoring page per kind of
entry the judge has. A scoring page lists the judge's entries in their seeded order with links to the
publication copy and the synopsis, one cell per criterion (Excel refuses a value outside the rubric's
range, and the cell says so) and a comment cell. Only the score and comment cells can be edited.

Row 2 names the judge, the round and the *sheet code*, a checksum of campaign, round, judge and the
round's assignment: a sheet relabelled with another judge's name, or one from another round, does not
carry the right code. Row 3 (hidden) holds machine keys, so that the reader never depends on the labels a
judge sees.

The same assignment always gives byte-identical sheets (:mod:`kepu.judging.xlsx`).
"""

from __future__ import annotations

import hashlib
import io
import math
import re
import unicodedata
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from kepu.campaign import Campaign, Criterion, Stage
from kepu.cells import safe_cell
from kepu.db.judging_records import JudgeRecord
from kepu.judging.review import Entry
from kepu.judging.xlsx import workbook_bytes
from kepu.xlsx_read import bounded_dimensions

if TYPE_CHECKING:
    from openpyxl import Workbook

MARKER = "kepu-score-sheet"
HEADER_ROW, KEY_ROW, LABEL_ROW, FIRST_ROW = 2, 3, 4, 5
#: Row 2 cells: label, value pairs.
JUDGE_ID_CELL, JUDGE_NAME_CELL, STAGE_CELL, CODE_CELL = "B2", "D2", "F2", "H2"
#: Row 2, after the code: the judge's personal link to the portal (not read back).
PORTAL_LABEL_CELL, PORTAL_CELL = "I2", "J2"
PORTAL_LABEL = "在线评审 Online judging"
FIXED_KEYS = ("#", "submission_id", "title", "category", "watch", "synopsis")
COMMENT_KEY = "comment"
KIND_TITLES = {"video": "微视频评分 Video scores", "account": "科普号评分 Account scores"}
INSTRUCTIONS = "说明 Instructions"


def sheet_code(campaign_id: str, stage: str, judge_id: str, assignment_sha256: str) -> str:
    """The code printed on a judge's sheet; it changes when the round's assignment changes."""
    return hashlib.sha256(f"{campaign_id}|{stage}|{judge_id}|{assignment_sha256}".encode()).hexdigest()[:12]


@dataclass(frozen=True)
class SheetEntry:
    entry: Entry
    position: int
    watch_url: str | None = None
    synopsis_url: str | None = None


def _criterion_header(c: Criterion) -> str:
    return f"{c.zh} {c.en}（{c.min:g}–{c.max:g}，权重 {c.weight:.0%}）"


def build_sheet(
    campaign: Campaign,
    stage: Stage,
    judge: JudgeRecord,
    entries: Sequence[SheetEntry],
    *,
    code: str,
    deadline: datetime | None = None,
    portal_url: str | None = None,
) -> bytes:
    """The judge's workbook as bytes (deterministic); ``portal_url`` is the judge's link to the portal."""
    return workbook_bytes(
        sheet_workbook(campaign, stage, judge, entries, code=code, deadline=deadline, portal_url=portal_url),
        campaign.deadline.at,
    )


def sheet_workbook(
    campaign: Campaign,
    stage: Stage,
    judge: JudgeRecord,
    entries: Sequence[SheetEntry],
    *,
    code: str,
    deadline: datetime | None = None,
    portal_url: str | None = None,
) -> Workbook:
    """The judge's workbook (see :func:`build_sheet`), to save or to fill in."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill, Protection
    from openpyxl.worksheet.datavalidation import DataValidation

    bold = Font(bold=True)
    wrap = Alignment(wrap_text=True, vertical="top")
    editable = PatternFill("solid", fgColor="FFF8DC")
    c = campaign.campaign
    wb = Workbook()
    info = wb.active
    info.title = INSTRUCTIONS
    lines: list[list[Any]] = [
        [f"{c.name_zh} · {stage.zh}评分表"],
        [f"{c.name_en} — {stage.en} score sheet"],
        [],
        ["评委 Judge", f"{judge.name}（{judge.unit}）", "编号 id", judge.id],
        ["阶段 Round", f"{stage.zh} {stage.en}", "校验码 sheet code", code],
    ]
    if deadline is not None:
        lines.append(["交回截止 Return by", deadline.strftime("%Y-%m-%d %H:%M %Z").strip()])
    if portal_url:
        lines.append([PORTAL_LABEL, portal_url])
    lines += [
        [],
        ["填写说明 How to fill in"],
        ["1. 在各评分页为每件作品的每个评分项打分，分值须在该项范围内；评语可选。"],
        [
            "   Score every criterion of every entry on the scoring pages, inside the criterion's range; comments are optional."
        ],
        ["2. 请勿修改编号、作品名称、表头与校验码，请勿增删行列；只有浅黄色单元格可以填写。"],
        [
            "   Do not change ids, titles, headers or the sheet code, nor add or remove rows; only the light-yellow cells take input."
        ],
        ["3. 填写完毕后保存为 .xlsx，保留文件名交回。如需更正，交回更正后的完整评分表，将替换之前的评分。"],
        [
            "   Save as .xlsx and return it under the same file name. To correct scores, return the whole corrected sheet: it replaces the earlier one."
        ],
        ["4. 作品如与您存在利益关系（同单位、同省份等），请勿评分并立即告知组织方。"],
        [
            "   If an entry is connected to you (same unit, same province, …), do not score it and tell the organisers at once."
        ],
        [],
        ["评分标准 Rubric"],
    ]
    for row in lines:
        info.append(row)
        if portal_url and row and row[0] == PORTAL_LABEL:
            link = info.cell(row=info.max_row, column=2)
            link.hyperlink = portal_url
            link.style = "Hyperlink"
    for cell in info[1]:
        cell.font = Font(bold=True, size=14)
    for kind in sorted({se.entry.kind for se in entries}):
        info.append([])
        info.append([f"{campaign.kinds[kind].label_zh} {campaign.kinds[kind].label_en}"])  # type: ignore[index]
        info.append(["评分项 criterion", "Criterion", "权重 weight", "最低分 min", "最高分 max"])
        for crit in campaign.judging.criteria[kind]:  # type: ignore[index]
            info.append([crit.zh, crit.en, f"{crit.weight:.0%}", crit.min, crit.max])
    info.column_dimensions["A"].width = 30
    info.column_dimensions["B"].width = 36
    info.column_dimensions["C"].width = 14
    info.column_dimensions["D"].width = 16

    for kind in sorted({se.entry.kind for se in entries}):
        criteria = campaign.judging.criteria[kind]  # type: ignore[index]
        mine = sorted((se for se in entries if se.entry.kind == kind), key=lambda se: se.position)
        ws = wb.create_sheet(KIND_TITLES.get(kind, kind))
        ws["A1"] = f"{c.name_zh} · {stage.zh} · {campaign.kinds[kind].label_zh}评分"  # type: ignore[index]
        ws["A1"].font = Font(bold=True, size=13)
        for ref, value in (
            ("A2", "评委编号 Judge id"),
            (JUDGE_ID_CELL, judge.id),
            ("C2", "评委 Judge"),
            (JUDGE_NAME_CELL, judge.name),
            ("E2", "阶段 Round"),
            (STAGE_CELL, stage.key),
            ("G2", "校验码 Sheet code"),
            (CODE_CELL, code),
        ):
            ws[ref] = value
            ws[ref].font = bold if ref[0] in "ACEG" else Font()
        keys = [*FIXED_KEYS, *(cr.key for cr in criteria), COMMENT_KEY]
        keys[0] = f"{MARKER}:{kind}"
        labels = [
            "序号 No.",
            "编号 Submission id",
            "作品名称 Title",
            "类别 Category",
            "观看 Watch",
            "简介 Synopsis",
            *(_criterion_header(cr) for cr in criteria),
            "评语 Comment",
        ]
        for col, (key, label) in enumerate(zip(keys, labels, strict=True), start=1):
            ws.cell(row=KEY_ROW, column=col, value=key)
            cell = ws.cell(row=LABEL_ROW, column=col, value=label)
            cell.font = bold
            cell.alignment = wrap
        if portal_url:
            # Beside the judge's name and code, where a judge looks first: the same scores can be given online.
            ws[PORTAL_LABEL_CELL] = PORTAL_LABEL
            ws[PORTAL_LABEL_CELL].font = bold
            ws[PORTAL_CELL] = portal_url
            ws[PORTAL_CELL].hyperlink = portal_url
            ws[PORTAL_CELL].style = "Hyperlink"
        ws.row_dimensions[KEY_ROW].hidden = True
        ws.row_dimensions[LABEL_ROW].height = 48
        first_score = len(FIXED_KEYS) + 1
        for n, se in enumerate(mine, start=1):
            r = FIRST_ROW + n - 1
            e = se.entry
            ws.cell(row=r, column=1, value=n)
            ws.cell(row=r, column=2, value=e.id)
            ws.cell(row=r, column=3, value=safe_cell(e.title or e.source_name))
            ws.cell(row=r, column=4, value=safe_cell(e.category or ""))
            watch = ws.cell(row=r, column=5, value="观看 Watch" if se.watch_url else "—")
            if se.watch_url:
                watch.hyperlink = se.watch_url
                watch.style = "Hyperlink"
            syn = ws.cell(
                row=r,
                column=6,
                value=safe_cell((e.synopsis or "").strip()) or ("简介 Synopsis" if se.synopsis_url else "—"),
            )
            if se.synopsis_url:
                syn.hyperlink = se.synopsis_url
            for col in range(1, first_score):
                ws.cell(row=r, column=col).alignment = wrap
            for col in range(first_score, len(keys) + 1):
                cell = ws.cell(row=r, column=col)
                cell.protection = Protection(locked=False)
                cell.fill = editable
                cell.alignment = wrap
        last = FIRST_ROW + len(mine) - 1
        for i, crit in enumerate(criteria):
            col = ws.cell(row=LABEL_ROW, column=first_score + i).column_letter
            dv = DataValidation(
                type="decimal",
                operator="between",
                formula1=f"{crit.min:g}",
                formula2=f"{crit.max:g}",
                allow_blank=True,
                showErrorMessage=True,
                showInputMessage=True,
            )
            dv.errorTitle = "分数超出范围 Out of range"
            dv.error = f"{crit.zh}：请填写 {crit.min:g}–{crit.max:g} 之间的分数 · enter a score from {crit.min:g} to {crit.max:g}"
            dv.promptTitle = crit.zh
            dv.prompt = f"{crit.min:g}–{crit.max:g}，权重 {crit.weight:.0%} · weight {crit.weight:.0%}"
            ws.add_data_validation(dv)
            if mine:
                dv.add(f"{col}{FIRST_ROW}:{col}{last}")
            ws.column_dimensions[col].width = 14
        for letter, width in zip("ABCDEF", (6, 22, 30, 14, 12, 50), strict=True):
            ws.column_dimensions[letter].width = width
        ws.column_dimensions[ws.cell(row=LABEL_ROW, column=len(keys)).column_letter].width = 40
        ws.freeze_panes = f"C{FIRST_ROW}"
        ws.protection.sheet = True
        ws.protection.formatColumns = False
        ws.protection.formatRows = False
    return wb


# --- reading a returned sheet --------------------------------------------------------------------------


@dataclass
class ParsedTable:
    """One scoring page of a returned sheet, as found."""

    kind: str
    judge_id: str | None
    judge_name: str | None
    stage: str | None
    code: str | None
    keys: list[str]
    #: (row number, submission id, {criterion key: raw cell value}, comment)
    rows: list[tuple[int, str, dict[str, Any], str | None]] = field(default_factory=list)


@dataclass
class ParsedSheet:
    tables: list[ParsedTable]
    problems: list[dict[str, Any]]


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = unicodedata.normalize("NFKC", str(value)).strip()
    return text or None


#: A returned sheet larger than this once unzipped is not opened (a judge's sheet is a few hundred kB).
MAX_UNZIPPED_BYTES = 64 * 1024 * 1024
#: More rows than this on a scoring page: not a judge's sheet (no judge is given thousands of entries).
MAX_ROWS = 5000
#: Prefix of the raw value of a formula cell that holds no stored result (:class:`Uncalculated`).
UNCALCULATED = "\x00formula:"
#: Longest cell text quoted back in a reason.
SHOWN_CHARS = 40

_MACRO_CONTENT_TYPE = re.compile(rb"macroEnabled|vbaProject|ms-office\.activeX|ms-excel\.(?:addin|template)", re.I)


@dataclass(frozen=True)
class Uncalculated:
    """A formula cell saved without its result (a generator that never calculated, or calculation off)."""

    formula: str


def shown(value: Any) -> str:
    """A cell's text as quoted in a reason, cut to :data:`SHOWN_CHARS` characters."""
    text = str(value)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + f"…（共 {len(text)} 字符 chars）"


def package_problems(data: bytes) -> list[dict[str, Any]]:
    """Why the file cannot be taken as a plain workbook before anything opens it: not a zip, a macro-enabled
    workbook (a VBA project or a macroEnabled content type, whatever the file is called), or too big unzipped."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
        types = zf.read("[Content_Types].xml") if "[Content_Types].xml" in zf.namelist() else b""
    except (zipfile.BadZipFile, OSError, ValueError, KeyError, EOFError) as exc:
        return [unreadable(exc)]
    names = [i.filename.lower() for i in infos]
    if any(n.endswith("vbaproject.bin") or "/activex/" in n for n in names) or _MACRO_CONTENT_TYPE.search(types):
        return [
            problem(
                "macro",
                zh="工作簿含有宏（VBA 工程），不予接收；请另存为“Excel 工作簿（*.xlsx）”后交回",
                en="the workbook holds macros (a VBA project) and is not accepted; save it as an "
                "“Excel Workbook (*.xlsx)” and return it",
            )
        ]
    unzipped = sum(i.file_size for i in infos)
    if unzipped > MAX_UNZIPPED_BYTES:
        return [
            problem(
                "too_large",
                value=unzipped,
                zh=f"工作簿解压后 {unzipped} 字节，超过上限 {MAX_UNZIPPED_BYTES} 字节，不是本系统发出的评分表",
                en=f"the workbook unzips to {unzipped} bytes, over the limit of {MAX_UNZIPPED_BYTES}: not "
                "a score sheet issued by kepu",
            )
        ]
    return []


def _row_values(row: tuple[Any, ...], width: int) -> list[Any]:
    values = list(row[:width])
    return values + [None] * (width - len(values))


def parse_sheet(data: bytes) -> ParsedSheet:
    """Every scoring page of a returned workbook; unreadable, macro-enabled and oversized files, pages with too
    many rows and missing headers become problems. Read as a stream: memory does not grow with the rows."""
    from openpyxl import load_workbook

    early = package_problems(data)
    if early:
        return ParsedSheet([], early)
    try:
        # Each page is read only as far as the row cap, from its opening on.
        with bounded_dimensions():
            wb = load_workbook(io.BytesIO(data), data_only=True, read_only=True)
    except Exception as exc:  # a damaged or foreign file: openpyxl raises many kinds
        return ParsedSheet([], [unreadable(exc)])
    tables: list[ParsedTable] = []
    problems: list[dict[str, Any]] = []
    #: (page, row, column) of score cells without a value, to look at for a formula
    blanks: dict[tuple[str, int, int], tuple[ParsedTable, int, str]] = {}
    try:
        for ws in wb.worksheets:
            rows = ws.iter_rows(values_only=True)
            head = [list(r) for _, r in zip(range(KEY_ROW), rows, strict=False)]
            if len(head) < KEY_ROW:
                continue
            key_row = head[KEY_ROW - 1]
            marker = _text(key_row[0] if key_row else None) or ""
            if not marker.startswith(f"{MARKER}:"):
                continue
            keys = [_text(v) or "" for v in key_row]
            row2 = _row_values(tuple(head[HEADER_ROW - 1]), 8)
            table = ParsedTable(
                kind=marker.split(":", 1)[1],
                judge_id=_text(row2[1]),
                judge_name=_text(row2[3]),
                stage=_text(row2[5]),
                code=_text(row2[7]),
                keys=keys,
            )
            id_col = keys.index("submission_id") if "submission_id" in keys else None
            for r, raw_row in enumerate(rows, start=KEY_ROW + 1):
                if r < FIRST_ROW:
                    continue  # the label row
                if r >= FIRST_ROW + MAX_ROWS:
                    problems.append(
                        problem(
                            "too_many_rows",
                            value=MAX_ROWS,
                            zh=f"评分页“{ws.title}”超过 {MAX_ROWS} 行，不是本系统发出的评分表",
                            en=f"the scoring page “{ws.title}” has more than {MAX_ROWS} rows: not a "
                            "score sheet issued by kepu",
                        )
                    )
                    break
                cells = _row_values(raw_row, len(keys))
                values = {k: cells[i] for i, k in enumerate(keys) if k}
                sid = _text(cells[id_col]) if id_col is not None else None
                scores = {
                    k: v
                    for k, v in values.items()
                    if k not in FIXED_KEYS and k != COMMENT_KEY and not k.startswith(MARKER)
                }
                if sid is None and all(v is None or _text(v) is None for v in scores.values()):
                    continue  # an empty line
                table.rows.append((r, sid or "", scores, _text(values.get(COMMENT_KEY))))
                for i, k in enumerate(keys):
                    if k in scores and scores[k] is None:
                        blanks[(ws.title, r, i)] = (table, len(table.rows) - 1, k)
            tables.append(table)
    except Exception as exc:  # a page damaged past its opening (broken XML, a bad cell): as a damaged file
        return ParsedSheet([], [unreadable(exc)])
    finally:
        wb.close()
    if blanks and not problems:
        _mark_uncalculated(data, blanks)
    if not tables:
        problems.append(
            problem(
                "not_a_score_sheet",
                zh="不是本系统发出的评分表（找不到评分页）",
                en="not a score sheet issued by kepu (no scoring page found)",
            )
        )
    return ParsedSheet([] if problems else tables, problems)


def _mark_uncalculated(data: bytes, blanks: dict[tuple[str, int, int], tuple[ParsedTable, int, str]]) -> None:
    """Blank score cells that hold a formula get an :class:`Uncalculated` value instead of None."""
    from openpyxl import load_workbook

    with bounded_dimensions():
        wb = load_workbook(io.BytesIO(data), data_only=False, read_only=True)
    try:
        for ws in wb.worksheets:
            wanted = {(r, c) for (title, r, c) in blanks if title == ws.title}
            if not wanted:
                continue
            last = max(r for r, _ in wanted)
            for r, row in enumerate(ws.iter_rows(max_row=last, values_only=True), start=1):
                for c in {c for rr, c in wanted if rr == r}:
                    value = row[c] if c < len(row) else None
                    if isinstance(value, str) and value.startswith("="):
                        table, index, key = blanks[(ws.title, r, c)]
                        table.rows[index][2][key] = Uncalculated(value)
    finally:
        wb.close()


def unreadable(exc: BaseException) -> dict[str, Any]:
    """The problem of a file that cannot be read as a workbook, naming what went wrong."""
    return problem(
        "unreadable",
        zh=f"无法作为 XLSX 工作簿读取（{type(exc).__name__}）",
        en=f"cannot be read as an XLSX workbook ({type(exc).__name__})",
    )


def problem(
    check: str,
    *,
    zh: str,
    en: str,
    row: int | None = None,
    submission_id: str | None = None,
    criterion: str | None = None,
    value: Any = None,
) -> dict[str, Any]:
    """One reason a sheet is rejected, in Chinese and English."""
    return {
        "check": check,
        "row": row,
        "submission_id": submission_id,
        "criterion": criterion,
        "value": None if value is None else str(value),
        "zh": zh,
        "en": en,
    }


def as_number(value: Any) -> tuple[float | None, str | None]:
    """A score cell as (number, None), (None, None) when blank, or (None, text) when not a finite number
    (``nan``, ``inf``, ``1e999`` and their kind are text, not scores); a formula without a stored result gives
    (None, :data:`UNCALCULATED` + the formula)."""
    if value is None or isinstance(value, bool):
        return (None, None) if value is None else (None, str(value))
    if isinstance(value, Uncalculated):
        return None, UNCALCULATED + value.formula
    if isinstance(value, int | float):
        number = float(value) if not isinstance(value, int) or abs(value) < 2**53 else math.inf
        return (float(value), None) if math.isfinite(number) else (None, str(value))
    text = _text(value)
    if text is None:
        return None, None
    if len(text) > 64:  # no score is written with more characters than this
        return None, text
    try:
        number = float(text)
    except ValueError:
        return None, text
    return (number, None) if math.isfinite(number) else (None, text)
