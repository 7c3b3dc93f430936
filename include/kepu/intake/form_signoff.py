"""Signature and seal blocks of the forms: the author's pledge, the recommending unit, the owner's seal.

They are signed and stamped by hand on the printed form, so a .docx holds at most their template, a typed name
or a pasted picture; :func:`parse_signoff` splits such a cell into signer, seal, date and other text, and the
blank template parses as empty.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date

from kepu.intake.form_fields import label_key, strip_hints
from kepu.intake.form_values import CN_NUM_CHARS, cn_small

# Fields whose cell is a sign-off block (signature, seal, date), parsed by parse_signoff. The notice's
# layout puts them there; a campaign renaming them keeps working through the plain-value path.
PLEDGE = "作者承诺"
_RECOMMENDER = "推荐单位"
OWNER = "所属单位"
OWNER_SIGNATURE = "负责人签名"
_OPINION = "推荐单位意见"
SIGNOFF_FIELDS = {PLEDGE, _RECOMMENDER, OWNER, _OPINION}

# Signature and seal blocks: signed and stamped by hand on the printed form (注：签字须手写), so a
# .docx never holds them and a block showing only its template is normal. They are never a field
# finding: the scanned signed page is their evidence (M-FORM-PLEDGE, M-FORM-SEAL, K-SEAL).
_SIGNATURE_BLOCKS = frozenset({PLEDGE, _RECOMMENDER, _OPINION, OWNER_SIGNATURE})
# The recommending unit's block of each form (its seal: M-FORM-SEAL).
RECOMMENDER_BLOCKS = frozenset({_RECOMMENDER, _OPINION})


def is_signature_block(name: str) -> bool:
    """Whether the form field ``name`` is a signature or seal block (作者承诺, 推荐单位, 负责人签名 …)."""
    return label_key(name) in _SIGNATURE_BLOCKS


#: 作者承诺 of 附件2, verbatim from the notice.
PLEDGE_TEXT = (
    "本人（本单位）郑重承诺：对所提交的微视频作品拥有自主知识产权，同意在科普中国、科创筑梦、微信、抖音等媒体平台上"
    "进行公益展播。如在评选期间出现任何纠纷，将由本人（本单位）承担后果。"
)
_PLEDGE_SQUEEZED = re.sub(r"\s", "", PLEDGE_TEXT)


# --- dates ----------------------------------------------------------------------------------------

_DATE_CN = re.compile(
    rf"(?:(?P<y>\d{{4}}|[{CN_NUM_CHARS}]{{4}})?\s*年)?\s*"
    rf"(?P<m>\d{{1,2}}|[{CN_NUM_CHARS}]{{1,3}})?\s*月\s*"
    rf"(?P<d>\d{{1,2}}|[{CN_NUM_CHARS}]{{1,3}})?\s*[日号]"
)
_DATE_NUM = re.compile(r"(?P<y>\d{4})\s*[./\-]\s*(?P<m>\d{1,2})\s*[./\-]\s*(?P<d>\d{1,2})")


def _int(text: str | None) -> int | None:
    if not text:
        return None
    if text.isdigit():
        return int(text)
    return cn_small(text)


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
    value = strip_hints(re.sub(r"[_＿]+", " ", text)).strip(" \t\u3000:：")
    return "" if _template_only(value) else value


@dataclass
class SignOff:
    """What a sign-off cell says: the signer's name, the seal's text, the filled date, other typed lines."""

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


def parse_signoff(text: str, default_year: int, *, pledge: bool = False) -> SignOff:
    """Split a sign-off cell into signer name, seal text, date and any other typed text.

    The template's own lines (``姓名（签字）：``, ``2022年   月   日``, ``（单位盖章）``, the pledge) give
    nothing, so the blank template parses as empty. In the pledge (``pledge``), a unit's own wording of
    the pledge is boilerplate too, and a single short line typed without ``姓名（签字）：`` is the name.
    """
    out = SignOff()
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
        line = strip_hints(line).strip()
        if line and not _template_only(line):
            out.rest.append(line)
    if pledge and not out.name and len(out.rest) == 1 and len(out.rest[0]) <= 30:
        out.name = _blank_name(out.rest.pop())
    return out
