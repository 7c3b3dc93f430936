"""make_rendition and normalise_cover with real ffmpeg on short generated clips and pictures.

Encodes use the production presets with x264 ``superfast`` (which still writes High profile) so the
whole module stays short on a 2-core machine.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import shutil
import struct
from pathlib import Path

import pytest

from kepu.campaign import Campaign, load_campaign
from kepu.errors import MaterialError, MediaToolError
from kepu.intake.images import normalise_cover
from kepu.media.presets import DEFAULT_PRESETS
from kepu.media.probe import probe_file
from kepu.media.rendition import MANIFEST_NAME, RenditionResult, make_rendition, plan_rendition
from kepu.media.runner import run
from media_factory import generate  # tests/ is not a package: found through sys.path

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg and ffprobe"),
]

CAMPAIGN_FILE = Path(__file__).resolve().parents[2] / "include" / "campaigns" / "2022.yaml"
FF = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y"]
SECONDS = 2.4
HD = f"testsrc2=size=1920x1080:rate=25:duration={SECONDS}"
# lavfi's sine is at -18 dBFS; +2 dB puts a stereo copy near -20 LUFS, -12 dB near -34 LUFS (too quiet).
TONE = f"sine=frequency=440:sample_rate=48000:duration={SECONDS}"
X264_FAST = ["-c:v", "libx264", "-preset", "ultrafast", "-g", "25"]
AAC = ["-c:a", "aac", "-b:a", "128k", "-ac", "2"]
TIMEOUT = 120.0

FAST = dataclasses.replace(
    DEFAULT_PRESETS,
    encode_outputs=tuple(dataclasses.replace(p, x264_preset="superfast") for p in DEFAULT_PRESETS.encode_outputs),
)


@pytest.fixture(scope="module")
def campaign() -> Campaign:
    return load_campaign(CAMPAIGN_FILE)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("clips")
    srt = d / "zh.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:02,000\n光的折射\n", encoding="utf-8")
    out = {name: d / f"{name}.mp4" for name in ("conformant", "vfr", "ten_bit", "mpeg4", "portrait", "quiet")}

    def make(*args: str) -> None:
        generate([*FF, *args], Path(args[-1]), timeout=TIMEOUT)

    # Conformant: opens on black for 0.6 s (a naive 10 % poster would be black), Chinese mov_text.
    make(
        "-f",
        "lavfi",
        "-i",
        f"{HD},drawbox=c=black:t=fill:enable='lt(t,0.6)'",
        "-f",
        "lavfi",
        "-i",
        f"{TONE},volume=2dB",
        "-i",
        str(srt),
        "-map",
        "0",
        "-map",
        "1",
        "-map",
        "2",
        *X264_FAST,
        "-pix_fmt",
        "yuv420p",
        *AAC,
        "-c:s",
        "mov_text",
        "-metadata:s:s:0",
        "language=chi",
        str(out["conformant"]),
    )
    make(
        "-f",
        "lavfi",
        "-i",
        HD,
        "-f",
        "lavfi",
        "-i",
        f"{TONE},volume=2dB",
        "-vf",
        "setpts='(N+0.5*floor(N/3))/25/TB'",
        "-fps_mode",
        "passthrough",
        *X264_FAST,
        "-pix_fmt",
        "yuv420p",
        *AAC,
        str(out["vfr"]),
    )
    make(
        "-f",
        "lavfi",
        "-i",
        HD,
        "-f",
        "lavfi",
        "-i",
        f"{TONE},volume=2dB",
        *X264_FAST,
        "-pix_fmt",
        "yuv420p10le",
        *AAC,
        str(out["ten_bit"]),
    )
    make(
        "-f",
        "lavfi",
        "-i",
        HD,
        "-f",
        "lavfi",
        "-i",
        f"{TONE},volume=2dB",
        "-c:v",
        "mpeg4",
        "-q:v",
        "8",
        "-c:a",
        "libmp3lame",
        "-b:a",
        "128k",
        str(out["mpeg4"]),
    )
    # A phone clip: stored landscape 640x360, shown portrait through its display matrix.
    upright = d / "upright.mp4"
    make(
        "-f",
        "lavfi",
        "-i",
        f"testsrc2=size=640x360:rate=25:duration={SECONDS}",
        "-f",
        "lavfi",
        "-i",
        f"{TONE},volume=2dB",
        *X264_FAST,
        "-pix_fmt",
        "yuv420p",
        *AAC,
        str(upright),
    )
    make("-i", str(upright), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(out["portrait"]))
    # Conformant picture, narration about 30 dB too quiet.
    make(
        "-f",
        "lavfi",
        "-i",
        HD,
        "-f",
        "lavfi",
        "-i",
        f"{TONE},volume=-12dB",
        *X264_FAST,
        "-pix_fmt",
        "yuv420p",
        *AAC,
        str(out["quiet"]),
    )
    return out


def integrated_lufs(path: Path) -> float:
    """Integrated loudness by the ebur128 filter, independent of loudnorm."""
    argv = ["ffmpeg", "-nostdin", "-hide_banner", "-nostats", "-v", "info", "-i", str(path)]
    argv += ["-map", "0:a:0", "-af", "ebur128=framelog=verbose", "-f", "null", "-"]
    stderr = run(argv, timeout=TIMEOUT).stderr.decode()
    summary = stderr[stderr.rindex("Summary:") :]
    match = re.search(r"I:\s+(-?[\d.]+) LUFS", summary)
    assert match, summary
    return float(match.group(1))


def streams(path: Path) -> list[dict[str, object]]:
    argv = ["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(path)]
    data = json.loads(run(argv, timeout=TIMEOUT).stdout)
    return list(data["streams"])


def packet_sizes(path: Path, selector: str) -> list[str]:
    argv = ["ffprobe", "-v", "error", "-select_streams", selector, "-show_entries", "packet=pts_time,size"]
    argv += ["-of", "csv=p=0", str(path)]
    return run(argv, timeout=TIMEOUT).stdout.decode().split()


def top_level_boxes(path: Path) -> list[str]:
    data = path.read_bytes()
    names, pos = [], 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if size == 1:
            (size,) = struct.unpack(">Q", data[pos + 8 : pos + 16])
        names.append(kind.decode("latin-1"))
        if size < 8:
            break
        pos += size
    return names


def gray(path: Path, width: int, height: int) -> bytes:
    """The picture as ``width``×``height`` 8-bit gray (full range)."""
    argv = [*FF, "-i", str(path), "-frames:v", "1", "-vf", f"scale={width}:{height},format=gray"]
    argv += ["-f", "rawvideo", "-"]
    return run(argv, timeout=TIMEOUT).stdout


def mean(values: bytes) -> float:
    return sum(values) / len(values)


def render(src: Path, out: Path, campaign: Campaign, lufs: float | None = None, **kw: object) -> RenditionResult:
    plan = plan_rendition(probe_file(src), campaign, loudness_lufs=lufs, presets=FAST, **kw)  # type: ignore[arg-type]
    return make_rendition(src, out, plan, timeout=TIMEOUT)


# --- remux ----------------------------------------------------------------------------------------


def test_conformant_source_is_remuxed_without_re_encoding(
    clips: dict[str, Path], campaign: Campaign, tmp_path: Path
) -> None:
    src = clips["conformant"]
    result = render(src, tmp_path, campaign, lufs=integrated_lufs(src))
    assert result.mode == "remux" and not result.reused
    assert [s.name for s in result.steps] == ["remux", "poster-pick", "poster", "thumbnails"]
    assert not any("libx264" in s.argv or "-filter_complex" in s.argv[:12] for s in result.steps[:1])
    main = result.main.path
    assert main.name == "rendition-copy.mp4"

    before, after = streams(src), streams(main)
    assert [(s["codec_type"], s["codec_name"]) for s in after] == [
        ("video", "h264"),
        ("audio", "aac"),
        ("subtitle", "mov_text"),
    ]
    assert [(s["codec_name"], s.get("profile"), s.get("pix_fmt")) for s in after] == [
        (s["codec_name"], s.get("profile"), s.get("pix_fmt")) for s in before
    ]
    assert after[2]["tags"]["language"] == "chi"  # type: ignore[index]
    # Same packets, same sizes, same timestamps: a copy, not an encode.
    assert packet_sizes(main, "v:0") == packet_sizes(src, "v:0")
    assert packet_sizes(main, "a:0") == packet_sizes(src, "a:0")
    # faststart: the index (moov) comes before the media data (mdat).
    boxes = top_level_boxes(main)
    assert boxes.index("moov") < boxes.index("mdat")


def test_poster_skips_the_black_opening_and_thumbnails_are_four_small_jpegs(
    clips: dict[str, Path], campaign: Campaign, tmp_path: Path
) -> None:
    result = render(clips["conformant"], tmp_path, campaign)
    poster = result.poster
    (p,) = streams(poster.path)
    assert (p["codec_name"], p["width"], p["height"]) == ("mjpeg", 1920, 1080)
    assert mean(gray(poster.path, 64, 36)) > 60
    thumbs = result.thumbnails
    assert [t.path.name for t in thumbs] == ["thumb-1.jpg", "thumb-2.jpg", "thumb-3.jpg", "thumb-4.jpg"]
    for t in thumbs:
        (s,) = streams(t.path)
        assert (s["codec_name"], s["width"], s["height"]) == ("mjpeg", 320, 180)
    # testsrc2 draws a running clock: evenly spaced frames differ.
    assert len({t.sha256 for t in thumbs}) == 4


def test_rerun_is_idempotent_and_a_new_plan_leaves_no_stale_outputs(
    clips: dict[str, Path], campaign: Campaign, tmp_path: Path
) -> None:
    src = clips["conformant"]
    encoded = render(src, tmp_path, campaign, force_encode=True)
    assert encoded.mode == "encode"
    assert {p.name for p in tmp_path.iterdir()} >= {"rendition-1080p.mp4", "rendition-720p.mp4"}

    first = render(src, tmp_path, campaign)
    listing = sorted(p.name for p in tmp_path.iterdir())
    assert listing == sorted(
        ["rendition-copy.mp4", "poster.jpg", "thumb-1.jpg", "thumb-2.jpg", "thumb-3.jpg", "thumb-4.jpg", MANIFEST_NAME]
    )
    second = render(src, tmp_path, campaign)
    assert second.reused and not first.reused
    assert [(o.path, o.sha256, o.size) for o in second.outputs] == [(o.path, o.sha256, o.size) for o in first.outputs]
    assert second.argvs == first.argvs
    assert sorted(p.name for p in tmp_path.iterdir()) == listing

    # A damaged output is noticed and the rendition made again, to the same bytes.
    first.poster.path.write_bytes(b"broken")
    third = render(src, tmp_path, campaign)
    assert not third.reused
    assert [o.sha256 for o in third.outputs] == [o.sha256 for o in first.outputs]


def test_a_copy_made_again_elsewhere_takes_its_stills_and_loudness_from_the_memo(
    clips: dict[str, Path], campaign: Campaign, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A forced rerun makes the publication copy again; the same copy's poster and thumbnails (and an encode's
    loudness measurement) are the same bytes, taken from the media memo without ffmpeg decoding it again."""
    import kepu.media.rendition

    ran: list[str] = []

    def recording(argv: list[str], **kwargs: object) -> kepu.media.runner.CompletedRun:
        ran.append(" ".join(argv))
        return run(argv, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(kepu.media.rendition, "run", recording)
    monkeypatch.setenv("KEPU_MEDIA_MEMO", str(tmp_path / "memo"))
    src = clips["conformant"]
    # As loud as the band wants: a remux; too quiet: an encode with a loudness pass first.
    for mode, lufs, kw in (("remux", integrated_lufs(src), {}), ("encode", -30.0, {"force_encode": True})):
        first = render(src, tmp_path / mode / "first", campaign, lufs=lufs, **kw)
        made = len(ran)
        # The copy (after a loudness pass), the poster's pick, the poster, the thumbnails.
        assert first.mode == mode and made == (4 if mode == "remux" else 5), ran
        again = render(src, tmp_path / mode / "again", campaign, lufs=lufs, **kw)
        assert not again.reused
        new = ran[made:]
        assert len(new) == 1 and ("-c copy" in new[0] or "libx264" in new[0]), new  # only the copy itself
        assert [(o.name, o.sha256) for o in again.outputs] == [(o.name, o.sha256) for o in first.outputs]
        assert [s.name for s in again.steps] == [s.name for s in first.steps]
        ran.clear()


def test_a_killed_encode_leaves_nothing_that_looks_finished(
    clips: dict[str, Path], campaign: Campaign, tmp_path: Path
) -> None:
    src = clips["mpeg4"]
    plan = plan_rendition(probe_file(src), campaign, loudness_lufs=None, presets=FAST)
    with pytest.raises(MediaToolError) as info:
        make_rendition(src, tmp_path, plan, timeout=0.3)
    assert info.value.timed_out
    assert list(tmp_path.iterdir()) == []


# --- encode ---------------------------------------------------------------------------------------


def check_publication_copy(result: RenditionResult) -> None:
    assert result.mode == "encode"
    assert [o.name for o in result.renditions] == ["1080p", "720p"]
    fps = result.plan.frame_rate
    assert fps is not None
    for out, (w, h, level) in zip(result.renditions, [(1920, 1080, 41), (1280, 720, 31)], strict=True):
        v, a = streams(out.path)[:2]
        assert (v["codec_name"], v["profile"], v["pix_fmt"], v["width"], v["height"]) == (
            "h264",
            "High",
            "yuv420p",
            w,
            h,
        )
        assert v["level"] == level
        assert v["avg_frame_rate"] == v["r_frame_rate"] == f"{fps.numerator}/{fps.denominator}"
        assert v.get("sample_aspect_ratio", "1:1") == "1:1"
        assert not v.get("side_data_list")  # no display matrix: the picture is stored upright
        assert (a["codec_name"], a["sample_rate"], a["channels"]) == ("aac", "48000", 2)
        boxes = top_level_boxes(out.path)
        assert boxes.index("moov") < boxes.index("mdat")
        pts = sorted(float(x.split(",")[0]) for x in packet_sizes(out.path, "v:0"))
        steps = [b - a for a, b in itertools.pairwise(pts)]
        assert all(abs(step - 1 / fps) < 0.001 for step in steps), steps


@pytest.mark.parametrize(
    ("clip", "reasons"),
    [
        # The VFR clip averages 21.9 fps: its copy is 23.976 fps CFR.
        ("vfr", ["vfr"]),
        ("ten_bit", ["bit-depth"]),
        ("mpeg4", ["video-codec", "audio-codec"]),
    ],
)
def test_non_conformant_sources_become_h264_high_cfr_1080p(
    clips: dict[str, Path], campaign: Campaign, tmp_path: Path, clip: str, reasons: list[str]
) -> None:
    result = render(clips[clip], tmp_path, campaign)
    assert [r.code for r in result.plan.reasons] == reasons
    check_publication_copy(result)


def test_phone_portrait_is_pillarboxed_upright(clips: dict[str, Path], campaign: Campaign, tmp_path: Path) -> None:
    result = render(clips["portrait"], tmp_path, campaign)
    assert [r.code for r in result.plan.reasons] == ["rotation", "aspect", "resolution"]
    check_publication_copy(result)
    picture = gray(result.main.path, 192, 108)
    rows = [picture[i * 192 : (i + 1) * 192] for i in range(108)]
    # 608 of 1920 columns carry the picture: about 61 of 192; the sides are black.
    left = b"".join(r[:60] for r in rows)
    right = b"".join(r[-60:] for r in rows)
    middle = b"".join(r[70:122] for r in rows)
    assert max(left) < 20 and max(right) < 20
    assert mean(middle) > 60


def test_too_quiet_narration_is_normalised_into_the_band(
    clips: dict[str, Path], campaign: Campaign, tmp_path: Path
) -> None:
    src = clips["quiet"]
    before = integrated_lufs(src)
    band = campaign.audio.loudness_lufs
    assert before < band.warn_min
    result = render(src, tmp_path, campaign, lufs=before)
    assert [r.code for r in result.plan.reasons] == ["loudness"]
    assert [s.name for s in result.steps][:2] == ["loudness-measure", "encode"]
    assert result.loudness_measured is not None and result.loudness_applied is not None
    assert result.loudness_applied.normalization_type == "linear"
    encode_argv = result.steps[1].argv
    assert "linear=true" in encode_argv[encode_argv.index("-filter_complex") + 1]
    for out in result.renditions:
        after = integrated_lufs(out.path)
        assert band.warn_min <= after <= band.warn_max
        assert after == pytest.approx(-19.0, abs=1.0)


# --- covers ---------------------------------------------------------------------------------------


def picture(path: Path, source: str, *extra: str) -> Path:
    run([*FF, "-f", "lavfi", "-i", source, "-frames:v", "1", *extra, str(path)], timeout=TIMEOUT)
    return path


def check_cover(dest: Path) -> bytes:
    (s,) = streams(dest)
    assert (s["codec_name"], s["width"], s["height"]) == ("mjpeg", 1920, 1080)
    return gray(dest, 192, 108)


def test_cover_from_a_4_3_png(tmp_path: Path) -> None:
    src = picture(tmp_path / "slide.png", "testsrc2=size=800x600")
    result = normalise_cover(src, tmp_path / "cover.jpg", max_streams=16)
    assert (result.source_codec, result.source_width, result.source_height) == ("png", 800, 600)
    assert result.padded and result.orientation == 1
    pixels = check_cover(result.dest)
    # The sides are a blurred copy of the picture, not black bars.
    assert mean(b"".join(pixels[i * 192 : i * 192 + 20] for i in range(108))) > 30
    assert not list(tmp_path.glob(".*.part"))


def test_cover_from_a_portrait_jpeg(tmp_path: Path) -> None:
    src = picture(tmp_path / "phone.jpg", "testsrc2=size=720x1280")
    result = normalise_cover(src, tmp_path / "cover.jpg", max_streams=16)
    assert result.source_codec == "mjpeg" and result.padded
    check_cover(result.dest)


def _with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1)
    tiff += struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0) + b"\x00\x00\x00\x00"
    app1 = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + jpeg[2:]


def test_cover_from_a_phone_jpeg_with_exif_rotation(tmp_path: Path) -> None:
    # Stored landscape with orientation 6 (turn 90° clockwise to view): a portrait photo.
    stored = picture(tmp_path / "stored.jpg", "color=c=white:size=1280x720,drawbox=x=0:y=0:w=640:h=720:c=black:t=fill")
    src = tmp_path / "IMG_0001.jpg"
    src.write_bytes(_with_exif_orientation(stored.read_bytes(), 6))
    result = normalise_cover(src, tmp_path / "cover.jpg", max_streams=16)
    assert result.orientation == 6 and result.padded
    pixels = check_cover(result.dest)
    # Upright, the black half of the stored picture is the top half of a 608-wide pillar.
    top = b"".join(pixels[i * 192 + 80 : i * 192 + 112] for i in range(5, 45))
    bottom = b"".join(pixels[i * 192 + 80 : i * 192 + 112] for i in range(63, 103))
    assert mean(top) < 40 and mean(bottom) > 200


def _flat_cmyk_jpeg(width: int, height: int, stored: tuple[int, int, int, int]) -> bytes:
    """A baseline 4-component Adobe JPEG of one flat colour (DC-only blocks)."""

    def segment(marker: int, payload: bytes) -> bytes:
        return struct.pack(">HH", marker, len(payload) + 2) + payload

    dc_codes = ["00", "010", "011", "100", "101", "110", "1110", "11110", "111110", "1111110", "11111110"]
    data = bytearray(b"\xff\xd8")
    data += segment(0xFFEE, b"Adobe" + struct.pack(">HHHB", 100, 0, 0, 0))  # transform 0: plain CMYK
    data += segment(0xFFDB, b"\x00" + bytes([8] * 64))
    data += segment(
        0xFFC0, struct.pack(">BHHB", 8, height, width, 4) + b"".join(bytes([c, 0x11, 0]) for c in range(1, 5))
    )
    data += segment(0xFFC4, b"\x00" + bytes([0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]) + bytes(range(12)))
    data += segment(0xFFC4, b"\x10" + bytes([1] + [0] * 15) + b"\x00")  # AC: only end-of-block, code "0"
    data += segment(0xFFDA, bytes([4]) + b"".join(bytes([c, 0]) for c in range(1, 5)) + b"\x00\x3f\x00")
    bits, previous = [], [0, 0, 0, 0]
    for _ in range(((width + 7) // 8) * ((height + 7) // 8)):
        for c, value in enumerate(stored):
            dc = value - 128  # 8 × (value − 128) quantised by 8
            diff, previous[c] = dc - previous[c], dc
            size = abs(diff).bit_length()
            bits.append(dc_codes[size])
            if size:
                bits.append(format(diff if diff > 0 else diff + (1 << size) - 1, f"0{size}b"))
            bits.append("0")
    stream = "".join(bits)
    stream += "1" * (-len(stream) % 8)
    for i in range(0, len(stream), 8):
        byte = int(stream[i : i + 8], 2)
        data += bytes([byte, 0]) if byte == 0xFF else bytes([byte])
    return bytes(data + b"\xff\xd9")


def test_cover_from_a_cmyk_jpeg_keeps_its_colour(tmp_path: Path) -> None:
    src = tmp_path / "print.jpg"
    # Adobe writes CMYK inverted: 0 = full ink. Full cyan, no magenta, yellow or black.
    src.write_bytes(_flat_cmyk_jpeg(320, 240, (0, 255, 255, 255)))
    result = normalise_cover(src, tmp_path / "cover.jpg", max_streams=16)
    check_cover(result.dest)
    argv = [*FF, "-i", str(result.dest), "-vf", "crop=64:64:928:508,scale=1:1,format=rgb24", "-f", "rawvideo", "-"]
    r, g, b = run(argv, timeout=TIMEOUT).stdout
    assert r < 40 and g > 200 and b > 200


def test_unreadable_cover_is_a_material_error(tmp_path: Path) -> None:
    src = tmp_path / "cover.jpg"
    src.write_text("这不是图片\n", encoding="utf-8")
    with pytest.raises(MaterialError) as info:
        normalise_cover(src, tmp_path / "out.jpg", max_streams=16)
    assert info.value.code == "M-UNREADABLE"
    assert not (tmp_path / "out.jpg").exists()


def test_a_video_is_not_a_cover(clips: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(MaterialError) as info:
        normalise_cover(clips["conformant"], tmp_path / "out.jpg", max_streams=16)
    assert info.value.code == "M-UNREADABLE"
