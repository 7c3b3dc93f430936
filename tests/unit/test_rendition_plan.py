"""plan_rendition and the pure command builders, on ProbeResult objects built here."""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from pathlib import Path

import pytest

from kepu.campaign import Campaign, load_campaign
from kepu.errors import MaterialError
from kepu.intake.images import jpeg_exif_orientation
from kepu.media.presets import DEFAULT_PRESETS, MAIN_1080P
from kepu.media.probe import AudioStream, ProbeResult, SubtitleStream, VideoStream
from kepu.media.rendition import (
    LoudnessTarget,
    LoudnormStats,
    encode_command,
    loudness_measure_command,
    loudnorm_filter,
    parse_loudnorm_stats,
    picked_pts,
    plan_rendition,
    poster_command,
    poster_pick_command,
    remux_command,
    thumbnail_times,
    thumbnails_command,
)

pytestmark = pytest.mark.unit

CAMPAIGN_FILE = Path(__file__).resolve().parents[2] / "include" / "campaigns" / "2022.yaml"
SRC = Path("/in/entry.mp4")


@pytest.fixture(scope="module")
def campaign() -> Campaign:
    return load_campaign(CAMPAIGN_FILE)


def video(**changes: object) -> VideoStream:
    base = VideoStream(
        index=0,
        codec="h264",
        profile="High",
        pix_fmt="yuv420p",
        bit_depth=8,
        width=1920,
        height=1080,
        sample_aspect_ratio=(1, 1),
        rotation=0,
        display_width=1920,
        display_height=1080,
        display_aspect=16 / 9,
        avg_frame_rate=25.0,
        r_frame_rate=25.0,
        field_order="progressive",
        nb_frames=6000,
        duration_s=240.0,
        bit_rate=4_000_000,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def audio(codec: str = "aac") -> AudioStream:
    return AudioStream(
        index=1,
        codec=codec,
        profile="LC",
        sample_rate=48000,
        channels=2,
        channel_layout="stereo",
        duration_s=240.0,
        bit_rate=128_000,
    )


def probe(
    v: VideoStream | None = None,
    a: AudioStream | str | None = "aac",
    *,
    subtitles: list[SubtitleStream] | None = None,
    format_name: str = "mov,mp4,m4a,3gp,3g2,mj2",
) -> ProbeResult:
    a_stream = audio(a) if isinstance(a, str) else a
    subs = subtitles or []
    return ProbeResult(
        format_name=format_name,
        format_long_name=None,
        major_brand="isom" if format_name.startswith("mov") else None,
        compatible_brands=None,
        is_mp4=format_name.startswith("mov"),
        duration_s=240.0,
        size_bytes=150_000_000,
        bit_rate=5_000_000,
        video=v if v is not None else video(),
        audio=a_stream,
        audio_count=1 if a_stream else 0,
        video_count=1,
        subtitles=subs,
        stream_count=1 + (1 if a_stream else 0) + len(subs),
    )


def codes(plan: object) -> list[str]:
    return [r.code for r in plan.reasons]  # type: ignore[attr-defined]


# --- remux ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("lufs", [None, -24.0, -19.0, -14.0])
def test_conformant_source_is_remuxed(campaign: Campaign, lufs: float | None) -> None:
    plan = plan_rendition(probe(), campaign, loudness_lufs=lufs)
    assert plan.mode == "remux"
    assert plan.reasons == ()
    assert plan.outputs == () and plan.output_names == ("copy",)
    assert plan.loudness is None and plan.frame_rate is None


def test_conformant_streams_in_matroska_are_remuxed_into_mp4(campaign: Campaign) -> None:
    plan = plan_rendition(probe(format_name="matroska,webm"), campaign, loudness_lufs=None)
    assert plan.mode == "remux"
    argv = remux_command(SRC, Path("/out/x.mp4"), plan)
    assert argv[-3:] == ["-f", "mp4", "/out/x.mp4"]


def test_remux_command_copies_streams_with_faststart_and_never_encodes(campaign: Campaign) -> None:
    plan = plan_rendition(probe(), campaign, loudness_lufs=-20.0)
    argv = remux_command(SRC, Path("/out/x.mp4"), plan)
    assert argv[argv.index("-c") + 1] == "copy"
    assert argv[argv.index("-map") : argv.index("-map") + 2] == ["-map", "0:v:0"]
    assert "0:a:0" in argv
    assert argv[argv.index("-movflags") + 1] == "+faststart"
    assert not {"libx264", "-crf", "-filter_complex", "-vf", "-af"} & set(argv)


def test_remux_without_audio_maps_video_only(campaign: Campaign) -> None:
    plan = plan_rendition(probe(a=None), campaign, loudness_lufs=None)
    assert plan.mode == "remux" and plan.has_audio is False
    assert "0:a:0" not in remux_command(SRC, Path("/out/x.mp4"), plan)


def test_remux_keeps_a_chinese_mov_text_subtitle(campaign: Campaign) -> None:
    subs = [
        SubtitleStream(index=2, codec="mov_text", language="eng", title=None),
        SubtitleStream(index=3, codec="mov_text", language="chi", title="中文字幕"),
    ]
    plan = plan_rendition(probe(subtitles=subs), campaign, loudness_lufs=None)
    assert plan.mode == "remux"
    assert plan.subtitle is not None and plan.subtitle.index == 3
    argv = remux_command(SRC, Path("/out/x.mp4"), plan)
    i = argv.index("0:3")
    assert argv[i + 1 : i + 3] == ["-c:s", "copy"]


def test_subrip_subtitle_becomes_mov_text_and_bitmap_subtitles_are_dropped(campaign: Campaign) -> None:
    srt = plan_rendition(
        probe(subtitles=[SubtitleStream(index=2, codec="subrip", language="chi", title=None)]),
        campaign,
        loudness_lufs=None,
    )
    argv = remux_command(SRC, Path("/out/x.mp4"), srt)
    assert argv[argv.index("0:2") + 1 : argv.index("0:2") + 3] == ["-c:s", "mov_text"]
    pgs = plan_rendition(
        probe(subtitles=[SubtitleStream(index=2, codec="hdmv_pgs_subtitle", language="chi", title=None)]),
        campaign,
        loudness_lufs=None,
    )
    assert pgs.subtitle is None


def test_higher_than_1080p_conformant_is_remuxed(campaign: Campaign) -> None:
    uhd = video(width=3840, height=2160, display_width=3840, display_height=2160)
    plan = plan_rendition(probe(uhd), campaign, loudness_lufs=None)
    assert plan.mode == "remux"
    assert (plan.display_width, plan.display_height) == (3840, 2160)


# --- encode reasons -------------------------------------------------------------------------------


def test_phone_portrait_by_rotation_is_encoded_upright_and_pillarboxed(campaign: Campaign) -> None:
    phone = video(rotation=90, display_width=1080, display_height=1920, display_aspect=0.5625)
    plan = plan_rendition(probe(phone), campaign, loudness_lufs=None)
    assert plan.mode == "encode"
    assert codes(plan) == ["rotation", "aspect", "resolution"]
    main, small = plan.outputs
    assert (main.name, main.fit_width, main.fit_height, main.pad_x, main.pad_y) == ("1080p", 608, 1080, 656, 0)
    assert main.padded and small.padded
    assert small.fit_height == 720 and abs(small.fit_width + 2 * small.pad_x - 1280) <= 2
    assert main.pad_x % 2 == 0 and small.pad_x % 2 == 0 and small.fit_width % 2 == 0


def test_ten_bit_hevc_is_encoded_to_8_bit_h264(campaign: Campaign) -> None:
    hdr = video(codec="hevc", profile="Main 10", pix_fmt="yuv420p10le", bit_depth=10)
    plan = plan_rendition(probe(hdr), campaign, loudness_lufs=None)
    assert plan.mode == "encode"
    assert codes(plan) == ["video-codec", "bit-depth"]
    # HEVC is playable by the campaign's rules, so the reason is not a V-CODEC matter.
    assert "V-CODEC" not in plan.reasons[0].detail_en
    assert "10 位" in plan.reasons[1].detail_zh and "10-bit" in plan.reasons[1].detail_en


def test_wrong_8_bit_pixel_format_is_a_pix_fmt_reason(campaign: Campaign) -> None:
    plan = plan_rendition(probe(video(pix_fmt="yuv422p")), campaign, loudness_lufs=None)
    assert codes(plan) == ["pix-fmt"]


def test_vfr_phone_clip_gets_a_constant_standard_rate(campaign: Campaign) -> None:
    vfr = video(avg_frame_rate=29.87, r_frame_rate=30.0)
    plan = plan_rendition(probe(vfr), campaign, loudness_lufs=None)
    assert codes(plan) == ["vfr"]
    assert plan.frame_rate == Fraction(30000, 1001)


@pytest.mark.parametrize(
    ("avg", "base", "expected"),
    [
        (24.6, 90000.0, Fraction(25)),
        (119.88, 120.0, Fraction(60000, 1001)),
        (None, None, Fraction(25)),
        (49.7, 50.0, Fraction(50)),
    ],
)
def test_output_rate_is_snapped_and_halved(
    campaign: Campaign, avg: float | None, base: float | None, expected: Fraction
) -> None:
    source = video(codec="hevc", avg_frame_rate=avg, r_frame_rate=base)
    plan = plan_rendition(probe(source), campaign, loudness_lufs=None)
    assert plan.frame_rate == expected


def test_anamorphic_sar_fills_the_frame_with_square_pixels(campaign: Campaign) -> None:
    ana = video(width=1440, sample_aspect_ratio=(4, 3), display_width=1920)
    plan = plan_rendition(probe(ana), campaign, loudness_lufs=None)
    assert codes(plan) == ["sar"]
    assert [(o.fit_width, o.fit_height, o.padded) for o in plan.outputs] == [(1920, 1080, False), (1280, 720, False)]
    graph = encode_command(SRC, [Path("/o/a.mp4"), Path("/o/b.mp4")], plan, None)
    assert "scale=1920:1080:" in graph[graph.index("-filter_complex") + 1]
    assert "setsar=1" in graph[graph.index("-filter_complex") + 1]


def test_mpeg4_with_mp3_is_a_codec_matter_for_both_streams(campaign: Campaign) -> None:
    old = video(codec="mpeg4", profile="Simple Profile")
    plan = plan_rendition(probe(old, a="mp3"), campaign, loudness_lufs=None)
    assert codes(plan) == ["video-codec", "audio-codec"]
    assert "V-CODEC" in plan.reasons[0].detail_en and "V-CODEC" in plan.reasons[0].detail_zh
    assert "mp3" in plan.reasons[1].detail_en


def test_small_and_not_16_9_sources_are_scaled_up_and_padded(campaign: Campaign) -> None:
    sd = video(width=640, height=480, display_width=640, display_height=480)
    plan = plan_rendition(probe(sd), campaign, loudness_lufs=None)
    assert codes(plan) == ["aspect", "resolution"]
    assert (plan.outputs[0].fit_width, plan.outputs[0].fit_height, plan.outputs[0].pad_x) == (1440, 1080, 240)


def test_interlaced_source_is_deinterlaced(campaign: Campaign) -> None:
    plan = plan_rendition(probe(video(field_order="tt")), campaign, loudness_lufs=None)
    assert codes(plan) == ["interlaced"] and plan.deinterlace
    argv = encode_command(SRC, [Path("/o/a.mp4"), Path("/o/b.mp4")], plan, None)
    assert argv[argv.index("-filter_complex") + 1].startswith("[0:v:0]bwdif=")


def test_every_reason_reads_in_chinese_and_english(campaign: Campaign) -> None:
    messy = video(
        codec="mpeg2video",
        pix_fmt="yuv422p10le",
        bit_depth=10,
        field_order="bb",
        avg_frame_rate=None,
        rotation=270,
        sample_aspect_ratio=(16, 15),
        display_width=576,
        display_height=768,
    )
    plan = plan_rendition(probe(messy, a="mp2"), campaign, loudness_lufs=-40.0)
    assert codes(plan) == [
        "video-codec",
        "bit-depth",
        "interlaced",
        "frame-rate-unknown",
        "rotation",
        "sar",
        "aspect",
        "resolution",
        "audio-codec",
        "loudness",
    ]
    for reason in plan.reasons:
        assert reason.detail_en and not any("\u4e00" <= ch <= "\u9fff" for ch in reason.detail_en), reason
        assert any("\u4e00" <= ch <= "\u9fff" for ch in reason.detail_zh), reason


def test_no_video_cannot_be_rendered(campaign: Campaign) -> None:
    p = dataclasses.replace(probe(), video=None, video_count=0)
    with pytest.raises(MaterialError) as info:
        plan_rendition(p, campaign, loudness_lufs=None)
    assert info.value.code == "V-NO-VIDEO"


def test_forced_encode_of_a_conformant_source(campaign: Campaign) -> None:
    plan = plan_rendition(probe(), campaign, loudness_lufs=None, force_encode=True)
    assert plan.mode == "encode" and codes(plan) == ["forced"]


# --- loudness -------------------------------------------------------------------------------------


@pytest.mark.parametrize("lufs", [-30.0, -24.01, -13.99, -9.0])
def test_loudness_outside_the_band_is_normalised_to_its_centre(campaign: Campaign, lufs: float) -> None:
    plan = plan_rendition(probe(), campaign, loudness_lufs=lufs)
    assert plan.mode == "encode" and codes(plan) == ["loudness"]
    assert plan.loudness == LoudnessTarget(
        integrated_lufs=-19.0, true_peak_dbtp=-1.5, lra_lu=11.0, lra_max_lu=15.0, source_lufs=lufs
    )


def test_loudness_target_follows_the_campaign_band(campaign: Campaign) -> None:
    band = campaign.audio.loudness_lufs.model_copy(update={"warn_min": -26.0, "warn_max": -20.0})
    other = campaign.model_copy(update={"audio": campaign.audio.model_copy(update={"loudness_lufs": band})})
    plan = plan_rendition(probe(), other, loudness_lufs=-19.0)
    assert plan.loudness is not None and plan.loudness.integrated_lufs == -23.0


def test_loudness_of_a_file_without_audio_is_ignored(campaign: Campaign) -> None:
    plan = plan_rendition(probe(a=None), campaign, loudness_lufs=-50.0)
    assert plan.mode == "remux" and plan.loudness is None


FIRST_PASS_STDERR = """\
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from '/in/entry.mp4':
  Metadata:
    comment         : {not json}
Stream mapping:
  Stream #0:1 (aac) -> aformat:default (graph 0)
Output #0, null, to 'pipe:':
[Parsed_loudnorm_1 @ 0x5581c1d1e2c0]
{
\t"input_i" : "-33.12",
\t"input_tp" : "-14.80",
\t"input_lra" : "13.20",
\t"input_thresh" : "-43.40",
\t"output_i" : "-19.46",
\t"output_tp" : "-1.50",
\t"output_lra" : "9.80",
\t"output_thresh" : "-29.71",
\t"normalization_type" : "dynamic",
\t"target_offset" : "0.46"
}
size=N/A time=00:04:00.00 bitrate=N/A speed= 412x
"""


def test_first_pass_json_is_parsed_from_stderr() -> None:
    stats = parse_loudnorm_stats(FIRST_PASS_STDERR)
    assert stats == LoudnormStats(
        input_i=-33.12,
        input_tp=-14.8,
        input_lra=13.2,
        input_thresh=-43.4,
        output_i=-19.46,
        output_tp=-1.5,
        output_lra=9.8,
        output_thresh=-29.71,
        normalization_type="dynamic",
        target_offset=0.46,
    )


def test_silence_parses_as_minus_infinity() -> None:
    text = FIRST_PASS_STDERR.replace('"-33.12"', '"-inf"').replace('"-43.40"', '"-inf"')
    stats = parse_loudnorm_stats(text)
    assert stats.input_i == float("-inf") and stats.input_thresh == float("-inf")


@pytest.mark.parametrize(
    "text",
    ["", "Output #0, null\n", FIRST_PASS_STDERR.replace('\t"target_offset" : "0.46"\n', ""), '{\n\t"input_i" : \n'],
)
def test_missing_or_broken_json_is_an_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_loudnorm_stats(text)


def test_second_pass_filter_is_linear_with_the_measurements() -> None:
    target = LoudnessTarget(-19.0, -1.5, 11.0, 15.0, -33.1)
    measured = parse_loudnorm_stats(FIRST_PASS_STDERR)
    assert loudnorm_filter(target, None) == "loudnorm=I=-19.00:TP=-1.50:LRA=11.00:print_format=json"
    second = loudnorm_filter(target, measured)
    assert second == (
        "loudnorm=I=-19.00:TP=-1.50:LRA=13.20:measured_I=-33.12:measured_TP=-14.80:measured_LRA=13.20:"
        "measured_thresh=-43.40:offset=0.46:linear=true:print_format=json"
    )
    wide = dataclasses.replace(measured, input_lra=22.0)
    assert ":LRA=15.00:" in loudnorm_filter(target, wide)
    narrow = dataclasses.replace(measured, input_lra=3.0, input_i=-120.0)
    assert ":LRA=11.00:" in loudnorm_filter(target, narrow)
    assert "measured_I=-99.00" in loudnorm_filter(target, narrow)


def test_measuring_pass_reads_only_the_first_audio_stream(campaign: Campaign) -> None:
    plan = plan_rendition(probe(), campaign, loudness_lufs=-33.0)
    assert plan.loudness is not None
    argv = loudness_measure_command(SRC, plan.loudness, plan.presets)
    graph = argv[argv.index("-filter_complex") + 1]
    assert graph.startswith("[0:a:0]aformat=channel_layouts=stereo,loudnorm=")
    assert argv[-3:] == ["-f", "null", "-"] and argv[argv.index("-v") + 1] == "info"


# --- encode command -------------------------------------------------------------------------------


def test_encode_command_writes_both_sizes_as_high_profile_cfr_with_faststart(campaign: Campaign) -> None:
    plan = plan_rendition(probe(video(codec="mpeg4")), campaign, loudness_lufs=-33.0)
    dests = [Path("/o/.rendition-1080p.mp4.part"), Path("/o/.rendition-720p.mp4.part")]
    argv = encode_command(SRC, dests, plan, parse_loudnorm_stats(FIRST_PASS_STDERR))
    graph = argv[argv.index("-filter_complex") + 1]
    assert "fps=25/1,split=2[s0][s1]" in graph
    assert "loudnorm=" in graph and "linear=true" in graph and "aresample=48000,asplit=2[a0][a1]" in graph
    assert argv.count("libx264") == 2 and argv.count("+faststart") == 2
    assert argv.count("high") == 2 and argv.count("yuv420p") == 2
    assert argv[argv.index("-level:v") : argv.index("-level:v") + 2] == ["-level:v", "4.1"]
    assert "3.1" in argv
    audio_args = ["-c:a", "aac", "-b:a", "160k", "-ar", "48000", "-ac", "2"]
    assert " ".join(audio_args) in " ".join(argv)
    assert argv[-1] == str(dests[1])


def test_fifty_fps_needs_level_4_2(campaign: Campaign) -> None:
    plan = plan_rendition(
        probe(video(codec="hevc", avg_frame_rate=50.0, r_frame_rate=50.0)), campaign, loudness_lufs=None
    )
    argv = encode_command(SRC, [Path("/o/a.mp4"), Path("/o/b.mp4")], plan, None)
    levels = [argv[i + 1] for i, a in enumerate(argv) if a == "-level:v"]
    assert levels == ["4.2", "3.2"]
    assert argv[argv.index("-g") : argv.index("-g") + 2] == ["-g", "100"]
    assert MAIN_1080P.level_for(Fraction(30000, 1001)) == "4.1"


def test_encode_command_refuses_a_remux_plan(campaign: Campaign) -> None:
    plan = plan_rendition(probe(), campaign, loudness_lufs=None)
    with pytest.raises(ValueError):
        encode_command(SRC, [Path("/o/a.mp4")], plan, None)


def test_plan_key_changes_with_presets_and_not_otherwise(campaign: Campaign) -> None:
    a = plan_rendition(probe(video(codec="mpeg4")), campaign, loudness_lufs=None)
    b = plan_rendition(probe(video(codec="mpeg4")), campaign, loudness_lufs=None)
    slower = dataclasses.replace(DEFAULT_PRESETS, encode_outputs=(dataclasses.replace(MAIN_1080P, x264_preset="slow"),))
    c = plan_rendition(probe(video(codec="mpeg4")), campaign, loudness_lufs=None, presets=slower)
    assert a.key() == b.key() != c.key()
    assert c.output_names == ("1080p",)


# --- stills ---------------------------------------------------------------------------------------


def test_thumbnail_times_are_evenly_spaced_inside_the_programme() -> None:
    assert thumbnail_times(240.0, 4) == [48.0, 96.0, 144.0, 192.0]
    assert thumbnail_times(3.0, 4) == [0.6, 1.2, 1.8, 2.4]


def test_poster_window_starts_at_ten_percent_and_skips_dark_frames() -> None:
    pick = poster_pick_command(Path("/o/main.mp4"), 240.0, DEFAULT_PRESETS)
    assert pick[pick.index("-ss") + 1] == "24.000" and pick[pick.index("-t") + 1] == "3.000"
    chain = pick[pick.index("-vf") + 1]
    # Measured on frames of the thumbnail's size; the kept frame's timestamp is logged.
    assert (
        chain.index("scale=320:180") < chain.index("signalstats") < chain.index("thumbnail=") < chain.index("showinfo")
    )
    assert "function=greater" in chain and pick[pick.index("-v") + 1] == "info" and pick[-3:] == ["-f", "null", "-"]
    # The second pass seeks the same window and keeps the picked frame, at the poster's size.
    argv = poster_command(Path("/o/main.mp4"), Path("/o/poster.jpg"), 240.0, DEFAULT_PRESETS, 35840)
    assert argv[argv.index("-ss") + 1 : argv.index("-i")] == ["24.000", "-t", "3.000"]
    chain = argv[argv.index("-vf") + 1]
    assert chain.startswith("select='gte(pts\\,35840)',")
    assert "scale=1920:1080:force_original_aspect_ratio=decrease" in chain and "pad=1920:1080" in chain
    # A clip shorter than the window is searched from its start.
    short = poster_pick_command(Path("/o/main.mp4"), 2.0, DEFAULT_PRESETS)
    assert short[short.index("-ss") + 1] == "0.000"


def test_the_picked_frame_is_read_from_showinfo() -> None:
    log = (
        "Input #0, mov,mp4,m4a,3gp,3g2,mj2, from '/o/main.mp4':\n"
        "[Parsed_showinfo_4 @ 0x56507c6f8f00] config in time_base: 1/12800, frame_rate: 25/1\n"
        "[Parsed_showinfo_4 @ 0x56507c6f8f00] n:   0 pts:  35840 pts_time:2.8     pos:  2316130 fmt:yuv420p\n"
    )
    assert picked_pts(log) == 35840
    assert picked_pts(log.replace("pts:  35840", "pts:-512")) == -512
    # No frame bright enough: thumbnail passed nothing on, showinfo logged nothing.
    assert picked_pts("Input #0, mov,mp4,m4a,3gp,3g2,mj2, from '/o/main.mp4':\n") is None


def test_thumbnails_are_one_command_with_one_seek_each() -> None:
    dests = [Path(f"/o/t{k}.jpg") for k in range(4)]
    argv = thumbnails_command(Path("/o/main.mp4"), dests, 100.0, DEFAULT_PRESETS)
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "-ss"] == ["20.000", "40.000", "60.000", "80.000"]
    graph = argv[argv.index("-filter_complex") + 1]
    assert argv.count("-frames:v") == 4 and "pad=320:180" in graph
    # Each window is measured at the thumbnail's size: the scale comes before the tests and the pick, the pad after.
    for branch in graph.split(";"):
        assert (
            branch.index("scale=320:180") < branch.index("entropy") < branch.index("thumbnail=") < branch.index("pad=")
        )


# --- EXIF orientation (covers) -------------------------------------------------------------------


def _exif_jpeg(orientation: int, endian: str) -> bytes:
    import struct

    head = b"II*\x00" if endian == "<" else b"MM\x00*"
    ifd = struct.pack(endian + "H", 2)
    ifd += struct.pack(endian + "HHIHH", 0x010F, 2, 4, 0, 0)  # Make: an ASCII entry before it
    ifd += struct.pack(endian + "HHIHH", 0x0112, 3, 1, orientation, 0)
    tiff = head + struct.pack(endian + "I", 8) + ifd + b"\x00\x00\x00\x00"
    app1 = b"Exif\x00\x00" + tiff
    app0 = b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    return (
        b"\xff\xd8"
        + b"\xff\xe0"
        + struct.pack(">H", len(app0) + 2)
        + app0
        + b"\xff\xe1"
        + struct.pack(">H", len(app1) + 2)
        + app1
        + b"\xff\xda\x00\x02"
    )


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_exif_orientation_in_both_byte_orders(orientation: int, endian: str) -> None:
    assert jpeg_exif_orientation(_exif_jpeg(orientation, endian)) == orientation


def test_no_or_bad_exif_means_as_stored() -> None:
    assert jpeg_exif_orientation(b"\xff\xd8\xff\xda\x00\x02") == 1
    assert jpeg_exif_orientation(b"\x89PNG\r\n") == 1
    assert jpeg_exif_orientation(_exif_jpeg(9, "<")) == 1
    assert jpeg_exif_orientation(_exif_jpeg(6, "<")[:30]) == 1
