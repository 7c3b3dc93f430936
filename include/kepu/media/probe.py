"""What a media file is, from ffprobe: container, streams, and the picture as a viewer sees it.

:func:`parse_probe` is pure (JSON in, dataclasses out) so every odd case ffprobe can print is
covered by unit tests on captured output; :func:`probe_file` only runs ffprobe and maps its failures.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kepu.errors import MaterialError, MediaToolError
from kepu.media.memo import run_memoised
from kepu.media.runner import ToolExitError, run

log = logging.getLogger(__name__)

FFPROBE = "ffprobe"

#: Major brands of the ISO base media (MP4) family. QuickTime's ``qt  `` is deliberately absent:
#: the mov demuxer reads both, but the campaign asks for MP4 and a .mov is a different container.
MP4_BRANDS = frozenset(
    {
        "isom",
        "iso2",
        "iso3",
        "iso4",
        "iso5",
        "iso6",
        "iso7",
        "iso8",
        "iso9",
        "mp41",
        "mp42",
        "mp71",
        "avc1",
        "dash",
        "msnv",  # Sony consumer cameras
        "xavc",  # Sony XAVC S, an MP4 profile
        "mmp4",  # mobile MP4
        "m4v",
        "m4vh",
        "m4vp",
        "m4a",
        "m4b",
        "f4v",
    }
)

# The demuxer FFmpeg uses for every ISO-BMFF/QuickTime file reports this combined name.
_MOV_DEMUXER = "mov,mp4,m4a,3gp,3g2,mj2"

_GENERIC_HANDLERS = frozenset({"SubtitleHandler", "TextHandler", "VideoHandler", "SoundHandler"})

_BIT_DEPTH_RE = re.compile(r"(\d+)(?:le|be)$")


@dataclass(frozen=True)
class VideoStream:
    """The main picture.

    ``width``/``height`` are the stored frame size (ffprobe's ``width``/``height``, not the
    macroblock-padded ``coded_width``). ``rotation`` is the display-matrix angle in FFmpeg's
    convention (counter-clockwise degrees, normalised to 0–359). ``display_width``/``display_height``
    are what a player shows after the sample aspect ratio and that rotation are applied.
    """

    index: int
    codec: str
    profile: str | None
    pix_fmt: str | None
    bit_depth: int | None
    width: int
    height: int
    sample_aspect_ratio: tuple[int, int]
    rotation: int
    display_width: int
    display_height: int
    display_aspect: float | None
    avg_frame_rate: float | None
    r_frame_rate: float | None
    field_order: str | None
    nb_frames: int | None
    duration_s: float | None
    bit_rate: int | None


@dataclass(frozen=True)
class AudioStream:
    index: int
    codec: str
    profile: str | None
    sample_rate: int | None
    channels: int | None
    channel_layout: str | None
    duration_s: float | None
    bit_rate: int | None


@dataclass(frozen=True)
class SubtitleStream:
    index: int
    codec: str
    language: str | None
    title: str | None


@dataclass(frozen=True)
class ProbeResult:
    format_name: str
    format_long_name: str | None
    major_brand: str | None
    compatible_brands: str | None
    is_mp4: bool
    duration_s: float | None
    size_bytes: int
    bit_rate: int | None
    video: VideoStream | None
    audio: AudioStream | None
    audio_count: int
    video_count: int
    subtitles: list[SubtitleStream] = field(default_factory=list)
    stream_count: int = 0


def probe_summary(probe: ProbeResult) -> dict[str, Any]:
    """The probe in a few JSON-ready figures (kept with the entry's metrics for operators to read)."""
    out: dict[str, Any] = {
        "container": probe.format_name,
        "brand": probe.major_brand,
        "duration_s": probe.duration_s,
        "size_bytes": probe.size_bytes,
        "bit_rate": probe.bit_rate,
        "streams": probe.stream_count,
    }
    v = probe.video
    if v is not None:
        out["video"] = {
            "codec": v.codec,
            "profile": v.profile,
            "pix_fmt": v.pix_fmt,
            "bit_depth": v.bit_depth,
            "coded": [v.width, v.height],
            "display": [v.display_width, v.display_height],
            "sar": list(v.sample_aspect_ratio),
            "rotation": v.rotation,
            "fps": v.avg_frame_rate,
            "field_order": v.field_order,
            "bit_rate": v.bit_rate,
        }
    a = probe.audio
    if a is not None:
        out["audio"] = {
            "codec": a.codec,
            "sample_rate": a.sample_rate,
            "channels": a.channels,
            "layout": a.channel_layout,
            "bit_rate": a.bit_rate,
        }
    out["subtitles"] = [{"codec": s.codec, "language": s.language} for s in probe.subtitles]
    return out


def parse_probe(data: dict[str, Any], *, file_size: int) -> ProbeResult:
    """Turn ffprobe's ``-show_format -show_streams -of json`` output into a :class:`ProbeResult`.

    Fields ffprobe could not determine may be absent or ``"N/A"`` (with ``-show_optional_fields
    always``); frame rates of ``"0/0"`` mean unknown. All of them become ``None``, never an error.
    The size comes from the caller because ffprobe omits it for some inputs (raw streams, pipes).
    """
    fmt: dict[str, Any] = data.get("format") or {}
    streams: list[dict[str, Any]] = list(data.get("streams") or [])
    tags = _lower_keys(fmt.get("tags"))
    format_name = str(fmt.get("format_name") or "")
    # Only an ISO/QuickTime file has an ftyp box. Remuxers copy the source's brand into Matroska
    # tags (MAJOR_BRAND=isom in an .mkv), which says nothing about this file's container.
    major_brand = _str(tags.get("major_brand")) if _is_iso_demuxer(format_name) else None

    # Cover art is stored as a one-frame "video" stream with the attached_pic disposition; it must
    # not be mistaken for the programme.
    videos = [s for s in streams if s.get("codec_type") == "video" and not _is_attached_pic(s)]
    audios = [s for s in streams if s.get("codec_type") == "audio"]
    subtitle_streams = [s for s in streams if s.get("codec_type") == "subtitle"]

    video = _parse_video(videos[0]) if videos else None
    audio = _parse_audio(audios[0]) if audios else None

    duration = _float(fmt.get("duration"))
    if duration is None:
        # Raw elementary streams have no container duration; the stream's own is the best guess.
        duration = (video.duration_s if video else None) or (audio.duration_s if audio else None)

    return ProbeResult(
        format_name=format_name,
        format_long_name=_str(fmt.get("format_long_name")),
        major_brand=major_brand,
        compatible_brands=_str(tags.get("compatible_brands")),
        is_mp4=is_mp4_container(format_name, major_brand),
        duration_s=duration,
        size_bytes=file_size,
        bit_rate=_int(fmt.get("bit_rate")),
        video=video,
        audio=audio,
        audio_count=len(audios),
        video_count=len(videos),
        subtitles=[_parse_subtitle(s) for s in subtitle_streams],
        stream_count=len(streams),
    )


def is_mp4_container(format_name: str, major_brand: str | None) -> bool:
    """True for an ISO-BMFF file whose ftyp major brand is of the MP4 family.

    The demuxer alone cannot tell: FFmpeg reads MP4, QuickTime and 3GPP with one demuxer, so the
    brand written by the muxer decides. A file without an ftyp box (old QuickTime) is not MP4.
    """
    if not _is_iso_demuxer(format_name):
        return False
    if not major_brand:
        return False
    return major_brand.strip().lower() in MP4_BRANDS


def _is_iso_demuxer(format_name: str) -> bool:
    return format_name == _MOV_DEMUXER or "mp4" in format_name.split(",")


def probe_command(path: Path) -> list[str]:
    """The ffprobe argv for ``path``.

    Same form as ``ffmpeg.probe`` of ffmpeg-python (``-show_format -show_streams -of json`` then the
    file), plus ``-v error`` so that stderr holds only the reason of a failure. ffmpeg-python 0.2.0's
    ``probe`` has no timeout and waits on ffprobe forever, which a crafted or damaged file can make
    hang; so the argv is built here and run through :func:`kepu.media.runner.run`. ``-show_streams``
    already prints each stream's ``side_data_list`` (the display matrix) in FFmpeg 5.1.
    """
    return [FFPROBE, "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)]


def stream_count_command(path: Path) -> list[str]:
    """The ffprobe argv printing how many streams the container header declares.

    ``-nofind_stream_info`` reads the header only: no decoder is opened and no packet is buffered per
    stream, so a file declaring a thousand streams costs tens of MB here, not the ~700 MB of a full probe.
    """
    return [
        FFPROBE,
        "-v",
        "error",
        "-nofind_stream_info",
        "-show_entries",
        "format=nb_streams",
        "-of",
        "csv=p=0",
        str(path),
    ]


#: Top-level box types that mark a file as ISO base media (MP4/MOV) for :func:`iso_track_count`.
_ISO_TOP_BOXES = frozenset(
    {
        b"ftyp",
        b"moov",
        b"mdat",
        b"free",
        b"skip",
        b"wide",
        b"uuid",
        b"pdin",
        b"moof",
        b"mfra",
        b"meta",
        b"styp",
        b"sidx",
        b"pnot",
        b"junk",
    }
)


def iso_track_count(path: Path, *, max_boxes: int = 100_000) -> int | None:
    """The number of ``trak`` boxes in an MP4/MOV file's ``moov``, read from box headers only.

    Only headers are read (16 bytes per box, seeking over the rest), so this costs nothing whatever
    the file declares; libavformat, by contrast, allocates about 0.65 MB for every stream it opens, even
    with ``-nofind_stream_info``. None when the file is not ISO base media or has no ``moov``.
    """

    def boxes(f: Any, start: int, end: int) -> Any:
        pos = start
        for _ in range(max_boxes):
            if pos + 8 > end:
                return
            f.seek(pos)
            head = f.read(16)
            if len(head) < 8:
                return
            size, kind = int.from_bytes(head[:4], "big"), head[4:8]
            if size == 1 and len(head) == 16:
                size = int.from_bytes(head[8:16], "big")
            elif size == 0:
                size = end - pos
            if size < 8:
                return
            yield kind, pos, min(pos + size, end)
            pos += size

    try:
        with path.open("rb") as f:
            end = f.seek(0, 2)
            first = True
            for kind, pos, box_end in boxes(f, 0, end):
                if first and kind not in _ISO_TOP_BOXES:
                    return None
                first = False
                if kind == b"moov":
                    header = 16 if int.from_bytes((f.seek(pos), f.read(4))[1], "big") == 1 else 8
                    return sum(1 for child, _, _ in boxes(f, pos + header, box_end) if child == b"trak")
    except OSError:
        return None
    return None


def count_streams(path: Path, *, timeout: float = 60) -> int | None:
    """The number of streams ``path`` declares, or None when that cannot be told cheaply.

    MP4/MOV files are counted from their box headers (:func:`iso_track_count`); any other container
    by ffprobe reading its header only (``-nofind_stream_info``). A file ffprobe cannot open at all
    is left to :func:`probe_file`, which names the reason.
    """
    path = path.resolve()
    tracks = iso_track_count(path)
    if tracks is not None:
        return tracks
    try:
        completed = run_memoised(stream_count_command(path), reads=path, timeout=timeout, runner=run)
    except ToolExitError:
        return None
    words = completed.stdout.decode("utf-8", errors="replace").split()
    return _int(words[0].strip(",")) if words else None


def refuse_many_streams(path: Path, limit: int, *, timeout: float = 60) -> None:
    """Raise :class:`MaterialError` ``M-UNREADABLE`` when ``path`` declares more than ``limit`` streams.

    For every submitted file ffprobe or ffmpeg opens (a cover, any other material): opening each stream
    costs about 0.65 MB, so a file declaring a thousand is refused from its header (:func:`count_streams`)
    before a full probe or a decode opens them.
    """
    streams = count_streams(path, timeout=timeout)
    if streams is not None and streams > limit:
        log.warning("%s: %d streams, more than the limit of %d; not opened", path.name, streams, limit)
        raise MaterialError(
            "M-UNREADABLE",
            f"{path.name}: 含 {streams} 路流，超过上限 {limit} 路，未打开 / has {streams} streams, "
            f"more than the limit of {limit}; it was not opened",
        )


def probe_file(path: Path, *, timeout: float = 60, max_streams: int | None = None) -> ProbeResult:
    """Probe ``path`` with ffprobe.

    Raises :class:`MaterialError` ``M-UNREADABLE`` when the file is missing, empty, not media,
    truncated beyond what ffprobe can open, or holds no stream at all, or (with ``max_streams``) when it
    declares more streams than that (see :func:`refuse_many_streams`). A file with streams but no
    video is returned normally: deciding that it is ``V-NO-VIDEO`` is the caller's job.
    :class:`MediaToolError` is left to propagate when the tool itself failed (not installed, timed
    out, printed something that is not JSON): that is not the submitter's fault.
    """
    path = path.resolve()  # an absolute path can never be read by ffprobe as an option or protocol
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise MaterialError("M-UNREADABLE", f"{path.name}: cannot be read: {exc.strerror}") from exc
    if not path.is_file():
        raise MaterialError("M-UNREADABLE", f"{path.name}: is not a regular file")
    if size == 0:
        raise MaterialError("M-UNREADABLE", f"{path.name}: the file is empty (0 bytes)")
    if max_streams is not None:
        refuse_many_streams(path, max_streams, timeout=timeout)

    argv = probe_command(path)
    try:
        completed = run_memoised(argv, reads=path, timeout=timeout, runner=run)
    except ToolExitError as exc:
        raise MaterialError(
            "M-UNREADABLE", f"{path.name}: not a readable media file; ffprobe says: {exc.stderr_tail}"
        ) from exc
    try:
        data = json.loads(completed.stdout.decode("utf-8", errors="replace"))
    except json.JSONDecodeError as exc:
        raise MediaToolError(argv, f"ffprobe printed invalid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise MediaToolError(argv, f"ffprobe printed JSON of type {type(data).__name__}, not an object")

    result = parse_probe(data, file_size=size)
    if result.stream_count == 0:
        raise MaterialError(
            "M-UNREADABLE", f"{path.name}: ffprobe opened it as {result.format_name!r} but found no stream"
        )
    log.debug("probed %s: %s, %s streams", path.name, result.format_name, result.stream_count)
    return result


def _parse_video(s: dict[str, Any]) -> VideoStream:
    width = _int(s.get("width")) or 0
    height = _int(s.get("height")) or 0
    sar = _ratio(s.get("sample_aspect_ratio"))
    # 0:1 (or absent) means "unknown", which players treat as square pixels.
    sar_pair = (sar[0], sar[1]) if sar and sar[0] > 0 and sar[1] > 0 else (1, 1)
    rotation = _rotation(s)
    shown_w = round(width * sar_pair[0] / sar_pair[1])
    shown_h = height
    if rotation in (90, 270):
        shown_w, shown_h = shown_h, shown_w
    pix_fmt = _str(s.get("pix_fmt"))
    return VideoStream(
        index=_int(s.get("index")) or 0,
        codec=str(s.get("codec_name") or "unknown"),
        profile=_str(s.get("profile")),
        pix_fmt=pix_fmt,
        bit_depth=_int(s.get("bits_per_raw_sample")) or _bit_depth_from_pix_fmt(pix_fmt),
        width=width,
        height=height,
        sample_aspect_ratio=sar_pair,
        rotation=rotation,
        display_width=shown_w,
        display_height=shown_h,
        display_aspect=shown_w / shown_h if shown_w > 0 and shown_h > 0 else None,
        avg_frame_rate=_rate(s.get("avg_frame_rate")),
        r_frame_rate=_rate(s.get("r_frame_rate")),
        field_order=_str(s.get("field_order")),
        nb_frames=_int(s.get("nb_frames")),
        duration_s=_stream_duration(s),
        bit_rate=_int(s.get("bit_rate")),
    )


def _parse_audio(s: dict[str, Any]) -> AudioStream:
    return AudioStream(
        index=_int(s.get("index")) or 0,
        codec=str(s.get("codec_name") or "unknown"),
        profile=_str(s.get("profile")),
        sample_rate=_int(s.get("sample_rate")),
        channels=_int(s.get("channels")),
        channel_layout=_str(s.get("channel_layout")),
        duration_s=_stream_duration(s),
        bit_rate=_int(s.get("bit_rate")),
    )


def _parse_subtitle(s: dict[str, Any]) -> SubtitleStream:
    tags = _lower_keys(s.get("tags"))
    language = _str(tags.get("language"))
    # MP4 has no per-track title; the handler name is where muxers put one, unless it is a
    # muxer's generic default.
    handler = _str(tags.get("handler_name"))
    if handler in _GENERIC_HANDLERS:
        handler = None
    return SubtitleStream(
        index=_int(s.get("index")) or 0,
        codec=str(s.get("codec_name") or "unknown"),
        # "und" is the muxers' placeholder for "not set", not a language.
        language=None if language in (None, "und") else language,
        title=_str(tags.get("title")) or handler,
    )


def _stream_duration(s: dict[str, Any]) -> float | None:
    duration = _float(s.get("duration"))
    if duration is not None:
        return duration
    # Matroska stores per-track durations only as a "DURATION" tag, e.g. "00:04:00.021000000".
    text = _str(_lower_keys(s.get("tags")).get("duration"))
    if text is None:
        return None
    parts = text.split(":")
    try:
        seconds = 0.0
        for part in parts:
            seconds = seconds * 60 + float(part)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and len(parts) <= 3 else None


def _rotation(s: dict[str, Any]) -> int:
    """Display rotation in degrees, counter-clockwise, normalised to 0–359 and snapped to 90°."""
    for side in s.get("side_data_list") or []:
        if isinstance(side, dict) and side.get("side_data_type") == "Display Matrix":
            angle = _float(side.get("rotation"))
            if angle is not None:
                return _snap(angle)
    # Files written by FFmpeg < 5 (and some phones) still carry the legacy "rotate" tag, which is
    # the clockwise angle to apply; the display matrix angle is its opposite.
    rotate = _float(_lower_keys(s.get("tags")).get("rotate"))
    if rotate is not None:
        return _snap(-rotate)
    return 0


def _snap(angle: float) -> int:
    # Players only honour quarter turns; an arbitrary angle is shown as the nearest one.
    return round(angle / 90.0) * 90 % 360


def _is_attached_pic(s: dict[str, Any]) -> bool:
    disposition = s.get("disposition") or {}
    return bool(isinstance(disposition, dict) and disposition.get("attached_pic"))


def _bit_depth_from_pix_fmt(pix_fmt: str | None) -> int | None:
    if not pix_fmt:
        return None
    if pix_fmt.startswith(("p010", "p016")):
        return int(pix_fmt[1:4])
    if pix_fmt.startswith(("nv12", "nv16", "nv21", "nv24")):
        return 8  # the digits name the subsampling, not the depth
    if pix_fmt.startswith(("yuv", "yuvj", "yuva", "gray", "gbrp", "gbrap")):
        # FFmpeg spells a component depth above 8 as a suffix (yuv420p10le); none means 8.
        match = _BIT_DEPTH_RE.search(pix_fmt)
        return int(match.group(1)) if match else 8
    return None


def _lower_keys(tags: Any) -> dict[str, Any]:
    # Muxers disagree on tag case (e.g. "LANGUAGE" in some Matroska files).
    if not isinstance(tags, dict):
        return {}
    return {str(k).lower(): v for k, v in tags.items()}


def _str(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return None if text in ("", "N/A", "unknown") else text


def _float(value: Any) -> float | None:
    text = _str(value)
    if text is None:
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    number = _float(value)
    return int(number) if number is not None else None


def _ratio(value: Any) -> tuple[int, int] | None:
    text = _str(value)
    if text is None:
        return None
    num, sep, den = text.replace("/", ":").partition(":")
    if not sep:
        return None
    try:
        return int(num), int(den)
    except ValueError:
        return None


def _rate(value: Any) -> float | None:
    ratio = _ratio(value)
    if ratio is None or ratio[0] <= 0 or ratio[1] <= 0:
        return None
    return ratio[0] / ratio[1]
