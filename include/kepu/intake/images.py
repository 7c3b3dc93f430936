"""Cover images: any picture a submitter sends, made into the 16:9 JPEG the platforms show.

FFmpeg does the decoding (JPEG including Adobe CMYK/YCCK, PNG, WebP, BMP, GIF, TIFF) and the
drawing; Python reads the EXIF orientation of a JPEG and the matching transform is applied
explicitly (FFmpeg's own handling of it varies between builds and ignores the mirrored cases). A picture that is already 16:9 (within the preset's tolerance) is scaled and
trimmed by at most that tolerance; any other shape is fitted whole over a blurred, enlarged copy of
itself, so a portrait photo or a 4:3 slide is never cropped and never shown between black bars.
Transparent pixels are laid on white first.
"""

from __future__ import annotations

import logging
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from kepu.errors import MaterialError
from kepu.media.presets import COVER, CoverPreset
from kepu.media.probe import probe_file
from kepu.media.runner import ToolExitError, run
from kepu.storage import sha256_file

log = logging.getLogger(__name__)

FFMPEG = "ffmpeg"

#: FFmpeg transforms that bring a picture with EXIF orientation 2–8 upright.
_ORIENTATION_FILTERS: dict[int, str] = {
    2: "hflip",
    3: "hflip,vflip",
    4: "vflip",
    5: "transpose=cclock_flip",
    6: "transpose=clock",
    7: "transpose=clock_flip",
    8: "transpose=cclock",
}
_SWAPS_AXES = frozenset({5, 6, 7, 8})
_ALPHA_PREFIXES = ("rgba", "bgra", "argb", "abgr", "ya", "yuva", "gbrap", "pal8")
# An EXIF block sits in the first APP1 segment; no camera puts it beyond this.
_EXIF_SCAN_BYTES = 1 << 18
_ORIENTATION_TAG = 0x0112


@dataclass(frozen=True)
class CoverResult:
    dest: Path
    width: int
    height: int
    #: FFmpeg's name of the source's codec (``mjpeg``, ``png``, ``webp``, ``bmp``, …).
    source_codec: str
    source_width: int
    source_height: int
    #: EXIF orientation (1 = as stored) that was applied.
    orientation: int
    #: True when the picture was fitted over a blurred background rather than filling the frame.
    padded: bool
    size: int
    sha256: str
    argv: tuple[str, ...]


def jpeg_exif_orientation(data: bytes) -> int:
    """The EXIF orientation (1–8) in the JPEG bytes ``data``; 1 when absent or unreadable."""
    if data[:2] != b"\xff\xd8":
        return 1
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return 1
        marker = data[pos + 1]
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no more metadata
            return 1
        if marker == 0xFF or 0xD0 <= marker <= 0xD7 or marker == 0x01:
            pos += 1 if marker == 0xFF else 2  # fill byte or a marker without a length
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        body = data[pos + 4 : pos + 2 + length]
        if marker == 0xE1 and body[:6] == b"Exif\x00\x00":
            return _tiff_orientation(body[6:])
        pos += 2 + length
    return 1


def _tiff_orientation(tiff: bytes) -> int:
    if tiff[:4] == b"II*\x00":
        endian = "<"
    elif tiff[:4] == b"MM\x00*":
        endian = ">"
    else:
        return 1
    try:
        (ifd,) = struct.unpack(endian + "I", tiff[4:8])
        (count,) = struct.unpack(endian + "H", tiff[ifd : ifd + 2])
        for i in range(count):
            entry = tiff[ifd + 2 + 12 * i : ifd + 14 + 12 * i]
            tag, kind = struct.unpack(endian + "HH", entry[:4])
            if tag == _ORIENTATION_TAG and kind == 3:  # SHORT, stored in the entry itself
                (value,) = struct.unpack(endian + "H", entry[8:10])
                return value if 1 <= value <= 8 else 1
    except struct.error:
        return 1
    return 1


def _has_alpha(pix_fmt: str | None) -> bool:
    return bool(pix_fmt) and str(pix_fmt).startswith(_ALPHA_PREFIXES)


def cover_command(
    src: Path,
    dest: Path,
    *,
    upright_width: int,
    upright_height: int,
    orientation: int,
    alpha: bool,
    preset: CoverPreset = COVER,
) -> tuple[list[str], bool]:
    """The ffmpeg argv writing the cover, and whether the picture is fitted over a background."""
    w, h = preset.width, preset.height
    steps = []
    if orientation in _ORIENTATION_FILTERS:
        steps.append(_ORIENTATION_FILTERS[orientation])
    graph: list[str] = []
    upright = "[0:v:0]" + (",".join(steps) if steps else "null") + "[up]"
    graph.append(upright)
    if alpha:
        graph.append(f"color=c=white:s={upright_width}x{upright_height}[paper]")
        graph.append("[paper][up]overlay=shortest=1:format=auto[pic]")
    else:
        graph.append("[up]null[pic]")
    ratio = (upright_width / upright_height) / (w / h)
    padded = abs(ratio - 1) > preset.aspect_tolerance
    if padded:
        bw, bh = preset.background_width, preset.background_height
        graph.append("[pic]split=2[bg][fg]")
        graph.append(
            f"[bg]scale={bw}:{bh}:force_original_aspect_ratio=increase,crop={bw}:{bh},"
            f"boxblur={preset.background_blur}:2,scale={w}:{h}:flags=bicubic[soft]"
        )
        graph.append(
            f"[fg]scale={w}:{h}:force_original_aspect_ratio=decrease:force_divisible_by=2:flags=lanczos[sharp]"
        )
        graph.append("[soft][sharp]overlay=(W-w)/2:(H-h)/2,setsar=1,format=yuvj420p[out]")
    else:
        graph.append(
            f"[pic]scale={w}:{h}:force_original_aspect_ratio=increase:flags=lanczos,crop={w}:{h},"
            "setsar=1,format=yuvj420p[out]"
        )
    argv = [
        FFMPEG,
        "-nostdin",
        "-hide_banner",
        "-nostats",
        "-v",
        "error",
        "-y",
        "-noautorotate",
        "-i",
        str(src),
        "-filter_complex",
        ";".join(graph),
        "-map",
        "[out]",
        "-frames:v",
        "1",
        "-c:v",
        "mjpeg",
        "-q:v",
        str(preset.jpeg_q),
        "-update",
        "1",
        "-f",
        "image2",
        str(dest),
    ]
    return argv, padded


def normalise_cover(
    src: Path, dest: Path, *, max_streams: int, timeout: float = 60.0, preset: CoverPreset = COVER
) -> CoverResult:
    """Write ``src`` as a ``preset.width``×``preset.height`` JPEG at ``dest`` (replaced atomically).

    Raises :class:`MaterialError` ``M-UNREADABLE`` when ``src`` is not a picture FFmpeg can decode
    (or one too large to decode safely, or a file declaring more than ``max_streams`` streams, refused
    before ffprobe opens them); whether that is ``M-COVER-FORMAT`` or worse is the caller's decision.
    :class:`kepu.errors.MediaToolError` (tool missing, timeout) propagates.
    """
    src = src.resolve()
    dest = dest.resolve()
    probe = probe_file(src, timeout=timeout, max_streams=max_streams)
    picture = probe.video
    if picture is None or not _is_image_format(probe.format_name):
        raise MaterialError("M-UNREADABLE", f"{src.name}: not a picture (read as {probe.format_name or 'unknown'})")
    if picture.width <= 0 or picture.height <= 0:
        raise MaterialError("M-UNREADABLE", f"{src.name}: the picture size cannot be read")
    if picture.width * picture.height > preset.max_source_pixels:
        raise MaterialError(
            "M-UNREADABLE",
            f"{src.name}: {picture.width}×{picture.height} is too large to decode safely "
            f"(limit {preset.max_source_pixels:,} pixels)",
        )

    orientation = 1
    if picture.codec == "mjpeg":
        with open(src, "rb") as fh:
            orientation = jpeg_exif_orientation(fh.read(_EXIF_SCAN_BYTES))
    # FFmpeg builds differ in whether they turn EXIF orientation into a display matrix (and then
    # rotate by it, without the mirrored cases); with -noautorotate the stored pixels come through
    # unchanged and the transform is applied here, the same way everywhere.
    up_w, up_h = picture.width, picture.height
    if orientation in _SWAPS_AXES:
        up_w, up_h = up_h, up_w

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.part")
    argv, padded = cover_command(
        src,
        tmp,
        upright_width=up_w,
        upright_height=up_h,
        orientation=orientation,
        alpha=_has_alpha(picture.pix_fmt),
        preset=preset,
    )
    try:
        run(argv, timeout=timeout)
        if not tmp.exists() or tmp.stat().st_size == 0:
            raise MaterialError("M-UNREADABLE", f"{src.name}: no picture could be decoded")
        os.replace(tmp, dest)
    except ToolExitError as exc:
        raise MaterialError("M-UNREADABLE", f"{src.name}: cannot be decoded; ffmpeg says: {exc.stderr_tail}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    sha, size = sha256_file(dest)
    log.info(
        "cover %s (%s %dx%d, orientation %d) → %s%s",
        src.name,
        picture.codec,
        picture.width,
        picture.height,
        orientation,
        dest.name,
        " over a blurred background" if padded else "",
    )
    return CoverResult(
        dest=dest,
        width=preset.width,
        height=preset.height,
        source_codec=picture.codec,
        source_width=picture.width,
        source_height=picture.height,
        orientation=orientation,
        padded=padded,
        size=size,
        sha256=sha,
        argv=tuple(argv),
    )


def _is_image_format(format_name: str) -> bool:
    # Still pictures are read by the image2 demuxer (by extension) or an *_pipe demuxer (by content).
    names = format_name.split(",")
    return any(n in ("image2", "gif", "apng") or n.endswith("_pipe") for n in names)
