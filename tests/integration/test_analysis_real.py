"""The media analysis on real generated clips: each defect found with its code, the conformant clip clean.

Clips come from tests/media_factory.py, made once per session; each is analysed once (the results
are cached per session too), judged against the campaign scaled to 12 s clips.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from kepu.campaign import Campaign, load_campaign
from kepu.findings import Finding
from kepu.media.fingerprint import VideoHash, duplicate_findings, duplicate_pairs, match
from kepu.media.probe import probe_file
from kepu.media.quality_checks import analyse_entry

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import media_factory as factory  # tests/ is not a package: found through sys.path

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg and ffprobe"),
]

Result = tuple[list[Finding], dict[str, Any]]


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media-clips")


@pytest.fixture(scope="session")
def scaled(clip_dir: Path) -> Campaign:
    return load_campaign(factory.scaled_campaign(clip_dir / "scaled.yaml"))


@pytest.fixture(scope="session")
def analysed(clip_dir: Path, scaled: Campaign) -> dict[str, Result]:
    """Lazily filled: clip name → (findings, metrics)."""
    return {}


def result_of(name: str, clip_dir: Path, scaled: Campaign, cache: dict[str, Result]) -> Result:
    if name not in cache:
        if name == "conformant":
            clip = factory.make_conformant(clip_dir)
        elif name == "sidecar":
            clip = factory.make_sidecar_clip(clip_dir)
        else:
            clip = factory.make_defect(clip_dir, name)
        probe = probe_file(clip.path)
        cache[name] = analyse_entry(clip.path, probe, scaled, sidecars=list(clip.sidecars), timeout=120)
    return cache[name]


def test_conformant_clip_has_no_error_and_no_warning(
    clip_dir: Path, scaled: Campaign, analysed: dict[str, Result]
) -> None:
    findings, m = result_of("conformant", clip_dir, scaled, analysed)
    assert [(f.code, f.severity, f.message_en) for f in findings if f.severity != "info"] == []
    assert findings == []
    # What was measured is what the clip was made to be.
    assert m["loudness"]["integrated_lufs"] == pytest.approx(-19.0, abs=1.0)
    assert m["audio_stats"]["clipped_runs"] == 0 and m["loudness"]["true_peak_dbtp"] < -1
    assert m["timing"]["start_offset_ms"] == pytest.approx(0.0, abs=25)
    assert m["subtitles"]["found"] and m["subtitles"]["method"] == "stream"
    cut_times = [c["time_s"] for c in m["cuts"]]
    assert any(abs(t - 3.0) < 0.3 for t in cut_times) and any(abs(t - 9.0) < 0.3 for t in cut_times)
    assert m["blacks"][0]["start_s"] == 0.0  # the fade-in starts from black
    assert m["interlace"]["tff"] + m["interlace"]["bff"] < m["interlace"]["progressive"]
    fingerprint = VideoHash.from_text(m["fingerprint"])
    assert fingerprint is not None and len(fingerprint) == 12 and fingerprint.informative.sum() >= 8
    json.dumps(m, allow_nan=False)


@pytest.mark.parametrize("name", sorted(n for n in factory.DEFECTS if n != "duplicate"))
def test_each_defect_is_found_with_its_code(
    name: str, clip_dir: Path, scaled: Campaign, analysed: dict[str, Result]
) -> None:
    _, code, severity = factory.DEFECTS[name]
    findings, _ = result_of(name, clip_dir, scaled, analysed)
    matching = [f for f in findings if f.code == code]
    assert matching, f"{name}: expected {code}, got {[(f.code, f.severity) for f in findings]}"
    assert severity in {f.severity for f in matching}
    for f in matching:
        assert f.value is not None and f.limit is not None and f.message_zh and f.message_en


@pytest.mark.parametrize(
    ("name", "code", "at"),
    [("frozen", "V-FREEZE", factory.DEFECT_AT_S[0]), ("black", "V-BLACK", factory.DEFECT_AT_S[0])],
)
def test_segments_are_placed_where_they_happen(
    name: str, code: str, at: float, clip_dir: Path, scaled: Campaign, analysed: dict[str, Result]
) -> None:
    findings, _ = result_of(name, clip_dir, scaled, analysed)
    (finding,) = [f for f in findings if f.code == code]
    assert finding.at_seconds == pytest.approx(at, abs=0.3)
    assert float(finding.value or 0) == pytest.approx(factory.DEFECT_AT_S[1] - factory.DEFECT_AT_S[0], abs=0.3)


def test_frame_drop_and_sync_are_measured(clip_dir: Path, scaled: Campaign, analysed: dict[str, Result]) -> None:
    _, dropped = result_of("frame_drop", clip_dir, scaled, analysed)
    frames = dropped["timing"]["frames"]
    assert frames["dropped"] == 22 and frames["gaps"][0]["at_s"] == pytest.approx(factory.DEFECT_AT_S[0] - 0.04)
    findings, offset = result_of("av_offset", clip_dir, scaled, analysed)
    assert offset["timing"]["start_offset_ms"] == pytest.approx(400, abs=30)
    assert {f.severity for f in findings if f.code == "A-SYNC"} == {"warning"}


def test_sidecar_subtitles_count(clip_dir: Path, scaled: Campaign, analysed: dict[str, Result]) -> None:
    findings, m = result_of("sidecar", clip_dir, scaled, analysed)
    assert "L-SUBTITLE" not in {f.code for f in findings}
    assert m["subtitles"]["method"] == "sidecar" and m["subtitles"]["looked"] == ["sidecar"]


def test_re_encoded_copy_is_a_duplicate_and_other_clips_are_not(
    clip_dir: Path, scaled: Campaign, analysed: dict[str, Result]
) -> None:
    names = ["conformant", "duplicate", "no_structure"]
    hashes = {n: VideoHash.from_text(result_of(n, clip_dir, scaled, analysed)[1]["fingerprint"]) for n in names}
    assert all(h is not None for h in hashes.values())
    limit = scaled.originality.perceptual_hash_max_distance
    pairs = duplicate_pairs(hashes, limit)  # type: ignore[arg-type]
    assert [(a, b) for a, b, _ in pairs] == [("conformant", "duplicate")]
    other = match(hashes["conformant"], hashes["no_structure"], limit)  # type: ignore[arg-type]
    assert other is None or other.share < 0.3
    (finding,) = duplicate_findings(scaled, "duplicate", pairs)
    assert finding.code == "O-DUPLICATE-CONTENT" and "conformant" in finding.message_en


# --- files cut in transfer ---------------------------------------------------------------------------


def inspected(path: Path, campaign: Campaign) -> Result:
    from kepu.media.inspect import inspect_video

    return inspect_video(path, campaign, name=path.name, sidecars=[], timeout_factor=8.0)


@pytest.fixture(scope="session")
def faststart(clip_dir: Path) -> Path:
    return factory.make_faststart(clip_dir / "transfer")


@pytest.mark.parametrize("fraction", [0.4, 0.95])
def test_a_faststart_file_cut_in_transfer_is_truncated(fraction: float, faststart: Path, scaled: Campaign) -> None:
    from kepu.findings import verdict

    cut = factory.cut(faststart, faststart.with_name(f"cut-{fraction:g}.mp4"), fraction)
    findings, m = inspected(cut, scaled)
    (finding,) = [f for f in findings if f.code == "V-TRUNCATED"]
    declared = factory.LONG_S
    decoded = float(finding.value or 0)
    # The header still says 40 s; the data ends near the cut (the index at the front takes a little).
    assert decoded == pytest.approx(declared * fraction, abs=declared * 0.04)
    assert decoded < declared - scaled.video.truncation_tolerance_s
    assert finding.severity == "error" and finding.at_seconds == pytest.approx(decoded)
    assert f"文件头声明时长 {declared:.1f} 秒" in finding.message_zh and f"约 {decoded:.1f} 秒" in finding.message_zh
    assert f"declares {declared:.1f} s" in finding.message_en and f"about {decoded:.1f} s" in finding.message_en
    assert "partial file" in finding.message_en and "0x" not in finding.message_en.split("the last:")[-1][:40]
    assert m["decoded_end_s"] == pytest.approx(decoded, abs=0.3)
    # An error fails the entry, and a failed entry gets no publication copy (kepu.intake.steps.plan_renditions).
    assert verdict(findings) == "fail"
    # The cut is no sync fault.
    assert "A-SYNC" not in {f.code for f in findings}


@pytest.mark.parametrize("name", ["complete", "short_sound", "moov_at_end"])
def test_complete_files_are_not_truncated(name: str, faststart: Path, clip_dir: Path, scaled: Campaign) -> None:
    if name == "complete":
        path = faststart
    elif name == "short_sound":
        # The sound ends 0.6 s before the picture: within the tolerance, and the file is whole.
        path = factory.make_faststart(clip_dir / "transfer", "short-sound", audio_short_s=0.6)
    else:
        path = factory.make_conformant(clip_dir).path  # the index (moov) written at the end
    findings, m = inspected(path, scaled)
    assert "V-TRUNCATED" not in {f.code for f in findings}, [(f.code, f.message_en) for f in findings]
    assert m["read_error_count"] == 0 and m["decoded_end_s"] >= factory.DURATION_S - 0.2


def test_a_cut_file_without_its_index_stays_unreadable(clip_dir: Path, scaled: Campaign) -> None:
    conformant = factory.make_conformant(clip_dir).path
    cut = factory.cut(conformant, clip_dir / "transfer" / "moov-lost.mp4", 0.6)
    findings, metrics_ = inspected(cut, scaled)
    assert [(f.code, f.severity) for f in findings] == [("M-UNREADABLE", "error")]
    assert "moov atom not found" in findings[0].message_en and metrics_ == {}


# --- noise in the pauses ---------------------------------------------------------------------------


def sound_result(name: str, clip_dir: Path, scaled: Campaign, cache: dict[str, Result]) -> Result:
    key = f"sound:{name}"
    if key not in cache:
        path = factory.make_sound(clip_dir / "sound", name)
        cache[key] = analyse_entry(path, probe_file(path), scaled, sidecars=[], timeout=120)
    return cache[key]


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("speech", None),
        ("speech_pink", "broadband"),
        ("speech_hum", "hum"),
        ("speech_room_tone", None),
        ("speech_music", None),
        ("music", None),
        ("tone", None),
    ],
)
def test_noise_bed_under_narration(
    name: str, kind: str | None, clip_dir: Path, scaled: Campaign, analysed: dict[str, Result]
) -> None:
    findings, m = sound_result(name, clip_dir, scaled, analysed)
    noise = [f for f in findings if f.code == "A-NOISE"]
    floor = m["noise"]["floor_dbfs"]
    if kind is None:
        assert noise == [], [f.message_en for f in noise]
        return
    (finding,) = noise
    # The beds are made at about -45 dBFS.
    assert float(finding.value or 0) == pytest.approx(-45.0, abs=2.0) and floor == pytest.approx(-45.0, abs=2.0)
    assert (kind in finding.message_en) and finding.severity == "warning"
    assert ("哼声" in finding.message_zh) == (kind == "hum")


def test_what_fills_the_pauses_is_measured(clip_dir: Path, scaled: Campaign, analysed: dict[str, Result]) -> None:
    """The figures the rule decides on, as measured: floor, flatness, hum share."""
    names = ("speech_pink", "speech_hum", "speech_room_tone", "speech_music", "tone")
    measured = {name: sound_result(name, clip_dir, scaled, analysed)[1]["noise"] for name in names}
    rules = scaled.audio.noise
    assert measured["speech_pink"]["flatness"] > rules.min_flatness > measured["speech_hum"]["flatness"]
    assert measured["speech_hum"]["hum_share"] > rules.min_hum_share > measured["speech_pink"]["hum_share"]
    assert measured["speech_room_tone"]["floor_dbfs"] < scaled.audio.noise_floor_max_dbfs
    assert measured["speech_room_tone"]["flatness"] > rules.min_flatness  # noise, but quiet enough
    for tonal in ("speech_music", "tone"):
        assert measured[tonal]["floor_dbfs"] > scaled.audio.noise_floor_max_dbfs  # they fill the pauses …
        assert measured[tonal]["flatness"] < rules.min_flatness and measured[tonal]["hum_share"] < rules.min_hum_share


def test_an_unchanged_video_is_measured_once_and_judged_again(
    clip_dir: Path, scaled: Campaign, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rerun (here: the same clip copied elsewhere, as a rerun's fresh scratch copy is) takes the probe, packets
    and analysis from the media memo and starts no ffmpeg or ffprobe for them; the findings are judged again from
    what was kept, by the campaign in force."""
    import kepu.media.analysis
    import kepu.media.probe
    import kepu.media.timing
    from kepu.media import runner

    ran: list[str] = []

    def recording(argv: list[str], **kwargs: Any) -> runner.CompletedRun:
        ran.append(Path(argv[0]).name)
        return runner.run(argv, **kwargs)

    for module in (kepu.media.analysis, kepu.media.probe, kepu.media.timing):
        monkeypatch.setattr(module, "run", recording)
    monkeypatch.setenv("KEPU_MEDIA_MEMO", str(tmp_path / "memo"))
    clip = factory.make_defect(clip_dir, "black")

    def measure(path: Path, campaign: Campaign) -> Result:
        return analyse_entry(path, probe_file(path), campaign, sidecars=[], timeout=120)

    first = measure(clip.path, scaled)
    assert ran.count("ffmpeg") == 1 and ran.count("ffprobe") == 2, ran  # the analysis; the probe and the packets
    copy = tmp_path / "rerun" / "video.mp4"
    copy.parent.mkdir()
    shutil.copyfile(clip.path, copy)
    ran.clear()
    again = measure(copy, scaled)
    assert ran == []
    assert [(f.code, f.message_en) for f in again[0]] == [(f.code, f.message_en) for f in first[0]]
    assert again[1] == first[1]
    assert "V-BLACK" in {f.code for f in first[0]}
    # A campaign that excepts the whole clip as opening and closing judges the kept measurement differently, still
    # without ffmpeg (the edges are a rule of judging, not of measuring).
    black = scaled.video.black.model_copy(update={"edge_s": 1000.0})
    lenient = scaled.model_copy(update={"video": scaled.video.model_copy(update={"black": black})})
    judged = measure(copy, lenient)
    assert ran == [] and "V-BLACK" not in {f.code for f in judged[0]}
