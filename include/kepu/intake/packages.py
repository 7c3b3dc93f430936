"""Reading the inbox: which packages arrived, under which stable id, and what each one holds.

A package is a folder, a zip archive or a lone video at the top of the inbox. Its submission id
depends only on the campaign and the name it arrived under, so a rerun (or a changed file) maps to
the same record; a fingerprint of names, sizes and modification times tells whether it changed.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import shutil
import stat
import unicodedata
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal

from kepu.campaign import Campaign
from kepu.findings import Finding, make_finding
from kepu.provinces import match_province
from kepu.rules import Code
from kepu.safezip import MemberError, copy_member, open_zip

log = logging.getLogger(__name__)

SourceKind = Literal["folder", "archive", "file"]

#: Files that operating systems and archivers leave behind; never part of a submission.
_JUNK_NAMES = {".ds_store", "thumbs.db", "desktop.ini", "__macosx", ".git", ".svn"}


@dataclass(frozen=True)
class PackageSource:
    name: str
    path: Path
    kind: SourceKind
    fingerprint: str
    #: Where the package lies: a file:// URI in a local inbox, s3://… in an object-store inbox.
    uri: str = ""

    def __post_init__(self) -> None:
        if not self.uri:
            object.__setattr__(self, "uri", self.path.resolve().as_uri())


def is_junk(name: str) -> bool:
    """Files and folders that systems and archivers leave behind (.DS_Store, ~$lock files, …)."""
    low = name.lower()
    return low in _JUNK_NAMES or low.startswith(("._", "~$", ".~"))


def submission_id(campaign_id: str, source_name: str) -> str:
    """Stable id of a package: the campaign plus the name it arrived under (NFC)."""
    key = f"{campaign_id}\n{unicodedata.normalize('NFC', source_name)}".encode()
    return "s" + hashlib.sha256(key).hexdigest()[:20]


def _fingerprint(entries: Iterable[tuple[str, int, int]]) -> str:
    h = hashlib.sha256()
    for rel, size, mtime_ns in sorted(entries):
        h.update(f"{rel}\0{size}\0{mtime_ns}\n".encode())
    return h.hexdigest()


def package_files(root: Path) -> list[Path]:
    """Regular files of a package folder, junk and links left out, in a stable order."""
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not is_junk(d))
        for fn in sorted(filenames):
            p = Path(dirpath) / fn
            if is_junk(fn) or p.is_symlink() or not p.is_file():
                continue
            out.append(p)
    return out


def discover(inbox: Path, campaign: Campaign) -> list[PackageSource]:
    """Every package at the top of ``inbox``, sorted by name."""
    if not inbox.is_dir():
        raise FileNotFoundError(f"inbox {inbox} is not a folder")
    archive_ext = set(campaign.package.archive_extensions)
    video_ext = set(campaign.package.video_extensions)
    sources: list[PackageSource] = []
    for entry in sorted(inbox.iterdir(), key=lambda p: p.name):
        # Hidden entries (.part downloads, editors' files) are never packages.
        if is_junk(entry.name) or entry.name.startswith(".") or entry.is_symlink():
            continue
        if entry.is_dir():
            files = package_files(entry)
            fp = _fingerprint((str(f.relative_to(entry)), f.stat().st_size, f.stat().st_mtime_ns) for f in files)
            sources.append(PackageSource(entry.name, entry, "folder", fp))
        elif entry.is_file():
            ext = entry.suffix.lower()
            st = entry.stat()
            fp = _fingerprint([(entry.name, st.st_size, st.st_mtime_ns)])
            if ext in archive_ext:
                sources.append(PackageSource(entry.name, entry, "archive", fp))
            elif ext in video_ext:
                sources.append(PackageSource(entry.name, entry, "file", fp))
            else:
                log.info("ignoring %s at the top of the inbox: not a folder, archive or video", entry.name)
    return sources


# --- folder names ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FolderName:
    raw: str
    province: str | None
    unit: str | None
    title: str | None

    @property
    def complete(self) -> bool:
        return bool(self.province and self.unit and self.title)


def _strip_ext(name: str, campaign: Campaign) -> str:
    suffix = PurePosixPath(name).suffix.lower()
    known = set(campaign.package.archive_extensions) | set(campaign.package.video_extensions)
    return name[: -len(suffix)] if suffix in known else name


def parse_folder_name(name: str, campaign: Campaign) -> FolderName:
    """Parse ``省+报送单位（或个人）+视频名称``; full-width forms and stray spaces are normalised."""
    text = unicodedata.normalize("NFKC", _strip_ext(name, campaign)).strip().strip("\"'“”‘’《》")
    text = " ".join(text.split())
    seps = [unicodedata.normalize("NFKC", s) for s in campaign.package.folder_name_separators]
    for sep in dict.fromkeys(seps):
        if not sep.strip() and sep != " ":
            continue
        parts = [p.strip().strip('《》“”"') for p in text.split(sep)]
        parts = [p for p in parts if p]
        if len(parts) < 2:
            continue
        head = match_province(parts[0])
        if head is None:
            continue
        province, rest = head
        rest = rest.strip()
        if rest:
            # Province glued to the unit: 北京市青少年科技中心+标题
            unit, title = rest, sep.join(parts[1:])
        elif len(parts) >= 3:
            unit, title = parts[1], sep.join(parts[2:])
        else:
            unit, title = None, parts[1]
        return FolderName(name, province, unit or None, title or None)
    head = match_province(text)
    if head:
        return FolderName(name, head[0], None, head[1].strip() or None)
    return FolderName(name, None, None, None)


# --- archives --------------------------------------------------------------------------------------


def _member_name(info: zipfile.ZipInfo) -> str:
    """Decode a member name: UTF-8 when the flag says so, else the GBK that Windows archivers write."""
    if info.flag_bits & 0x800:
        return info.filename
    try:
        raw = info.filename.encode("cp437")
    except UnicodeEncodeError:
        return info.filename
    for enc in ("utf-8", "gb18030"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    return info.filename


#: Longest file or folder name (in UTF-8 bytes) a file system takes.
MAX_NAME_BYTES = 255
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


def _member_finding(campaign: Campaign, code: Code, name: str, reason_zh: str, reason_en: str) -> Finding:
    shown = _CONTROL_CHARS.sub("\ufffd", name)
    if len(shown) > 120:
        shown = shown[:117] + "…"
    return make_finding(
        campaign,
        code,
        detail_zh=f"成员 {shown!r} {reason_zh}，未解压",
        detail_en=f"member {shown!r}: {reason_en}; not extracted",
        value=shown,
    )


def safe_extract(archive: Path, dest: Path, campaign: Campaign) -> tuple[Path, list[Finding]]:
    """Extract ``archive`` under ``dest``; unsafe members are refused with ``M-UNSAFE-ARCHIVE``.

    Nothing is ever written outside ``dest``. A bomb (too many members, too large in total, or an
    expansion ratio over the cap) is refused whole. A member that cannot be read (bad CRC, more
    data than it declares, an unsupported compression method, encryption, a name clash or a name
    too long for a file system) becomes ``M-UNREADABLE`` naming it, and the other members are
    still extracted. Member bytes are counted while they are inflated (:mod:`kepu.safezip`).
    """
    limits = campaign.package.archive_limits
    findings: list[Finding] = []
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    root = dest.resolve()
    try:
        zf = open_zip(archive)
    except MemberError as exc:
        findings.append(
            make_finding(
                campaign,
                "M-UNREADABLE",
                detail_zh=f"压缩包 {archive.name} 无法打开（{exc.reason_zh}）",
                detail_en=f"archive {archive.name} cannot be opened ({exc.reason_en})",
                value=archive.name,
            )
        )
        return dest, findings
    with zf:
        infos = zf.infolist()
        total = sum(i.file_size for i in infos)
        packed = max(1, sum(i.compress_size for i in infos))
        if (
            len(infos) > limits.max_members
            or total > limits.max_total_bytes
            or (total / packed > limits.max_expansion_ratio and total > 10_000_000)
        ):
            findings.append(
                make_finding(
                    campaign,
                    "M-UNSAFE-ARCHIVE",
                    detail_zh=f"{len(infos)} 个成员，解压后共 {total} 字节"
                    f"（压缩比 {total / packed:.0f}），超出限制，未解压",
                    detail_en=f"{len(infos)} members, {total} bytes expanded (ratio {total / packed:.0f}): "
                    "over the limits, not extracted",
                    value=total,
                    limit=limits.max_total_bytes,
                )
            )
            return dest, findings
        for info in infos:
            name = _member_name(info)
            mode = info.external_attr >> 16
            pure = PurePosixPath(_CONTROL_CHARS.sub("_", name).replace("\\", "/"))
            unsafe = (
                name.startswith(("/", "\\"))
                or (len(name) > 1 and name[1] == ":")
                or ".." in pure.parts
                or stat.S_ISLNK(mode)
            )
            if unsafe:
                findings.append(
                    _member_finding(
                        campaign,
                        "M-UNSAFE-ARCHIVE",
                        name,
                        "含绝对路径、“..”或链接",
                        "has an absolute path, '..' or is a link",
                    )
                )
                continue
            if any(len(part.encode()) > MAX_NAME_BYTES for part in pure.parts):
                findings.append(
                    _member_finding(
                        campaign,
                        "M-UNREADABLE",
                        name,
                        f"名称超过 {MAX_NAME_BYTES} 字节",
                        f"a name longer than {MAX_NAME_BYTES} bytes",
                    )
                )
                continue
            target = (root / pure).resolve()
            if not target.is_relative_to(root):
                findings.append(
                    _member_finding(campaign, "M-UNSAFE-ARCHIVE", name, "指向压缩包之外", "points outside the archive")
                )
                continue
            try:
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.is_dir():
                    raise IsADirectoryError(str(target))
                copy_member(zf, info, target, limits.max_total_bytes, name)
            except MemberError as exc:
                code: Code = "M-UNSAFE-ARCHIVE" if exc.cap else "M-UNREADABLE"
                findings.append(_member_finding(campaign, code, name, exc.reason_zh, exc.reason_en))
            except OSError as exc:
                findings.append(
                    _member_finding(
                        campaign,
                        "M-UNREADABLE",
                        name,
                        "无法写出（与同名文件或文件夹冲突）",
                        f"cannot be written ({type(exc).__name__}: a file and a folder of the same name?)",
                    )
                )
    return dest, findings


# --- what a package holds --------------------------------------------------------------------------

_MAGIC_IMAGE = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM")


def _head(path: Path, n: int = 16) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(n)


def looks_like_image(path: Path) -> bool:
    head = _head(path)
    return head.startswith(_MAGIC_IMAGE) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


#: A synopsis is 300 characters; a text file past this is not one and is not read into memory.
MAX_TEXT_BYTES = 1 << 20


class TextTooLarge(OSError):
    """A text file over :data:`MAX_TEXT_BYTES`."""

    def __init__(self, path: Path, size: int, cap: int) -> None:
        self.size, self.cap = size, cap
        super().__init__(errno.EFBIG, f"{size} bytes, over the cap of {cap} · 文件 {size} 字节，超过上限 {cap} 字节")


def read_text(path: Path, max_bytes: int = MAX_TEXT_BYTES) -> str:
    """Text of a synopsis file: UTF-8 (with or without BOM) or the GB18030 that Chinese Windows writes.

    Raises :class:`TextTooLarge` (an OSError) for a file over ``max_bytes``, read no further.
    """
    with open(path, "rb") as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise TextTooLarge(path, path.stat().st_size, max_bytes)
    for enc in ("utf-8-sig", "gb18030", "utf-16"):
        try:
            # NUL is no text, and PostgreSQL refuses it in a text or JSON value.
            return data.decode(enc).replace("\x00", "")
        except UnicodeDecodeError:
            continue
    raise UnicodeDecodeError("text", data[:16], 0, 1, "neither UTF-8 nor GB18030")


@dataclass
class PackageContents:
    kind: Literal["video", "account"]
    video: Path | None = None
    video_candidates: list[Path] = field(default_factory=list)
    cover: Path | None = None
    synopsis: Path | None = None
    forms: list[Path] = field(default_factory=list)
    subtitles: list[Path] = field(default_factory=list)
    attachments: list[Path] = field(default_factory=list)

    def roles(self) -> list[tuple[str, Path]]:
        """(role, file) for every file of the package, each file once."""
        out: list[tuple[str, Path]] = []
        if self.video:
            out.append(("video", self.video))
        if self.cover:
            out.append(("cover", self.cover))
        if self.synopsis:
            out.append(("synopsis", self.synopsis))
        out.extend(("form", f) for f in self.forms)
        taken = {p for _, p in out}
        out.extend(("attachment", f) for f in [*self.subtitles, *self.attachments] if f not in taken)
        return out


_COVER_WORDS = ("封面", "cover", "海报", "poster")
_NOT_COVER_WORDS = ("承诺", "签字", "签名", "申报表", "盖章", "扫描")
_MAIN_VIDEO_WORDS = ("成稿", "正片", "终版", "final")


def classify(files: list[Path], campaign: Campaign, title: str | None) -> PackageContents:
    """Sort a package's files into video, cover, synopsis, forms and the rest."""
    p = campaign.package
    videos, images, texts, forms, subs, rest = [], [], [], [], [], []
    for f in files:
        ext = f.suffix.lower()
        if ext in p.video_extensions:
            videos.append(f)
        elif ext in p.image_extensions or (ext not in p.form_extensions and looks_like_image(f)):
            images.append(f)
        elif ext in p.subtitle_extensions:
            subs.append(f)
        elif ext in p.text_extensions:
            texts.append(f)
        elif ext in p.form_extensions:
            forms.append(f)
        else:
            rest.append(f)
    is_account = not videos and any("科普号" in f.name for f in forms + texts)
    c = PackageContents(kind="account" if is_account else "video", forms=forms, subtitles=subs)
    c.video_candidates = videos
    c.video = choose_video(videos, title)
    covers = [i for i in images if not any(w in i.name for w in _NOT_COVER_WORDS)]
    named = [i for i in covers if any(w in i.name.lower() for w in _COVER_WORDS)]
    pool = named or covers
    c.cover = max(pool, key=lambda i: i.stat().st_size) if pool else None
    named_texts = [t for t in texts if "简介" in t.name or "synopsis" in t.name.lower()]
    synopses = named_texts or texts
    c.synopsis = synopses[0] if synopses else None
    taken = {c.video, c.cover, c.synopsis}
    c.attachments = [f for f in [*videos, *images, *texts, *rest] if f not in taken]
    return c


def choose_video(candidates: list[Path], title: str | None) -> Path | None:
    """The entry among several videos, or None when no candidate is clearly it."""
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    by_size = sorted(candidates, key=lambda v: v.stat().st_size, reverse=True)
    if by_size[0].stat().st_size >= 3 * max(1, by_size[1].stat().st_size):
        return by_size[0]
    marked = [v for v in candidates if any(w in v.stem.lower() for w in _MAIN_VIDEO_WORDS)]
    if len(marked) == 1:
        return marked[0]
    if title:
        norm = unicodedata.normalize("NFKC", title)
        titled = [v for v in candidates if norm and norm in unicodedata.normalize("NFKC", v.stem)]
        if len(titled) == 1:
            return titled[0]
    return None
