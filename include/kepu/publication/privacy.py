"""Contact data never leaves the records: phone numbers and e-mail addresses are cut out of every text that
is published, and every published file is checked for the submitter's own phone and address before it goes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

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
_LABELS = re.compile(
    r"(?:联系)?(?:电话|手机|座机|微信|邮箱|电子邮箱|QQ|E-?mail|Tel|Phone)\s*[:：]?\s*(?=［联系方式已隐去］)", re.I
)


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
    out = PHONE_RE.sub(REDACTED, out)
    out = _LABELS.sub("", out)
    mark = re.escape(REDACTED)
    return re.sub(rf"{mark}(?:[\s,，;；、/]*{mark})+", REDACTED, out).strip()


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
