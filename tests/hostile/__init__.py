"""Generators of hostile inputs: damaged archives, forms and summary sheets, bombs, hostile names.

Each generator writes one file named by what it is and returns its path. Archive damage is made by
patching the bytes of a well-formed zip (sizes, method, flags, names), so each file is damaged in
exactly one way. Workbooks are written as raw SpreadsheetML, which makes a 100,000-row sheet in a
second.
"""

from __future__ import annotations

import io
import os
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import BinaryIO
from xml.sax.saxutils import escape

# --- zip patching --------------------------------------------------------------------------------

_LOCAL = b"PK\x03\x04"
_CENTRAL = b"PK\x01\x02"


def write_zip(path: Path, members: Iterable[tuple[str | zipfile.ZipInfo, bytes]], *, stored: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    method = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return path


def _headers(data: bytes, name: bytes) -> tuple[int, int]:
    """Offsets of the local and central headers of the member called ``name``."""
    local = central = -1
    pos = 0
    while (pos := data.find(_LOCAL, pos)) >= 0:
        n = struct.unpack_from("<H", data, pos + 26)[0]
        if data[pos + 30 : pos + 30 + n] == name:
            local = pos
            break
        pos += 4
    pos = 0
    while (pos := data.find(_CENTRAL, pos)) >= 0:
        n = struct.unpack_from("<H", data, pos + 28)[0]
        if data[pos + 46 : pos + 46 + n] == name:
            central = pos
            break
        pos += 4
    assert local >= 0 and central >= 0, name
    return local, central


def patch_member(
    path: Path,
    name: str,
    *,
    file_size: int | None = None,
    method: int | None = None,
    flags_or: int = 0,
    new_name: bytes | None = None,
    flip_data_byte: bool = False,
) -> Path:
    """Change one member's headers (both the local and the central one) in place."""
    data = bytearray(path.read_bytes())
    raw = name.encode()
    local, central = _headers(bytes(data), raw)
    if file_size is not None:
        struct.pack_into("<I", data, local + 22, file_size)
        struct.pack_into("<I", data, central + 24, file_size)
    if method is not None:
        struct.pack_into("<H", data, local + 8, method)
        struct.pack_into("<H", data, central + 10, method)
    if flags_or:
        for off in (local + 6, central + 8):
            struct.pack_into("<H", data, off, struct.unpack_from("<H", data, off)[0] | flags_or)
    if flip_data_byte:
        n, extra = struct.unpack_from("<HH", data, local + 26)
        data[local + 30 + n + extra] ^= 0xFF
    if new_name is not None:
        assert len(new_name) == len(raw), "a patched name keeps its length"
        for off in (local + 30, central + 46):
            data[off : off + len(raw)] = new_name
        # The name is no longer UTF-8: clear the language-encoding flag.
        for off in (local + 6, central + 8):
            struct.pack_into("<H", data, off, struct.unpack_from("<H", data, off)[0] & ~0x800)
    path.write_bytes(bytes(data))
    return path


# --- archives ------------------------------------------------------------------------------------

SYNOPSIS = "月亮本身不发光，我们看到的是它反射的太阳光。".encode()
GOOD = ("简介.txt", SYNOPSIS)
#: The member each damaged archive carries, next to a good synopsis.
VICTIM = "附件说明.txt"
PAYLOAD = b"attachment payload " * 200


def archive_bad_crc(dest: Path) -> Path:
    path = write_zip(dest / "广东省+坏校验单位+校验错误的压缩包.zip", [GOOD, (VICTIM, PAYLOAD)], stored=True)
    return patch_member(path, VICTIM, flip_data_byte=True)


def archive_member_larger_than_declared(dest: Path) -> Path:
    path = write_zip(dest / "广东省+谎报单位+成员大于声明大小.zip", [GOOD, (VICTIM, PAYLOAD)])
    return patch_member(path, VICTIM, file_size=100)


def archive_deflate64(dest: Path) -> Path:
    path = write_zip(dest / "广东省+压缩单位+Deflate64成员.zip", [GOOD, (VICTIM, PAYLOAD)])
    return patch_member(path, VICTIM, method=9)


def archive_encrypted_member(dest: Path) -> Path:
    path = write_zip(dest / "广东省+加密单位+加密成员.zip", [GOOD, (VICTIM, PAYLOAD)])
    return patch_member(path, VICTIM, flags_or=0x1)


def archive_file_and_folder_same_name(dest: Path) -> Path:
    return write_zip(
        dest / "广东省+同名单位+文件与文件夹同名.zip", [GOOD, ("附件", b"a file"), ("附件/说明.txt", b"in a folder")]
    )


def archive_name_over_255_bytes(dest: Path) -> Path:
    return write_zip(dest / "广东省+长名单位+成员名超过255字节.zip", [GOOD, ("长" * 90 + ".txt", b"x")])


def archive_symlink_member(dest: Path) -> Path:
    link = zipfile.ZipInfo("封面.jpg")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    return write_zip(dest / "广东省+链接单位+符号链接成员.zip", [GOOD, (link, b"/etc/passwd")])


def archive_path_traversal(dest: Path) -> Path:
    return write_zip(
        dest / "广东省+穿越单位+路径穿越成员.zip",
        [GOOD, ("../../escaped.txt", b"x"), ("/tmp/kepu-hostile-absolute.txt", b"x")],
    )


def archive_nul_in_name(dest: Path) -> Path:
    path = write_zip(dest / "广东省+空字符单位+成员名含空字符.zip", [GOOD, ("evil.txt", b"x")])
    return patch_member(path, "evil.txt", new_name=b"ev\x00l.txt")


def archive_gbk_name_without_utf8_flag(dest: Path) -> Path:
    gbk = "说明.txt".encode("gbk")
    placeholder = "X" * (len(gbk) - 4) + ".txt"
    path = write_zip(dest / "广东省+编码单位+GBK成员名.zip", [GOOD, (placeholder, b"gbk named")])
    return patch_member(path, placeholder, new_name=gbk)


def archive_nested_zip(dest: Path) -> Path:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("inner/../../x.txt", b"x")
    return write_zip(dest / "广东省+嵌套单位+嵌套压缩包.zip", [GOOD, ("inner.zip", inner.getvalue())])


def archive_many_members(dest: Path, count: int = 100_000) -> Path:
    path = dest / "广东省+成员单位+十万个成员.zip"
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for i in range(count):
            zf.writestr(f"f{i}", b"")
    return path


def archive_bomb(dest: Path, size: int = 300 * 1024 * 1024) -> Path:
    """One member of ``size`` zero bytes (a ratio of about 1000)."""
    path = dest / "广东省+炸弹单位+解压炸弹.zip"
    path.parent.mkdir(parents=True, exist_ok=True)
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf,
        zf.open("zeros.bin", "w", force_zip64=True) as out,
    ):
        block = bytes(1 << 20)
        for _ in range(size >> 20):
            out.write(block)
    return path


ARCHIVES = {
    "bad-crc": (archive_bad_crc, "M-UNREADABLE", VICTIM),
    "member-larger-than-declared": (archive_member_larger_than_declared, "M-UNREADABLE", VICTIM),
    "deflate64": (archive_deflate64, "M-UNREADABLE", VICTIM),
    "encrypted-member": (archive_encrypted_member, "M-UNREADABLE", VICTIM),
    "file-and-folder-same-name": (archive_file_and_folder_same_name, "M-UNREADABLE", "附件"),
    "name-over-255-bytes": (archive_name_over_255_bytes, "M-UNREADABLE", "长长长"),
    "symlink-member": (archive_symlink_member, "M-UNSAFE-ARCHIVE", "封面.jpg"),
    "path-traversal": (archive_path_traversal, "M-UNSAFE-ARCHIVE", "escaped.txt"),
}


# --- Word forms ----------------------------------------------------------------------------------


def rewrite_zip(src: Path, dest: Path, replace: dict[str, bytes | BigXml], *, drop: Sequence[str] = ()) -> Path:
    """A copy of ``src`` with some members replaced (or added) and some dropped."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            if info.filename in drop or info.filename in replace:
                continue
            zout.writestr(info, zin.read(info))
        for name, data in replace.items():
            if isinstance(data, BigXml):
                with zout.open(name, "w", force_zip64=True) as out:
                    for chunk in data.chunks():
                        out.write(chunk)
            else:
                zout.writestr(name, data)
    return dest


class BigXml:
    """Well-formed XML of about ``size`` bytes, mostly whitespace (it compresses ~1000:1), written in chunks."""

    def __init__(self, size: int, root: str = "Relationships") -> None:
        self.size, self.root = size, root

    def chunks(self) -> Iterable[bytes]:
        yield f'<?xml version="1.0"?><{self.root}>'.encode()
        block = b" " * (1 << 20)
        for _ in range(self.size >> 20):
            yield block
        yield f"</{self.root}>".encode()


def docx_encrypted_document(form: Path, dest: Path) -> Path:
    path = rewrite_zip(form, dest / "申报表-正文加密.docx", {})
    return patch_member(path, "word/document.xml", flags_or=0x1)


def docx_unsupported_method(form: Path, dest: Path) -> Path:
    path = rewrite_zip(form, dest / "申报表-不支持的压缩方式.docx", {})
    return patch_member(path, "word/document.xml", method=9)


def docx_rels_bomb(form: Path, dest: Path, size: int = 64 * 1024 * 1024) -> Path:
    return rewrite_zip(form, dest / "申报表-关系部件炸弹.docx", {"_rels/.rels": BigXml(size)})


def docx_main_part_not_xml_bomb(form: Path, dest: Path, size: int = 64 * 1024 * 1024) -> Path:
    rels = (
        b'<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        b'<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
        b'officeDocument" Target="word/main.bin"/></Relationships>'
    )
    return rewrite_zip(
        form, dest / "申报表-主部件非xml炸弹.docx", {"_rels/.rels": rels, "word/main.bin": BigXml(size, "document")}
    )


def docx_many_tables(form: Path, dest: Path, tables: int = 10_000) -> Path:
    with zipfile.ZipFile(form) as zf:
        doc = zf.read("word/document.xml")
    table = (
        b"<w:tbl><w:tr><w:tc><w:p><w:r><w:t>\xe5\xa4\x87\xe6\xb3\xa8</w:t></w:r></w:p></w:tc>"
        b"<w:tc><w:p><w:r><w:t>x</w:t></w:r></w:p></w:tc></w:tr></w:tbl><w:p/>"
    )
    cut = doc.rindex(b"<w:sectPr") if b"<w:sectPr" in doc else doc.rindex(b"</w:body>")
    return rewrite_zip(
        form, dest / "申报表-一万个表格.docx", {"word/document.xml": doc[:cut] + table * tables + doc[cut:]}
    )


# --- workbooks -----------------------------------------------------------------------------------

_CT = (
    '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.'
    'spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/'
    'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>'
)
_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
    'relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>'
)
_WB = (
    '<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/'
    'main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>'
    '<sheet name="{title}" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
_WB_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
    'relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>'
)


def _col(n: int) -> str:
    s = ""
    while n:
        n, r = divmod(n - 1, 26)
        s = chr(65 + r) + s
    return s


def _cell_xml(ref: str, value: object) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f'<c r="{ref}"><v>{value!r}</v></c>'
    return f'<c r="{ref}" t="inlineStr"><is><t>{escape(str(value))}</t></is></c>'


def sheet_xml(rows: Iterable[Sequence[object]]) -> Iterable[bytes]:
    """A worksheet's XML, row by row, with no ``<dimension>`` (as a streaming writer leaves it): numbers as numbers,
    anything else as an inline string, empty cells left out."""
    yield b'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
    for r, row in enumerate(rows, start=1):
        cells = "".join(_cell_xml(f"{_col(c)}{r}", v) for c, v in enumerate(row, start=1) if v is not None and v != "")
        yield f'<row r="{r}">{cells}</row>'.encode()
    yield b"</sheetData></worksheet>"


def write_xlsx(path: Path, rows: Iterable[Sequence[object]], *, title: str = "Sheet1") -> Path:
    """A minimal one-page workbook (:func:`sheet_xml`), streamed (no openpyxl, any size)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        write_xlsx_to(fh, rows, title=title)
    return path


def write_xlsx_to(fh: BinaryIO, rows: Iterable[Sequence[object]], *, title: str = "Sheet1") -> None:
    """:func:`write_xlsx` into an open binary file."""
    with zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("[Content_Types].xml", _CT)
        zf.writestr("_rels/.rels", _RELS)
        zf.writestr("xl/workbook.xml", _WB.format(title=escape(title, {'"': "&quot;"})))
        zf.writestr("xl/_rels/workbook.xml.rels", _WB_RELS)
        with zf.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as out:
            for chunk in sheet_xml(rows):
                out.write(chunk)


SHEET_HEADER = ["序号", "作品名称", "报送单位", "省份", "推荐渠道", "接收时间"]


def sheet_random_bytes(dest: Path) -> Path:
    path = dest / "汇总表.xlsx"
    path.write_bytes(os.urandom(4096))
    return path


def sheet_truncated(dest: Path) -> Path:
    path = write_xlsx(dest / "汇总表.xlsx", [SHEET_HEADER, ["1", "标题", "单位", "北京市", "", ""]])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def sheet_broken_xml(dest: Path) -> Path:
    path = write_xlsx(dest / "汇总表.xlsx", [SHEET_HEADER])
    return rewrite_zip(
        path, dest / "汇总表-tmp.xlsx", {"xl/worksheets/sheet1.xml": b"<worksheet><sheetData><row><c>"}
    ).replace(path)


def sheet_zip_without_workbook(dest: Path) -> Path:
    return write_zip(dest / "汇总表.xlsx", [("readme.txt", b"no workbook here")])


def sheet_16384_columns(dest: Path) -> Path:
    row = [*SHEET_HEADER, *[f"列{i}" for i in range(len(SHEET_HEADER), 16384)]]
    return write_xlsx(dest / "汇总表.xlsx", [row, ["1", "标题", "单位", "北京市", "", ""]])


def sheet_100000_rows(dest: Path, rows: int = 100_000) -> Path:
    def gen() -> Iterable[Sequence[object]]:
        yield SHEET_HEADER
        for i in range(1, rows + 1):
            yield [str(i), f"作品{i}", f"单位{i % 97}", "北京市", "", ""]

    return write_xlsx(dest / "汇总表.xlsx", gen())


SHEETS = {
    "random-bytes": sheet_random_bytes,
    "truncated": sheet_truncated,
    "broken-sheet-xml": sheet_broken_xml,
    "zip-without-workbook": sheet_zip_without_workbook,
}


def xlsx_form_formatted_down(dest: Path, rows: int = 300_000) -> Path:
    """An Excel form whose sheet runs to ``rows`` rows (styles applied to whole columns, say)."""

    def gen() -> Iterable[Sequence[object]]:
        yield ["微视频名称", "会飞的种子"]
        yield ["单位名称（申报人）", "某单位"]
        for _ in range(rows):
            yield [" ", " ", " "]

    return write_xlsx(dest / "申报表-三十万行.xlsx", gen())


# --- pictures and text ---------------------------------------------------------------------------


def png_decompression_bomb(path: Path, width: int = 160_000, height: int = 90_000) -> Path:
    """A PNG header claiming ``width``×``height`` pixels over a tiny compressed body."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = zlib.compress(b"\x00" * 4096, 9)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


def sparse_file(path: Path, size: int) -> Path:
    """A file of ``size`` zero bytes that takes no disk space."""
    with open(path, "wb") as fh:
        fh.truncate(size)
    return path


def mp4_many_streams(dest: Path, audio_streams: int = 998) -> Path:
    """A 1-second MP4 with one picture and ``audio_streams`` copies of one short sound track (~0.7 MB).

    The sound is encoded once and copied into every stream, so making the file takes a second.
    """
    import subprocess

    dest.mkdir(parents=True, exist_ok=True)
    sound, path = dest / "one-sound.m4a", dest / f"{audio_streams + 1}-streams.mp4"
    quiet = ["ffmpeg", "-nostdin", "-v", "error", "-y"]
    subprocess.run(
        [*quiet, "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", "1", "-c:a", "aac", "-b:a", "8k", str(sound)],
        check=True,
    )
    maps = [arg for _ in range(audio_streams) for arg in ("-map", "1:a")]
    subprocess.run(
        [
            *quiet,
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x180:rate=10:d=1",
            "-i",
            str(sound),
            "-map",
            "0:v",
            *maps,
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-c:a",
            "copy",
            str(path),
        ],
        check=True,
    )
    sound.unlink()
    return path


def clip_1080p(path: Path, seconds: float = 2.0) -> Path:
    """A short 1920×1080 H.264 + AAC clip: what a real entry's analysis decodes, in a few seconds of it."""
    from media_factory import tone_clip

    return tone_clip(path, seconds=seconds, size="1920x1080")
