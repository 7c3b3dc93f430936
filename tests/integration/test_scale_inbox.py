"""The scale campaign's packages, made with real ffmpeg, through every intake step in this process.

Each entry must get exactly what it was made to get: its planned codes and verdict, and nothing
else (a conformant entry passes with no finding at all, so the short videos really meet every
media check of the scaled campaign, and no two of them look like duplicates).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import check_outcomes, outcomes
from kepu.config import load_settings
from kepu.context import open_context
from kepu.devtools.sample import SUMMARY_SHEET
from kepu.devtools.scale import generate_scale_inbox, write_scale_campaign
from kepu.intake import steps

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg and ffprobe"),
]

# The first 17 entries: conformant videos, a video with no narration, two over quota, accounts (one
# with too few followers) and a zero-byte video.
N = 17


def test_scale_packages_get_what_they_were_made_to_get(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    entries = generate_scale_inbox(inbox, N, workers=2)
    assert {e.folder for e in entries} == {p.name for p in inbox.iterdir() if p.is_dir()}
    assert (inbox / SUMMARY_SHEET).exists()
    planned = {code for e in entries for code in e.codes}
    assert {"V-NO-AUDIO", "Q-QUOTA", "K-FANS", "M-UNREADABLE"} <= planned

    stamp = {p: p.stat().st_mtime_ns for p in inbox.rglob("*") if p.is_file()}
    generate_scale_inbox(inbox, N)  # a second call keeps every file
    assert {p: p.stat().st_mtime_ns for p in inbox.rglob("*") if p.is_file()} == stamp
    with pytest.raises(ValueError, match="another scale campaign"):
        generate_scale_inbox(inbox, N + 1)

    settings = load_settings(
        {
            "KEPU_HOME": str(tmp_path / "home"),
            "KEPU_INBOX": str(inbox),
            "KEPU_CAMPAIGN_FILE": str(write_scale_campaign(tmp_path / "campaign.yaml")),
        }
    )
    ctx = open_context(settings, migrate=True)
    summary = steps.run_intake(ctx, run_id="scale-1")
    assert summary["submissions"] == N
    check_outcomes(outcomes(settings), {e.folder: (e.verdict, e.codes) for e in entries})
    # Every conformant video is remuxed into its publication copy, none re-encoded.
    modes = [
        (ctx.records.get_details(s.id).get("rendition") or {}).get("mode")
        for s in ctx.records.list_submissions(ctx.campaign.id)
        if s.verdict != "fail" and s.kind == "video"
    ]
    assert modes and set(modes) == {"remux"}


def test_videos_are_kept_in_a_shared_media_cache_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Without a shared cache (the throughput bench's thousand entries) nothing but the packages' own videos is kept.
    monkeypatch.delenv("KEPU_SAMPLE_CACHE", raising=False)
    (entry,) = generate_scale_inbox(tmp_path / "bench", 1, workers=1)
    (video,) = (tmp_path / "bench" / entry.folder).glob("*.mp4")
    assert video.stat().st_size > 10_000
    beside = tmp_path / "bench.scale-cache"
    assert list(beside.glob("*.srt")) and not list(beside.glob("*.mp4"))

    # With one, a second inbox takes the video the first one made (the same bytes, made once).
    shared = tmp_path / "shared"
    monkeypatch.setenv("KEPU_SAMPLE_CACHE", str(shared))
    generate_scale_inbox(tmp_path / "one", 1, workers=1)
    (kept,) = shared.glob("scale-v*.mp4")
    made = kept.stat().st_mtime_ns
    generate_scale_inbox(tmp_path / "two", 1, workers=1)
    assert list(shared.glob("scale-v*.mp4")) == [kept] and kept.stat().st_mtime_ns == made
    one, two = ((tmp_path / name / entry.folder / video.name).read_bytes() for name in ("one", "two"))
    assert one == two == kept.read_bytes()
    assert not list((tmp_path / "two.scale-cache").glob("*.mp4"))
