"""Contact data never leaves the records: phone numbers, e-mail addresses, WeChat and QQ ids, ID numbers and the
contact person named in the form are cut out of every text that is published, and every published file is checked
for the submitter's own phone, address and ID number before it goes.

Texts are matched in their NFKC form, so full-width digits and letters (１３９…, ｚｈａｎｇ＠ｅｘａｍｐｌｅ．ｃｏｍ) are
found like plain ones, while the published text keeps its own characters (full-width Chinese punctuation stays).
Phone numbers are found by the ``phonenumbers`` library (libphonenumber's metadata for mainland China) and, for the
shapes it does not take as one number (``+86 139 1234 5678``, a 7-digit local number with its area code), by a
pattern.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

import phonenumbers

from kepu.errors import AwardError

#: Put where contact data was cut out of a text.
REDACTED = "［联系方式已隐去］"

_AT = r"(?:@|\s*[\(\[\{<（【]\s*(?:at|AT|艾特|@)\s*[\)\]\}>）】]\s*|\s+(?:at|AT)\s+|\s*艾特\s*)"
_DOT = r"(?:\.|\s*[\(\[\{<（【]\s*(?:dot|DOT|点)\s*[\)\]\}>）】]\s*|\s+(?:dot|DOT)\s+|\s*点\s*)"
EMAIL_RE = re.compile(
    rf"[A-Za-z0-9._%+\-]+\s*{_AT}\s*[A-Za-z0-9\-]+(?:{_DOT}[A-Za-z0-9\-]+)*{_DOT}[A-Za-z]{{2,}}(?![A-Za-z])"
)
# Mainland mobiles (1[3-9]x xxxx xxxx), landlines with an area code (0xx-xxxxxxxx) and 400 hotlines, with +86,
# spaces or hyphens. Dates (2022-10-31) and counts are left alone; the submitter's own numbers are cut out
# by value whatever their shape.
PHONE_RE = re.compile(
    r"(?<![\dA-Za-z])(?:\+?86[\s\-]?)?"
    r"(?:1[3-9]\d(?:[\s\-]?\d){8}|0\d{2,3}[\s\-]?\d{7,8}|400[\s\-]?\d{3}[\s\-]?\d{4})(?![\dA-Za-z])"
)
# Mainland resident ID numbers: area, birth date, sequence, check digit (the 18-digit form).
ID_NUMBER_RE = re.compile(
    r"(?<![\dA-Za-z])[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx](?![\dA-Za-z])"
)
#: A QQ number or a WeChat id after its label (the label goes too): QQ 123456789, 微信号 wxid_abc, vx: kepu-88.
QQ_RE = re.compile(r"(?:(?<![A-Za-z])(?:QQ|qq|Qq)|扣扣|企鹅)\s*(?:号码?|群)?\s*[:：]?\s*[1-9]\d{4,11}(?!\d)")
WECHAT_RE = re.compile(
    r"(?:(?:微信|威信|薇信|(?<![A-Za-z])(?:v信|V信|WeChat|Wechat|wechat|weixin|WeiXin|wx|WX|vx|VX|Vx))\s*(?:号|ID|id)?\s*[:：]?\s*"
    r"(?=[A-Za-z0-9_\-]*[A-Za-z])[A-Za-z0-9][A-Za-z0-9_\-]{4,19}(?![A-Za-z0-9_\-])"
    r"|(?<![A-Za-z0-9])wxid_[A-Za-z0-9_\-]{4,})"
)
#: A contact person after a label: 联系人：张三丰, 联系老师 李四.
CONTACT_PERSON_RE = re.compile(
    r"(?:联系人|联络人|联系老师)(?:姓名)?\s*[:：]?\s*(?:[\u4e00-\u9fff·]{2,5}|[A-Z][a-z]+(?:\s+[A-Z][a-z]+)?)"
)
_LABELS = re.compile(
    r"(?:联系)?(?:电话|手机|座机|微信|邮箱|电子邮箱|QQ|E-?mail|Tel|Phone|人|人姓名|身份证号码?|证件号码?|ID)\s*[:：]?\s*"
    r"(?=［联系方式已隐去］)",
    re.I,
)
#: Form fields that hold a contact person or an identity document, never published (the form's phone and e-mail
#: fields are the entry's ``phone`` and ``email``).
PRIVATE_FIELD_RE = re.compile(r"联系人|身份证|证件号|护照")


class ContactDataFound(AwardError):
    """A file about to be published holds a submitter's phone number or e-mail address."""


def _normalised(text: str) -> tuple[str, list[int]]:
    """NFKC of ``text`` character by character, and for each normalised character the index of its source."""
    chars: list[str] = []
    source: list[int] = []
    for i, ch in enumerate(text):
        n = unicodedata.normalize("NFKC", ch)
        # Dashes of every width count as hyphens (NFKC leaves －‐‑‒–— apart from ASCII).
        n = re.sub(r"[\u2010-\u2015\u2212\ufe63\uff0d]", "-", n)
        chars.append(n)
        source += [i] * len(n)
    return "".join(chars), source


def contact_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, kind) of every piece of contact data in ``text`` (indices into ``text`` itself), in any width."""
    norm, source = _normalised(text)
    found: list[tuple[int, int, str]] = []
    for kind, pattern in (
        ("email", EMAIL_RE),
        ("qq", QQ_RE),
        ("wechat", WECHAT_RE),
        ("id_number", ID_NUMBER_RE),
        ("phone", PHONE_RE),
        ("contact_person", CONTACT_PERSON_RE),
    ):
        found += [(m.start(), m.end(), kind) for m in pattern.finditer(norm)]
    for m in phonenumbers.PhoneNumberMatcher(norm, "CN", leniency=phonenumbers.Leniency.VALID):
        found.append((m.start, m.end, "phone"))
    out = []
    for start, end, kind in found:
        if end > start:
            out.append((source[start], source[end - 1] + 1, kind))
    return sorted(out)


def find_contacts(text: str) -> list[str]:
    """The kinds of contact data ``text`` holds (empty when clean)."""
    return sorted({kind for _, _, kind in contact_spans(text)})


def _cut(text: str) -> str:
    spans = contact_spans(text)
    if not spans:
        return text
    parts, pos = [], 0
    for start, end, _kind in spans:
        if end <= pos:
            continue
        start = max(start, pos)
        parts += [text[pos:start], REDACTED]
        pos = end
    parts.append(text[pos:])
    return "".join(parts)


def scrub(text: str | None, known: Iterable[str] = ()) -> str:
    """``text`` without e-mail addresses, phone numbers, QQ and WeChat ids, ID numbers, contact persons and the
    ``known`` contact strings (with their labels), in any width."""
    if not text:
        return ""
    out = text
    for value in sorted({k.strip() for k in known if k and k.strip()}, key=len, reverse=True):
        out = out.replace(value, REDACTED)
        wide = unicodedata.normalize("NFKC", value)
        if wide != value:
            out = out.replace(wide, REDACTED)
    out = REDACTED.join(_cut(part) for part in out.split(REDACTED))  # the marks themselves are left alone
    out = _LABELS.sub("", out)
    mark = re.escape(REDACTED)
    return re.sub(rf"{mark}(?:[\s,，;；、/]*{mark})+", REDACTED, out).strip()


def private_values(form: Mapping[str, Any] | None) -> list[str]:
    """The contact persons and ID numbers a form holds (fields named like 联系人, 身份证号, 证件号码)."""
    return [str(v).strip() for k, v in (form or {}).items() if PRIVATE_FIELD_RE.search(str(k)) and str(v or "").strip()]


def needles(values: Iterable[str | None]) -> list[bytes]:
    """Byte patterns of contact strings as a file may hold them (UTF-8, UTF-16, and digits alone for phones)."""
    out: set[bytes] = set()
    for v in values:
        if not v or not v.strip():
            continue
        v = v.strip()
        out.update({v.encode(), v.encode("utf-16-le"), v.encode("utf-16-be")})
        digits = re.sub(r"\D", "", v)
        if "@" not in v and len(digits) >= 7:
            out.add(digits.encode())
    return sorted(out)


def check_clean(data: bytes, patterns: Iterable[bytes], what: str) -> None:
    """Raise :class:`ContactDataFound` when ``data`` holds one of ``patterns``."""
    for p in patterns:
        if p and p in data:
            raise ContactDataFound(f"{what} 含有联系方式，不予发布 · {what} holds contact data and is not published")


def check_text_clean(data: bytes, what: str) -> None:
    """Raise :class:`ContactDataFound` when the text file ``data`` (UTF-8) holds contact data of any shape, anyone's:
    the last look at a public text file (catalog, metadata, gallery page) before it goes."""
    kinds = find_contacts(data.decode("utf-8", errors="replace").replace(REDACTED, " "))
    if kinds:
        raise ContactDataFound(
            f"{what} 含有联系方式（{'、'.join(kinds)}），不予发布 · {what} holds contact data ({', '.join(kinds)}) "
            "and is not published"
        )
