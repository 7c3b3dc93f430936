"""The sample inbox, generated with real ffmpeg and checked with real ffprobe."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from kepu.campaign import Campaign, load_campaign
from kepu.config import DEFAULT_CAMPAIGN_FILE
from kepu.errors import MaterialError
from kepu.findings import Finding
from kepu.forms import form_findings, read_form
from kepu.media.checks import probe_findings
from kepu.media.fingerprint import VideoHash, duplicate_pairs
from kepu.media.probe import ProbeResult, probe_file
from kepu.media.quality_checks import analyse_entry
from kepu.media.runner import media_timeout
from kepu.sample import (
    PROFILES,
    SUMMARY_SHEET,
    SampleProfile,
    generate_inbox,
    sample_packages,
    write_bad_packages,
)

CAMPAIGN = load_campaign(DEFAULT_CAMPAIGN_FILE)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg and ffprobe"),
]

SMALL = PROFILES["small"]


def technical_defects(r: ProbeResult, prof: SampleProfile) -> set[str]:
    """The V-* codes of RULES.md this probe breaks, against the profile's limits."""
    found = set()
    if not r.is_mp4:
        found.add("V-CONTAINER")
    low, high = prof.duration_limits_s
    if r.duration_s is None or not low <= r.duration_s <= high:
        found.add("V-DURATION")
    if not prof.size_limits[0] <= r.size_bytes <= prof.size_limits[1]:
        found.add("V-SIZE")
    if r.video is None:
        found.add("V-NO-VIDEO")
    else:
        if r.video.display_aspect is None or abs(r.video.display_aspect / (16 / 9) - 1) > 0.01:
            found.add("V-ASPECT")
        if r.video.display_width < 1920 or r.video.display_height < 1080:
            found.add("V-RESOLUTION")
    if r.audio is None:
        found.add("V-NO-AUDIO")
    return found


def judge(video: Path, campaign: Campaign) -> tuple[list[Finding], dict[str, Any]]:
    """Every finding the intake gives a video on its own (probe rules, then the media analysis)."""
    probe = probe_file(video)
    media, metrics = analyse_entry(video, probe, campaign, sidecars=[], timeout=media_timeout(probe.duration_s, 10.0))
    return probe_findings(campaign, probe) + media, metrics


def snapshot(*roots: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for root in roots for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def inbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("small") / "inbox"
    generate_inbox(dest, profile="small")
    return dest


def test_every_package_has_the_declared_files(inbox: Path) -> None:
    packages = sample_packages("small")
    assert len(packages) == 11
    assert sum(p.expected is None for p in packages) == 4
    assert sorted(p.folder for p in packages) == sorted(p.name for p in inbox.iterdir() if p.is_dir())
    assert (inbox / SUMMARY_SHEET).is_file()
    for p in packages:
        names = {f.name for f in (inbox / p.folder).iterdir()}
        expected = {p.video, "简介.txt", "申报表.docx"}
        if p.expected != "M-COVER-MISSING":
            expected.add("封面.jpg")
        assert names == expected, p.folder


def test_each_video_has_exactly_its_declared_defect(inbox: Path) -> None:
    for p in sample_packages("small"):
        assert p.video is not None
        r = probe_file(inbox / p.folder / p.video)
        declared = {p.expected} if p.expected and p.expected.startswith("V-") else set()
        assert technical_defects(r, SMALL) == declared, p.folder


@pytest.fixture(scope="module")
def judged(inbox: Path, small_campaign: Path) -> dict[str, tuple[list[Finding], dict[str, Any]]]:
    """Each small package's video judged against the campaign scaled to the small profile."""
    campaign = load_campaign(small_campaign)
    return {p.folder: judge(inbox / p.folder / str(p.video), campaign) for p in sample_packages("small")}


def test_every_check_finds_exactly_the_declared_codes(judged: dict[str, tuple[list[Finding], dict[str, Any]]]) -> None:
    # Probe and media rules alike: a conformant package gets no finding at all, not even an info;
    # a package whose defect is in its documents (M-*) gets none from its video.
    for p in sample_packages("small"):
        findings, _ = judged[p.folder]
        from_video = sorted(code for code in p.codes if not code.startswith("M-"))
        assert sorted(f.code for f in findings) == from_video, (
            p.folder,
            [(f.code, f.value, f.message_en) for f in findings],
        )


def test_no_two_packages_look_alike(judged: dict[str, tuple[list[Finding], dict[str, Any]]]) -> None:
    # The campaign-wide duplicate search must not pair two sample packages (O-DUPLICATE-CONTENT).
    limit = load_campaign(DEFAULT_CAMPAIGN_FILE).originality.perceptual_hash_max_distance
    hashes = {name: VideoHash.from_text(m["fingerprint"]) for name, (_, m) in judged.items()}
    assert all(h is not None for h in hashes.values())
    assert duplicate_pairs(hashes, limit) == []  # type: ignore[arg-type]


def test_videos_have_the_promised_streams(inbox: Path) -> None:
    by_code = {p.expected: p for p in sample_packages("small")}
    for code, p in by_code.items():
        assert p.video is not None
        r = probe_file(inbox / p.folder / p.video)
        v = r.video
        assert v is not None
        assert (v.codec, v.profile, v.pix_fmt, v.avg_frame_rate) == ("h264", "High", "yuv420p", 25.0)
        if code == "V-NO-AUDIO":
            assert r.audio is None
        else:
            assert r.audio is not None
            assert (r.audio.codec, r.audio.sample_rate, r.audio.channels) == ("aac", 48000, 2)
        assert [s.language for s in r.subtitles] == ["chi"]
        if code == "V-CONTAINER":
            assert r.format_name == "matroska,webm"
        if code == "V-ASPECT":
            assert (v.display_width, v.display_height, v.sample_aspect_ratio) == (1920, 1440, (1, 1))
        if code == "V-RESOLUTION":
            assert (v.display_width, v.display_height) == (1280, 720)
        if code == "V-DURATION":
            assert r.duration_s == pytest.approx(SMALL.short_duration_s, abs=0.05)
        else:
            assert r.duration_s == pytest.approx(SMALL.duration_s, abs=0.05)


def test_cover_synopsis_and_form(inbox: Path) -> None:
    for p in sample_packages("small"):
        pkg = inbox / p.folder
        synopsis = (pkg / "简介.txt").read_text(encoding="utf-8").strip()
        assert 0 < len("".join(synopsis.split())) < 300
        form = read_form(pkg / "申报表.docx", CAMPAIGN)
        assert form.kind == "video" and form.pledge_signed, p.folder
        assert form_findings(CAMPAIGN, form, kind="video", scans=[]) == [], p.folder
        assert form.fields["内容简介"] == synopsis
        assert form.fields["微视频名称"] == Path(str(p.video)).stem
        assert p.folder.endswith(form.fields["微视频名称"])
        if p.expected != "M-COVER-MISSING":
            cover = probe_file(pkg / "封面.jpg")
            assert cover.video is not None
            assert (cover.video.codec, cover.video.width, cover.video.height) == ("mjpeg", 1920, 1080)


def test_second_run_rewrites_nothing(inbox: Path) -> None:
    cache = inbox.parent / f"{inbox.name}.sample-cache"
    before = snapshot(inbox, cache)
    generate_inbox(inbox, profile="small")
    assert snapshot(inbox, cache) == before


def test_interrupted_run_is_completed_and_its_partial_file_dropped(tmp_path: Path) -> None:
    dest = tmp_path / "inbox"
    (p,) = generate_inbox(dest, profile="small", only=["V-SIZE"])
    pkg = dest / p.folder
    video = pkg / str(p.video)
    video.unlink()
    partial = pkg / f".{video.name}.part"
    partial.write_bytes(b"\0" * 1000)  # what a killed ffmpeg leaves
    kept = snapshot(dest)

    generate_inbox(dest, profile="small", only=[p.folder])

    assert not partial.exists()
    assert probe_file(video).video is not None
    assert {k: v for k, v in snapshot(dest).items() if k != video} == {k: v for k, v in kept.items() if k != partial}


def test_selection_and_profile_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown sample package"):
        generate_inbox(tmp_path / "a", profile="small", only=["V-NOPE"])
    with pytest.raises(ValueError, match="unknown sample profile"):
        generate_inbox(tmp_path / "a", profile="huge")  # type: ignore[arg-type]
    dest = tmp_path / "b"
    generate_inbox(dest, profile="small", only=["M-COVER-MISSING"])
    with pytest.raises(ValueError, match="holds the 'small' sample inbox"):
        generate_inbox(dest, profile="full", only=["M-COVER-MISSING"])


def test_bad_packages(tmp_path: Path) -> None:
    packages = write_bad_packages(tmp_path)
    assert [p.expected for p in packages] == ["M-UNREADABLE", "M-UNREADABLE", "M-VIDEO-MISSING"]
    zero, text, empty = packages
    assert (tmp_path / zero.folder / "video.mp4").stat().st_size == 0
    assert {f.name for f in (tmp_path / text.folder).iterdir()} == {
        "video.mp4",
        "封面.jpg",
        "简介.txt",
        "申报表.docx",
    }
    for p in (zero, text):
        with pytest.raises(MaterialError) as info:
            probe_file(tmp_path / p.folder / "video.mp4")
        assert info.value.code == "M-UNREADABLE"
    assert empty.video is None
    assert list((tmp_path / empty.folder).iterdir()) == []
    before = snapshot(tmp_path)
    write_bad_packages(tmp_path)
    assert snapshot(tmp_path) == before


@pytest.fixture(scope="module")
def full_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The video of one conformant package of the full profile."""
    dest = tmp_path_factory.mktemp("full") / "inbox"
    (p,) = generate_inbox(dest, profile="full", only=[sample_packages("full")[0].folder])
    assert p.expected is None and p.video is not None
    return dest / p.folder / p.video


def test_one_full_profile_conformant_package(full_video: Path) -> None:
    full = PROFILES["full"]
    r = probe_file(full_video)
    assert 110_000_000 <= r.size_bytes <= 150_000_000
    assert full.size_limits[0] <= r.size_bytes <= full.size_limits[1]
    assert r.duration_s == pytest.approx(full.duration_s, abs=0.05)
    assert r.video is not None and (r.video.display_width, r.video.display_height) == (1920, 1080)
    assert r.is_mp4
    assert technical_defects(r, full) == set()


def test_full_profile_conformant_package_is_clean_under_the_real_campaign(full_video: Path) -> None:
    # The 9.6 s base clip looped 20 times with stream copy: the joins must bring no frame gap,
    # freeze, silence or drift, and the picture must pass at the real thresholds.
    findings, m = judge(full_video, CAMPAIGN)
    assert [(f.code, f.value, f.message_en) for f in findings] == []
    assert m["timing"]["frames"]["dropped"] == 0 and not m["timing"]["frames"]["vfr"]
    assert abs(m["timing"]["start_offset_ms"]) < 25 and abs(m["timing"]["end_offset_ms"]) < 25
    assert m["freezes"] == [] and m["silences"] == []
    assert m["bits_per_pixel"] >= 0.05
