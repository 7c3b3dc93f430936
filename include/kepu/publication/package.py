"""One work's publication package, under the public prefix of the object store.

``campaigns/{campaign}/publication/works/{submission}/``
    ``video.mp4``       the publication copy, remuxed without container metadata (no encoder, no tags)
    ``cover.jpg``       the 16:9 cover (else the poster frame), re-encoded without EXIF
    ``subtitles.srt``   Chinese subtitles when the entry has them (a sidecar file or the video's own track),
    ``subtitles.vtt``   … and as WebVTT for the gallery's player
    ``metadata.json``   title, unit, province, category, synopsis, credits, awards — never a contact

Only works whose author's pledge is on record are packaged (the form's signed pledge, or an operator's record
of the signed paper; an operator's record wins both ways). Every file is checked for the submitter's own phone
number and e-mail address before it is stored. A package is made once: a rerun keeps it while its sources and
its metadata are unchanged and its files are still in the store.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kepu.campaign import Campaign
from kepu.certificates.holders import AIR_DATE_FIELD, CATEGORY_FIELDS, CREDITS_FIELD, Entry
from kepu.certificates.release import Release
from kepu.errors import AwardError, MaterialError, MediaToolError
from kepu.media.presets import COVER
from kepu.publication.privacy import (
    ID_NUMBER_RE,
    ContactDataFound,
    check_clean,
    check_text_clean,
    needles,
    private_values,
    scrub,
)
from kepu.storage import check_id

log = logging.getLogger(__name__)

#: Bumped when the package's layout or content rules change: every package is made again.
PACKAGE_VERSION = 1
FFMPEG = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y"]
REMUX_TIMEOUT_S = 900.0
SUBTITLE_EXTENSIONS = (".srt", ".vtt")
_CHUNK = 8 << 20
#: The largest cover the package holds (4K): a larger picture is scaled down, which also bounds the decode.
COVER_MAX_SIZE = (3840, 2160)

#: Public names of the awards as the gallery and the metadata show them.
AWARD_LABELS: dict[str, tuple[str, str]] = {
    "excellent_video": ("优秀科普微视频", "Excellent science micro-video"),
    "best_video": ("最佳作品（参与科普中国“创作之星”评选）", "One of the ten best works (nominated for Creation Star)"),
    "excellent_account": ("优秀科普号", "Excellent science-popularisation account"),
}
LICENCE_ZH = "作者（单位）已承诺：同意在科普中国、科创筑梦、微信、抖音等媒体平台上进行公益展播。"
LICENCE_EN = "The author has agreed to public-interest showing on Kepu China, Kechuang Zhumeng, WeChat, Douyin and similar platforms."


def public_prefix(campaign_id: str) -> str:
    check_id("campaign", campaign_id)
    return f"campaigns/{campaign_id}/publication/"


def work_prefix(campaign_id: str, submission_id: str) -> str:
    check_id("submission", submission_id)
    return f"{public_prefix(campaign_id)}works/{submission_id}/"


@dataclass(frozen=True)
class Work:
    """A work chosen for publication: its awards (best first), best rank, and where its pledge comes from."""

    submission_id: str
    awards: tuple[str, ...]
    rank: int
    pledge: str


@dataclass(frozen=True)
class Withheld:
    submission_id: str
    title: str
    unit: str | None
    province: str | None
    reason_code: str
    reason: str


def select_works(ctx: Any, release: Release, people: dict[str, Entry]) -> tuple[list[Work], list[Withheld]]:
    """The works to publish (awarded, pledge on record, publication copy made) and those withheld, with why."""
    c: Campaign = ctx.campaign
    pledges = ctx.records.list_attestations(c.id, "pledge")
    order = {a: i for i, a in enumerate(("best_video", "excellent_video", "excellent_account"))}
    chosen: list[Work] = []
    withheld: list[Withheld] = []
    for sid, awards in sorted(release.by_submission().items()):
        kinds = sorted({a.award for a in awards}, key=lambda k: order.get(k, 9))
        if not set(kinds) & set(c.publication.awards):
            continue
        e = people[sid]
        # An operator's record of the pledge wins over the form, both ways.
        recorded = pledges.get(sid)
        pledge = ("operator" if recorded["value"] else "") if recorded else ("form" if e.pledge_signed else "")
        if c.publication.requires_pledge and not pledge:
            withheld.append(
                Withheld(
                    sid,
                    e.title,
                    e.unit,
                    e.province,
                    "no_pledge",
                    "无作者承诺（申报表中未签署，也无操作员记录）· no author's pledge on record",
                )
            )
            continue
        if not _video_source(e):
            withheld.append(
                Withheld(sid, e.title, e.unit, e.province, "no_rendition", "无发布版本 · no publication copy was made")
            )
            continue
        rank = min(a.rank for a in awards if a.award in c.publication.awards)
        chosen.append(Work(sid, tuple(kinds), rank, pledge or "not_required"))
    chosen.sort(key=lambda w: (order.get(w.awards[0], 9), w.rank, w.submission_id))
    return chosen, withheld


# --- sources --------------------------------------------------------------------------------------------------


def _outputs(e: Entry) -> dict[str, dict[str, Any]]:
    return dict(((e.details.get("rendition") or {}).get("outputs")) or {})


def _video_source(e: Entry) -> dict[str, Any] | None:
    videos = [o for o in _outputs(e).values() if o.get("role") == "rendition"]
    return max(videos, key=lambda o: int(o.get("height") or 0), default=None)


def _cover_source(ctx: Any, e: Entry) -> str | None:
    outputs = _outputs(e)
    if "cover-16x9.jpg" in outputs:
        return str(outputs["cover-16x9.jpg"]["key"])
    posters = [o for o in outputs.values() if o.get("role") == "poster"]
    if posters:
        return str(posters[0]["key"])
    cover = next((m for m in ctx.records.list_materials(e.submission_id) if m.role == "cover"), None)
    return None if cover is None else str(cover.object_key)


def _subtitle_sources(ctx: Any, e: Entry) -> list[str]:
    return [
        m.object_key
        for m in ctx.records.list_materials(e.submission_id)
        if m.role == "attachment" and m.filename.lower().endswith(SUBTITLE_EXTENSIONS)
    ]


def _digest(ctx: Any, key: str) -> str:
    head = ctx.store.head(key)
    if head is None:
        raise AwardError(f"对象存储中缺少 {key} · {key} is missing from the object store")
    return str(head.sha256)


# --- files ------------------------------------------------------------------------------------------------------


def strip_video(src: Path, dest: Path) -> Path:
    """The video's streams, remuxed without container metadata or chapters (tags can carry anything)."""
    from kepu.media.runner import run

    argv = [
        *FFMPEG,
        "-i",
        str(src),
        "-map",
        "0:v:0",
        "-map",
        "0:a?",
        "-c",
        "copy",
        "-map_metadata",
        "-1",
        "-map_chapters",
        "-1",
        "-fflags",
        "+bitexact",
        "-movflags",
        "+faststart",
        "-f",
        "mp4",
        str(dest),
    ]
    run(argv, timeout=REMUX_TIMEOUT_S)
    return dest


def subtitle_track(src: Path, dest: Path) -> Path | None:
    """The video's first subtitle track as SRT, or None when it has no text track."""
    from kepu.media.runner import run

    try:
        run([*FFMPEG, "-i", str(src), "-map", "0:s:0", "-c:s", "srt", "-f", "srt", str(dest)], timeout=120.0)
    except MediaToolError:
        return None
    return dest if dest.exists() and dest.stat().st_size > 0 else None


class CoverUnreadable(MaterialError):
    """The cover cannot be made into the package's JPEG (``M-UNREADABLE``): the work is withheld and reported."""

    def __init__(self, name: str, reason_zh: str, reason_en: str) -> None:
        super().__init__("M-UNREADABLE", f"封面 {name} {reason_zh} · cover {name} {reason_en}")


def clean_cover(path: Path, *, max_pixels: int = COVER.max_source_pixels) -> bytes:
    """The cover as a JPEG without EXIF, XMP or comments (re-encoded), at most :data:`COVER_MAX_SIZE`.

    The picture's size is read from its header and checked against ``max_pixels`` before any pixel is decoded:
    a PNG of a few KB can claim 160,000×90,000 pixels (a decompression bomb), which decoded would take tens of GB.
    Raises :class:`CoverUnreadable` for that, and for a file Pillow cannot read as a picture.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # Pillow's own, global limit (MAX_IMAGE_PIXELS) only warns below twice its value; ours refuses.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:  # reads the header only
                width, height = img.size
                if width * height > max_pixels:
                    raise CoverUnreadable(
                        path.name,
                        f"为 {width}×{height} 像素，超过上限 {max_pixels:,} 像素，未解码",
                        f"is {width}×{height} pixels, more than the limit of {max_pixels:,}; it was not decoded",
                    )
                # A JPEG is decoded straight at a reduced scale; anything else is reduced once decoded.
                img.draft("RGB", COVER_MAX_SIZE)
                img.thumbnail(COVER_MAX_SIZE)
                rgb = img.convert("RGB")
    except CoverUnreadable:
        raise
    except Image.DecompressionBombError as exc:
        # Pillow's own check ran first (above twice its MAX_IMAGE_PIXELS): same refusal, its count in the reason.
        raise CoverUnreadable(
            path.name,
            f"像素过多（上限 {max_pixels:,} 像素），未解码",
            f"has more pixels than the limit of {max_pixels:,}; it was not decoded ({exc})",
        ) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise CoverUnreadable(path.name, "无法读取为图片", f"cannot be read as a picture ({exc})") from exc
    out = io.BytesIO()
    rgb.save(out, "JPEG", quality=90)
    return out.getvalue()


def decode_text(data: bytes) -> str:
    for enc in ("utf-8-sig", "utf-16", "gb18030"):
        try:
            text = data.decode(enc)
        except UnicodeDecodeError:
            continue
        if enc != "utf-16" or data[:2] in (b"\xff\xfe", b"\xfe\xff"):
            return text
    return data.decode("utf-8", errors="replace")


_SRT_TIME = re.compile(r"(\d{2}:\d{2}:\d{2}),(\d{3})")


def srt_to_vtt(srt: str) -> str:
    body = _SRT_TIME.sub(r"\1.\2", srt.replace("\r\n", "\n").strip())
    return "WEBVTT\n\n" + body + "\n"


def file_contains(path: Path, patterns: list[bytes]) -> bool:
    """Whether the file holds one of ``patterns`` (read in chunks, overlapping by the longest pattern)."""
    if not patterns:
        return False
    keep = max(len(p) for p in patterns) - 1
    tail = b""
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            window = tail + block
            if any(p in window for p in patterns):
                return True
            tail = window[-keep:] if keep else b""
    return False


# --- the package --------------------------------------------------------------------------------------------------


def metadata(c: Campaign, e: Entry, work: Work) -> dict[str, Any]:
    """The work's public metadata: no phone number, e-mail address, ID number or contact person, wherever the
    submitter typed them. The credits keep the creators' names even when one of them is the contact person."""
    contacts = [v for v in (e.email, e.phone) if v]
    private = private_values(e.form)
    known = contacts + private
    synopsis = e.details.get("synopsis") or e.field("内容简介")
    return {
        "id": e.submission_id,
        "title": scrub(e.title, known),
        "unit": scrub(e.unit or e.holder, known),
        "province": e.province or "",
        "category": scrub(e.field(*CATEGORY_FIELDS), known),
        "synopsis": scrub(str(synopsis or ""), known),
        "credits": scrub(e.field(CREDITS_FIELD), contacts + [v for v in private if ID_NUMBER_RE.fullmatch(v)]),
        "air_date": scrub(e.field(AIR_DATE_FIELD), known),
        "awards": [{"key": k, "zh": AWARD_LABELS[k][0], "en": AWARD_LABELS[k][1]} for k in work.awards],
        "campaign": {
            "id": c.id,
            "name_zh": c.campaign.name_zh,
            "name_en": c.campaign.name_en,
            "organiser_zh": c.campaign.organiser_zh,
            "organiser_en": c.campaign.organiser_en,
            "notice": c.campaign.notice,
        },
        "licence_zh": LICENCE_ZH,
        "licence_en": LICENCE_EN,
    }


def _json(data: Any) -> bytes:
    return (json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode()


def build_package(ctx: Any, work: Work, e: Entry) -> dict[str, Any]:
    """Make (or keep) the package of one work; return its manifest (files, digests, package checksum)."""
    c: Campaign = ctx.campaign
    video = _video_source(e)
    if video is None:
        raise AwardError(f"作品 {e.submission_id} 无发布版本 · {e.submission_id} has no publication copy")
    cover_key = _cover_source(ctx, e)
    subtitle_keys = _subtitle_sources(ctx, e)
    meta = metadata(c, e, work)
    sources = {
        "version": PACKAGE_VERSION,
        "video": _digest(ctx, str(video["key"])),
        "cover": _digest(ctx, cover_key) if cover_key else None,
        "subtitles": [_digest(ctx, k) for k in subtitle_keys],
        "metadata": hashlib.sha256(_json(meta)).hexdigest(),
        "contacts": hashlib.sha256("\x1f".join(sorted(filter(None, (e.email, e.phone)))).encode()).hexdigest(),
    }
    prefix = work_prefix(c.id, e.submission_id)
    done = e.details.get("publication") or {}
    if done.get("sources") == sources and all(ctx.store.exists(prefix + f) for f in done.get("files", {})):
        log.debug("%s: package unchanged", e.submission_id)
        return dict(done)

    patterns = needles([e.email, e.phone, *(v for v in private_values(e.form) if ID_NUMBER_RE.fullmatch(v))])
    files: dict[str, dict[str, Any]] = {}
    scratch = ctx.settings.scratch_dir / f"publish-{e.submission_id}"
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        with ctx.store.open_local(str(video["key"])) as src:
            stripped = strip_video(src, scratch / "video.mp4")
            track = subtitle_track(src, scratch / "track.srt") if not subtitle_keys else None
        if file_contains(stripped, patterns):
            raise ContactDataFound(
                f"{e.submission_id} 的视频含有联系方式，不予发布 · the video of {e.submission_id} "
                "holds contact data and is not published"
            )
        files["video.mp4"] = _put_file(
            ctx, prefix + "video.mp4", stripped, "video/mp4", width=video.get("width"), height=video.get("height")
        )
        if cover_key:
            with ctx.store.open_local(cover_key) as cover:
                data = clean_cover(cover)
            check_clean(data, patterns, f"{e.submission_id} 的封面 cover")
            files["cover.jpg"] = _put_bytes(ctx, prefix + "cover.jpg", data, "image/jpeg")
        srt_text: str | None = None
        if subtitle_keys:
            with ctx.store.open_local(subtitle_keys[0]) as sub:
                raw = decode_text(sub.read_bytes())
            srt_text = raw[raw.index("\n") + 1 :].lstrip() if raw.startswith("WEBVTT") else raw
        elif track is not None:
            srt_text = decode_text(track.read_bytes())
        if srt_text:
            clean = "\n".join(scrub(line, [v for v in (e.email, e.phone) if v]) for line in srt_text.splitlines())
            srt = clean.replace("\r\n", "\n").strip() + "\n"
            for name, text, ctype in (
                ("subtitles.srt", srt, "application/x-subrip"),
                ("subtitles.vtt", srt_to_vtt(srt), "text/vtt"),
            ):
                data = text.encode()
                check_clean(data, patterns, f"{e.submission_id} 的字幕 subtitles")
                files[name] = _put_bytes(ctx, prefix + name, data, ctype)
        meta["files"] = {name: {k: v for k, v in info.items() if k != "key"} for name, info in sorted(files.items())}
        meta_bytes = _json(meta)
        check_clean(meta_bytes, patterns, f"{e.submission_id} 的元数据 metadata")
        check_text_clean(meta_bytes, f"{e.submission_id} 的元数据 metadata")
        files["metadata.json"] = _put_bytes(ctx, prefix + "metadata.json", meta_bytes, "application/json")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    ctx.store.delete_prefix_except(prefix, {info["key"] for info in files.values()})
    manifest = {
        "sources": sources,
        "files": {name: {k: v for k, v in info.items() if k != "key"} for name, info in files.items()},
        "package_sha256": hashlib.sha256(meta_bytes).hexdigest(),
        "pledge": work.pledge,
    }
    ctx.records.set_details(e.submission_id, {"publication": manifest})
    log.info("%s: package made (%s)", e.submission_id, ", ".join(sorted(files)))
    return manifest


def _put_file(ctx: Any, key: str, path: Path, ctype: str, **extra: Any) -> dict[str, Any]:
    stored = ctx.store.put_file(key, path, content_type=ctype)
    return {
        "key": key,
        "path": key.rsplit("/", 1)[1],
        "sha256": stored.sha256,
        "size": stored.size,
        "content_type": ctype,
        **{k: v for k, v in extra.items() if v is not None},
    }


def _put_bytes(ctx: Any, key: str, data: bytes, ctype: str) -> dict[str, Any]:
    stored = ctx.store.put_bytes(key, data, content_type=ctype)
    return {
        "key": key,
        "path": key.rsplit("/", 1)[1],
        "sha256": stored.sha256,
        "size": stored.size,
        "content_type": ctype,
    }
