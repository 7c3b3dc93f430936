"""parse_probe on ffprobe output captured from real files (see tests/data/ffprobe/README.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kepu.media.probe import ProbeResult, is_mp4_container, parse_probe, probe_command

pytestmark = pytest.mark.unit

DATA = Path(__file__).resolve().parents[1] / "data" / "ffprobe"
SIZE = 123_456_789


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))
    return data


def parsed(name: str) -> ProbeResult:
    return parse_probe(load(name), file_size=SIZE)


def test_every_capture_has_its_command_in_the_readme() -> None:
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    names = sorted(p.stem for p in DATA.glob("*.json"))
    assert len(names) >= 10
    for name in names:
        assert f"> {name}.json" in readme, name


def test_conformant_1080p_mp4() -> None:
    r = parsed("conformant_1080p")
    assert r.format_name == "mov,mp4,m4a,3gp,3g2,mj2"
    assert r.format_long_name == "QuickTime / MOV"
    assert r.major_brand == "isom"
    assert r.is_mp4 is True
    assert r.duration_s == pytest.approx(2.0, abs=0.05)
    assert r.size_bytes == SIZE
    assert r.bit_rate is not None and r.bit_rate > 1_000_000
    assert (r.stream_count, r.video_count, r.audio_count, r.subtitles) == (2, 1, 1, [])

    v = r.video
    assert v is not None
    assert (v.codec, v.profile, v.pix_fmt, v.bit_depth) == ("h264", "High", "yuv420p", 8)
    assert (v.width, v.height, v.sample_aspect_ratio, v.rotation) == (1920, 1080, (1, 1), 0)
    assert (v.display_width, v.display_height) == (1920, 1080)
    assert v.display_aspect == pytest.approx(16 / 9)
    assert v.avg_frame_rate == 25.0 and v.r_frame_rate == 25.0
    assert v.field_order == "progressive"
    assert v.nb_frames == 50

    a = r.audio
    assert a is not None
    assert (a.codec, a.profile, a.sample_rate, a.channels, a.channel_layout) == (
        "aac",
        "LC",
        48000,
        2,
        "stereo",
    )
    assert a.duration_s == pytest.approx(2.0, abs=0.05)


def test_rotation_from_display_matrix_swaps_the_displayed_size() -> None:
    v = parsed("portrait_rotation").video
    assert v is not None
    assert (v.width, v.height) == (1920, 1080)
    assert v.rotation == 90
    assert (v.display_width, v.display_height) == (1080, 1920)
    assert v.display_aspect == pytest.approx(9 / 16)


def test_anamorphic_sample_aspect_ratio_widens_the_display() -> None:
    v = parsed("anamorphic_sar").video
    assert v is not None
    assert (v.width, v.height, v.sample_aspect_ratio) == (1440, 1080, (4, 3))
    assert (v.display_width, v.display_height) == (1920, 1080)
    assert v.display_aspect == pytest.approx(16 / 9)


def test_quicktime_brand_is_not_mp4_although_the_demuxer_is_the_same() -> None:
    r = parsed("quicktime")
    assert r.format_name == "mov,mp4,m4a,3gp,3g2,mj2"
    assert r.major_brand == "qt"
    assert r.is_mp4 is False
    assert r.video is not None and r.audio is not None


def test_matroska_is_not_mp4() -> None:
    r = parsed("matroska")
    assert r.format_name == "matroska,webm"
    # The remuxed file still carries MAJOR_BRAND=isom as a Matroska tag; it must not count.
    assert load("matroska")["format"]["tags"]["MAJOR_BRAND"] == "isom"
    assert r.major_brand is None
    assert r.is_mp4 is False
    assert r.video is not None and r.video.display_width == 1920
    assert r.duration_s == pytest.approx(2.0, abs=0.05)
    # Matroska keeps per-track durations only in a DURATION tag.
    assert r.audio is not None and r.audio.duration_s == pytest.approx(2.0, abs=0.05)


def test_audio_only_has_no_video_and_is_not_an_error() -> None:
    r = parsed("audio_only")
    assert r.video is None
    assert r.video_count == 0
    assert r.audio is not None and r.audio.codec == "aac"
    assert r.audio_count == 1
    assert r.major_brand == "M4A"
    assert r.is_mp4 is True


def test_no_audio() -> None:
    r = parsed("no_audio")
    assert r.audio is None
    assert r.audio_count == 0
    assert r.video is not None and r.video.codec == "h264"
    assert r.is_mp4 is True


def test_subtitle_stream_language_and_title() -> None:
    r = parsed("subtitle_chi")
    assert r.stream_count == 3
    assert len(r.subtitles) == 1
    s = r.subtitles[0]
    assert (s.codec, s.language, s.title) == ("mov_text", "chi", "中文字幕")


def test_attached_cover_picture_is_not_the_video() -> None:
    r = parsed("cover_art")
    assert r.stream_count == 3
    assert r.video_count == 1
    assert r.video is not None
    assert (r.video.codec, r.video.index, r.video.avg_frame_rate) == ("h264", 0, 25.0)


def test_raw_stream_with_na_fields() -> None:
    raw = load("odd_raw_h264")
    assert raw["format"]["duration"] == "N/A"  # the capture really holds the odd values
    r = parse_probe(raw, file_size=SIZE)
    assert r.format_name == "h264"
    assert r.is_mp4 is False
    assert r.duration_s is None
    assert r.bit_rate is None
    assert r.video is not None
    assert r.video.nb_frames is None
    assert r.video.duration_s is None
    assert r.video.display_width == 1920


# FFmpeg 5.1 can no longer write the legacy "rotate" tag (its muxer turns it into a display
# matrix), and ffprobe never prints some degenerate values for well-formed files; these
# hand-written dicts stand for files made by older tools and broken muxers.
def _video(**fields: Any) -> dict[str, Any]:
    stream: dict[str, Any] = {"index": 0, "codec_type": "video", "codec_name": "h264"}
    stream.update(fields)
    return {"format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2"}, "streams": [stream]}


def test_legacy_rotate_tag_is_honoured() -> None:
    r = parse_probe(_video(width=1920, height=1080, tags={"rotate": "90"}), file_size=1)
    assert r.video is not None
    assert r.video.rotation == 270  # clockwise tag, counter-clockwise matrix convention
    assert (r.video.display_width, r.video.display_height) == (1080, 1920)


def test_display_matrix_wins_over_the_legacy_tag() -> None:
    side = [{"side_data_type": "Display Matrix", "rotation": -180}]
    r = parse_probe(_video(width=1920, height=1080, side_data_list=side, tags={"rotate": "90"}), file_size=1)
    assert r.video is not None
    assert r.video.rotation == 180
    assert (r.video.display_width, r.video.display_height) == (1920, 1080)


def test_degenerate_values_become_none() -> None:
    data = _video(
        width="N/A",
        sample_aspect_ratio="0:1",
        avg_frame_rate="0/0",
        r_frame_rate="N/A",
        nb_frames="N/A",
        duration="nan",
        pix_fmt="yuv420p10le",
    )
    r = parse_probe(data, file_size=0)
    assert r.major_brand is None and r.is_mp4 is False
    assert r.duration_s is None
    v = r.video
    assert v is not None
    assert (v.width, v.height, v.display_width, v.display_height) == (0, 0, 0, 0)
    assert v.display_aspect is None
    assert v.sample_aspect_ratio == (1, 1)
    assert v.avg_frame_rate is None and v.r_frame_rate is None
    assert v.nb_frames is None
    assert v.bit_depth == 10


def test_empty_json_gives_an_empty_result() -> None:
    r = parse_probe({}, file_size=5)
    assert (r.format_name, r.stream_count, r.video, r.audio, r.is_mp4) == ("", 0, None, None, False)


@pytest.mark.parametrize(
    ("format_name", "brand", "expected"),
    [
        ("mov,mp4,m4a,3gp,3g2,mj2", "isom", True),
        ("mov,mp4,m4a,3gp,3g2,mj2", "mp42", True),
        ("mov,mp4,m4a,3gp,3g2,mj2", "M4V ", True),
        ("mov,mp4,m4a,3gp,3g2,mj2", "qt  ", False),
        ("mov,mp4,m4a,3gp,3g2,mj2", "3gp4", False),
        ("mov,mp4,m4a,3gp,3g2,mj2", None, False),
        ("matroska,webm", "isom", False),
    ],
)
def test_is_mp4_container(format_name: str, brand: str | None, expected: bool) -> None:
    assert is_mp4_container(format_name, brand) is expected


def test_probe_command_has_the_ffmpeg_python_form_and_ends_with_the_path() -> None:
    argv = probe_command(Path("/in/a b.mp4"))
    assert argv[0] == "ffprobe"
    assert argv[-1] == "/in/a b.mp4"
    for flag in ("-show_format", "-show_streams"):
        assert flag in argv
    assert argv[argv.index("-of") + 1] == "json"


def test_probe_summary_is_json_and_shows_the_displayed_size() -> None:
    from kepu.dashboard.detail import probe_summary as page_rows
    from kepu.media.probe import probe_summary

    summary = probe_summary(parsed("portrait_rotation"))
    assert json.loads(json.dumps(summary)) == summary
    assert summary["video"]["coded"] == [1920, 1080] and summary["video"]["display"] == [1080, 1920]
    assert summary["video"]["rotation"] == 90
    rows = dict(page_rows({"probe": summary}, None))
    assert rows["视频流 video"].startswith("h264") and "1080×1920" in rows["视频流 video"]
    assert "旋转 rotation 90°" in rows["视频流 video"]


def test_iso_track_count_reads_box_headers_only(tmp_path: Path) -> None:
    from kepu.media.probe import iso_track_count

    def box(kind: bytes, body: bytes = b"", *, large: bool = False) -> bytes:
        if large:
            return (1).to_bytes(4, "big") + kind + (len(body) + 16).to_bytes(8, "big") + body
        return (len(body) + 8).to_bytes(4, "big") + kind + body

    moov = box(b"moov", box(b"mvhd", b"\0" * 100) + box(b"trak") * 3 + box(b"udta"), large=True)
    mp4 = tmp_path / "three.mp4"
    mp4.write_bytes(box(b"ftyp", b"isom\0\0\0\0") + box(b"mdat", b"\0" * 1000) + moov)
    assert iso_track_count(mp4) == 3
    (tmp_path / "no-moov.mp4").write_bytes(box(b"ftyp", b"isom\0\0\0\0") + box(b"mdat"))
    assert iso_track_count(tmp_path / "no-moov.mp4") is None
    (tmp_path / "x.mkv").write_bytes(b"\x1a\x45\xdf\xa3" + b"\0" * 60)
    assert iso_track_count(tmp_path / "x.mkv") is None
    (tmp_path / "short.mp4").write_bytes(b"\0\0")
    assert iso_track_count(tmp_path / "short.mp4") is None
