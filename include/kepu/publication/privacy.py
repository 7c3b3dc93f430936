"""Contact data never leaves the records: phone numbers, e-mail addresses, ID numbers and the contact person
named in the form are cut out of every text that is published, and every published file is checked for the
submitter's own phone, address and ID number before it goes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from kepu.errors import AwardError

#: Put where contact data was cut out of a text.
REDACTED = "［联系方式已隐去］"

EMAIL_RE = re.compile(r"[A-Za-z0-9._%+\-]+\s*(?:@|＠)\s*[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
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


def scrub(text: str | None, known: Iterable[str] = ()) -> str:
    """``text`` without e-mail addresses, phone numbers and the ``known`` contact strings (with their labels)."""
    if not text:
        return ""
    out = text
    for value in sorted({k.strip() for k in known if k and k.strip()}, key=len, reverse=True):
        out = out.replace(value, REDACTED)
    out = EMAIL_RE.sub(REDACTED, out)
    out = ID_NUMBER_RE.sub(REDACTED, out)
    out = PHONE_RE.sub(REDACTED, out)
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
