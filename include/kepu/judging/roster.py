"""The judges' roster: an XLSX or CSV sheet with one judge per row.

Columns are found by their header, in Chinese or English (``姓名``/``name``, ``单位``/``unit``,
``省份``/``province``, ``专业领域``/``expertise``; optional ``编号``/``id`` and ``邮箱``/``email``), so
``姓名 name`` and ``Name`` both work. Every row needs a name, a unit and a recognisable province; a
problem anywhere is an error listing every bad row, so a half-read roster never reaches an assignment.

A judge's id is the roster's ``编号`` when given, else a short hash of campaign, name and unit: the same
judge keeps the same id (and the same sheet file name) when the roster is loaded again.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kepu.campaign import Conflicts
from kepu.cells import safe_row
from kepu.db.judging_records import JudgeRecord
from kepu.errors import JudgingError
from kepu.intake.quality import canonical_province, normalise_entity, normalise_text
from kepu.provinces import match_province

#: Header words of each roster column (compared after NFKC, case folding and removing punctuation).
COLUMNS: dict[str, tuple[str, ...]] = {
    "id": ("编号", "评委编号", "序号编号", "id", "judgeid"),
    "name": ("姓名", "评委", "评委姓名", "name"),
    "unit": ("单位", "工作单位", "所在单位", "unit", "organisation", "organization", "affiliation"),
    "province": ("省份", "省", "所在省份", "省市", "province"),
    "expertise": ("专业领域", "专业", "领域", "研究领域", "expertise", "field", "fields"),
    "email": ("邮箱", "电子邮箱", "email", "e-mail", "mail"),
}
REQUIRED = ("name", "unit", "province")
_SPLIT = re.compile(r"[,，、;；/／|\s]+")
_ID = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class Roster:
    judges: list[JudgeRecord]
    sha256: str
    source: str


def _label(value: object) -> str:
    text = unicodedata.normalize("NFKC", str(value or "")).casefold()
    return re.sub(r"[\s:：*（）()\[\]【】._]+", "", text)


def _column_of(header: object) -> str | None:
    """The roster column a header cell names; ``姓名 name`` is split on spaces and each part tried."""
    raw = unicodedata.normalize("NFKC", str(header or "")).strip()
    candidates = [_label(raw), *(_label(p) for p in raw.split())]
    for key, words in COLUMNS.items():
        if any(c and c in {_label(w) for w in words} for c in candidates):
            return key
    return None


def judge_id(campaign_id: str, name: str, unit: str) -> str:
    key = f"{campaign_id}\x1f{normalise_entity(name)}\x1f{normalise_entity(unit)}".encode()
    return "J" + hashlib.sha256(key).hexdigest()[:8]


def expertise_terms(value: object) -> tuple[str, ...]:
    text = normalise_text(value if isinstance(value, str) else (str(value) if value is not None else None))
    if not text:
        return ()
    return tuple(t for t in (p.strip() for p in _SPLIT.split(text)) if t)


def _rows_of(path_name: str, data: bytes) -> list[list[Any]]:
    suffix = Path(path_name).suffix.lower()
    if suffix == ".csv":
        for encoding in ("utf-8-sig", "gb18030"):
            try:
                text = data.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        else:
            raise JudgingError(f"评委名单 {path_name} 不是 UTF-8 或 GBK 编码的 CSV · not a UTF-8 or GBK CSV file")
        return [list(r) for r in csv.reader(io.StringIO(text))]
    if suffix in (".xlsx", ".xlsm"):
        from openpyxl import load_workbook

        try:
            wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many kinds on a damaged file
            raise JudgingError(f"评委名单 {path_name} 无法读取 · cannot read the roster workbook: {exc}") from exc
        ws = next((w for w in wb.worksheets if "评委" in w.title), wb.worksheets[0])
        return [list(r) for r in ws.iter_rows(values_only=True)]
    raise JudgingError(f"评委名单须为 .xlsx 或 .csv 文件：{path_name} · the roster must be an .xlsx or .csv file")


def parse_roster(campaign_id: str, path_name: str, data: bytes) -> Roster:
    """Read a roster file's bytes; raise :class:`JudgingError` listing every bad row."""
    rows = _rows_of(path_name, data)
    header_at = next(
        (i for i, r in enumerate(rows[:10]) if sum(1 for c in r if _column_of(c) in REQUIRED) == len(REQUIRED)),
        None,
    )
    if header_at is None:
        raise JudgingError(
            f"评委名单 {path_name} 的前十行中找不到表头（姓名、单位、省份）· no header row with name, unit and "
            "province in the first ten rows"
        )
    cols: dict[str, int] = {}
    for i, cell in enumerate(rows[header_at]):
        key = _column_of(cell)
        if key and key not in cols:
            cols[key] = i
    problems: list[str] = []
    judges: list[JudgeRecord] = []
    seen: dict[str, int] = {}
    for n, row in enumerate(rows[header_at + 1 :], start=header_at + 2):

        def cell(key: str, row: list[Any] = row) -> str | None:
            i = cols.get(key)
            value = row[i] if i is not None and i < len(row) else None
            return normalise_text(str(value)) if value is not None and str(value).strip() else None

        name, unit, province = cell("name"), cell("unit"), cell("province")
        if not any((name, unit, province, cell("expertise"))):
            continue  # blank line
        missing = [
            label
            for key, label in (("name", "姓名 name"), ("unit", "单位 unit"), ("province", "省份 province"))
            if not cell(key)
        ]
        if missing:
            problems.append(f"第 {n} 行缺少 {'、'.join(missing)} · row {n} lacks {', '.join(missing)}")
            continue
        assert name and unit and province
        full = canonical_province(province)
        head = match_province(full or "")
        if head is None or head[1]:
            problems.append(f"第 {n} 行：无法识别的省份“{province}” · row {n}: unknown province {province!r}")
            continue
        explicit = cell("id")
        if explicit and not _ID.match(explicit):
            problems.append(
                f"第 {n} 行：编号“{explicit}”只能含字母、数字、_ 和 - · row {n}: id {explicit!r} may only "
                "hold letters, digits, _ and -"
            )
            continue
        jid = explicit or judge_id(campaign_id, name, unit)
        if jid in seen:
            problems.append(f"第 {n} 行与第 {seen[jid]} 行是同一评委（{jid}）· row {n} repeats row {seen[jid]} ({jid})")
            continue
        seen[jid] = n
        judges.append(
            JudgeRecord(
                id=jid,
                name=name,
                unit=unit,
                province=head[0],
                expertise=expertise_terms(cell("expertise")),
                email=cell("email"),
            )
        )
    if problems:
        raise JudgingError(f"评委名单 {path_name} 有误 · the roster {path_name} has errors", problems)
    if not judges:
        raise JudgingError(f"评委名单 {path_name} 中没有评委 · the roster {path_name} lists no judge")
    return Roster(sorted(judges, key=lambda j: j.id), hashlib.sha256(data).hexdigest(), path_name)


def read_roster(campaign_id: str, path: Path) -> Roster:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise JudgingError(f"无法读取评委名单 {path} · cannot read the roster: {exc.strerror or exc}") from exc
    return parse_roster(campaign_id, Path(path).name, data)


def conflict_of(judge: JudgeRecord, unit: str | None, province: str | None, rules: Conflicts) -> str | None:
    """``same_unit`` or ``same_province`` when the judge may not score an entry of ``unit``/``province``."""
    if rules.same_unit and unit and normalise_entity(unit) == normalise_entity(judge.unit):
        return "same_unit"
    if rules.same_province and province and canonical_province(province) == canonical_province(judge.province):
        return "same_province"
    return None


def write_roster_csv(judges: Sequence[JudgeRecord], path: Path) -> Path:
    """A roster file in the format :func:`read_roster` reads (for tests and templates)."""
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["编号 id", "姓名 name", "单位 unit", "省份 province", "专业领域 expertise", "邮箱 email"])
        for j in judges:
            writer.writerow(safe_row([j.id, j.name, j.unit, j.province, "、".join(j.expertise), j.email or ""]))
    return path
