"""Finding a form's fields: label keys and their other spellings, the template's hints, and the value of each
label in a grid of cells.

Units retype labels with spaces, full-width characters and line breaks (``类  别\\n（专业领域）``), type values into
the label cell (``联系电话：010-1234``) or spread them over unmerged cells, and merge cells both ways. A grid holds
distinct cells (a merged cell is one cell however many grid positions it covers); a label cell is found by its
normalised key, and its value is in the same cell, the cells to its right or the cell below
(:func:`find_labels`). The grids come from the files through :mod:`kepu.intake.form_tables`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

_BRACKETS = re.compile(r"[（(][^）)]*[）)]")


def normalise_label(text: str) -> str:
    """A label without spaces, colons, asterisks and bracketed explanations (``类  别（专业领域）`` → ``类别``)."""
    text = unicodedata.normalize("NFKC", text)
    text = _BRACKETS.sub("", text)
    return re.sub(r"[\s:：*＊]", "", text)


@lru_cache(maxsize=8192)
def label_key(text: str) -> str:
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

#: Labels that are not fields of the campaign but carry what the account checks need.
EXTRA_LABELS: dict[str, tuple[str, ...]] = {
    "作品数": ("作品数", "作品数量", "发布作品数", "发布作品数量", "作品总数", "发布作品"),
}

# ``负责人（签名）：`` is a line inside the 所属单位 cell of the notice's layout: it is a label only when
# it has a cell of its own, never when it opens a cell that goes on with a value.
_WHOLE_CELL_ONLY = {"负责人", "负责人签字"}


def field_keys(name: str) -> list[str]:
    """The label keys that stand for the field ``name``: its own and those of its other spellings."""
    k = label_key(name)
    return [k, *(label_key(a) for a in _ALIASES.get(k, ()))]


def vocabulary(names: Iterable[str]) -> dict[str, str]:
    """Label key → the field name it stands for (first field wins for a shared alias)."""
    return dict(_vocabulary_of(tuple(names)))


@lru_cache(maxsize=64)
def _vocabulary_of(names: tuple[str, ...]) -> dict[str, str]:
    vocab: dict[str, str] = {}
    for name in names:
        for k in field_keys(name):
            vocab.setdefault(k, name)
    for extra, aliases in EXTRA_LABELS.items():
        for a in aliases:
            vocab.setdefault(label_key(a), extra)
    return vocab


# --- template hints that are not values -------------------------------------------------------------

_HINT_WORDS = ("字以内", "附页", "主体注册", "盖章", "公章", "公单", "签字", "签名", "注明", "百度网盘")
_HINT_BRACKET = re.compile(r"[（(]([^（）()]*)[）)]")


def strip_hints(text: str) -> str:
    """Remove the template's bracketed hints (``（300字以内）``, ``（可别附页）`` …) from a value."""

    def drop(m: re.Match[str]) -> str:
        inner = re.sub(r"\s", "", m.group(1))
        return "" if any(w in inner for w in _HINT_WORDS) else m.group(0)

    return _HINT_BRACKET.sub(drop, text)


def clean_value(text: str) -> str:
    """A value as typed, without the template's hints, surrounding spaces and repeated blank lines."""
    lines = [strip_hints(line).strip() for line in text.replace("\r", "\n").split("\n")]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()


# --- the cell grid ------------------------------------------------------------------------------------


@dataclass(eq=False)
class Cell:
    """One distinct cell: a merged cell is one object, repeated in every row it spans."""

    text: str
    col: int
    span: int = 1
    images: int = 0


@dataclass
class Segment:
    """One table (Word), one worksheet (Excel) or the loose paragraphs of a Word file."""

    rows: list[list[Cell]]
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


def _classify(cell: Cell, vocab: dict[str, str]) -> tuple[str, str] | None:
    """(label key, value typed in the same cell) when ``cell`` is a label cell, else None."""
    text = cell.text.strip()
    if not text:
        return None
    k = label_key(text)
    if k in vocab:
        return k, ""
    m = _COLON.match(text)
    if m is not None:
        head = label_key(m.group("h"))
        if head in vocab and head not in _WHOLE_CELL_ONLY:
            return head, m.group("v")
    lines = text.split("\n")
    if not label_key(lines[0]):  # a cell opening with a hint in brackets is a value cell of the template
        return None
    # A label on the first line(s) and the value below it in the same cell; the longest label wins so
    # that a label broken over two lines is not cut after its first line.
    for n in range(min(len(lines) - 1, 4), 0, -1):
        head = label_key("".join(lines[:n]))
        if head in vocab and head not in _WHOLE_CELL_ONLY:
            return head, "\n".join(lines[n:])
    return None


@dataclass
class Occurrence:
    """A label found in a grid: its key, the raw text of its value (in parts) and the pictures there."""

    label: str
    parts: list[str] = field(default_factory=list)
    images: int = 0

    @property
    def value(self) -> str:
        return "\n".join(p for p in self.parts if p.strip())


def find_labels(rows: list[list[Cell]], vocab: dict[str, str], *, join_run: bool = True) -> list[Occurrence]:
    """Every label cell of ``rows`` with the raw text of its value, in reading order."""
    found: dict[int, Occurrence] = {}
    order: list[Occurrence] = []
    consumed: set[int] = set()
    cache: dict[int, tuple[str, str] | None] = {}

    def classify(c: Cell) -> tuple[str, str] | None:
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
                occ = Occurrence(label)
                found[id(cell)] = occ
                order.append(occ)
                if inline.strip():
                    occ.parts.append(inline)
                    occ.images += cell.images
                    continue
            right: list[Cell] = []
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
