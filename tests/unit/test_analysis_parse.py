"""The media analysis parsers on captured ffmpeg output, and the rules on hand-made measurements.

Captures are in tests/data/ffmpeg (see its README.md for the commands); nothing here runs ffmpeg.
"""

from __future__ import annotations

import math
import shlex
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kepu.campaign import Campaign, load_campaign
from kepu.config import DEFAULT_CAMPAIGN_FILE
from kepu.findings import Finding
from kepu.media.analysis import (
    Analysis,
    AudioStats,
    FrameSample,
    InterlaceCounts,
    Interval,
    Loudness,
    NoiseWindow,
    SceneCut,
    analysis_command,
    bits_per_pixel,
    hum_frequencies,
    parse_analysis,
    parse_astats,
    parse_blackdetect,
    parse_ebur128,
    parse_frame_samples,
    parse_freezedetect,
    parse_idet,
    parse_noise_windows,
    parse_read_errors,
    parse_scdet,
    parse_silencedetect,
    sample_interval,
)
from kepu.media.fingerprint import THUMB_SIZE, WINDOWS, VideoHash
from kepu.media.probe import AudioStream, ProbeResult, SubtitleStream, VideoStream
from kepu.media.quality_checks import body_overlap, decoded_end, metrics, noise_floor, quality_findings, subtract
from kepu.media.subtitles import (
    SubtitleResult,
    cue_texts,
    decode_text,
    find_subtitles,
    is_chinese,
)
from kepu.media.timing import FrameTiming, Gap, Span, Timing, frame_timing, parse_packets

pytestmark = pytest.mark.unit

DATA = Path(__file__).resolve().parents[1] / "data" / "ffmpeg"


def text(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def campaign() -> Campaign:
    return load_campaign(DEFAULT_CAMPAIGN_FILE)


def make_probe(*, video: bool = True, audio: bool = True, vcodec: str = "h264", acodec: str = "aac") -> ProbeResult:
    v = VideoStream(
        index=0,
        codec=vcodec,
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
        bit_rate=5_184_000,
    )
    a = AudioStream(
        index=1,
        codec=acodec,
        profile="LC",
        sample_rate=48000,
        channels=2,
        channel_layout="stereo",
        duration_s=240.0,
        bit_rate=128_000,
    )
    return ProbeResult(
        format_name="mov,mp4,m4a,3gp,3g2,mj2",
        format_long_name="QuickTime / MOV",
        major_brand="isom",
        compatible_brands="isomiso2avc1mp41",
        is_mp4=True,
        duration_s=240.0,
        size_bytes=160_000_000,
        bit_rate=5_312_000,
        video=v if video else None,
        audio=a if audio else None,
        audio_count=int(audio),
        video_count=int(video),
        subtitles=[],
        stream_count=int(video) + int(audio),
    )


#: A fingerprint of 240 seconds, as the analysis of a 4-minute video gives.
_FINGERPRINT = VideoHash(
    hashes=np.arange(240, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15),
    windows=np.arange(240 * len(WINDOWS), dtype=np.uint64).reshape(240, len(WINDOWS)),
    brightness=np.full(240, 120, dtype=np.uint8),
    detail=np.full(240, 40, dtype=np.uint8),
    window_brightness=np.full((240, len(WINDOWS)), 118, dtype=np.uint8),
    stripes=np.zeros((240, 1 + len(WINDOWS)), dtype=bool),
    frames=1200,
)


def clean_analysis(**changes: Any) -> Analysis:
    """Measurements of a conformant 240 s programme: cuts near both ends, nothing wrong."""
    base = Analysis(
        loudness=Loudness(integrated_lufs=-19.0, lra_lu=6.0, true_peak_dbtp=-3.0),
        audio_stats=AudioStats(
            min_level=-20000,
            max_level=20000,
            peak_count=2,
            peak_level_dbfs=-4.3,
            rms_trough_dbfs=-90.0,
            samples=240 * 48000,
        ),
        silences=(Interval(100.0, 101.0),),
        blacks=(Interval(0.0, 0.4), Interval(239.6, 240.0)),
        freezes=(),
        cuts=(SceneCut(8.0, 40.0), SceneCut(120.0, 30.0), SceneCut(228.0, 45.0)),
        samples=tuple(FrameSample(float(t), 0.0, 40.0, 70.0, 120.0, 4.5) for t in range(0, 240, 5)),
        interlace=InterlaceCounts(0, 0, 240, 10),
        bits_per_pixel=0.1,
        fingerprint=_FINGERPRINT,
        elapsed_s=1.0,
        noise_windows=speech_windows(),
        video_decoded_s=240.0,
        audio_decoded_end_s=240.0,
    )
    return replace(base, **changes)


def speech_windows(
    bed_dbfs: float = float("-inf"), flatness: float = 0.7, hum_share: float = 0.05, pause_every: int = 6
) -> tuple[NoiseWindow, ...]:
    """128 ms windows of 240 s of narration at about -20 dBFS; one window in ``pause_every`` is a
    pause holding ``bed_dbfs`` of a bed with that flatness and share of hum."""
    out = []
    for i in range(1875):
        t = i * 0.128
        if i % pause_every == 0:
            residual = bed_dbfs + 10 * math.log10(1 - hum_share) if math.isfinite(bed_dbfs) else bed_dbfs
            out.append(NoiseWindow(t, bed_dbfs, flatness if math.isfinite(bed_dbfs) else 0.0, residual))
        else:
            out.append(NoiseWindow(t, -20.0 - (i % 5), 0.15, -20.5 - (i % 5)))
    return tuple(out)


def clean_timing(**changes: Any) -> Timing:
    frames = FrameTiming(
        frames=6000,
        nominal_s=0.04,
        dropped=0,
        drop_ratio=0.0,
        max_interval_s=0.04,
        max_interval_at_s=0.0,
        short_intervals=0,
        gaps=(),
    )
    base = Timing(frames=frames, video=Span(0.0, 240.0), audio=Span(0.0, 240.0))
    return replace(base, **changes)


FOUND = SubtitleResult(True, "stream", ("stream",), "stream #2 (mov_text)", "月亮自己并不发光。")


def judge(campaign: Campaign, probe: ProbeResult | None = None, **parts: Any) -> list[Finding]:
    return quality_findings(
        campaign,
        probe or make_probe(),
        parts.get("analysis", clean_analysis()),
        parts.get("timing", clean_timing()),
        parts.get("subtitles", FOUND),
        duration=parts.get("duration", 240.0),
    )


def codes(findings: list[Finding]) -> dict[str, str]:
    return {f.code: f.severity for f in findings}


# --- the parsers on captured output ---------------------------------------------------------------


def test_every_capture_has_its_command_in_the_readme() -> None:
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    captures = sorted(p.name for p in DATA.iterdir() if p.name != "README.md")
    assert len(captures) == 4
    for name in captures:
        assert f"> {name}" in readme or f"2> {name}" in readme, name


def test_ebur128_takes_the_last_summary_not_the_empty_first_one() -> None:
    stderr = text("analysis_av.stderr.txt")
    assert stderr.count("] Summary:") == 2
    assert parse_ebur128(stderr) == Loudness(integrated_lufs=-18.8, lra_lu=7.2, true_peak_dbtp=-14.8)
    assert parse_ebur128(text("analysis_clipped.stderr.txt")) == Loudness(-2.7, 0.1, 4.7)
    assert parse_ebur128("[Parsed_ebur128_0 @ 0x1] Summary:\n\n\n\n") is None


def test_astats_overall_of_a_clean_and_a_clipped_track() -> None:
    clean = parse_astats(text("analysis_av.stderr.txt"))
    assert clean is not None
    assert (clean.min_level, clean.max_level, clean.samples) == (-5934.0, 5924.0, 672768)
    assert not clean.at_full_scale and clean.clipped_runs == 0
    assert clean.rms_trough_dbfs < -300  # the digital silence 6–9.5 s
    clipped = parse_astats(text("analysis_clipped.stderr.txt"))
    assert clipped is not None
    assert clipped.at_full_scale and clipped.clipped_runs == 1375
    assert clipped.peak_level_dbfs == pytest.approx(0.0, abs=0.01)
    assert parse_astats("no astats here") is None


def test_silence_black_freeze_and_cuts_with_their_times() -> None:
    stderr = text("analysis_av.stderr.txt")
    assert parse_silencedetect(stderr, end_s=14.0) == (Interval(6.016, 9.51452),)
    assert parse_blackdetect(stderr) == (Interval(0.0, 0.2), Interval(5.0, 7.6))
    # The black hold is also still, so freezedetect reports it too; the rules subtract it.
    assert parse_freezedetect(stderr, end_s=14.0) == (Interval(5.0, 7.6), Interval(8.0, 10.6))
    cuts = parse_scdet(stderr)
    assert [c.time_s for c in cuts] == [0.2, 3.0, 5.0, 7.6, 11.0]
    assert cuts[1].score == pytest.approx(51.002)


def test_segments_still_open_at_the_end_close_at_the_end() -> None:
    stderr = (
        "[silencedetect @ 0x1] silence_start: 10.5\n"
        "[freezedetect @ 0x2] lavfi.freezedetect.freeze_start: 12\n"
        "[freezedetect @ 0x2] lavfi.freezedetect.freeze_duration: 2\n"
    )
    assert parse_silencedetect(stderr, end_s=20.0) == (Interval(10.5, 20.0),)
    assert parse_freezedetect(stderr, end_s=20.0) == (Interval(12.0, 20.0),)


def test_sampled_frames_carry_signalstats_and_blur() -> None:
    samples = parse_frame_samples(text("analysis_av.stderr.txt"))
    assert [s.time_s for s in samples] == [float(t) for t in range(14)]
    first, second = samples[0], samples[1]
    # The first frame is black (fade-in): no edges, blurdetect prints -nan.
    assert first.blur is not None and math.isnan(first.blur)
    assert second.blur == pytest.approx(4.722467)
    assert second.out_of_range == pytest.approx(0.000980903)
    assert second.sat_high == 71.0
    assert second.luma_avg is not None and 16 < second.luma_avg < 235


def test_idet_uses_the_instance_that_saw_frames() -> None:
    stderr = text("analysis_av.stderr.txt")
    assert parse_idet(stderr) == InterlaceCounts(tff=0, bff=0, progressive=20, undetermined=0)
    assert InterlaceCounts(30, 2, 8, 0).interlaced_ratio == pytest.approx(0.8)
    assert InterlaceCounts(0, 0, 0, 9).interlaced_ratio is None


def test_parse_analysis_of_an_audio_only_file(campaign: Campaign) -> None:
    probe = make_probe(video=False)
    result = parse_analysis(text("analysis_clipped.stderr.txt"), b"", probe)
    assert result.loudness is not None and result.loudness.true_peak_dbtp == 4.7
    assert result.samples == () and result.interlace is None and result.fingerprint is None
    found = codes(judge(campaign, probe, analysis=result))
    assert found["A-LOUDNESS"] == "error" and {"A-TRUE-PEAK", "A-CLIPPING"} <= found.keys()


def test_parse_analysis_builds_the_fingerprint_from_stdout() -> None:
    probe = make_probe(audio=False)
    thumbs = np.random.default_rng(1).integers(0, 255, size=(40, THUMB_SIZE, THUMB_SIZE), dtype=np.uint8)
    result = parse_analysis(text("analysis_av.stderr.txt"), thumbs.tobytes() + b"\x00" * 100, probe)
    assert result.fingerprint is not None and result.fingerprint.frames == 40 and len(result.fingerprint) == 8
    assert result.loudness is None  # no audio stream in the probe: its lines are not read


def test_packets_with_dropped_frames_and_late_sound() -> None:
    timing = parse_packets(text("packets_gaps.csv"), video_index=0, audio_index=1, gap_factor=1.5)
    ft = timing.frames
    assert ft is not None
    assert ft.frames == 350 - 22 and ft.nominal_s == pytest.approx(0.04)
    assert ft.dropped == 22 and ft.drop_ratio == pytest.approx(22 / 350)
    assert ft.gaps[0].at_s == pytest.approx(4.96) and ft.gaps[0].interval_s == pytest.approx(0.92)
    assert not ft.vfr
    assert timing.start_offset_ms == pytest.approx(378.0)
    assert timing.end_offset_ms == pytest.approx(415.333, abs=0.01)


def test_discarded_priming_packets_and_side_data_lines_are_skipped() -> None:
    csv = "1,-0.021333,0.021333,KD,\n\n0,0.000000,0.040000,K_\n0,0.040000,0.040000,__\n0,0.080000,0.040000,__\n"
    csv += "1,0.000000,0.021333,K_\n1,0.021333,0.021333,K_\n2,0.0,1.0,K_\n0,N/A,0.04,__\n"
    timing = parse_packets(csv, video_index=0, audio_index=1, gap_factor=1.5)
    assert timing.audio is not None and timing.video is not None
    assert (timing.audio.start_s, timing.audio.end_s) == (0.0, pytest.approx(0.042666))
    assert (timing.video.start_s, timing.video.end_s) == (0.0, pytest.approx(0.12))
    assert timing.start_offset_ms == 0.0


def test_variable_frame_rate_is_short_intervals_without_gaps() -> None:
    pts = [0.0]
    for i in range(300):
        pts.append(pts[-1] + (0.04 if i % 3 else 0.02))
    ft = frame_timing(pts, gap_factor=1.5)
    assert ft is not None and ft.vfr and ft.dropped == 0 and ft.short_intervals == 100
    assert frame_timing([0.0, 0.04], gap_factor=1.5) is None


# --- the command ------------------------------------------------------------------------------------


def test_one_command_with_every_branch(campaign: Campaign) -> None:
    argv = analysis_command(Path("/x/a.mp4"), make_probe(), campaign)
    assert argv.count("-i") == 1 and argv.count("-filter_complex") == 1
    graph = argv[argv.index("-filter_complex") + 1]
    for name in ("blackdetect", "freezedetect", "scdet", "signalstats", "blurdetect", "idet", "ebur128=peak=true"):
        assert name in graph
    assert "silencedetect=n=-50dB:d=3" in graph and "freezedetect=n=0.001:d=2" in graph
    assert argv[-1] == "pipe:1" and argv.count("null") == 5
    # The noise branch: windows with flatness and level, then the level without the mains harmonics.
    assert "aspectralstats=win_size=2048:overlap=0" in graph and "bandreject=f=50:" in graph
    assert graph.index("ametadata@kepu_level") < graph.index("bandreject") < graph.index("ametadata@kepu_residual")
    # The expensive filters only see sampled frames.
    assert graph.index("select='isnan(prev_selected_t)") < graph.index("blurdetect")


def test_the_readme_capture_was_made_with_todays_command(campaign: Campaign) -> None:
    probe = make_probe()
    probe = replace(probe, duration_s=14.0)  # av.mp4: video stream 0, audio stream 1, 14 s
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    assert shlex.join(analysis_command(Path("av.mp4"), probe, campaign)) + " 2> analysis_av.stderr.txt" in readme


def test_command_without_audio_or_video(campaign: Campaign) -> None:
    silent = analysis_command(Path("/x/a.mp4"), make_probe(audio=False), campaign)
    assert "ebur128" not in silent[silent.index("-filter_complex") + 1]
    blind = analysis_command(Path("/x/a.m4a"), make_probe(video=False), campaign)
    assert "pipe:1" not in blind and "split=3" not in blind[blind.index("-filter_complex") + 1]
    with pytest.raises(ValueError):
        analysis_command(Path("/x/a.bin"), make_probe(video=False, audio=False), campaign)


def test_sampling_interval_and_bits_per_pixel() -> None:
    assert sample_interval(240.0) == 5.0
    assert sample_interval(10.0) == 1.0
    assert sample_interval(None) > 0
    assert bits_per_pixel(make_probe()) == pytest.approx(5_184_000 / (1920 * 1080 * 25))
    probe = make_probe()
    assert probe.video is not None
    no_stream_rate = replace(probe, video=replace(probe.video, bit_rate=None))
    assert bits_per_pixel(no_stream_rate) == pytest.approx((5_312_000 - 128_000) / (1920 * 1080 * 25))


# --- the rules ------------------------------------------------------------------------------------


def test_a_clean_programme_has_no_finding(campaign: Campaign) -> None:
    assert judge(campaign) == []


def test_noise_windows_and_the_decoded_end_from_the_capture() -> None:
    stderr = text("analysis_av.stderr.txt")
    windows = parse_noise_windows(stderr)
    # 14 s of sound in 128 ms windows; the last, partial one closes the decoded sound.
    assert len(windows) == 110 and windows[1].time_s == pytest.approx(0.128)
    tone = [w for w in windows if 1.0 < w.time_s < 5.5]
    silent = [w for w in windows if 6.2 < w.time_s < 9.3]
    assert all(w.flatness is not None and w.flatness < 0.1 for w in tone)
    assert all(-40 < w.level_dbfs < -10 for w in tone)
    assert all(w.level_dbfs == float("-inf") and w.hum_share is None for w in silent)
    # 220 Hz is no mains harmonic: the notches leave the tone.
    assert all((w.hum_share or 0) < 0.2 for w in tone)
    result = parse_analysis(
        stderr, np.zeros(70 * THUMB_SIZE * THUMB_SIZE, dtype=np.uint8).tobytes(), replace(make_probe(), duration_s=14.0)
    )
    assert result.audio_decoded_end_s == pytest.approx(14.08)
    assert result.video_decoded_s == 14.0 and result.read_error_count == 0
    assert parse_noise_windows(text("analysis_clipped.stderr.txt"))[-1].time_s == pytest.approx(5.888)


def test_read_errors_of_a_file_cut_in_transfer() -> None:
    stderr = (
        "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55a7434f6940] Packet corrupt (stream = 0, dts = 152576).\n"
        "[h264 @ 0x55a743536900] Invalid NAL unit size (11651 > 9916).\n"
        "[Parsed_astats_20 @ 0x1] RMS trough dB: -323.065277\n"
        "Error while decoding stream #0:0: Invalid data found when processing input\n"
        "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55a7434f6940] stream 1, offset 0xe7e93: partial file\n"
    )
    errors = parse_read_errors(stderr)
    assert len(errors) == 4 and errors[-1].endswith("partial file")
    assert parse_read_errors(text("analysis_av.stderr.txt")) == []


def test_hum_frequencies_are_the_mains_harmonics_once_each() -> None:
    assert hum_frequencies([50.0]) == [50, 100, 150, 200, 250, 300, 350, 400]
    assert hum_frequencies([50.0, 60.0]).count(300) == 1 and 360 in hum_frequencies([50.0, 60.0])


@pytest.mark.parametrize(
    ("windows", "expected"),
    [
        (speech_windows(), None),  # pauses of digital silence
        (speech_windows(-45.0, flatness=0.7), "broadband"),  # pink noise bed
        (speech_windows(-45.0, flatness=0.02, hum_share=0.95), "hum"),  # 50 Hz hum
        (speech_windows(-60.0, flatness=0.7), None),  # room tone under the limit
        (speech_windows(-30.0, flatness=0.01, hum_share=0.02), None),  # music bed: tonal, fills the pauses
        (tuple(NoiseWindow(i * 0.128, -35.0, 0.01, -35.0) for i in range(1875)), None),  # a pure tone
    ],
)
def test_noise_in_the_pauses(campaign: Campaign, windows: tuple[NoiseWindow, ...], expected: str | None) -> None:
    found = [f for f in judge(campaign, analysis=clean_analysis(noise_windows=windows)) if f.code == "A-NOISE"]
    if expected is None:
        assert found == []
        return
    (finding,) = found
    assert finding.severity == "warning" and finding.value == "-45.0" and finding.limit == "<=-50 dBFS"
    assert ("hum" in finding.message_en) == (expected == "hum") and ("哼声" in finding.message_zh) == (
        expected == "hum"
    )
    assert ("broadband" in finding.message_en) == (expected == "broadband")
    assert finding.at_seconds is not None and 20 <= finding.at_seconds <= 220


def test_noise_floor_leaves_the_edges_out() -> None:
    # A noisy opening and closing (20 s each) around clean pauses: the body decides.
    windows = tuple(
        replace(w, level_dbfs=-40.0, flatness=0.7) if w.time_s < 20 or w.time_s > 220 else w for w in speech_windows()
    )
    nf = noise_floor(windows, quiet_share=0.1, edge_s=20.0, duration=240.0)
    assert nf is not None and nf.floor_dbfs == float("-inf") and nf.windows < len(windows)
    # A clip shorter than both edges is judged on all of it.
    short = noise_floor(windows[:50], quiet_share=0.1, edge_s=20.0, duration=6.4)
    assert short is not None and short.windows == 50 and short.floor_dbfs == -40.0
    assert noise_floor((), quiet_share=0.1, edge_s=20.0, duration=240.0) is None


@pytest.mark.parametrize(
    ("video_s", "audio_end", "packets_end", "expected"),
    [
        (240.0, 240.0, 240.0, None),  # complete
        (240.0, 239.4, 240.0, None),  # the sound 0.6 s shorter: the file still ends at 240 s
        (96.0, 95.9, 96.0, "error"),  # cut at 40 %
        (228.0, 227.9, 228.1, "error"),  # cut at 95 %: 12 s missing
        (240.0, 240.0, 238.5, "error"),  # the packets run out 1.5 s early
        (239.2, 239.1, 239.3, None),  # within the 1 s tolerance
    ],
)
def test_truncated_file(
    campaign: Campaign, video_s: float, audio_end: float, packets_end: float, expected: str | None
) -> None:
    analysis = clean_analysis(
        video_decoded_s=video_s,
        audio_decoded_end_s=audio_end,
        read_errors=("[mov,mp4,m4a,3gp,3g2,mj2] stream 1, offset 0xe7e93: partial file",),
        read_error_count=3,
    )
    timing = clean_timing(video=Span(0.0, packets_end), audio=Span(0.0, min(packets_end, audio_end)))
    found = [f for f in judge(campaign, analysis=analysis, timing=timing) if f.code == "V-TRUNCATED"]
    if expected is None:
        assert found == []
        return
    (finding,) = found
    end = min(max(video_s, audio_end), packets_end)
    assert finding.severity == "error" and finding.stage == "media"
    assert float(finding.value or 0) == pytest.approx(end, abs=0.01) and finding.at_seconds == pytest.approx(
        end, abs=0.01
    )
    assert "240.0" in finding.message_zh and f"{end:.1f}" in finding.message_zh and "声明时长" in finding.message_zh
    assert "declares 240.0 s" in finding.message_en and f"about {end:.1f} s" in finding.message_en
    assert "3 read error(s)" in finding.message_en and "partial file" in finding.message_zh


def test_the_declared_end_is_the_streams_not_a_longer_subtitle_track(campaign: Campaign) -> None:
    # The container says 250 s because a subtitle cue runs past the picture: nothing is missing.
    probe = replace(make_probe(), duration_s=250.0)
    assert "V-TRUNCATED" not in codes(judge(campaign, probe))
    # Streams that state no duration: the container's is the declared one.
    assert probe.video is not None and probe.audio is not None
    bare = replace(probe, video=replace(probe.video, duration_s=None), audio=replace(probe.audio, duration_s=None))
    (finding,) = [f for f in judge(campaign, bare) if f.code == "V-TRUNCATED"]
    assert "declares 250.0 s" in finding.message_en


def test_a_truncated_file_has_no_end_of_file_sync_finding(campaign: Campaign) -> None:
    # Cut at 96 s, the sound's last packet 1.4 s before the picture's: that is the cut, not a sync fault.
    analysis = clean_analysis(video_decoded_s=96.0, audio_decoded_end_s=94.6)
    timing = clean_timing(video=Span(0.0, 96.0), audio=Span(0.0, 94.6))
    assert codes(judge(campaign, analysis=analysis, timing=timing)) == {"V-TRUNCATED": "error"}
    assert decoded_end(analysis, timing) == 96.0


def test_every_finding_is_bilingual_and_at_the_media_stage(campaign: Campaign) -> None:
    bad = clean_analysis(
        loudness=Loudness(-40.0, 20.0, 1.0),
        blacks=(Interval(50.0, 60.0),),
        freezes=(Interval(80.0, 90.0),),
        cuts=(),
        interlace=InterlaceCounts(200, 0, 10, 0),
    )
    findings = judge(campaign, analysis=bad, subtitles=SubtitleResult(False, "ocr-unavailable", ("ocr-unavailable",)))
    assert {"A-LOUDNESS", "A-LRA", "A-TRUE-PEAK", "V-BLACK", "V-FREEZE", "V-INTERLACED", "S-STRUCTURE"} <= {
        f.code for f in findings
    }
    for f in findings:
        assert f.stage == "media" and f.message_zh and f.message_en
        assert any("\u4e00" <= ch <= "\u9fff" for ch in f.message_zh)


@pytest.mark.parametrize(
    ("lufs", "expected"),
    [(-19.0, None), (-24.0, None), (-25.0, "warning"), (-12.0, "warning"), (-36.5, "error"), (-7.0, "error")],
)
def test_loudness_bands(campaign: Campaign, lufs: float, expected: str | None) -> None:
    found = codes(judge(campaign, analysis=clean_analysis(loudness=Loudness(lufs, 6.0, -3.0))))
    assert found.get("A-LOUDNESS") == expected


def test_true_peak_clipping_lra_and_noise(campaign: Campaign) -> None:
    stats = AudioStats(-32768, 32767, 11, 0.0, -45.0, 1000)
    found = judge(campaign, analysis=clean_analysis(loudness=Loudness(-19.0, 15.5, -0.5), audio_stats=stats))
    by_code = {f.code: f for f in found}
    assert by_code["A-TRUE-PEAK"].value == "-0.5" and by_code["A-TRUE-PEAK"].limit == "<=-1 dBTP"
    assert by_code["A-CLIPPING"].value == "11"
    assert by_code["A-LRA"].value == "15.5"
    # The quietest 50 ms alone is no noise finding: that takes the pauses' level and character.
    assert "A-NOISE" not in by_code
    # Ten runs are allowed; a peak below full scale is no clip however often it is reached.
    ok = AudioStats(-32768, 32767, 10, 0.0, -70.0, 1000)
    assert "A-CLIPPING" not in codes(judge(campaign, analysis=clean_analysis(audio_stats=ok)))
    quiet = AudioStats(-20000, 20000, 500, -4.3, float("-inf"), 1000)
    assert codes(judge(campaign, analysis=clean_analysis(audio_stats=quiet))) == {}


def test_silence_counts_only_in_the_body(campaign: Campaign) -> None:
    edges = clean_analysis(silences=(Interval(0.0, 10.0), Interval(232.0, 240.0)))
    assert judge(campaign, analysis=edges) == []
    body = clean_analysis(silences=(Interval(60.0, 63.5), Interval(150.0, 151.0)))
    (finding,) = judge(campaign, analysis=body)
    assert (finding.code, finding.at_seconds, finding.value) == ("A-SILENCE", 60.0, "3.5")


def test_freeze_and_black_outside_the_edges_only(campaign: Campaign) -> None:
    at_edges = clean_analysis(blacks=(Interval(0.0, 14.0), Interval(228.0, 240.0)), freezes=(Interval(2.0, 15.5),))
    assert judge(campaign, analysis=at_edges) == []
    inside = clean_analysis(blacks=(Interval(100.0, 103.0),), freezes=(Interval(100.0, 103.0), Interval(150.0, 151.0)))
    found = judge(campaign, analysis=inside)
    # The black hold is not also reported as a freeze, and a 1 s freeze is below the limit.
    assert [(f.code, f.at_seconds) for f in found] == [("V-BLACK", 100.0)]
    frozen = clean_analysis(freezes=(Interval(100.0, 110.0), Interval(200.0, 203.0)))
    (finding,) = judge(campaign, analysis=frozen)
    assert finding.code == "V-FREEZE" and finding.value == "10.0" and "2 such segment(s)" in finding.message_en


def test_body_overlap_and_subtract() -> None:
    assert body_overlap(Interval(10.0, 20.0), 15.0, 240.0) == 5.0
    assert body_overlap(Interval(220.0, 240.0), 15.0, 240.0) == 5.0
    assert body_overlap(Interval(0.0, 5.0), 15.0, 240.0) == 0.0
    assert subtract(Interval(0.0, 10.0), [Interval(2.0, 4.0), Interval(8.0, 12.0)]) == 6.0


def test_clarity_from_bits_per_pixel_and_blur(campaign: Campaign) -> None:
    low = judge(campaign, analysis=clean_analysis(bits_per_pixel=0.03))
    assert [(f.code, f.value) for f in low] == [("V-CLARITY", "0.03")]
    # hevc has its own minimum; a codec the campaign gives none for is not judged on bits.
    assert judge(campaign, make_probe(vcodec="hevc"), analysis=clean_analysis(bits_per_pixel=0.04)) == []
    assert codes(judge(campaign, make_probe(vcodec="mpeg4"), analysis=clean_analysis(bits_per_pixel=0.01))) == {
        "V-CODEC": "info"
    }
    soft = tuple(FrameSample(float(t), 0.0, 40.0, 70.0, 120.0, 12.0 + t / 100) for t in range(0, 240, 5))
    nan = (FrameSample(0.0, 0.0, 0.0, 0.0, 16.0, float("nan")),)
    (blurred,) = judge(campaign, analysis=clean_analysis(samples=nan + soft))
    assert blurred.code == "V-CLARITY" and blurred.at_seconds == 235.0


def test_levels_from_out_of_range_pixels_and_saturation(campaign: Campaign) -> None:
    samples = tuple(FrameSample(float(t), 0.05 if t == 100 else 0.0, 40.0, 70.0, 120.0, 4.5) for t in range(0, 240, 5))
    assert judge(campaign, analysis=clean_analysis(samples=samples)) == []  # one frame: the mean stays low
    illegal = tuple(replace(s, out_of_range=0.3) for s in samples)
    (finding,) = judge(campaign, analysis=clean_analysis(samples=illegal))
    assert finding.code == "V-LEVELS" and finding.value == "0.3"
    garish = tuple(replace(s, sat_high=181.0) for s in samples)
    assert codes(judge(campaign, analysis=clean_analysis(samples=garish))) == {"V-LEVELS": "warning"}


def test_interlace_needs_a_majority(campaign: Campaign) -> None:
    assert judge(campaign, analysis=clean_analysis(interlace=InterlaceCounts(40, 30, 80, 0))) == []
    (finding,) = judge(campaign, analysis=clean_analysis(interlace=InterlaceCounts(5, 90, 10, 0)))
    assert finding.code == "V-INTERLACED" and "BFF" in finding.message_en


def test_frame_drop_severities(campaign: Campaign) -> None:
    def timing(dropped: int, ratio: float, gap: float, short: int = 0) -> Timing:
        gaps = (Gap(50.0, gap, dropped),) if dropped else ()
        frames = FrameTiming(6000, 0.04, dropped, ratio, max(gap, 0.04), 50.0, short, gaps)
        return clean_timing(frames=frames)

    assert codes(judge(campaign, timing=timing(1, 1 / 6001, 0.08))) == {"V-FRAME-DROP": "warning"}
    assert codes(judge(campaign, timing=timing(80, 0.013, 0.08))) == {"V-FRAME-DROP": "error"}
    (gap,) = judge(campaign, timing=timing(12, 0.002, 0.52))
    assert gap.severity == "error" and gap.at_seconds == 50.0
    (vfr,) = judge(campaign, timing=timing(0, 0.0, 0.04, short=40))
    assert vfr.severity == "warning" and "variable frame rate" in vfr.message_en


@pytest.mark.parametrize(
    ("audio", "expected"),
    [
        (Span(0.04, 240.0), None),  # 40 ms late: within the 125 ms lag
        (Span(-0.04, 240.0), None),  # 40 ms early: within the 45 ms lead
        (Span(-0.06, 240.0), "warning"),  # 60 ms early: audio lead
        (Span(0.2, 240.0), "warning"),
        (Span(0.0, 238.5), "error"),  # ends 1.5 s before the picture
    ],
)
def test_sync_lead_and_lag(campaign: Campaign, audio: Span, expected: str | None) -> None:
    found = codes(judge(campaign, timing=clean_timing(audio=audio)))
    assert found.get("A-SYNC") == expected


def test_structure_needs_both_ends(campaign: Campaign) -> None:
    only_opening = clean_analysis(cuts=(SceneCut(8.0, 40.0),), blacks=())
    (finding,) = judge(campaign, analysis=only_opening)
    assert finding.code == "S-STRUCTURE" and finding.value == "opening=yes,closing=no"
    assert "end" in finding.message_en and "片尾" in finding.message_zh
    fades = clean_analysis(cuts=(), blacks=(Interval(0.0, 0.2), Interval(239.8, 240.0)))
    assert judge(campaign, analysis=fades) == []
    nothing = clean_analysis(cuts=(SceneCut(120.0, 30.0),), blacks=())
    (finding,) = judge(campaign, analysis=nothing)
    assert finding.value == "opening=no,closing=no" and finding.at_seconds == 0.0


def test_subtitle_finding_says_where_it_looked(campaign: Campaign) -> None:
    looked = SubtitleResult(False, "ocr-unavailable", ("stream", "sidecar", "ocr-unavailable"))
    (finding,) = judge(campaign, subtitles=looked)
    assert finding.code == "L-SUBTITLE" and finding.value == "ocr-unavailable"
    assert "stream, sidecar, ocr-unavailable" in finding.message_en and "未检查画面内嵌字幕" in finding.message_zh


def test_codec_finding_is_info(campaign: Campaign) -> None:
    (finding,) = judge(campaign, make_probe(acodec="pcm_s16le"))
    assert (finding.code, finding.severity, finding.value) == ("V-CODEC", "info", "audio pcm_s16le")


def test_metrics_are_plain_json(campaign: Campaign) -> None:
    import json

    stats = AudioStats(-100, 100, 1, -50.0, float("-inf"), 10)
    data = metrics(clean_analysis(audio_stats=stats), clean_timing(), FOUND, campaign=campaign, duration=240.0)
    again = json.loads(json.dumps(data, allow_nan=False))
    assert again["noise_windows"] == 1875 and again["noise"]["floor_dbfs"] == "-inf"
    assert again["decoded_end_s"] == 240.0
    assert again["fingerprint"] == _FINGERPRINT.to_text() and again["fingerprint"].startswith("v4:1200:")
    assert again["audio_stats"]["rms_trough_dbfs"] == "-inf"
    assert again["timing"]["start_offset_ms"] == 0.0 and again["subtitles"]["method"] == "stream"
    assert again["fingerprint_frames"] == 1200
    assert again["audio_stats"]["clipped_runs"] == 0 and again["interlace"]["interlaced_ratio"] == 0.0
    assert again["timing"]["frames"]["vfr"] is False


# --- subtitles ------------------------------------------------------------------------------------


def test_cues_of_the_captured_stream_are_chinese() -> None:
    cues = cue_texts(text("subtitle_stream.srt"))
    assert cues == ["月亮自己并不发光。", "我们看到的是它反射的太阳光。"]
    assert is_chinese(" ".join(cues))


def test_ass_and_vtt_cues() -> None:
    ass = (
        "[Script Info]\nTitle: x\n\n[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, "
        "Effect, Text\nDialogue: 0,0:00:01.00,0:00:03.00,Default,,0,0,0,,{\\fad(200,200)}潮汐从哪里来，\\N大海知道\n"
    )
    assert cue_texts(ass) == ["潮汐从哪里来， 大海知道"]
    vtt = "WEBVTT\n\nNOTE made by hand\n\n00:00.000 --> 00:02.000\n<v 旁白>彩虹是怎样形成的</v>\n"
    assert cue_texts(vtt) == ["彩虹是怎样形成的"]


@pytest.mark.parametrize(
    ("sample", "chinese"),
    [
        ("月亮为什么有阴晴圆缺", True),
        ("The moon, 月亮", False),
        ("DNA 双螺旋结构", True),
        ("12345", False),
        ("", False),
    ],
)
def test_is_chinese(sample: str, chinese: bool) -> None:
    assert is_chinese(sample) is chinese


def test_decode_gb18030_utf8_bom_and_utf16() -> None:
    words = "种子的旅行"
    assert decode_text(words.encode("gb18030")) == words
    assert decode_text(b"\xef\xbb\xbf" + words.encode()) == words
    assert decode_text(words.encode("utf-16")) == words


def test_sidecar_found_without_running_anything(tmp_path: Path, campaign: Campaign) -> None:
    srt = tmp_path / "字幕.srt"
    srt.write_bytes("1\n00:00:00,000 --> 00:00:02,000\n地震来了怎么办\n".encode("gb18030"))
    english = tmp_path / "en.srt"
    english.write_text("1\n00:00:00,000 --> 00:00:02,000\nWhat to do in an earthquake\n", encoding="utf-8")
    notes = tmp_path / "notes.txt"
    notes.write_text("地震", encoding="utf-8")
    probe = make_probe(video=False)  # no picture: nothing to OCR, and no subtitle stream to extract
    result = find_subtitles(tmp_path / "v.mp4", probe, campaign, sidecars=[notes, english, srt], timeout=5)
    assert result == SubtitleResult(True, "sidecar", ("sidecar",), "字幕.srt", "地震来了怎么办")
    missing = find_subtitles(tmp_path / "v.mp4", probe, campaign, sidecars=[english], timeout=5)
    assert not missing.found and missing.looked == ("sidecar",)


def test_bitmap_stream_is_judged_by_its_language_tag(tmp_path: Path, campaign: Campaign) -> None:
    probe = make_probe(video=False)
    tagged = replace(probe, subtitles=[SubtitleStream(2, "hdmv_pgs_subtitle", "chi", None)])
    result = find_subtitles(tmp_path / "v.mkv", tagged, campaign, sidecars=[], timeout=5)
    assert result.found and result.method == "stream" and result.source == "stream #2 (hdmv_pgs_subtitle)"
    untagged = replace(probe, subtitles=[SubtitleStream(2, "dvd_subtitle", None, None)])
    assert not find_subtitles(tmp_path / "v.mkv", untagged, campaign, sidecars=[], timeout=5).found


def test_ocr_unavailable_is_reported(tmp_path: Path, campaign: Campaign, monkeypatch: pytest.MonkeyPatch) -> None:
    """rapidocr is installed with its models but cannot start: known only when a crop must be read."""
    import kepu.media.subtitles as subtitles

    crops = [tmp_path / f"crop{i}.png" for i in range(2)]
    for i, crop in enumerate(crops):
        crop.write_bytes(b"a crop never read before %d" % i)
    monkeypatch.setattr(subtitles.ocr, "grab_crops", lambda *args, **kwargs: crops)
    monkeypatch.setattr(subtitles.ocr, "ocr_engine", lambda: None)
    result = find_subtitles(tmp_path / "v.mp4", make_probe(), campaign, sidecars=[], timeout=5)
    assert result == SubtitleResult(False, "ocr-unavailable", ("ocr-unavailable",))
