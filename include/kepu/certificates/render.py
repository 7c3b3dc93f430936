"""The certificate as a PDF: A4 landscape, a double border, heading, holder, the award's text, issuer and date,
the number and a QR code of the verification URL.

Chinese text is set in WenQuanYi Micro Hei (Debian's ``fonts-wqy-microhei``, a TrueType collection),
embedded as a subset, so the PDF shows the same on every reader and printer. Noto CJK as Debian ships it
has PostScript outlines, which ReportLab cannot embed. The same pages always give the same bytes:
ReportLab's ``invariant`` mode fixes the creation date and the document id, and everything printed comes
from the certificate's row.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from kepu.errors import AwardError

log = logging.getLogger(__name__)

#: Fonts looked for, in order (TrueType outlines only).
FONT_CANDIDATES: tuple[Path, ...] = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
)
FONT_NAME = "KepuCJK"

# Colours: a dark red frame and heading, gold lines, dark grey text.
RED = (0.55, 0.09, 0.09)
GOLD = (0.72, 0.55, 0.16)
INK = (0.13, 0.13, 0.13)
GREY = (0.40, 0.40, 0.40)
PAPER = (1.0, 0.992, 0.965)

# Characters a line may not start with (标点避头).
_NO_LINE_START = set("，。、；：！？）》」』”’,.;:!?)")
_CN_DIGITS = "〇一二三四五六七八九"

_font_lock = threading.Lock()
_font_path: Path | None = None


@dataclass(frozen=True)
class CertificatePage:
    """Everything printed on one certificate."""

    number: str
    heading_zh: str
    heading_en: str
    award_zh: str
    award_en: str
    holder: str
    #: The text below the holder's name: paragraphs separated by newlines (the first line is the salutation).
    body_zh: str
    body_en: str
    issuer_zh: str
    issuer_en: str
    issued_on: dt.date
    verify_url: str


def find_font() -> Path:
    for path in FONT_CANDIDATES:
        if path.is_file():
            return path
    raise AwardError(
        "找不到中文字体，请安装 fonts-wqy-microhei（make setup 会在 root 下自动安装）· no CJK TrueType font found: "
        "install Debian's fonts-wqy-microhei (make setup does when run as root)"
    )


def _register_font() -> None:
    global _font_path
    with _font_lock:
        if _font_path is not None:
            return
        from reportlab.pdfbase import pdfmetrics
        from reportlab.pdfbase.ttfonts import TTFont

        path = find_font()
        pdfmetrics.registerFont(TTFont(FONT_NAME, str(path), subfontIndex=0))
        _font_path = path
        log.info("certificate font: %s", path)


def chinese_date(day: dt.date) -> str:
    """``二〇二二年十二月二十日``, as official certificates write dates."""

    def small(n: int) -> str:
        tens, ones = divmod(n, 10)
        if tens == 0:
            return _CN_DIGITS[ones]
        return ("" if tens == 1 else _CN_DIGITS[tens]) + "十" + (_CN_DIGITS[ones] if ones else "")

    year = "".join(_CN_DIGITS[int(d)] for d in str(day.year))
    return f"{year}年{small(day.month)}月{small(day.day)}日"


def wrap_cjk(text: str, width: float, size: float, indent: int = 0) -> list[str]:
    """Lines of ``text`` no wider than ``width`` points: breaks between any two CJK characters, between Latin
    words otherwise, never before closing punctuation; ``indent`` full-width spaces open the paragraph."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    def w(s: str) -> float:
        return float(stringWidth(s, FONT_NAME, size))

    # Tokens: one CJK character, or a run of Latin letters/digits with its trailing space.
    tokens: list[str] = []
    word = ""
    for ch in text:
        if ch.isascii() and not ch.isspace():
            word += ch
            continue
        if word:
            tokens.append(word)
            word = ""
        if ch == " " and tokens:
            tokens[-1] += " "
        elif ch != " ":
            tokens.append(ch)
    if word:
        tokens.append(word)
    lines: list[str] = []
    line = "\u3000" * indent
    for tok in tokens:
        if line.strip() and w(line + tok.rstrip()) > width and tok[0] not in _NO_LINE_START:
            lines.append(line.rstrip())
            line = ""
        line += tok
    if line.strip():
        lines.append(line.rstrip())
    return lines


def _qr(canvas: object, value: str, x: float, y: float, size: float) -> None:
    from reportlab.graphics import renderPDF
    from reportlab.graphics.barcode.qr import QrCodeWidget
    from reportlab.graphics.shapes import Drawing

    widget = QrCodeWidget(value, barLevel="M", barBorder=2)
    x0, y0, x1, y1 = widget.getBounds()
    drawing = Drawing(size, size, transform=[size / (x1 - x0), 0, 0, size / (y1 - y0), 0, 0])
    drawing.add(widget)
    renderPDF.draw(drawing, canvas, x, y)


def _frame(c: object, width: float, height: float) -> None:
    from reportlab.pdfgen.canvas import Canvas

    assert isinstance(c, Canvas)
    c.setFillColorRGB(*PAPER)
    c.rect(0, 0, width, height, stroke=0, fill=1)
    c.setStrokeColorRGB(*RED)
    c.setLineWidth(6)
    c.rect(22, 22, width - 44, height - 44, stroke=1, fill=0)
    c.setStrokeColorRGB(*GOLD)
    c.setLineWidth(1.2)
    c.rect(32, 32, width - 64, height - 64, stroke=1, fill=0)
    c.setLineWidth(0.6)
    c.rect(36, 36, width - 72, height - 72, stroke=1, fill=0)
    # Corner ornaments: a gold diamond with a red heart at each inner corner.
    c.setFillColorRGB(*GOLD)
    for cx, cy in ((36, 36), (width - 36, 36), (36, height - 36), (width - 36, height - 36)):
        path = c.beginPath()
        path.moveTo(cx, cy - 11)
        path.lineTo(cx + 11, cy)
        path.lineTo(cx, cy + 11)
        path.lineTo(cx - 11, cy)
        path.close()
        c.drawPath(path, stroke=0, fill=1)
    c.setFillColorRGB(*RED)
    for cx, cy in ((36, 36), (width - 36, 36), (36, height - 36), (width - 36, height - 36)):
        c.circle(cx, cy, 3.2, stroke=0, fill=1)


def _page(c: object, page: CertificatePage, width: float, height: float) -> None:
    from reportlab.pdfgen.canvas import Canvas

    assert isinstance(c, Canvas)
    _frame(c, width, height)
    left, right = 110.0, width - 110.0
    # Heading, letter-spaced, and its English line.
    c.setFillColorRGB(*RED)
    heading = page.heading_zh
    size = 46.0
    c.setFont(FONT_NAME, size)
    c.drawCentredString(width / 2, height - 118, "\u2002".join(heading))
    c.setFillColorRGB(*GREY)
    c.setFont(FONT_NAME, 13)
    c.drawCentredString(width / 2, height - 142, page.heading_en.upper())
    c.setStrokeColorRGB(*GOLD)
    c.setLineWidth(0.8)
    c.line(width / 2 - 150, height - 154, width / 2 + 150, height - 154)

    # Body: the salutation (holder) on its own line, then the paragraphs, indented two characters.
    c.setFillColorRGB(*INK)
    y = height - 200
    paragraphs = page.body_zh.split("\n")
    c.setFont(FONT_NAME, 22)
    for line in wrap_cjk(paragraphs[0], right - left, 22):
        c.drawString(left, y, line)
        y -= 36
    y -= 4
    body_size = 19.0
    c.setFont(FONT_NAME, body_size)
    for para in paragraphs[1:]:
        for line in wrap_cjk(para, right - left, body_size, indent=2):
            c.drawString(left, y, line)
            y -= 34
    # The English text, smaller, under the Chinese.
    c.setFillColorRGB(*GREY)
    c.setFont(FONT_NAME, 10.5)
    y -= 4
    for line in wrap_cjk(page.body_en, right - left, 10.5):
        c.drawString(left, y, line)
        y -= 15

    # Issuer and date, bottom right; a space above for the seal.
    c.setFillColorRGB(*GREY)
    c.setFont(FONT_NAME, 8.5)
    c.drawRightString(right, 154, page.issuer_en)
    c.setFillColorRGB(*INK)
    c.setFont(FONT_NAME, 19)
    c.drawRightString(right, 128, page.issuer_zh)
    c.setFont(FONT_NAME, 16)
    c.drawRightString(right, 100, chinese_date(page.issued_on))
    c.setFillColorRGB(*GREY)
    c.setFont(FONT_NAME, 9)
    c.drawRightString(right, 80, page.issued_on.isoformat())

    # Number and QR code of the verification page, bottom left.
    qr_size = 84.0
    _qr(c, page.verify_url, 64, 62, qr_size)
    c.setFillColorRGB(*INK)
    c.setFont(FONT_NAME, 11)
    c.drawString(64 + qr_size + 10, 120, f"证书编号 No. {page.number}")
    c.setFillColorRGB(*GREY)
    c.setFont(FONT_NAME, 9)
    c.drawString(64 + qr_size + 10, 104, "扫码或访问以下网址查验真伪 Scan or visit to verify:")
    c.drawString(64 + qr_size + 10, 91, page.verify_url)
    c.drawString(64 + qr_size + 10, 78, f"{page.award_zh} · {page.award_en}")


def render_pdf(pages: Sequence[CertificatePage], *, title: str, author: str) -> bytes:
    """One PDF holding ``pages`` (one certificate each); the same pages give the same bytes."""
    if not pages:
        raise ValueError("no certificate to render")
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.pdfgen.canvas import Canvas

    _register_font()
    width, height = landscape(A4)
    buf = io.BytesIO()
    c = Canvas(buf, pagesize=(width, height), invariant=1, pageCompression=1)
    c.setTitle(title)
    c.setAuthor(author)
    c.setSubject(" / ".join(sorted({p.award_zh for p in pages})))
    c.setCreator("kepu")
    for page in pages:
        _page(c, page, width, height)
        c.showPage()
    c.save()
    return buf.getvalue()
