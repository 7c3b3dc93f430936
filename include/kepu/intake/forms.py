"""Application forms (附件1 科普号申报表, 附件2 微视频申报表) read from Word or Excel files.

Units fill the notice's forms in Word or WPS and change them as they go: labels are retyped with
spaces, full-width characters and line breaks (``类  别\\n（专业领域）``), values are typed into the
label cell (``联系电话：010-1234``) or spread over unmerged cells, cells are merged both ways, tables
are nested, pictures of signatures and seals are pasted in, and the template's own hints
(``（300字以内）``, the pledge text) are left in place. The reader therefore works on a grid of
distinct cells (a merged cell is one cell however many grid positions it covers), finds label cells
by a normalised key, and takes the value from the same cell, the cells to its right or the cell
below. Template hints are removed from values, so a blank template reads as all fields empty.

Old binary Word/WPS files, PDFs and damaged files raise :class:`MaterialError` ``M-UNREADABLE``;
a readable file with no form in it raises ``M-FORM-MISSING``.
"""

from __future__ import annotations

import logging
import re
import unicodedata
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from kepu.campaign import Campaign, Kind
from kepu.errors import MaterialError
from kepu.findings import Finding, make_finding
from kepu.rules import Code
from kepu.safezip import MemberError, read_member

log = logging.getLogger(__name__)

STAGE = "form"
FormFormat = Literal["docx", "xlsx"]

_BRACKETS = re.compile(r"[（(][^）)]*[）)]")


def normalise_label(text: str) -> str:
    """A label without spaces, colons, asterisks and bracketed explanations (``类  别（专业领域）`` → ``类别``)."""
    text = unicodedata.normalize("NFKC", text)
    text = _BRACKETS.sub("", text)
    return re.sub(r"[\s:：*＊]", "", text)


@lru_cache(maxsize=8192)
def _key(text: str) -> str:
    """Matching key of a label: :func:`normalise_label`, case-folded, list punctuation dropped.

    An opening bracket that is never closed (``类别（专业领域``) starts an explanation too.
    """
    k = normalise_label(text).casefold()
    k = re.sub(r"[（(].*$", "", k)
    return re.sub(r"[、,，.。;；/\\\-_·?？!！]", "", k)


# --- the forms' vocabulary ---------------------------------------------------------------------------

# Other spellings units use for the notice's labels, keyed by the key of the campaign's field name.
# Values that a submitter might plausibly type into a value cell (会员, 科普号, 粉丝 …) are left out on
# purpose: a value cell reading like a label would be taken for one.
_ALIASES: dict[str, tuple[str, ...]] = {
    "单位名称": ("申报人", "申报单位", "申报单位名称", "单位名称申报人"),
    "是否为会员": ("是否会员", "是否协会会员", "是否为协会会员"),
    "微视频名称": ("视频名称", "作品名称", "微视频作品名称"),
    "类别": ("类别专业领域", "作品类别", "专业领域"),
    "播出时间": ("发布时间", "首播时间", "播放时间"),
    "主创人员": ("主创人员或单位", "主创团队", "主创单位"),
    "报送材料网盘链接地址": ("网盘链接地址", "网盘链接", "报送材料网盘链接", "百度网盘链接", "网盘地址"),
    "联系电话": ("电话", "手机", "手机号码", "联系手机", "联系方式"),
    "电子邮箱": ("邮箱", "电子邮件", "email", "e-mail"),
    "内容简介": ("简介", "作品简介", "内容介绍"),
    "作者承诺": ("承诺", "作者承诺书"),
    "推荐单位": ("推荐单位意见", "推荐单位盖章"),
    "科普号名称": ("账号名称", "帐号名称", "科普号账号名称"),
    "所属单位": ("所属单位团队个人",),
    "负责人签名": ("负责人", "负责人签字"),
    "姓名": ("负责人姓名",),
    "邮箱": ("电子邮箱", "电子邮件", "email", "e-mail"),
    "粉丝量": ("粉丝数", "粉丝数量", "粉丝总量", "粉丝总数"),
    "主要从事科普创作经历主要成绩": (
        "主要从事科普创作经历",
        "科普创作经历",
        "科普创作经历主要成绩",
        "创作经历及主要成绩",
        "主要成绩",
    ),
    "推荐单位意见": ("推荐意见",),
}

# Labels that are not fields of the campaign but carry what the account checks need.
_EXTRA_LABELS: dict[str, tuple[str, ...]] = {
    "作品数": ("作品数", "作品数量", "发布作品数", "发布作品数量", "作品总数", "发布作品"),
}

# Fields whose cell is a sign-off block (signature, seal, date), parsed by _parse_signoff. The notice's
# layout puts them there; a campaign renaming them keeps working through the plain-value path.
_PLEDGE = "作者承诺"
_RECOMMENDER = "推荐单位"
_OWNER = "所属单位"
_OWNER_SIGNATURE = "负责人签名"
_OPINION = "推荐单位意见"
_SIGNOFF_FIELDS = {_PLEDGE, _RECOMMENDER, _OWNER, _OPINION}
# ``负责人（签名）：`` is a line inside the 所属单位 cell of the notice's layout: it is a label only when
# it has a cell of its own, never when it opens a cell that goes on with a value.
_WHOLE_CELL_ONLY = {"负责人", "负责人签字"}

# Signature and seal blocks: signed and stamped by hand on the printed form (注：签字须手写), so a
# .docx never holds them and a block showing only its template is normal. They are never a field
# finding: the scanned signed page is their evidence (M-FORM-PLEDGE, M-FORM-SEAL, K-SEAL).
_SIGNATURE_BLOCKS = frozenset({_PLEDGE, _RECOMMENDER, _OPINION, _OWNER_SIGNATURE})
# The recommending unit's block of each form (its seal: M-FORM-SEAL).
_RECOMMENDER_BLOCKS = frozenset({_RECOMMENDER, _OPINION})


def is_signature_block(name: str) -> bool:
    """Whether the form field ``name`` is a signature or seal block (作者承诺, 推荐单位, 负责人签名 …)."""
    return _key(name) in _SIGNATURE_BLOCKS


_FIELD_EN: dict[str, str] = {
    "单位名称": "applicant unit",
    "是否为会员": "membership",
    "微视频名称": "video title",
    "类别": "category (field)",
    "播出时间": "air date",
    "主创人员": "creators",
    "报送材料网盘链接地址": "cloud-drive link",
    "联系电话": "phone",
    "电子邮箱": "e-mail",
    "内容简介": "synopsis",
    "作者承诺": "author's pledge",
    "推荐单位": "recommending unit",
    "科普号名称": "account name",
    "所属单位": "owner (unit, team or person)",
    "负责人签名": "signature of the person in charge",
    "姓名": "name",
    "工作单位": "employer",
    "职务": "position",
    "职称": "professional title",
    "专业领域": "field",
    "粉丝量": "followers",
    "邮箱": "e-mail",
    "主要从事科普创作经历主要成绩": "science-communication experience and achievements",
    "推荐单位意见": "recommending unit's opinion",
}

_TITLES: dict[Kind, str] = {"video": "微视频申报表", "account": "科普号申报表"}
_KINDS: tuple[Kind, ...] = ("video", "account")


def _field_keys(name: str) -> list[str]:
    k = _key(name)
    return [k, *(_key(a) for a in _ALIASES.get(k, ()))]


def _vocabulary(names: Iterable[str]) -> dict[str, str]:
    """Label key → the field name it stands for (first field wins for a shared alias)."""
    return dict(_vocabulary_of(tuple(names)))


@lru_cache(maxsize=64)
def _vocabulary_of(names: tuple[str, ...]) -> dict[str, str]:
    vocab: dict[str, str] = {}
    for name in names:
        for k in _field_keys(name):
            vocab.setdefault(k, name)
    for extra, aliases in _EXTRA_LABELS.items():
        for a in aliases:
            vocab.setdefault(_key(a), extra)
    return vocab


# --- template hints that are not values -------------------------------------------------------------

_HINT_WORDS = ("字以内", "附页", "主体注册", "盖章", "公章", "公单", "签字", "签名", "注明", "百度网盘")
_HINT_BRACKET = re.compile(r"[（(]([^（）()]*)[）)]")
#: 作者承诺 of 附件2, verbatim from the notice.
PLEDGE_TEXT = (
    "本人（本单位）郑重承诺：对所提交的微视频作品拥有自主知识产权，同意在科普中国、科创筑梦、微信、抖音等媒体平台上"
    "进行公益展播。如在评选期间出现任何纠纷，将由本人（本单位）承担后果。"
)
_PLEDGE_SQUEEZED = re.sub(r"\s", "", PLEDGE_TEXT)


def _strip_hints(text: str) -> str:
    """Remove the template's bracketed hints (``（300字以内）``, ``（可别附页）`` …) from a value."""

    def drop(m: re.Match[str]) -> str:
        inner = re.sub(r"\s", "", m.group(1))
        return "" if any(w in inner for w in _HINT_WORDS) else m.group(0)

    return _HINT_BRACKET.sub(drop, text)


def _clean_value(text: str) -> str:
    lines = [_strip_hints(line).strip() for line in text.replace("\r", "\n").split("\n")]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()


# --- dates and sign-off blocks ----------------------------------------------------------------------

_CN_DIGITS = {"零": 0, "〇": 0, "○": 0, "Ｏ": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5}
_CN_DIGITS |= {"六": 6, "七": 7, "八": 8, "九": 9}
_CN_SMALL_UNITS = {"十": 10, "百": 100, "千": 1000}
_CN_NUM_CHARS = "".join(_CN_DIGITS) + "".join(_CN_SMALL_UNITS)

_DATE_CN = re.compile(
    rf"(?:(?P<y>\d{{4}}|[{_CN_NUM_CHARS}]{{4}})?\s*年)?\s*"
    rf"(?P<m>\d{{1,2}}|[{_CN_NUM_CHARS}]{{1,3}})?\s*月\s*"
    rf"(?P<d>\d{{1,2}}|[{_CN_NUM_CHARS}]{{1,3}})?\s*[日号]"
)
_DATE_NUM = re.compile(r"(?P<y>\d{4})\s*[./\-]\s*(?P<m>\d{1,2})\s*[./\-]\s*(?P<d>\d{1,2})")


def _cn_small(text: str) -> int | None:
    """A Chinese numeral below 10000 (``三千五百``, ``十二``, ``二〇二二``), or None."""
    if not text or any(ch not in _CN_DIGITS and ch not in _CN_SMALL_UNITS for ch in text):
        return None
    total, cur, last_digit = 0, 0, False
    for ch in text:
        if ch in _CN_DIGITS:
            # Digits in a row (二〇二二) are read positionally.
            cur = cur * 10 + _CN_DIGITS[ch] if last_digit else _CN_DIGITS[ch]
            last_digit = True
        else:
            total += (cur or 1) * _CN_SMALL_UNITS[ch]
            cur, last_digit = 0, False
    return total + cur


def _int(text: str | None) -> int | None:
    if not text:
        return None
    if text.isdigit():
        return int(text)
    return _cn_small(text)


@dataclass(frozen=True)
class _DateHit:
    start: int
    end: int
    day: date | None
    filled: bool


def _find_date(text: str, default_year: int) -> _DateHit | None:
    """The first date in ``text``; ``filled`` when month and day are written (not ``年  月  日``)."""
    for rx in (_DATE_NUM, _DATE_CN):
        m = rx.search(text)
        if m is None:
            continue
        y, mo, d = _int(m.group("y")), _int(m.group("m")), _int(m.group("d"))
        filled = mo is not None and d is not None
        day = None
        if filled:
            try:
                day = date(y or default_year, mo or 0, d or 0)
            except ValueError:
                day = None
        return _DateHit(m.start(), m.end(), day, filled)
    return None


_SIGN = re.compile(
    r"^(?:姓\s*名|负\s*责\s*人|承\s*诺\s*人|作\s*者|申\s*报\s*人)?\s*"
    r"(?:[（(]\s*(?:签\s*[字名]|手\s*签)\s*[）)]|签\s*[字名])\s*[:：]?\s*(?P<v>.*)$"
)
_NAME = re.compile(r"^(?:姓\s*名|承\s*诺\s*人|负\s*责\s*人)\s*[:：]\s*(?P<v>.*)$")
_SEAL = re.compile(
    r"^(?:(?:推\s*荐\s*)?单\s*位)?\s*(?:[（(]\s*(?:(?:推荐)?单位)?\s*(?:盖\s*章|公\s*[章单])\s*[）)]|盖\s*章)"
    r"\s*[:：]?\s*(?P<v>.*)$"
)
_SEAL_INLINE = re.compile(r"(?:推\s*荐\s*)?单\s*位\s*[（(]\s*盖\s*章\s*[）)]")


# What printed sign-off blocks hold besides values: labels, hints, placeholders and fill-in marks.
_TEMPLATE_WORDS = re.compile(
    r"推\s*荐|单\s*位|盖\s*章|公\s*[章单]|签\s*[字名章]|手\s*[写签]|姓\s*名|负\s*责\s*人|承\s*诺\s*人|"
    r"日\s*期|此\s*处|加\s*盖|意\s*见|请|处"
)
_TEMPLATE_MARKS = re.compile(r"[\s_\-—－.。·…:;,、()\[\]【】<>《》〈〉/\\|*xX×○〇□☐年月日号]")


def _template_only(text: str) -> bool:
    """Whether ``text`` is only what a blank block prints (``单位（盖章）：``, ``签字：____``, ``XXX``, ``年 月 日``)."""
    rest = _TEMPLATE_WORDS.sub("", unicodedata.normalize("NFKC", text))
    return not _TEMPLATE_MARKS.sub("", rest)


def _blank_name(text: str) -> str:
    """A signature value without fill-in underscores, stray hints and placeholders."""
    value = _strip_hints(re.sub(r"[_＿]+", " ", text)).strip(" \t\u3000:：")
    return "" if _template_only(value) else value


@dataclass
class _SignOff:
    name: str = ""
    seal: str = ""
    day: date | None = None
    date_text: str = ""
    rest: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(self.rest)


def _is_boilerplate(line: str) -> bool:
    squeezed = re.sub(r"\s", "", line)
    if "郑重承诺" in squeezed or (len(squeezed) >= 6 and squeezed in _PLEDGE_SQUEEZED):
        return True
    # A unit's own wording of the pledge (本人承诺所报送作品为原创……) is still the pledge, not a value.
    return "承诺" in squeezed and len(squeezed) > 12


def _parse_signoff(text: str, default_year: int, *, pledge: bool = False) -> _SignOff:
    """Split a sign-off cell into signer name, seal text, date and any other typed text.

    The template's own lines (``姓名（签字）：``, ``2022年   月   日``, ``（单位盖章）``, the pledge) give
    nothing, so the blank template parses as empty. In the pledge (``pledge``), a unit's own wording of
    the pledge is boilerplate too, and a single short line typed without ``姓名（签字）：`` is the name.
    """
    out = _SignOff()
    for raw in text.replace("\r", "\n").split("\n"):
        # Fill-in underscores (``____年__月__日``) are blanks, like the spaces of ``年   月   日``.
        line = re.sub(r"[_＿]+", " ", raw).strip()
        if not line or _template_only(line):
            continue
        hit = _find_date(line, default_year)
        if hit is not None:
            if hit.filled and out.day is None and hit.day is not None:
                out.day, out.date_text = hit.day, line[hit.start : hit.end].strip()
            line = (line[: hit.start] + " " + line[hit.end :]).strip()
            if not line:
                continue
        m = _SIGN.match(line) or _NAME.match(line)
        if m is not None:
            value = m.group("v")
            seal_at = _SEAL_INLINE.search(value)
            if seal_at is not None:
                seal = _SEAL.match(value[seal_at.start() :])
                if seal is not None and not out.seal:
                    out.seal = _blank_name(seal.group("v"))
                value = value[: seal_at.start()]
            out.name = out.name or _blank_name(value)
            continue
        m = _SEAL.match(line)
        if m is not None:
            out.seal = out.seal or _blank_name(m.group("v"))
            continue
        if pledge and _is_boilerplate(line):
            continue
        line = _strip_hints(line).strip()
        if line and not _template_only(line):
            out.rest.append(line)
    if pledge and not out.name and len(out.rest) == 1 and len(out.rest[0]) <= 30:
        out.name = _blank_name(out.rest.pop())
    return out


# --- the cell grid ------------------------------------------------------------------------------------


@dataclass(eq=False)
class _Cell:
    """One distinct cell: a merged cell is one object, repeated in every row it spans."""

    text: str
    col: int
    span: int = 1
    images: int = 0


@dataclass
class _Segment:
    """One table (Word), one worksheet (Excel) or the loose paragraphs of a Word file."""

    rows: list[list[_Cell]]
    context: str = ""  # the text before a table: where a form's title is
    # A Word row is the form's layout, so text typed across unmerged cells is one value; a sheet has
    # incidental columns (序号, 备注), so only the first filled cell right of a label is its value.
    join_run: bool = True

    def text(self) -> str:
        seen: set[int] = set()
        parts = [self.context]
        for row in self.rows:
            for c in row:
                if id(c) not in seen:
                    seen.add(id(c))
                    parts.append(c.text)
        return "\n".join(parts)


_COLON = re.compile(r"^(?P<h>[^:：\n]{1,40}?)\s*[:：]\s*(?P<v>.*)$", re.S)


def _classify(cell: _Cell, vocab: dict[str, str]) -> tuple[str, str] | None:
    """(label key, value typed in the same cell) when ``cell`` is a label cell, else None."""
    text = cell.text.strip()
    if not text:
        return None
    k = _key(text)
    if k in vocab:
        return k, ""
    m = _COLON.match(text)
    if m is not None:
        head = _key(m.group("h"))
        if head in vocab and head not in _WHOLE_CELL_ONLY:
            return head, m.group("v")
    lines = text.split("\n")
    if not _key(lines[0]):  # a cell opening with a hint in brackets is a value cell of the template
        return None
    # A label on the first line(s) and the value below it in the same cell; the longest label wins so
    # that a label broken over two lines is not cut after its first line.
    for n in range(min(len(lines) - 1, 4), 0, -1):
        head = _key("".join(lines[:n]))
        if head in vocab and head not in _WHOLE_CELL_ONLY:
            return head, "\n".join(lines[n:])
    return None


@dataclass
class _Occurrence:
    label: str
    parts: list[str] = field(default_factory=list)
    images: int = 0

    @property
    def value(self) -> str:
        return "\n".join(p for p in self.parts if p.strip())


def _extract(rows: list[list[_Cell]], vocab: dict[str, str], *, join_run: bool = True) -> list[_Occurrence]:
    """Every label cell of ``rows`` with the raw text of its value, in reading order."""
    found: dict[int, _Occurrence] = {}
    order: list[_Occurrence] = []
    consumed: set[int] = set()
    cache: dict[int, tuple[str, str] | None] = {}

    def classify(c: _Cell) -> tuple[str, str] | None:
        if id(c) not in cache:
            cache[id(c)] = _classify(c, vocab)
        return cache[id(c)]

    for r, row in enumerate(rows):
        for i, cell in enumerate(row):
            if id(cell) in consumed:
                continue
            hit = classify(cell)
            if hit is None:
                continue
            label, inline = hit
            occ = found.get(id(cell))
            continuing = occ is not None  # a vertically merged label cell: this row adds to its value
            if occ is None:
                occ = _Occurrence(label)
                found[id(cell)] = occ
                order.append(occ)
                if inline.strip():
                    occ.parts.append(inline)
                    occ.images += cell.images
                    continue
            right: list[_Cell] = []
            for nxt in row[i + 1 :]:
                if classify(nxt) is not None:
                    break
                right.append(nxt)
            # A value cell merged down over several labels' rows belongs to the first label only.
            run = [c for c in right if id(c) not in consumed]
            if not join_run:
                run = [c for c in run if c.text.strip()][:1] or run[:1]
            if right or continuing:
                for c in run:
                    consumed.add(id(c))
                    occ.parts.append(c.text)
                    occ.images += c.images
                continue
            # Nothing to the right: the value is in the next row, under the label, unless that row
            # has labels of its own there (then this label was left blank).
            if r + 1 < len(rows):
                lo, hi = cell.col, cell.col + cell.span
                below = [
                    c
                    for c in rows[r + 1]
                    if c.col < hi and c.col + c.span > lo and c is not cell and id(c) not in consumed
                ]
                if all(classify(c) is None for c in below):
                    for c in below:
                        consumed.add(id(c))
                        occ.parts.append(c.text)
                        occ.images += c.images
    return order


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


def _count_images(el: Any) -> int:
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


def _table_segments(tbl: Any, context: str, vocab: dict[str, str]) -> list[_Segment]:
    """The table as a grid, and each nested table that holds labels as a grid of its own."""
    rows: list[list[_Cell]] = []
    nested: list[_Segment] = []
    above: dict[int, _Cell] = {}
    for tr in _children(tbl, _W + "tr"):
        col = _int_attr(tr, f"{_W}trPr/{_W}gridBefore", 0)
        row: list[_Cell] = []
        here: dict[int, _Cell] = {}
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
                    if any(_extract(s.rows, vocab) for s in inner):
                        nested.extend(inner)
                    else:
                        parts.append("\n".join(s.text() for s in inner).strip())
                cell = _Cell("\n".join(parts), col, span, _count_images(tc))
            if not row or row[-1] is not cell:
                row.append(cell)
            for c in range(col, col + span):
                here[c] = cell
            col += span
        above = here
        rows.append(row)
    return [_Segment(rows, context), *nested]


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


def _docx_segments(path: Path, vocab: dict[str, str]) -> tuple[list[_Segment], int]:
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
    segments: list[_Segment] = []
    loose: list[list[_Cell]] = []
    context: list[str] = []
    for block in _blocks(body):
        if block.tag == _W + "p":
            text = _text_of(block)
            context.append(text)
            loose.append([_Cell(text, 0, 1, _count_images(block))])
        else:
            segments.extend(_table_segments(block, "\n".join(context[-6:]), vocab))
            context = []
    segments.append(_Segment(loose))
    return segments, _count_images(body)


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


def _xlsx_segments(path: Path) -> tuple[list[_Segment], int]:
    from kepu.xlsx_read import WorkbookError, read_sheets

    try:
        # Streamed, cut at the caps: a sheet formatted down a million rows costs nothing.
        sheets = read_sheets(path, max_rows=_XLSX_MAX_ROWS, max_cols=_XLSX_MAX_COLS, max_sheets=_XLSX_MAX_SHEETS)
    except WorkbookError as exc:
        raise _unreadable(path, "damaged", exc.reason_en) from exc
    segments: list[_Segment] = []
    for ws in sheets:
        origin: dict[tuple[int, int], tuple[int, int, int]] = {}
        for min_row, min_col, max_row, max_col in ws.merged:
            for r in range(min_row, min(max_row, _XLSX_MAX_ROWS) + 1):
                for c in range(min_col, min(max_col, _XLSX_MAX_COLS) + 1):
                    origin[(r, c)] = (min_row, min_col, max_col - min_col + 1)
        cells: dict[tuple[int, int], _Cell] = {}
        rows: list[list[_Cell]] = []
        width = max((len(r) for r in ws.rows), default=0)
        for r in range(1, len(ws.rows) + 1):
            row: list[_Cell] = []
            c = 1
            while c <= width:
                r0, c0, span = origin.get((r, c), (r, c, 1))
                cell = cells.get((r0, c0))
                if cell is None:
                    values = ws.rows[r0 - 1] if r0 - 1 < len(ws.rows) else []
                    cell = _Cell(_xl_text(values[c0 - 1] if c0 - 1 < len(values) else None), c0 - 1, span)
                    cells[(r0, c0)] = cell
                row.append(cell)
                c = max(c + 1, c0 + span)
            rows.append(row)
        segments.append(_Segment(rows, ws.title, join_run=False))
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


# --- reading a form -----------------------------------------------------------------------------------


@dataclass
class FormData:
    """What an application form says, keyed by the campaign's field names.

    Every field of the kind is present; an empty string means the submitter left it blank (the
    template's hints do not count as a value). ``signature_name``/``pledge_date`` come from the
    pledge (作者承诺, video) or the person in charge's signature (负责人（签名）, account).
    """

    kind: Kind
    fields: dict[str, str]
    source: str
    format: FormFormat
    path: Path | None = None
    title: str = ""
    signature_name: str = ""
    pledge_date: date | None = None
    pledge_date_text: str = ""
    seal_mentioned: bool = False
    seal_text: str = ""
    images_count: int = 0
    pledge_images: int = 0
    recommender_images: int = 0
    missing_labels: list[str] = field(default_factory=list)
    extra: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def has_signature_text(self) -> bool:
        return bool(self.signature_name)

    @property
    def recommender(self) -> str:
        """What the recommending unit's block (推荐单位, 推荐单位意见) says beyond its template."""
        return next((v for name, v in self.fields.items() if _key(name) in _RECOMMENDER_BLOCKS and v), "")

    @property
    def recommender_filled(self) -> bool:
        """The recommending unit named (or its opinion written) in its block, or a seal picture pasted there."""
        return bool(self.recommender) or self.recommender_images > 0

    @property
    def pledge_signed(self) -> bool:
        """A name and a filled date, or a picture pasted into the signature block."""
        return (self.has_signature_text and self.pledge_date is not None) or self.pledge_images > 0


def _detect(segment: _Segment, vocabs: dict[Kind, dict[str, str]], unique: dict[Kind, set[str]]) -> Kind | None:
    squeezed = re.sub(r"\s", "", segment.text())
    titled = [k for k, t in _TITLES.items() if t in squeezed]
    if len(titled) == 1:
        return titled[0]
    scores: dict[Kind, int] = {}
    for kind, vocab in vocabs.items():
        keys = {o.label for o in _extract(segment.rows, vocab, join_run=segment.join_run)}
        scores[kind] = len(keys & unique[kind])
    best = max(scores.values())
    if best == 0:
        return None
    winners = [k for k, s in scores.items() if s == best]
    return winners[0] if len(winners) == 1 else None


def _form_fields(campaign: Campaign, kind: Kind) -> list[str]:
    p = campaign.package
    return list(p.video_form_fields if kind == "video" else p.account_form_fields)


def _read_segments(path: Path, vocab: dict[str, str]) -> tuple[FormFormat, list[_Segment], int]:
    fmt = _sniff(path)
    if fmt == "docx":
        segments, images = _docx_segments(path, vocab)
    else:
        segments, images = _xlsx_segments(path)
    return fmt, segments, images


def read_form(path: Path, campaign: Campaign) -> FormData:
    """Read a 科普号申报表 or 微视频申报表 from a .docx or .xlsx file.

    Raises MaterialError ``M-UNREADABLE`` for anything that is not a readable .docx/.xlsx (old .doc,
    .wps, PDF, picture, damaged file) and ``M-FORM-MISSING`` for a readable file with no form in it.
    """
    path = Path(path)
    names: dict[Kind, list[str]] = {k: _form_fields(campaign, k) for k in _KINDS}
    vocabs: dict[Kind, dict[str, str]] = {k: _vocabulary(v) for k, v in names.items()}
    union = {**vocabs["account"], **vocabs["video"]}
    unique: dict[Kind, set[str]] = {
        "video": set(vocabs["video"]) - set(vocabs["account"]),
        "account": set(vocabs["account"]) - set(vocabs["video"]),
    }
    fmt, segments, images = _read_segments(path, union)

    by_kind: dict[Kind, list[_Segment]] = {"video": [], "account": []}
    for seg in segments:
        detected = _detect(seg, vocabs, unique)
        if detected is not None:
            by_kind[detected].append(seg)
    raw: dict[Kind, list[_Occurrence]] = {
        k: [o for s in segs for o in _extract(s.rows, vocabs[k], join_run=s.join_run)] for k, segs in by_kind.items()
    }
    present = [k for k in _KINDS if raw[k]]
    if not present:
        raise MaterialError(
            "M-FORM-MISSING",
            f"{path.name}：文件中没有找到申报表栏目 / {path.name} holds no application form fields",
        )
    notes: list[str] = []
    kind: Kind
    if len(present) == 2:
        # One file holding both attachments: the one actually filled in is the form.
        filled = {k: sum(1 for o in raw[k] if _clean_value(o.value)) for k in present}
        kind = max(present, key=lambda k: (filled[k], len(raw[k]), k == "video"))
        other: Kind = "account" if kind == "video" else "video"
        notes.append(
            f"文件中同时含有{_TITLES[other]}（已填写 {filled[other]} 项），按{_TITLES[kind]}读取 / "
            f"the file also holds the {other} form ({filled[other]} fields filled); read as the {kind} form"
        )
        log.info("%s holds both forms; read as %s", path.name, kind)
    else:
        kind = present[0]

    form = _assemble(kind, names[kind], raw[kind], campaign.deadline.at.year)
    form.source, form.format, form.path, form.images_count = path.name, fmt, path, images
    form.notes.extend(notes)
    form.title = _title(by_kind[kind], kind)
    log.debug("read %s form %s: %d fields filled", kind, path.name, sum(1 for v in form.fields.values() if v))
    return form


def _title(segments: list[_Segment], kind: Kind) -> str:
    for seg in segments:
        for line in seg.text().split("\n"):
            if _TITLES[kind] in re.sub(r"\s", "", line):
                return line.strip()
    return ""


def _assemble(kind: Kind, names: list[str], occurrences: list[_Occurrence], year: int) -> FormData:
    first: dict[str, _Occurrence] = {}
    for o in occurrences:
        # The first occurrence with a value wins; a label repeated further down stays a fallback.
        if o.label not in first or (not first[o.label].value.strip() and o.value.strip()):
            first[o.label] = o
    form = FormData(kind=kind, fields={}, source="", format="docx")

    def lookup(name: str) -> _Occurrence | None:
        hits = [first[k] for k in _field_keys(name) if k in first]
        filled = [h for h in hits if h.value.strip()]
        best = filled or hits
        return best[0] if best else None

    for name in names:
        occ = lookup(name)
        k = _key(name)
        if occ is None:
            form.fields[name] = ""
            if k != _OWNER_SIGNATURE:  # it lives inside the 所属单位 cell in the notice's layout
                form.missing_labels.append(name)
            continue
        if k in _SIGNOFF_FIELDS:
            signoff = _parse_signoff(occ.value, year, pledge=k == _PLEDGE)
            form.fields[name] = _apply_signoff(form, k, signoff, occ.images)
        elif k == _OWNER_SIGNATURE:
            signoff = _parse_signoff(occ.value, year)
            form.fields[name] = signoff.name or signoff.text
        else:
            form.fields[name] = _clean_value(occ.value)
    for k, alias in ((k, a) for k, als in _EXTRA_LABELS.items() for a in als):
        if _key(alias) in first and k not in form.extra:
            form.extra[k] = _clean_value(first[_key(alias)].value)
    for name in names:
        if _key(name) == _OWNER_SIGNATURE and not form.fields[name]:
            form.fields[name] = form.signature_name
        if _key(name) == _OWNER_SIGNATURE and form.fields[name] and not form.signature_name:
            form.signature_name = form.fields[name]
    return form


def _apply_signoff(form: FormData, k: str, s: _SignOff, images: int) -> str:
    """Record what a sign-off cell says on ``form`` and return the field's value."""
    if s.seal:
        form.seal_mentioned = True
        form.seal_text = form.seal_text or s.seal
    if k in (_PLEDGE, _OWNER):
        form.signature_name = form.signature_name or s.name
        if form.pledge_date is None and s.day is not None:
            form.pledge_date, form.pledge_date_text = s.day, s.date_text
        form.pledge_images += images
    if k in _RECOMMENDER_BLOCKS:
        form.recommender_images += images
    if k == _PLEDGE:
        return s.name
    if k == _OWNER:
        return s.text or s.seal
    return "\n".join(dict.fromkeys(p for p in (s.text, s.seal) if p))


def read_docx_fields(path: Path, labels: list[str]) -> dict[str, str]:
    """Map each wanted label to its value in a Word form (empty string when blank).

    Labels not present in the form are left out of the result. Template hints are removed.
    """
    if _sniff(path) != "docx":
        raise _unreadable(path, "unknown", "not a Word document")
    vocab = {_key(lab): lab for lab in labels}
    segments, _ = _docx_segments(path, vocab)
    found: dict[str, str] = {}
    for seg in segments:
        for occ in _extract(seg.rows, vocab):
            name = vocab[occ.label]
            value = _clean_value(occ.value)
            if name not in found or (not found[name] and value):
                found[name] = value
    return found


# --- contact details ---------------------------------------------------------------------------------

_CC = r"(?:\+\s*86|0086|86)[\s-]?"
_LOCAL = r"\d{3,4}[\s-]?\d{4}"
_EXT = r"(?:\s*(?:-|转|分机|ext\.?|x|#)\s*\d{1,6})?"
_MOBILE = re.compile(rf"^(?:{_CC})?1[3-9]\d[\s-]?\d{{4}}[\s-]?\d{{4}}$")
_LANDLINE = re.compile(
    rf"^(?:{_CC}(?:\(0?\d{{2,3}}\)|0?\d{{2,3}})|\(0\d{{2,3}}\)|0\d{{2,3}})[\s-]?{_LOCAL}{_EXT}$", re.I
)
_SERVICE = re.compile(r"^[48]00[\s-]?\d{3}[\s-]?\d{4}$")
_PHONE_PREFIX = re.compile(r"^(?:手机|电话|座机|办公室?|固话|tel|mobile|phone)\s*[:：]?\s*", re.I)
_PHONE_SPLIT = re.compile(r"[,，;；/、|]|\s{2,}|或")
_EMAIL = re.compile(
    r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}$"
)


def is_valid_phone(text: str) -> bool:
    """Chinese mobile (1[3-9] + 9 digits) or landline with area code, optional +86 and extension.

    Several numbers separated by ``/``, ``，`` or ``；`` must each be valid.
    """
    t = unicodedata.normalize("NFKC", text).strip()
    t = re.sub(r"[‐‑‒–—−]", "-", t)
    parts = [p.strip() for p in _PHONE_SPLIT.split(t) if p.strip()]
    if not parts:
        return False
    for part in parts:
        p = _PHONE_PREFIX.sub("", part)
        p = re.sub(r"\s*[(（]\s*(?:手机|办|办公|座机|宅)\s*[)）]\s*$", "", p)
        if not (_MOBILE.match(p) or _LANDLINE.match(p) or _SERVICE.match(p)):
            return False
    return True


def is_valid_email(text: str) -> bool:
    """One or more e-mail addresses; full-width ``＠`` and ``．`` are accepted as typed in Chinese IMEs."""
    t = unicodedata.normalize("NFKC", text).strip()
    parts = [p for p in re.split(r"[,，;；/、\s]+", t) if p]
    return bool(parts) and all(_EMAIL.match(p) for p in parts)


# --- numbers ------------------------------------------------------------------------------------------

_UNIT = {"万": 10_000, "w": 10_000, "千": 1_000, "k": 1_000, "百": 100, "亿": 100_000_000}
_QTY = re.compile(
    rf"(?P<num>\d{{1,3}}(?:,\d{{3}})+(?:\.\d+)?|\d+(?:\.\d+)?|[{_CN_NUM_CHARS}]+)"
    r"\s*(?P<unit>万|千|百|亿|k(?![a-z])|w(?![a-z]))?"
    r"(?P<more>\s*(?:余|多|\+))?"
    r"(?P<after>\s*[年月日号%岁届次项])?"
)
_YEARISH = r"(?:19|20)\d{2}\.\d{1,2}"
_TOTAL = re.compile(r"(?:共计|合计|总计|累计|总共|共|总)\s*$")


def _quantities(text: str) -> list[tuple[int, int, bool]]:
    """(value, start, preceded by a 'total' word) for every count in ``text``; years and % excluded."""
    t = unicodedata.normalize("NFKC", text).lower()
    out: list[tuple[int, int, bool]] = []
    pending: tuple[int, int, int, bool] | None = None  # value, unit, start, total of a compound (1万2千)
    last_end = -1
    for m in _QTY.finditer(t):
        if m.group("after") and not m.group("unit"):
            continue
        num = m.group("num")
        if all(ch in _CN_SMALL_UNITS for ch in num):
            continue  # 百家号, 千万: a unit word without a digit is no count
        before, after = t[max(0, m.start() - 2) : m.start()], t[m.end() : m.end() + 2]
        if re.fullmatch(r"\d[-/.]", before) or re.match(r"[-/.]\d", after) or re.fullmatch(_YEARISH, num):
            continue  # part of a date (2022-10-01, 2022.10)
        if num[0].isdigit():
            base: float = float(num.replace(",", ""))
        else:
            cn = _parse_cn_count(num)
            if cn is None:
                continue
            base = cn
        unit = _UNIT.get(m.group("unit") or "", 1)
        value = round(base * unit)
        total = bool(_TOTAL.search(t[max(0, m.start() - 4) : m.start()]))
        if pending is not None and m.start() == last_end and unit < pending[1]:
            pending = (pending[0] + value, unit, pending[2], pending[3])  # 1万2千 = 12000
        else:
            if pending is not None:
                out.append((pending[0], pending[2], pending[3]))
            pending = (value, unit, m.start(), total)
        last_end = m.end() if not m.group("more") else -1
    if pending is not None:
        out.append((pending[0], pending[2], pending[3]))
    return out


def _parse_cn_count(text: str) -> int | None:
    """A Chinese count up to the 亿s (一万二千 → 12000); numerals handled by :func:`_cn_small`."""
    total = 0
    for big, factor in (("亿", 100_000_000), ("万", 10_000)):
        if big in text:
            head, text = text.split(big, 1)
            n = _cn_small(head) if head else 1
            if n is None:
                return None
            total += n * factor
    if text:
        n = _cn_small(text)
        if n is None:
            return None
        total += n
    return total


def parse_count(text: str | None) -> int | None:
    """A count as units write it: ``1.2万`` → 12000, ``12,000``, ``约5000人``, ``3k``, ``8千``, ``五千余人``.

    Years, dates and percentages are not counts. With several counts the one after 共/合计/累计 wins,
    else the largest (one figure per platform: the account's main platform). None when none is given.
    """
    if not text:
        return None
    found = _quantities(text)
    if not found:
        return None
    totals = [v for v, _, is_total in found if is_total]
    return max(totals) if totals else max(v for v, _, _ in found)


_NUM = rf"(\d[\d,]*(?:\.\d+)?\s*(?:万|千|k|w)?|[{_CN_NUM_CHARS}万]+)"
_PIECES = r"(?:部|条|个|篇|集|期|支|件|则)"
_WORKS_PATTERNS = (
    re.compile(
        r"(?:发布|发表|上传|创作|制作|推出|更新|原创|出品|产出)(?:了|过)?\s*(?:原创)?\s*(?:科普)?\s*"
        r"(?:作品|视频|短视频|微视频|文章|图文|内容)?\s*(?:共计|共|累计|总计|达到|达|超过|逾|近|约|合计)?\s*"
        rf"{_NUM}\s*(?:余|多)?\s*{_PIECES}"
    ),
    re.compile(rf"(?:作品|视频)\s*(?:总数|总量|数量|数)\s*(?:共|为|达|[:：])?\s*{_NUM}"),
    # 作品70部, but not 获奖作品3部: awards are not the published works.
    re.compile(rf"(?<!获奖)(?<!优秀)(?<!入选)(?:作品|视频)\s*(?:共|达|为|[:：])?\s*{_NUM}\s*(?:余|多)?\s*{_PIECES}"),
    re.compile(
        rf"(?:累计|共计|共|总计|已有|拥有|现有)\s*{_NUM}\s*(?:余|多)?\s*(?:部|条|篇|集|期|支)\s*"
        r"(?:原创)?\s*(?:科普)?\s*(?:作品|视频|短视频|微视频)"
    ),
)
_FANS_PATTERN = re.compile(
    rf"粉丝\s*(?:量|数量|数|总数|总量)?\s*(?:共计|共|累计|达到|达|超过|逾|近|约|为|[:：])?\s*{_NUM}"
)


def _works_in(text: str) -> list[tuple[int, int, int]]:
    """(count, start, end) of every 'published N works' statement in ``text``."""
    t = unicodedata.normalize("NFKC", text).lower()
    hits = []
    for rx in _WORKS_PATTERNS:
        for m in rx.finditer(t):
            n = parse_count(m.group(1))
            if n is not None:
                hits.append((n, m.start(), m.end()))
    return hits


def _field(form: FormData, key: str) -> str:
    for name, value in form.fields.items():
        if _key(name) == key:
            return value
    return ""


def account_numbers(form: FormData) -> tuple[int | None, int | None]:
    """(published works, followers) as the account form states them; None where it does not.

    Followers come from 粉丝量; works from a 作品数 column when the form has one, else from sentences
    such as 发布作品120部 / 累计发布 86 条视频 in 主要从事科普创作经历、主要成绩 or 粉丝量.
    """
    fans_text = _field(form, "粉丝量")
    experience = _field(form, _key("主要从事科普创作经历、主要成绩"))
    works: int | None = parse_count(form.extra.get("作品数")) if form.extra.get("作品数") else None
    if works is None:
        counts = [n for text in (experience, fans_text) for n, _, _ in _works_in(text)]
        works = max(counts) if counts else None
    # A works statement inside 粉丝量 (粉丝1.2万，作品120部) is not a follower count.
    fans_clean = unicodedata.normalize("NFKC", fans_text).lower()
    for _, start, end in sorted(_works_in(fans_text), key=lambda h: -h[1]):
        fans_clean = fans_clean[:start] + " " + fans_clean[end:]
    followers = parse_count(fans_clean)
    if followers is None:
        m = _FANS_PATTERN.search(unicodedata.normalize("NFKC", experience).lower())
        followers = parse_count(m.group(1)) if m else None
    return works, followers


# --- findings ------------------------------------------------------------------------------------------

_SCAN_WORDS = ("承诺", "签字", "签名", "扫描", "盖章", "公章", "scan")
_SCAN_SUFFIXES = {".pdf", ".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp", ".heic", ".gif", ".ofd"}
_NEIGHBOUR_SUFFIXES = {".pdf", ".jpg", ".jpeg", ".tif", ".tiff"}
_NOT_SCAN_WORDS = ("封面", "cover", "海报", "poster", "截图")


def signed_scans(scans: Iterable[Path], form: FormData | None = None) -> list[Path]:
    """The files among ``scans`` that may be a scanned signed page.

    A file counts when its name mentions 承诺/签字/签名/扫描/盖章, or when it is a PDF/JPG lying next
    to the form (same folder) and is not named as a cover. The form itself never counts.
    """
    folder = form.path.parent if form is not None and form.path is not None else None
    out = []
    for f in scans:
        if form is not None and form.path is not None and f == form.path:
            continue
        name, ext = f.name.lower(), f.suffix.lower()
        named = ext in _SCAN_SUFFIXES and any(w in name for w in _SCAN_WORDS)
        beside = (
            ext in _NEIGHBOUR_SUFFIXES
            and (folder is None or f.parent == folder)
            and not any(w in name for w in _NOT_SCAN_WORDS)
        )
        if named or beside:
            out.append(f)
    return out


_INDIVIDUAL = re.compile(r"个人|团队|本人|小组|工作室|自媒体")


def registered_by_unit(form: FormData) -> bool:
    """Whether 所属单位 names a unit (not 个人/团队), which then must seal the form."""
    owner = _field(form, _OWNER)
    return bool(owner.strip()) and not _INDIVIDUAL.search(owner)


def needs_recommender_seal(campaign: Campaign, channel: str | None) -> bool:
    """Whether entries of ``channel`` are sent by a recommending unit that seals the form (省级推荐,
    单位会员); self-nominated ones (个人会员, 其他机构和个人) have none. False for an unknown channel
    (Q-CHANNEL says so)."""
    ch = campaign.channels.get(channel) if channel else None
    return ch is not None and ch.recommender_seal


def form_findings(
    campaign: Campaign, form: FormData | None, *, kind: Kind, scans: list[Path], channel: str | None = None
) -> list[Finding]:
    """Field, contact, pledge and seal findings of an application form (stage ``form``).

    ``form`` is None when the package has no readable form: M-FORM-MISSING / M-UNREADABLE are the
    caller's, so nothing is added here. ``scans`` are the package's other files (not the video, not
    the cover); among them a scanned signed page counts as the signature and seal. Signature and
    seal blocks are never field findings (:func:`is_signature_block`): M-FORM-PLEDGE when neither the
    form nor a scanned page shows a signature, M-FORM-SEAL when the entry's ``channel`` is sent by a
    recommending unit and neither its block nor a scanned page shows it, K-SEAL for an account
    registered by a unit.
    """
    if form is None:
        return []
    out: list[Finding] = []

    def add(code: Code, **kw: Any) -> None:
        out.append(make_finding(campaign, code, stage=STAGE, **kw))

    if form.kind != kind:
        want, got = _TITLES[kind], _TITLES[form.kind]
        add(
            "M-FORM-MISSING",
            detail_zh=f"{form.source} 是{got}，本项需要{want}",
            detail_en=f"{form.source} is the {form.kind} form; this entry needs the {kind} form",
            value=form.source,
        )
        return out

    evidence = signed_scans(scans, form)
    field_code: Code = "M-FORM-FIELD" if kind == "video" else "K-FORM-FIELD"
    for name in _form_fields(campaign, kind):
        k = _key(name)
        if k in _SIGNATURE_BLOCKS:
            continue
        value = form.fields.get(name, "")
        if not value.strip():
            en = _FIELD_EN.get(k, name)
            add(
                field_code,
                detail_zh=f"“{name}”未填写",
                detail_en=f"{name} ({en}) is empty",
                value=name,
            )

    for name in _form_fields(campaign, kind):
        value = form.fields.get(name, "").strip()
        if not value:
            continue
        k = _key(name)
        if "电话" in k and not is_valid_phone(value):
            add(
                "M-FORM-CONTACT",
                detail_zh=f"“{name}”格式有误：{value}（应为手机号或带区号的固定电话）",
                detail_en=f"{name} is malformed: {value!r} (a mobile number or a landline with area code)",
                value=value,
            )
        elif ("邮箱" in k or "邮件" in k) and not is_valid_email(value):
            add(
                "M-FORM-CONTACT",
                detail_zh=f"“{name}”格式有误：{value}",
                detail_en=f"{name} is not a valid e-mail address: {value!r}",
                value=value,
            )

    if kind == "video" and not form.pledge_signed and not evidence:
        missing_zh = "签字姓名和日期" if not form.has_signature_text else "日期"
        missing_en = "the signer's name and the date" if not form.has_signature_text else "the date"
        add(
            "M-FORM-PLEDGE",
            detail_zh=f"申报表作者承诺未填写{missing_zh}，且包内没有签字扫描页",
            detail_en=f"the pledge in {form.source} lacks {missing_en} and the package holds no scanned signed page",
            value=form.source,
        )

    if kind == "account" and not (form.signature_name or form.pledge_images or evidence):
        add(
            "M-FORM-PLEDGE",
            detail_zh="申报表“负责人（签名）”未签字，且包内没有签字扫描页",
            detail_en=f"the signature of the person in charge in {form.source} is blank and the package holds "
            "no scanned signed page",
            value=form.source,
        )

    if needs_recommender_seal(campaign, channel) and not form.recommender_filled and not evidence:
        label = campaign.channels[str(channel)].label_zh
        add(
            "M-FORM-SEAL",
            detail_zh=f"以“{label}”报送，申报表“推荐单位”栏只有模板文字（未填写单位），包内也没有签字盖章扫描页",
            detail_en=f"sent as {channel}: the recommending unit's block of {form.source} shows only its template "
            "and the package holds no scanned signed and sealed page",
            value=form.source,
            limit="推荐单位盖章 recommending unit's seal",
        )

    if kind == "account" and registered_by_unit(form) and form.images_count == 0 and not evidence:
        owner = _field(form, _OWNER)
        add(
            "K-SEAL",
            detail_zh=f"所属单位为“{owner}”，申报表中没有盖章图片，包内也没有盖章扫描件",
            detail_en=f"owned by the unit {owner!r}: no seal picture in the form and no scanned page in the package",
            value=owner,
        )
    return out


def checklist_items(form: FormData, *, needs_seal: bool | None = None) -> list[str]:
    """What a person must check on this form, beyond the automated findings (Chinese / English).

    Signatures and seals are on paper: the items name the scanned signed page a person checks.
    ``needs_seal`` is :func:`needs_recommender_seal` of the entry's channel (None: channel unknown);
    a self-nominated entry has no recommending unit to check.
    """
    items: list[str] = []
    signer = form.signature_name or ("图片" if form.pledge_images else "")
    signer_en = form.signature_name or ("picture" if form.pledge_images else "")
    when = form.pledge_date.isoformat() if form.pledge_date else "未填"
    when_en = form.pledge_date.isoformat() if form.pledge_date else "no date"
    if form.kind == "video":
        if form.pledge_signed:
            items.append(
                f"核对作者承诺为手写签字（申报表：{signer}，{when}）/ "
                f"verify the pledge is signed by hand (form: {signer_en}, {when_en})"
            )
        else:
            items.append(
                "申报表中作者承诺未签字，核对签字扫描页上的手写签字和日期 / "
                "the pledge in the form is unsigned: check the handwritten signature and date on the scanned page"
            )
        member = _field(form, "是否为会员")
        if member.startswith(("是", "Y", "y")):
            items.append(f"核对会员身份（申报表填写“{member}”）/ confirm membership (the form says {member!r})")
    else:
        items.append(
            f"核对负责人手写签名（申报表：{signer or '未签'}，{when}）/ "
            f"verify the handwritten signature of the person in charge (form: {signer_en or 'unsigned'}, {when_en})"
        )
        if registered_by_unit(form):
            owner = _field(form, _OWNER)
            items.append(f"以单位“{owner}”为主体注册，核对单位盖章 / registered by a unit: verify its seal")
        works, followers = account_numbers(form)
        if works is None:
            items.append(
                "申报表未写明发布作品数量，须在平台上核对 / "
                "the form does not state the number of works: check the platform"
            )
        if followers is None:
            items.append(
                "申报表未写明粉丝量，须在平台上核对 / the form does not state the followers: check the platform"
            )
        if works is not None or followers is not None:
            items.append(
                f"在平台上核对作品数（申报表：{works if works is not None else '未写明'}）与粉丝量"
                f"（申报表：{followers if followers is not None else '未写明'}）/ "
                "check the works and followers against the platform"
            )
    if needs_seal is not False:
        if form.recommender:
            items.append(
                f"在签字盖章扫描页上核对推荐单位盖章：{form.recommender} / "
                f"verify the recommending unit's seal on the scanned signed page: {form.recommender}"
            )
        else:
            items.append(
                "推荐单位栏只有模板文字：省级推荐、单位会员报送的须在签字盖章扫描页上核对推荐单位盖章"
                "（个人会员、其他机构和个人自荐无推荐单位）/ the recommending unit's block shows only its template: "
                "for provincial and member entries check its seal on the scanned signed page (self-nominated "
                "entries have none)"
            )
    if form.images_count:
        items.append(
            f"申报表内嵌图片 {form.images_count} 张（可能为签字或印章），须人工核对 / "
            f"{form.images_count} picture(s) in the form (a signature or seal?): check by eye"
        )
    items.extend(form.notes)
    return items
