"""Reading zip containers (archives, .docx and .xlsx files) without trusting them.

Every member is read through :func:`open_member`: its declared size is checked against a cap
before a byte is inflated, and the bytes actually inflated are counted while streaming, so a
member that lies about its size stops at the cap instead of filling memory or disk. Encryption,
compression methods Python cannot inflate (Deflate64, PPMd, …), CRC errors and truncated data
all become one :class:`MemberError` whose reason is in Chinese and English.
"""

from __future__ import annotations

import io
import shutil
import zipfile
import zlib
from pathlib import Path
from typing import IO

#: Compression methods :mod:`zipfile` inflates (stored, deflate, bzip2, lzma).
SUPPORTED_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
_METHOD_NAMES = {9: "Deflate64", 6: "Implode", 1: "Shrink", 98: "PPMd", 97: "WavPack", 99: "AES", 93: "Zstandard"}

#: Errors a damaged member raises somewhere in zipfile, zlib, bz2 or lzma.
READ_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    ValueError,
    NotImplementedError,
    RuntimeError,
)


class MemberError(Exception):
    """One member cannot be read; ``reason_zh``/``reason_en`` say why, ``name`` names it."""

    def __init__(self, name: str, reason_zh: str, reason_en: str, *, cap: bool = False) -> None:
        self.name = name
        self.reason_zh = reason_zh
        self.reason_en = reason_en
        #: True when a size cap (not damage) stopped the read.
        self.cap = cap
        super().__init__(f"{name}: {reason_zh} / {reason_en}")


def check_member(info: zipfile.ZipInfo, max_bytes: int, name: str | None = None) -> None:
    """Refuse a member that cannot be read at all or declares more than ``max_bytes``."""
    shown = name or info.filename
    if info.flag_bits & 0x1:
        raise MemberError(shown, "已加密，无法读取", "encrypted, cannot be read")
    if info.compress_type not in SUPPORTED_METHODS:
        method = _METHOD_NAMES.get(info.compress_type, f"method {info.compress_type}")
        raise MemberError(
            shown, f"使用不支持的压缩方式（{method}）", f"compressed with an unsupported method ({method})"
        )
    if info.file_size > max_bytes:
        raise MemberError(
            shown,
            f"声明大小 {info.file_size} 字节，超过上限 {max_bytes} 字节",
            f"declares {info.file_size} bytes, over the cap of {max_bytes}",
            cap=True,
        )


class _Capped(io.RawIOBase):
    """A member stream that raises once more than the declared size or the cap was inflated."""

    def __init__(self, raw: IO[bytes], name: str, declared: int, cap: int) -> None:
        self._raw = raw
        self._name = name
        self._limit = min(declared, cap)
        self._cap = cap
        self._declared = declared
        self._seen = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        want = len(buffer)
        try:
            data = self._raw.read(min(want, self._limit - self._seen + 1))
        except MemberError:
            raise
        except READ_ERRORS as exc:
            raise MemberError(
                self._name, f"数据已损坏（{exc}）", f"damaged data ({type(exc).__name__}: {exc})"
            ) from exc
        self._seen += len(data)
        if self._seen > self._limit:
            if self._seen > self._cap:
                raise MemberError(
                    self._name,
                    f"解压后超过上限 {self._cap} 字节",
                    f"inflates past the cap of {self._cap} bytes",
                    cap=True,
                )
            raise MemberError(
                self._name,
                f"实际内容大于声明的 {self._declared} 字节",
                f"holds more than the {self._declared} bytes it declares",
            )
        n = len(data)
        buffer[:n] = data
        return n

    def close(self) -> None:
        try:
            self._raw.close()
        finally:
            super().close()


def open_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, max_bytes: int, name: str | None = None) -> IO[bytes]:
    """A buffered stream of one member, checked and capped as the module says."""
    shown = name or info.filename
    check_member(info, max_bytes, shown)
    try:
        raw = zf.open(info)
    except READ_ERRORS as exc:
        raise MemberError(shown, f"无法打开（{exc}）", f"cannot be opened ({type(exc).__name__}: {exc})") from exc
    return io.BufferedReader(_Capped(raw, shown, info.file_size, max_bytes), 1 << 16)


def read_member(zf: zipfile.ZipFile, name: str | zipfile.ZipInfo, max_bytes: int) -> bytes:
    """The bytes of one member (``KeyError`` when there is none), at most ``max_bytes``."""
    info = name if isinstance(name, zipfile.ZipInfo) else zf.getinfo(name)
    with open_member(zf, info, max_bytes) as fh:
        return fh.read()


def copy_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path, max_bytes: int, name: str | None = None) -> int:
    """Write one member to ``dest``; on any error the partial file is removed and MemberError raised."""
    try:
        with open_member(zf, info, max_bytes, name) as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
            return out.tell()
    except BaseException:
        dest.unlink(missing_ok=True)
        raise


def open_zip(path: Path) -> zipfile.ZipFile:
    """Open a zip file; a damaged directory raises MemberError naming the file."""
    try:
        return zipfile.ZipFile(path)
    except READ_ERRORS as exc:
        raise MemberError(path.name, f"不是可读的 zip 文件（{exc}）", f"not a readable zip file ({exc})") from exc
