"""The sample inbox, generated with real ffmpeg and checked with real ffprobe."""

from __future__ import annotations

import csv
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from kepu.campaign import Campaign, load_campaign
from kepu.config import DEFAULT_CAMPAIGN_FILE
from kepu.devtools.sample import (
    PROFILES,
    SUMMARY_SHEET,
    SampleProfile,
    generate_inbox,
    media_cache_dir,
    sample_packages,
    write_bad_packages,
)
from kepu.errors import MaterialError
from kepu.findings import Finding
from kepu.intake.form_checks import checklist_items, form_findings, needs_recommender_seal
from kepu.intake.forms import read_form
from kepu.intake.quality import build_frame, validate
from kepu.intake.sources import parse_channel
from kepu.media.checks import probe_findings
from kepu.media.fingerprint import VideoHash, duplicate_pairs
from kepu.media.probe import ProbeResult, probe_file
from kepu.media.quality_checks import analyse_entry
from kepu.media.runner import media_timeout

CAMPAIGN = load_campaign(DEFAULT_CAMPAIGN_FILE)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg and ffprobe"),
]

SMALL = PROFILES["small"]
BURNED = "福建省+厦门市陈思远+海龟为什么要回到出生的海滩"
# What the missing end of an interrupted upload cannot help bringing along on the small profile:
# its 3.8 s that arrived hold no closing fade and no narration pause.
TRUNCATION_ALSO = {"S-STRUCTURE", "A-NOISE"}


def packets_end_s(video: Path) -> float:
    """Where the video stream's packets actually end (not the duration the header declares)."""
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "quiet",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts_time,duration_time",
            "-of",
            "csv=p=0",
            str(video),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    ).stdout
    ends = [float(a) + float(b) for a, b in (line.split(",")[:2] for line in out.split() if line.count(",") >= 1)]
    return max(ends, default=0.0)


def technical_defects(r: ProbeResult, prof: SampleProfile, video: Path | None = None) -> set[str]:
    """The V-* codes of RULES.md this probe breaks, against the profile's limits (V-TRUNCATED when
    the ``video`` it probed is given)."""
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
    if video is not None and r.duration_s is not None and packets_end_s(video) < r.duration_s - 1.0:
        found.add("V-TRUNCATED")
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
    assert len(packages) == 14
    assert sum(p.expected is None for p in packages) == 5
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
        video = inbox / p.folder / p.video
        declared = {p.expected} if p.expected and p.expected.startswith("V-") else set()
        assert technical_defects(probe_file(video), SMALL, video) == declared, p.folder


@pytest.fixture(scope="module")
def judged(inbox: Path, small_campaign: Path) -> dict[str, tuple[list[Finding], dict[str, Any]]]:
    """Each small package's video judged against the campaign scaled to the small profile."""
    campaign = load_campaign(small_campaign)
    return {p.folder: judge(inbox / p.folder / str(p.video), campaign) for p in sample_packages("small")}


def test_every_check_finds_exactly_the_declared_codes(judged: dict[str, tuple[list[Finding], dict[str, Any]]]) -> None:
    # Probe and media rules alike: a conformant package gets no finding at all, not even an info;
    # a package whose defect is in its documents (M-*) gets none from its video.
    truncated = []
    for p in sample_packages("small"):
        findings, _ = judged[p.folder]
        if p.expected == "V-TRUNCATED":
            truncated.append((p.folder, findings))
            continue
        from_video = sorted(code for code in p.codes if not code.startswith("M-"))
        assert sorted(f.code for f in findings) == from_video, (
            p.folder,
            [(f.code, f.value, f.message_en) for f in findings],
        )
    # The interrupted upload is judged on what arrived: its error is V-TRUNCATED, and nothing but
    # what a missing end brings along comes with it.
    ((folder, findings),) = truncated
    got = {f.code for f in findings}
    assert "V-TRUNCATED" in got and got <= {"V-TRUNCATED", *TRUNCATION_ALSO}, (folder, sorted(got))
    assert next(f for f in findings if f.code == "V-TRUNCATED").severity == "error"


def test_burned_in_subtitles_are_in_the_picture_only(
    inbox: Path, judged: dict[str, tuple[list[Finding], dict[str, Any]]]
) -> None:
    pkg = inbox / BURNED
    (video,) = pkg.glob("*.mp4")
    r = probe_file(video)
    assert r.subtitles == [] and not [f for f in pkg.iterdir() if f.suffix in (".srt", ".ass", ".vtt")]
    findings, metrics = judged[BURNED]
    assert "L-SUBTITLE" not in {f.code for f in findings}
    subs = metrics["subtitles"]
    assert subs["found"] and subs["method"] == "ocr", subs
    assert any("\u4e00" <= ch <= "\u9fff" for ch in subs["sample"]), subs


def test_truncated_upload_declares_more_than_it_holds(inbox: Path) -> None:
    (p,) = [p for p in sample_packages("small") if p.expected == "V-TRUNCATED"]
    video = inbox / p.folder / str(p.video)
    r = probe_file(video)
    assert r.is_mp4 and r.duration_s == pytest.approx(SMALL.duration_s, abs=0.05)  # the header is intact
    assert SMALL.size_limits[0] <= r.size_bytes <= SMALL.size_limits[1]  # only the truncation is wrong
    assert packets_end_s(video) < 0.6 * SMALL.duration_s
    decode = subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-i", str(video), "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert "partial file" in decode.stderr or "Invalid data" in decode.stderr, decode.stderr[-500:]


def test_no_two_packages_look_alike(judged: dict[str, tuple[list[Finding], dict[str, Any]]]) -> None:
    # The campaign-wide duplicate search must not pair two sample packages (O-DUPLICATE-CONTENT).
    limit = load_campaign(DEFAULT_CAMPAIGN_FILE).originality.perceptual_hash_max_distance
    hashes = {name: VideoHash.from_text(m["fingerprint"]) for name, (_, m) in judged.items()}
    assert all(h is not None for h in hashes.values())
    assert duplicate_pairs(hashes, limit) == []  # type: ignore[arg-type]


def test_videos_have_the_promised_streams(inbox: Path) -> None:
    for p in sample_packages("small"):
        code = p.expected
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
        assert [s.language for s in r.subtitles] == ([] if p.folder == BURNED else ["chi"]), p.folder
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


def sheet_channels(inbox: Path) -> dict[str, str | None]:
    """Each package's channel key as the summary sheet gives it, by title."""
    with (inbox / SUMMARY_SHEET).open(encoding="utf-8-sig", newline="") as fh:
        return {r["作品名称"]: parse_channel(r["报送渠道"], CAMPAIGN) for r in csv.DictReader(fh)}


def test_cover_synopsis_and_form(inbox: Path) -> None:
    channels = sheet_channels(inbox)
    rows = []
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

        channel = channels[form.fields["微视频名称"]]
        assert channel is not None, p.folder
        with_channel = [f.code for f in form_findings(CAMPAIGN, form, kind="video", scans=[], channel=channel)]
        # The template-only 推荐单位 block: M-FORM-SEAL for a recommended entry, nothing for a
        # self-nominated one, nothing once the scanned signed page is in the package.
        assert with_channel == (["M-FORM-SEAL"] if p.expected == "M-FORM-SEAL" else []), (p.folder, channel)
        if p.expected == "M-FORM-SEAL":
            assert channel == "provincial" and form.fields["推荐单位"] == "" and not form.recommender_filled
            assert form_findings(CAMPAIGN, form, kind="video", scans=[pkg / "签字盖章页.pdf"], channel=channel) == []
            items = checklist_items(form, needs_seal=needs_recommender_seal(CAMPAIGN, channel))
            assert any("推荐单位" in i and "扫描页" in i for i in items)
        if p.folder == BURNED:
            assert channel == "other" and form.fields["推荐单位"] == ""
        rows.append(
            {
                "submission_id": p.folder,
                "kind": "video",
                "received_at": "2022-10-08T10:00:00+08:00",
                "form_fields": form.fields,
                "synopsis": synopsis,
            }
        )
    # No sample form, the template-only seal blocks included, is short of a field campaign-wide.
    result = validate(CAMPAIGN, build_frame(rows))
    field_codes = {sid: [f.value for f in fs if f.code == "M-FORM-FIELD"] for sid, fs in result.findings.items()}
    assert not any(field_codes.values()), field_codes


def test_second_run_rewrites_nothing(inbox: Path) -> None:
    cache = media_cache_dir(inbox)
    before = snapshot(inbox, cache)
    generate_inbox(inbox, profile="small")
    after = snapshot(inbox, cache)
    # The media cache may be shared with other test processes, which can add files meanwhile: none of these was
    # written again, and nothing was added to the inbox.
    assert {p: after.get(p) for p in before} == before
    assert {p for p in after if inbox in p.parents} == {p for p in before if inbox in p.parents}


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


def test_bad_packages_made_first_on_a_machine_without_a_sample_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cache folder is made by whichever file needs it first, a bad package's cover included."""
    cache = tmp_path / "cache" / "sample"
    monkeypatch.setenv("KEPU_SAMPLE_CACHE", str(cache))
    packages = write_bad_packages(tmp_path / "inbox")
    covers = [tmp_path / "inbox" / p.folder / "封面.jpg" for p in packages if p.video]
    assert covers and all(c.stat().st_size > 0 for c in covers)
    assert list(cache.glob("cover-*.jpg"))


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
