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
