"""What a form's values mean: phone numbers, e-mail addresses and counts as units write them.

Pure text functions, also used outside the forms (the e-mail addresses of the result mails and of the judges'
links); the Chinese numerals serve the sign-off dates of :mod:`kepu.intake.form_signoff` too.
"""

from __future__ import annotations

import re
import unicodedata

# --- Chinese numerals ------------------------------------------------------------------------------

_CN_DIGITS = {"零": 0, "〇": 0, "○": 0, "Ｏ": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5}
_CN_DIGITS |= {"六": 6, "七": 7, "八": 8, "九": 9}
_CN_SMALL_UNITS = {"十": 10, "百": 100, "千": 1000}
CN_NUM_CHARS = "".join(_CN_DIGITS) + "".join(_CN_SMALL_UNITS)


def cn_small(text: str) -> int | None:
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
    rf"(?P<num>\d{{1,3}}(?:,\d{{3}})+(?:\.\d+)?|\d+(?:\.\d+)?|[{CN_NUM_CHARS}]+)"
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
    """A Chinese count up to the 亿s (一万二千 → 12000); numerals handled by :func:`cn_small`."""
    total = 0
    for big, factor in (("亿", 100_000_000), ("万", 10_000)):
        if big in text:
            head, text = text.split(big, 1)
            n = cn_small(head) if head else 1
            if n is None:
                return None
            total += n * factor
    if text:
        n = cn_small(text)
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
