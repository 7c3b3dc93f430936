"""Where submissions come from besides the local inbox: the units' summary sheet and an S3 prefix.

Units upload their packages to a cloud drive and e-mail the share link (四、报送方式); most also
send a summary sheet (汇总表) listing every recommended work or account. :func:`read_summary_sheet`
reads that sheet, however it was laid out, into :class:`SheetRow` records plus a list of
:class:`SheetProblem` for the operator. :func:`plan_downloads` splits the rows into links that can be
fetched directly and cloud-drive shares that a person must download (:class:`PendingDownload`).
:func:`match_rows_to_packages` pairs sheet rows with the packages that arrived.

:func:`discover_s3` treats a prefix of the object store as an inbox, and :func:`materialise` copies
one of its packages into a local scratch folder so the ordinary intake code can read it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import os
import re
import secrets
import shutil
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, tzinfo
from pathlib import Path, PurePosixPath
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from kepu.campaign import Campaign, Kind
from kepu.errors import KepuError, StorageError
from kepu.intake.packages import FolderName, is_junk, submission_id
from kepu.provinces import match_province
from kepu.storage import ObjectStore, S3Store

log = logging.getLogger(__name__)

LinkKind = Literal["http", "share", "invalid"]
RemoteKind = Literal["folder", "archive", "file"]


class SheetError(KepuError):
    """The summary sheet cannot be read at all (wrong format, required columns missing)."""

    def __init__(self, path: Path, message_zh: str, message_en: str, missing: Sequence[str] = ()) -> None:
        self.path = path
        self.message_zh = message_zh
        self.message_en = message_en
        self.missing = list(missing)
        super().__init__(f"{path.name}: {message_zh} / {message_en}")


@dataclass(frozen=True)
class SheetProblem:
    """Something in one row (or the whole sheet, ``row_number`` None) an operator should look at."""

    row_number: int | None
    column: str | None
    message_zh: str
    message_en: str


@dataclass(frozen=True)
class SheetRow:
    """One recommended work or account as the summary sheet lists it."""

    row_number: int
    kind: Kind
    channel: str | None
    unit: str | None
    province: str | None
    title: str
    link: str | None = None
    extraction_code: str | None = None
    received_at: datetime | None = None
    contact: str | None = None
    phone: str | None = None
    email: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    #: Row number of the earlier row this one repeats (same kind, title and unit), else None.
    duplicate_of: int | None = None

    @property
    def link_kind(self) -> LinkKind | None:
        return classify_link(self.link) if self.link else None


@dataclass(frozen=True)
class SheetResult:
    path: Path
    sheet_name: str | None
    header_row: int
    rows: list[SheetRow]
    problems: list[SheetProblem]


# --- header recognition ----------------------------------------------------------------------------

#: Header aliases per field, in order of preference: when two columns map to one field, the one
#: with the earlier alias wins and the other is kept in ``extra``. Headers are compared after
#: :func:`_norm_header` (NFKC, no spaces or line breaks, no parenthesised notes, lower case).
_FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "seq": ("序号", "编号", "no", "no.", "#"),
    "kind": (
        "类型",
        "类别",
        "作品类型",
        "作品类别",
        "申报类型",
        "报送类型",
        "推荐类型",
        "参评类型",
        "征集类型",
        "项目类型",
        "申报类别",
        "type",
        "kind",
    ),
    "channel": (
        "推荐渠道",
        "报送渠道",
        "征集渠道",
        "申报渠道",
        "渠道",
        "征集方式",
        "推荐方式",
        "报送方式",
        "推荐类别",
        "报送类别",
        "来源",
        "channel",
    ),
    "unit": (
        "报送单位",
        "报送单位或个人",
        "报送单位名称",
        "单位名称",
        "申报单位",
        "申报单位名称",
        "申报人",
        "推荐单位",
        "推荐单位名称",
        "所属单位",
        "单位",
        "unit",
    ),
    "province": (
        "省份",
        "省",
        "省市",
        "省区市",
        "省份地区",
        "所在省份",
        "所属省份",
        "所在地区",
        "地区",
        "province",
    ),
    "video_title": (
        "作品名称",
        "微视频名称",
        "视频名称",
        "微视频作品名称",
        "作品标题",
        "视频标题",
        "作品名",
        "title",
    ),
    "account_title": ("科普号名称", "账号名称", "帐号名称", "科普号", "账号", "account"),
    "title": (
        "作品/科普号名称",
        "科普号/作品名称",
        "作品或科普号名称",
        "科普号或作品名称",
        "作品/账号名称",
        "名称",
    ),
    "link": (
        "网盘链接",
        "网盘链接地址",
        "报送材料网盘链接地址",
        "链接地址",
        "下载地址",
        "下载链接",
        "网盘地址",
        "百度网盘链接",
        "百度网盘链接地址",
        "百度云链接",
        "百度网盘",
        "作品链接",
        "分享链接",
        "链接",
        "url",
        "link",
    ),
    "extraction_code": ("提取码", "网盘提取码", "提取密码", "访问码", "密码", "code"),
    "received_at": (
        "接收时间",
        "报送时间",
        "提交时间",
        "收到时间",
        "发送时间",
        "邮件时间",
        "接收日期",
        "报送日期",
        "提交日期",
        "收到日期",
        "received",
    ),
    "contact": ("联系人", "联系人姓名", "负责人", "姓名", "contact"),
    "phone": ("联系电话", "电话", "手机", "手机号", "手机号码", "联系人电话", "联系方式", "phone"),
    "email": ("邮箱", "电子邮箱", "电子邮件", "邮件地址", "联系邮箱", "email", "e-mail", "mail"),
}

#: Aliases too generic to be recognised as the end of a longer header (推荐单位名称 is no title).
_NO_SUFFIX_MATCH = {"名称", "单位", "省", "类型", "类别", "链接", "密码", "姓名", "账号", "科普号", "来源", "#"}

#: A header mentioning these is a subject field (类别（专业领域）), never the entry's kind.
_SUBJECT_WORDS = ("专业", "领域", "学科")

_TITLE_FIELDS = ("video_title", "account_title", "title")
_FIELD_LABELS: dict[str, tuple[str, str]] = {
    "title": ("作品名称/科普号名称", "title"),
    "unit": ("报送单位", "unit"),
}
_HEADER_SCAN_ROWS = 10
_PAREN_RE = re.compile(r"[(（\[【][^)）\]】]*[)）\]】]")


def _norm_header(value: str) -> str:
    text = unicodedata.normalize("NFKC", value)
    text = _PAREN_RE.sub("", text)
    text = "".join(ch for ch in text if not ch.isspace())
    return text.strip("*:：").lower()


def _header_field(raw: str) -> tuple[str, int] | None:
    """(field, preference) of a header cell, or None when it names no known field."""
    if not raw.strip():
        return None
    norm = _norm_header(raw)
    if not norm:
        return None
    subject = any(w in unicodedata.normalize("NFKC", raw) for w in _SUBJECT_WORDS)
    best: tuple[str, int, int] | None = None  # field, preference, alias length
    for fname, aliases in _FIELD_ALIASES.items():
        if subject and fname == "kind":
            continue
        for i, alias in enumerate(aliases):
            if norm == alias:
                return fname, i
            if (
                len(norm) <= 20
                and alias not in _NO_SUFFIX_MATCH
                and not alias.isascii()  # "subtitle" is no title
                and norm.endswith(alias)
                and (best is None or len(alias) > best[2])
            ):
                # A suffix match is weaker than any exact one.
                best = (fname, 100 + i, len(alias))
    return (best[0], best[1]) if best else None


# --- reading the grid ------------------------------------------------------------------------------


@dataclass
class _Grid:
    name: str | None
    cells: list[list[Any]]
    links: dict[tuple[int, int], str]  # (row index, column index) -> hyperlink target
    cut: tuple[bool, bool] = (False, False)  # rows, columns left unread past the caps


#: A summary sheet lists a campaign's entries (a few thousand at most); past these it is not read on.
MAX_SHEET_ROWS = 20_000
MAX_SHEET_COLS = 100
MAX_CSV_BYTES = 32 * 1024 * 1024


def _read_xlsx(path: Path) -> list[_Grid]:
    from kepu.xlsx_read import WorkbookError, read_sheets

    try:
        sheets = read_sheets(path, max_rows=MAX_SHEET_ROWS, max_cols=MAX_SHEET_COLS)
    except WorkbookError as exc:
        raise SheetError(
            path, f"无法读取Excel文件：{exc.reason_zh}", f"cannot read the workbook: {exc.reason_en}"
        ) from exc
    except OSError as exc:
        raise SheetError(path, f"无法读取文件（{exc}）", f"cannot read the file ({exc})") from exc
    grids: list[_Grid] = []
    for sheet in sheets:
        cells = sheet.rows
        links = {(r - 1, c - 1): target for (r, c), target in sheet.links.items()}
        # Merged cells hold their value only in the top-left cell: spread it over the range,
        # so a unit merged down over its ten works is on each of them.
        for r1, c1, r2, c2 in sheet.merged:
            r0, c0 = r1 - 1, c1 - 1
            if r0 >= len(cells) or c0 >= len(cells[r0]):
                continue
            value = cells[r0][c0]
            for r in range(r0, min(r2, len(cells))):
                for c in range(c0, min(c2, len(cells[r]))):
                    cells[r][c] = value
        grid = _Grid(sheet.title, cells, links)
        grid.cut = (sheet.rows_cut, sheet.cols_cut)
        grids.append(grid)
    return grids


def _decode_csv(path: Path, data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    for enc in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    raise SheetError(path, "CSV文件既不是UTF-8也不是GB18030编码", "the CSV file is neither UTF-8 nor GB18030")


def _read_csv(path: Path) -> list[_Grid]:
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_CSV_BYTES + 1)
    except OSError as exc:
        raise SheetError(path, f"无法读取文件（{exc}）", f"cannot read the file ({exc})") from exc
    if len(data) > MAX_CSV_BYTES:
        raise SheetError(
            path, f"CSV文件超过 {MAX_CSV_BYTES} 字节，未读取", f"the CSV file is over {MAX_CSV_BYTES} bytes; not read"
        )
    text = _decode_csv(path, data)
    try:
        dialect: Any = csv.Sniffer().sniff(text[:8192], delimiters=",\t;")
    except csv.Error:
        dialect = csv.excel
    cells: list[list[Any]] = []
    cut = (False, False)
    try:
        for r in csv.reader(io.StringIO(text.replace("\0", ""), newline=""), dialect):
            if len(cells) >= MAX_SHEET_ROWS:
                cut = (True, cut[1])
                break
            if len(r) > MAX_SHEET_COLS:
                cut = (cut[0], True)
                r = r[:MAX_SHEET_COLS]
            cells.append(list(r))
    except csv.Error as exc:
        raise SheetError(path, f"CSV文件格式错误（{exc}）", f"the CSV file is malformed ({exc})") from exc
    return [_Grid(None, cells, {}, cut)]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date | time):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    return str(value).strip()


# --- cell values -----------------------------------------------------------------------------------

_KIND_ACCOUNT_WORDS = ("科普号", "账号", "帐号", "公众号", "account")
_KIND_VIDEO_WORDS = ("微视频", "视频", "作品", "动画", "动漫", "video")

#: Channel synonyms beyond each channel's own key and label; used only when the campaign has
#: that channel. Checked in order, so 非会员 is seen before 会员单位.
_CHANNEL_WORDS: tuple[tuple[str, str], ...] = (
    ("非会员", "other"),
    ("省级", "provincial"),
    ("省协会", "provincial"),
    ("省推荐", "provincial"),
    ("单位会员", "unit_member"),
    ("会员单位", "unit_member"),
    ("个人会员", "individual_member"),
    ("自荐", "other"),
    ("社会征集", "other"),
    ("其他", "other"),
    ("其它", "other"),
)


def _norm_value(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split()).lower()


def parse_kind(value: str) -> Kind | None:
    """``video`` or ``account`` from a 类型 cell (微视频/视频/作品 vs 科普号/账号), else None."""
    norm = _norm_value(value)
    if not norm:
        return None
    if any(w in norm for w in _KIND_ACCOUNT_WORDS):
        return "account"
    if any(w in norm for w in _KIND_VIDEO_WORDS):
        return "video"
    return None


def parse_channel(value: str, campaign: Campaign) -> str | None:
    """The campaign channel key a Chinese channel label names, or None when it names none."""
    norm = _norm_value(value)
    if not norm:
        return None
    for key, ch in campaign.channels.items():
        if norm in (key.lower(), _norm_value(ch.label_zh), _norm_value(ch.label_en)):
            return key
    for word, key in _CHANNEL_WORDS:
        if word in norm and key in campaign.channels:
            return key
    return None


# URLs are ASCII here: the text is NFKC-normalised first, and a Chinese label glued to the end of a
# URL (…/s/1abc提取码) must not become part of it.
_URL_RE = re.compile(
    r"(?:https?://|(?<![A-Za-z0-9.])(?:www\.|pan\.baidu\.com/))[A-Za-z0-9\-._~:/?#\[\]@!$&*+=%]+", re.IGNORECASE
)
_CODE_RE = re.compile(
    r"(?:提取码|提取密码|访问码|密码|pwd|code)\s*[:：=]?\s*([A-Za-z0-9]{4,8})(?![A-Za-z0-9])", re.IGNORECASE
)


def split_link_cell(text: str) -> tuple[str | None, str | None, int]:
    """(first URL, extraction code, number of distinct URLs) found in a link cell.

    Handles what 百度网盘 puts on the clipboard: ``链接: https://pan.baidu.com/s/1abc 提取码: x7k2``,
    and a code carried in the URL itself (``?pwd=x7k2``).
    """
    norm = unicodedata.normalize("NFKC", text)
    urls = list(dict.fromkeys(m.group(0).rstrip(".。") for m in _URL_RE.finditer(norm)))
    url = urls[0] if urls else None
    if url and not re.match(r"https?://", url, re.IGNORECASE):
        url = "https://" + url
    code: str | None = None
    rest = _URL_RE.sub(" ", norm)
    m = _CODE_RE.search(rest)
    if m:
        code = m.group(1)
    elif url:
        pwd = parse_qs(urlsplit(url).query).get("pwd")
        if pwd and re.fullmatch(r"[A-Za-z0-9]{4,8}", pwd[0]):
            code = pwd[0]
    return url, code, len(urls)


_DATE_RE = re.compile(
    r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?"
    r"(?:\s*[T ]?\s*(上午|下午|晚上|中午|凌晨)?\s*(\d{1,2})\s*[:：时点]\s*(?:(\d{1,2})\s*[:：分]?\s*"
    r"(?:(\d{1,2})(?:\.\d+)?\s*秒?)?)?)?\s*$"
)
#: Excel serial day numbers of 2000-01-01 and 2100-01-01: a bare number in between is a date.
_EXCEL_SERIAL_RANGE = (36526.0, 73051.0)
_EXCEL_EPOCH = datetime(1899, 12, 30)


def parse_received_at(value: Any, tz: tzinfo) -> datetime | None:
    """An aware datetime from an Excel date cell, a serial number or a Chinese or ISO date string.

    Times without an offset are local to ``tz`` (the campaign's time zone, Beijing time).
    Raises ValueError when the value is there but is no date.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime.combine(value, time())
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if not _EXCEL_SERIAL_RANGE[0] <= float(value) <= _EXCEL_SERIAL_RANGE[1]:
            raise ValueError(f"number {value} is not a date")
        dt = _EXCEL_EPOCH + timedelta(days=float(value))
        dt = dt.replace(microsecond=0)
    else:
        text = unicodedata.normalize("NFKC", str(value)).strip()
        try:
            number = float(text)
        except ValueError:
            number = None
        if number is not None:
            return parse_received_at(number, tz)
        try:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            m = _DATE_RE.match(text)
            if not m:
                raise ValueError(f"{value!r} is not a date") from None
            y, mo, d, half, hh, mm, ss = m.groups()
            hour = int(hh) if hh else 0
            if (half in ("下午", "晚上") and hour < 12) or (half == "中午" and hour < 11):
                hour += 12
            dt = datetime(int(y), int(mo), int(d), hour, int(mm or 0), int(ss or 0))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)
    return dt


# --- the sheet -------------------------------------------------------------------------------------


@dataclass
class _Header:
    row_index: int  # index of the last header line
    columns: dict[str, int]  # field -> column index
    labels: dict[int, str]  # column index -> header text, every non-empty header cell


def _row_fields(row: Sequence[Any]) -> dict[int, tuple[str, int]]:
    out: dict[int, tuple[str, int]] = {}
    for c, v in enumerate(row):
        hit = _header_field(_text(v)) if isinstance(v, str) else None
        if hit:
            out[c] = hit
    return out


def _find_header(cells: list[list[Any]]) -> _Header | None:
    best: tuple[int, int] | None = None  # (distinct fields, row index)
    scanned = cells[:_HEADER_SCAN_ROWS]
    per_row = [_row_fields(r) for r in scanned]
    for i, hits in enumerate(per_row):
        n = len({f for f, _ in hits.values()})
        if n >= 2 and (best is None or n > best[0]):
            best = (n, i)
    if best is None:
        return None
    top = best[1]
    labels = {c: _text(v) for c, v in enumerate(cells[top]) if _text(v)}
    hits = dict(per_row[top])
    last = top
    # A two-line header: a merged group (联系方式) over sub-headers (电话, 邮箱) on the next line.
    if top + 1 < len(scanned):
        below = per_row[top + 1]
        new = {c: h for c, h in below.items() if c not in hits or _text(cells[top][c]) != _text(cells[top + 1][c])}
        if new and len(new) >= max(1, len(below) // 2) and _looks_like_header_line(cells[top + 1], below):
            for c, h in new.items():
                hits[c] = h
                labels[c] = _text(cells[top + 1][c])
            for c, v in enumerate(cells[top + 1]):
                if _text(v) and c not in labels:
                    labels[c] = _text(v)
            last = top + 1
    columns: dict[str, int] = {}
    chosen: dict[str, int] = {}
    for c, (fname, pref) in sorted(hits.items()):
        if fname not in columns or pref < chosen[fname]:
            columns[fname] = c
            chosen[fname] = pref
    return _Header(last, columns, labels)


def _looks_like_header_line(row: Sequence[Any], hits: dict[int, tuple[str, int]]) -> bool:
    """A line is a sub-header when every filled cell is text and most of them are known headers."""
    filled = [v for v in row if _text(v)]
    return bool(filled) and all(isinstance(v, str) for v in filled) and len(hits) * 2 >= len(filled)


def _norm_key(text: str | None) -> str:
    """Comparison form of a title or unit: NFKC, lower case, no spaces, punctuation or symbols."""
    if not text:
        return ""
    norm = unicodedata.normalize("NFKC", text).lower()
    return "".join(ch for ch in norm if not (ch.isspace() or unicodedata.category(ch)[0] in "PS"))


class _RowReader:
    def __init__(self, grid: _Grid, header: _Header, campaign: Campaign, default_channel: str | None) -> None:
        self.grid = grid
        self.header = header
        self.campaign = campaign
        self.default_channel = default_channel
        self.tz = ZoneInfo(campaign.campaign.timezone)
        self.problems: list[SheetProblem] = []

    def label(self, fname: str) -> str:
        return self.header.labels.get(self.header.columns[fname], fname)

    def problem(self, row_number: int, fname: str | None, zh: str, en: str) -> None:
        column = self.label(fname) if fname and fname in self.header.columns else fname
        self.problems.append(SheetProblem(row_number, column, zh, en))

    def raw(self, row: Sequence[Any], fname: str) -> Any:
        c = self.header.columns.get(fname)
        return row[c] if c is not None and c < len(row) else None

    def text(self, row: Sequence[Any], fname: str) -> str:
        return _text(self.raw(row, fname))

    def read(self, r: int, row: Sequence[Any]) -> SheetRow | None:
        number = r + 1
        titles = {f: self.text(row, f) for f in _TITLE_FIELDS if f in self.header.columns}
        title_field = next((f for f in _TITLE_FIELDS if titles.get(f)), None)
        if title_field is None:
            self.problem(
                number,
                None,
                "该行缺少作品名称或科普号名称，未计入",
                "the row has no title (work or account name) and is left out",
            )
            return None
        title = " ".join(titles[title_field].split())
        kind = self._kind(number, row, title_field, titles)
        unit = " ".join(self.text(row, "unit").split()) or None
        if unit is None:
            self.problem(number, "unit", "报送单位未填写", "the submitting unit is empty")
        province = self._province(number, row, unit)
        channel = self._channel(number, row)
        link, code = self._link(number, r, row)
        received_at: datetime | None = None
        try:
            received_at = parse_received_at(self.raw(row, "received_at"), self.tz)
        except ValueError:
            value = self.text(row, "received_at")
            self.problem(
                number,
                "received_at",
                f"无法识别的接收时间“{value}”",
                f"the time received {value!r} is not a recognisable date",
            )
        used = set(self.header.columns.values())
        extra = {
            self.header.labels.get(c, f"column {c + 1}"): _text(v)
            for c, v in enumerate(row)
            if c not in used and _text(v)
        }
        return SheetRow(
            row_number=number,
            kind=kind,
            channel=channel,
            unit=unit,
            province=province,
            title=title,
            link=link,
            extraction_code=code,
            received_at=received_at,
            contact=self.text(row, "contact") or None,
            phone=self.text(row, "phone") or None,
            email=self.text(row, "email") or None,
            extra=extra,
        )

    def _kind(self, number: int, row: Sequence[Any], title_field: str, titles: dict[str, str]) -> Kind:
        value = self.text(row, "kind")
        kind = parse_kind(value)
        if kind is not None:
            return kind
        inferred: Kind | None = None
        if title_field == "account_title":
            inferred = "account"
        elif title_field == "video_title":
            inferred = "video" if not titles.get("account_title") else None
        if value:
            self.problem(
                number,
                "kind",
                f"无法识别的类型“{value}”，" + ("按所填名称列推断" if inferred else "按微视频处理"),
                f"unknown kind {value!r}; " + ("inferred from the title column" if inferred else "taken as a video"),
            )
        elif inferred is None:
            self.problem(
                number,
                "kind",
                "无法判断是微视频还是科普号，按微视频处理",
                "cannot tell a video from an account; taken as a video",
            )
        return inferred or "video"

    def _province(self, number: int, row: Sequence[Any], unit: str | None) -> str | None:
        value = unicodedata.normalize("NFKC", self.text(row, "province")).strip()
        if value:
            hit = match_province(value)
            if hit is None:
                self.problem(number, "province", f"无法识别的省份“{value}”", f"unknown province {value!r}")
                return None
            return hit[0]
        if unit:
            hit = match_province(unicodedata.normalize("NFKC", unit))
            if hit:
                return hit[0]
        return None

    def _channel(self, number: int, row: Sequence[Any]) -> str | None:
        if "channel" not in self.header.columns:
            return self.default_channel
        value = self.text(row, "channel")
        if not value:
            if self.default_channel:
                return self.default_channel
            self.problem(number, "channel", "报送渠道未填写", "the channel is empty")
            return None
        channel = parse_channel(value, self.campaign)
        if channel is None:
            known = "、".join(ch.label_zh for ch in self.campaign.channels.values())
            self.problem(
                number,
                "channel",
                f"无法识别的报送渠道“{value}”（应为：{known}）",
                f"unknown channel {value!r} (expected one of: {', '.join(self.campaign.channels)})",
            )
        return channel

    def _link(self, number: int, r: int, row: Sequence[Any]) -> tuple[str | None, str | None]:
        cell = self.text(row, "link")
        url, code_in_cell, n_urls = split_link_cell(cell) if cell else (None, None, 0)
        c = self.header.columns.get("link")
        if url is None and c is not None and (r, c) in self.grid.links:
            url, code_in_cell, n_urls = split_link_cell(self.grid.links[(r, c)])
        if cell and url is None:
            self.problem(number, "link", f"链接单元格中没有网址：“{cell}”", f"no URL in the link cell: {cell!r}")
            # Kept as written, so the entry is listed with what the unit put there (an invalid link).
            url = cell
        elif n_urls > 1:
            self.problem(
                number,
                "link",
                f"链接单元格中有 {n_urls} 个网址，只取第一个",
                f"{n_urls} URLs in the link cell; only the first is used",
            )
        code_col = self.text(row, "extraction_code")
        code_col = "".join(unicodedata.normalize("NFKC", code_col).split())
        if code_col and code_in_cell and code_col.lower() != code_in_cell.lower():
            self.problem(
                number,
                "extraction_code",
                f"提取码列（{code_col}）与链接中的提取码（{code_in_cell}）不一致，使用提取码列",
                f"the extraction code column ({code_col}) disagrees with the link's ({code_in_cell}); "
                "the column is used",
            )
        return url, (code_col or code_in_cell or None)


def read_summary_sheet(path: Path, campaign: Campaign, *, default_channel: str | None = None) -> SheetResult:
    """Read a units' summary sheet (XLSX, or CSV in UTF-8 or GB18030) into rows and problems.

    The header row is looked for in the first ten rows; header text is matched ignoring spaces,
    line breaks, full-width forms and parenthesised notes. Unknown columns are kept in each row's
    ``extra``. ``default_channel`` applies when the sheet has no channel column (a provincial
    association's sheet, say). Raises :class:`SheetError` when the file cannot be read or the
    title or unit column is missing.
    """
    path = Path(path)
    if default_channel is not None and default_channel not in campaign.channels:
        raise ValueError(f"unknown channel {default_channel!r}")
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        grids = _read_xlsx(path)
    elif suffix in (".csv", ".txt", ".tsv"):
        grids = _read_csv(path)
    elif suffix in (".xls", ".et", ".wps"):
        raise SheetError(
            path,
            "不支持旧版Excel（.xls）或WPS表格格式，请另存为 .xlsx 或 CSV",
            "old Excel (.xls) and WPS sheets are not supported; save as .xlsx or CSV",
        )
    else:
        raise SheetError(path, f"不支持的文件类型“{suffix}”", f"unsupported file type {suffix!r}")

    found: list[tuple[_Grid, _Header]] = []
    for grid in grids:
        header = _find_header(grid.cells)
        if header is not None:
            found.append((grid, header))
    complete = [(g, h) for g, h in found if "unit" in h.columns and any(f in h.columns for f in _TITLE_FIELDS)]
    if not complete:
        best = max(found, key=lambda gh: len(gh[1].columns), default=None)
        have = best[1].columns if best else {}
        missing = []
        if not any(f in have for f in _TITLE_FIELDS):
            missing.append("title")
        if "unit" not in have:
            missing.append("unit")
        zh = "、".join(_FIELD_LABELS[m][0] for m in missing)
        en = ", ".join(f"{_FIELD_LABELS[m][1]} ({_FIELD_LABELS[m][0]})" for m in missing)
        raise SheetError(
            path, f"汇总表缺少必需的列：{zh}", f"the summary sheet lacks required column(s): {en}", missing
        )
    grid, header = complete[0]
    if len(complete) > 1:
        log.info("%s: %d sheets have a header; reading the first, %r", path.name, len(complete), grid.name)

    reader = _RowReader(grid, header, campaign, default_channel)
    if grid.cut[0]:
        reader.problems.append(
            SheetProblem(
                None,
                None,
                f"汇总表超过 {MAX_SHEET_ROWS} 行，其后的行未读取",
                f"the summary sheet has more than {MAX_SHEET_ROWS} rows; the rest was not read",
            )
        )
    if grid.cut[1]:
        reader.problems.append(
            SheetProblem(
                None,
                None,
                f"汇总表超过 {MAX_SHEET_COLS} 列，其后的列未读取",
                f"the summary sheet has more than {MAX_SHEET_COLS} columns; the rest was not read",
            )
        )
    rows: list[SheetRow] = []
    first_seen: dict[tuple[str, str, str], int] = {}
    for r in range(header.row_index + 1, len(grid.cells)):
        cells = grid.cells[r]
        if not any(_text(v) for v in cells):
            continue
        row = reader.read(r, cells)
        if row is None:
            continue
        key = (row.kind, _norm_key(row.title), _norm_key(row.unit))
        if key in first_seen:
            earlier = first_seen[key]
            reader.problem(
                row.row_number,
                None,
                f"与第 {earlier} 行重复（同一类型、名称和报送单位）",
                f"repeats row {earlier} (same kind, title and unit)",
            )
            row = replace(row, duplicate_of=earlier)
        else:
            first_seen[key] = row.row_number
        rows.append(row)
    log.info(
        "%s: %d row(s), %d problem(s), header on row %d",
        path.name,
        len(rows),
        len(reader.problems),
        header.row_index + 1,
    )
    return SheetResult(path, grid.name, header.row_index + 1, rows, reader.problems)


# --- links -----------------------------------------------------------------------------------------

#: Cloud drives whose share pages need a browser and often a login: never fetched automatically.
_SHARE_HOSTS: tuple[str, ...] = (
    "pan.baidu.com",
    "yun.baidu.com",
    "eyun.baidu.com",
    "weiyun.com",
    "aliyundrive.com",
    "alipan.com",
    "quark.cn",
    "123pan.com",
    "123pan.cn",
    "123684.com",
    "123865.com",
    "123912.com",
    "ilanzou.com",
    "lanzn.com",
    "cloud.189.cn",
    "caiyun.139.com",
    "yun.139.com",
    "pan.xunlei.com",
    "ctfile.com",
    "jianguoyun.com",
    "wenshushu.cn",
    "kdocs.cn",
    "feishu.cn",
    "pan.wo.cn",
    "drive.google.com",
    "dropbox.com",
    "onedrive.live.com",
    "1drv.ms",
    "sharepoint.com",
    "mega.nz",
    "icloud.com",
)
_LANZOU_RE = re.compile(r"(^|\.)lanzou[a-z]?\.com$")
_HOST_RE = re.compile(r"^(localhost|[a-z0-9-]+(\.[a-z0-9-]+)+|\[[0-9a-f:]+\])$")


def classify_link(url: str) -> LinkKind:
    """``share`` for a cloud-drive share page, ``http`` for any other web address, else ``invalid``."""
    text = unicodedata.normalize("NFKC", url or "").strip()
    if not text or any(ch.isspace() for ch in text):
        return "invalid"
    if "://" not in text:
        text = "https://" + text
    try:
        parts = urlsplit(text)
        host = (parts.hostname or "").lower().rstrip(".")
    except ValueError:
        return "invalid"
    if parts.scheme.lower() not in ("http", "https") or not _HOST_RE.match(host):
        return "invalid"
    if _LANZOU_RE.search(host) or any(host == h or host.endswith("." + h) for h in _SHARE_HOSTS):
        return "share"
    return "http"


@dataclass(frozen=True)
class PendingDownload:
    """A listed entry whose material a person must fetch; it goes on the report as awaiting download."""

    title: str
    unit: str | None
    url: str | None
    extraction_code: str | None
    reason_zh: str = "需登录网盘手动下载"
    reason_en: str = "cloud share needs a manual download"
    row_number: int | None = None
    kind: Kind | None = None


def pending_from_row(row: SheetRow, reason_zh: str | None = None, reason_en: str | None = None) -> PendingDownload:
    kwargs: dict[str, Any] = {}
    if reason_zh is not None:
        kwargs["reason_zh"] = reason_zh
    if reason_en is not None:
        kwargs["reason_en"] = reason_en
    return PendingDownload(
        title=row.title,
        unit=row.unit,
        url=row.link,
        extraction_code=row.extraction_code,
        row_number=row.row_number,
        kind=row.kind,
        **kwargs,
    )


@dataclass(frozen=True)
class DownloadPlan:
    direct: list[SheetRow]
    pending: list[PendingDownload]


def plan_downloads(rows: Iterable[SheetRow]) -> DownloadPlan:
    """Rows with a direct link to fetch, and every other row as a :class:`PendingDownload`.

    Rows repeating an earlier row are left to that row. No other row is dropped: a share link,
    an invalid link and a missing link each become a pending entry with its reason.
    """
    direct: list[SheetRow] = []
    pending: list[PendingDownload] = []
    for row in rows:
        if row.duplicate_of is not None:
            continue
        kind = row.link_kind
        if kind == "http":
            direct.append(row)
        elif kind == "share":
            pending.append(pending_from_row(row))
        elif kind == "invalid":
            pending.append(pending_from_row(row, "链接无效，请联系报送单位", "invalid link; contact the unit"))
        else:
            pending.append(pending_from_row(row, "汇总表未填写链接", "no link in the summary sheet"))
    return DownloadPlan(direct, pending)


# --- sheet rows and received packages --------------------------------------------------------------


class RowMatches(dict[str, SheetRow]):
    """Package name → its sheet row; what stayed unpaired on either side is kept alongside."""

    def __init__(self) -> None:
        super().__init__()
        self.unmatched_rows: list[SheetRow] = []
        self.unmatched_packages: list[str] = []


def _unit_agrees(row: SheetRow, _name: str, folder: FolderName) -> bool:
    a, b = _norm_key(row.unit), _norm_key(folder.unit)
    return bool(a and b and (a == b or a in b or b in a))


def _province_agrees(row: SheetRow, _name: str, folder: FolderName) -> bool:
    return bool(row.province and folder.province and row.province == folder.province)


def _pair_unique(
    rows: Sequence[SheetRow],
    packages: Sequence[tuple[str, FolderName]],
    agrees: Callable[[SheetRow, str, FolderName], bool],
) -> list[tuple[SheetRow, str]]:
    """Pairs (row, package) where each is the other's only partner under ``agrees``."""
    row_hits = {id(r): [n for n, f in packages if agrees(r, n, f)] for r in rows}
    pkg_hits = {n: [r for r in rows if agrees(r, n, f)] for n, f in packages}
    return [
        (r, row_hits[id(r)][0]) for r in rows if len(row_hits[id(r)]) == 1 and len(pkg_hits[row_hits[id(r)][0]]) == 1
    ]


def _loose_title(row: SheetRow, name: str, folder: FolderName) -> bool:
    """The row's title inside the package's whole name, or the package's title inside the row's."""
    rt, ft = _norm_key(row.title), _norm_key(folder.title)
    return (len(rt) >= 4 and rt in _norm_key(name)) or (len(ft) >= 4 and ft in rt)


def match_rows_to_packages(rows: Sequence[SheetRow], packages: Sequence[tuple[str, FolderName]]) -> RowMatches:
    """Pair sheet rows with received packages by normalised title.

    Titles are compared without spaces, punctuation and case. When several rows or packages share
    a title, the unit (equal, or one inside the other) and then the province decide; a pair is
    made only when it is unique both ways. What is left is tried once more by containment (the
    title inside a folder name that did not parse, or a shortened title), again only when unique.
    """
    result = RowMatches()
    taken_pkg: set[str] = set()
    taken_row: set[int] = set()

    def take(pairs: list[tuple[SheetRow, str]]) -> None:
        for row, name in pairs:
            if id(row) not in taken_row and name not in taken_pkg:
                result[name] = row
                taken_row.add(id(row))
                taken_pkg.add(name)

    rows_by_title: dict[str, list[SheetRow]] = defaultdict(list)
    for row in rows:
        rows_by_title[_norm_key(row.title)].append(row)
    pkgs_by_title: dict[str, list[tuple[str, FolderName]]] = defaultdict(list)
    for name, folder in packages:
        pkgs_by_title[_norm_key(folder.title)].append((name, folder))

    for key, group in rows_by_title.items():
        cands = pkgs_by_title.get(key, []) if key else []
        if not cands:
            continue
        if len(group) == 1 and len(cands) == 1:
            take([(group[0], cands[0][0])])
            continue
        for test in (_unit_agrees, _province_agrees):
            free_rows = [r for r in group if id(r) not in taken_row]
            free_pkgs = [(n, f) for n, f in cands if n not in taken_pkg]
            take(_pair_unique(free_rows, free_pkgs, test))

    free_rows = [r for r in rows if id(r) not in taken_row]
    free_pkgs = [(n, f) for n, f in packages if n not in taken_pkg]
    take(_pair_unique(free_rows, free_pkgs, _loose_title))

    result.unmatched_rows = [r for r in rows if id(r) not in taken_row]
    result.unmatched_packages = [n for n, _ in packages if n not in taken_pkg]
    if result.unmatched_rows or result.unmatched_packages:
        log.info(
            "%d row(s) without a package, %d package(s) without a row",
            len(result.unmatched_rows),
            len(result.unmatched_packages),
        )
    return result


# --- an S3 prefix as inbox -------------------------------------------------------------------------


@dataclass(frozen=True)
class RemoteObject:
    key: str
    rel: str  # path inside the package (the object's own name for an archive or a lone file)
    size: int
    etag: str


@dataclass(frozen=True)
class RemotePackage:
    """A package waiting under an object-store prefix: a top-level folder, a zip or a lone video."""

    name: str
    kind: RemoteKind
    objects: tuple[RemoteObject, ...]
    fingerprint: str
    submission_id: str

    @property
    def size(self) -> int:
        return sum(o.size for o in self.objects)


def _listing(store: ObjectStore, prefix: str) -> list[tuple[str, int, str]]:
    """(key, size, ETag or sha256) of every object under ``prefix``."""
    if isinstance(store, S3Store):
        from botocore.exceptions import BotoCoreError, ClientError

        full = f"{store.prefix}/{prefix}" if store.prefix else prefix
        cut = len(store.prefix) + 1 if store.prefix else 0
        out: list[tuple[str, int, str]] = []
        try:
            for page in store.client.get_paginator("list_objects_v2").paginate(Bucket=store.bucket, Prefix=full):
                for item in page.get("Contents", []):
                    out.append((str(item["Key"])[cut:], int(item["Size"]), str(item.get("ETag", "")).strip('"')))
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"cannot list objects under {prefix}: {exc}") from exc
        return out
    listed = []
    for key in store.list_keys(prefix):
        obj = store.head(key)
        if obj is not None:
            listed.append((key, obj.size, obj.sha256))
    return listed


def _usable_rel(rel: str) -> bool:
    parts = rel.split("/")
    return all(p and not p.startswith(".") and "\\" not in p and not is_junk(p) for p in parts)


def discover_s3(store: ObjectStore, prefix: str, campaign: Campaign) -> list[RemotePackage]:
    """Every package under ``prefix`` of ``store``, sorted by name.

    The first path segment under the prefix names a package: a "folder" when objects lie below
    it, an archive or a lone video when it is an object itself. Folder placeholders (keys ending
    in ``/``), junk and keys that could not be stored locally are skipped. The fingerprint covers
    every key, size and ETag (or recorded sha256), so a changed package gets a new one.
    """
    prefix = prefix.strip("/")
    prefix = f"{prefix}/" if prefix else ""
    archive_ext = set(campaign.package.archive_extensions)
    video_ext = set(campaign.package.video_extensions)
    folders: dict[str, list[RemoteObject]] = defaultdict(list)
    singles: dict[str, tuple[RemoteKind, RemoteObject]] = {}
    for key, size, etag in _listing(store, prefix):
        rel = key[len(prefix) :]
        if not rel or rel.endswith("/"):
            continue
        if not _usable_rel(rel):
            log.warning("skipping object %s: hidden, junk or not a usable file name", key)
            continue
        head, sep, rest = rel.partition("/")
        if sep:
            folders[head].append(RemoteObject(key, rest, size, etag))
            continue
        ext = PurePosixPath(rel).suffix.lower()
        if ext in archive_ext:
            singles[rel] = ("archive", RemoteObject(key, rel, size, etag))
        elif ext in video_ext:
            singles[rel] = ("file", RemoteObject(key, rel, size, etag))
        else:
            log.info("ignoring object %s at the top of the prefix: not a folder, archive or video", key)
    packages: list[RemotePackage] = []
    for name, objs in folders.items():
        packages.append(_remote(name, "folder", objs, campaign))
    for name, (kind, obj) in singles.items():
        if name in folders:
            log.warning("object %s has the name of a folder package; skipped", obj.key)
            continue
        packages.append(_remote(name, kind, [obj], campaign))
    return sorted(packages, key=lambda p: p.name)


def _remote(name: str, kind: RemoteKind, objs: list[RemoteObject], campaign: Campaign) -> RemotePackage:
    h = hashlib.sha256()
    ordered = sorted(objs, key=lambda o: o.rel)
    for o in ordered:
        h.update(f"{o.rel}\0{o.size}\0{o.etag}\n".encode())
    return RemotePackage(name, kind, tuple(ordered), h.hexdigest(), submission_id(campaign.id, name))


def materialise(remote: RemotePackage, store: ObjectStore, dest: Path) -> Path:
    """Download ``remote`` into the folder ``dest`` and return its local path.

    A folder package becomes ``dest/<name>/…`` and an archive or a lone video ``dest/<name>``, so
    :func:`kepu.intake.packages.package_files`, :func:`kepu.intake.packages.classify` and
    :func:`kepu.intake.packages.safe_extract` read it as if it had arrived in the inbox. Each object is
    streamed to disk; an earlier copy is replaced only once the new one is complete.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    target = (root / remote.name).resolve()
    if target.parent != root or not _usable_rel(remote.name):
        raise StorageError(f"package name {remote.name!r} cannot be used as a local file name")
    staging = root / f".staging-{secrets.token_hex(8)}"
    staging.mkdir()
    try:
        if remote.kind == "folder":
            built = staging / remote.name
            for obj in remote.objects:
                local = (built / obj.rel).resolve()
                if not local.is_relative_to(built.resolve()):
                    raise StorageError(f"object {obj.key} would be written outside {built}")
                store.download(obj.key, local)
        else:
            built = store.download(remote.objects[0].key, staging / remote.name)
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
        os.replace(built, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("materialised %s (%d object(s), %d bytes) at %s", remote.name, len(remote.objects), remote.size, target)
    return target
