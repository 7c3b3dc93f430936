"""Hostile media beyond the main video, and tools that need too much memory: a many-stream MP4 sent as the
cover, a decompression-bomb cover reaching the publication package, an error nobody foresaw inside
``kepu check``, and an ffmpeg/ffprobe child that hits its address-space limit. Each ends in a finding or a
refusal with its reason in Chinese and English, and the rest of the run goes on."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import hostile
from hostile.conftest import GOOD_FOLDER, MEMORY_LIMIT_MB, REPO, copy_package, run_kepu
from kepu.campaign import Campaign, load_campaign
from kepu.config import DEFAULT_CAMPAIGN_FILE
from kepu.errors import MaterialError

pytestmark = pytest.mark.integration

_CJK = re.compile(r"[\u4e00-\u9fff]")
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")


@pytest.fixture(scope="module")
def campaign() -> Campaign:
    return load_campaign(DEFAULT_CAMPAIGN_FILE)


def _bilingual(text: str) -> None:
    assert _CJK.search(text), text
    assert re.search(r"[A-Za-z]{4,}", text), text


@pytest.fixture
def media_runs(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Every argv kepu hands to ffprobe/ffmpeg, recorded on the way through to the real runner."""
    import kepu.intake.images
    import kepu.media.probe
    from kepu.media import runner

    seen: list[list[str]] = []
    real = runner.run

    def recording(argv: list[str], **kwargs: Any) -> runner.CompletedRun:
        seen.append(list(argv))
        return real(argv, **kwargs)

    for module in (kepu.media.probe, kepu.intake.images):
        monkeypatch.setattr(module, "run", recording)
    return seen


def _cover_of(folder: Path) -> Path:
    covers = [p for p in folder.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES]
    assert len(covers) == 1, covers
    return covers[0]


# --- a many-stream MP4 sent as the cover ---------------------------------------------------------------


def test_a_cover_with_999_streams_is_refused_before_ffprobe_opens_it(
    tmp_path: Path, campaign: Campaign, media_runs: list[list[str]]
) -> None:
    from kepu.intake.images import normalise_cover
    from kepu.intake.steps import cover_size

    limit = campaign.video.max_streams
    cover = tmp_path / "封面.jpg"
    shutil.copyfile(hostile.mp4_many_streams(tmp_path / "made"), cover)
    # The package check (intake and kepu check) and the 16:9 cover of the publication copy.
    for read in (
        lambda: cover_size(cover, max_streams=limit),
        lambda: normalise_cover(cover, tmp_path / "out" / "cover-16x9.jpg", max_streams=limit),
    ):
        with pytest.raises(MaterialError) as info:
            read()
        assert info.value.code == "M-UNREADABLE"
        assert f"999 路流，超过上限 {limit} 路" in str(info.value), info.value
        assert f"999 streams, more than the limit of {limit}" in str(info.value), info.value
    assert media_runs == [], media_runs  # counted from the MP4 box headers: no tool opened it
    assert not (tmp_path / "out" / "cover-16x9.jpg").exists()


def test_kepu_check_of_a_package_whose_cover_has_999_streams_says_so_and_checks_the_video(
    tmp_path: Path, good_package: Path, small_campaign: Path
) -> None:
    package = copy_package(good_package, tmp_path / "inbox" / GOOD_FOLDER)
    cover = _cover_of(package)
    shutil.copyfile(hostile.mp4_many_streams(tmp_path / "made"), cover)
    env = {"KEPU_HOME": str(tmp_path / "kepu"), "KEPU_CAMPAIGN_FILE": str(small_campaign)}
    result = run_kepu(["check", "--json", str(package)], env, timeout=600)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.peak_mb < MEMORY_LIMIT_MB, result.peak_mb
    report = json.loads(result.stdout[result.stdout.index("{") :])
    covers = [f for f in report["findings"] if f["code"] == "M-COVER-FORMAT"]
    assert covers and "999 streams" in covers[0]["message_en"] and cover.name in covers[0]["message_en"], covers
    _bilingual(covers[0]["message_zh"] + covers[0]["message_en"])
    # The video beside it is still probed and analysed.
    assert report["video"] and not [f for f in report["findings"] if f["code"] == "M-UNREADABLE"], report


# --- a decompression-bomb cover in the publication package ---------------------------------------------


def test_a_bomb_cover_is_refused_by_the_package_from_its_header_in_bounded_memory(tmp_path: Path) -> None:
    bomb = hostile.png_decompression_bomb(tmp_path / "封面.png")
    # In a child whose address space is capped at 1 GiB: decoding 160,000×90,000 pixels would need 43 GB.
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
        "from pathlib import Path\n"
        "from kepu.publication.package import CoverUnreadable, clean_cover\n"
        "try:\n"
        "    clean_cover(Path(sys.argv[1]))\n"
        "except CoverUnreadable as exc:\n"
        "    print(exc.code, exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(bomb)],
        env={**os.environ, "PYTHONPATH": str(REPO / "include")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("M-UNREADABLE "), done.stdout
    assert "14400000000 pixels" in done.stdout and "not decoded" in done.stdout, done.stdout
    _bilingual(done.stdout)


@pytest.mark.parametrize(
    "make",
    [
        lambda p: hostile.png_decompression_bomb(p / "bomb.png"),
        lambda p: hostile.png_decompression_bomb(p / "bomb-just-over.png", width=10_001, height=10_000),
        lambda p: (p / "not-a-picture.jpg").write_bytes(b"<html>" * 100) and p / "not-a-picture.jpg",
    ],
    ids=["160000x90000", "just-over-the-limit", "not-a-picture"],
)
def test_the_package_cover_refusal_names_the_file_in_chinese_and_english(
    make: Callable[[Path], Path], tmp_path: Path
) -> None:
    from kepu.publication.package import CoverUnreadable, clean_cover

    path = make(tmp_path)
    with pytest.raises(CoverUnreadable) as info:
        clean_cover(path)
    assert info.value.code == "M-UNREADABLE" and path.name in str(info.value)
    _bilingual(str(info.value))


def test_a_published_work_whose_cover_is_a_bomb_is_withheld_and_the_others_are_published(tmp_path: Path) -> None:
    from award_factory import need_ffmpeg, seed_release
    from kepu.config import load_settings
    from kepu.context import open_context
    from kepu.publication import steps as pub

    need_ffmpeg()
    settings = load_settings({"KEPU_HOME": str(tmp_path / "kepu"), "KEPU_CERT_SECRET": "x" * 32})
    ctx = open_context(settings, migrate=True)
    seeded = seed_release(
        ctx.records, videos=3, accounts=0, best=1, no_pledge=(), extra=0, store=ctx.store, scratch=tmp_path / "media"
    )
    videos = sorted(sid for sid, e in seeded.entries.items() if e["kind"] == "video")
    bombed = videos[1]
    cover_key = ctx.records.get_details(bombed)["rendition"]["outputs"]["cover-16x9.jpg"]["key"]
    ctx.store.put_bytes(cover_key, hostile.png_decompression_bomb(tmp_path / "bomb.png").read_bytes())

    plan = pub.plan_publication(ctx)
    for batch in plan["batches"]:
        assert pub.build_packages(ctx, batch) == batch
    result = pub.write_catalog(ctx)
    assert result["withheld"] == {bombed: "unreadable_cover"}, result
    assert result["published"] == len(videos) - 1
    detail = ctx.records.get_details(bombed)["publication"]["detail"]
    assert "M-UNREADABLE" in detail and "not decoded" in detail, detail
    _bilingual(detail)
    reports = pub.write_reports(ctx, dry_run=True)
    assert reports and all(r["unreadable_cover"] == 1 for r in reports.values()), reports


# --- an unexpected error inside kepu check ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "names"),
    [("kepu.intake.package_checks.read_package", "package"), ("kepu.media.inspect.inspect_video", "video")],
    ids=["reading-the-package", "analysing-the-video"],
)
def test_kepu_check_says_which_file_broke_it_without_a_traceback(
    target: str,
    names: str,
    tmp_path: Path,
    good_package: Path,
    small_campaign: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from kepu import cli

    package = copy_package(good_package, tmp_path / "inbox" / GOOD_FOLDER)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("an internal fault nobody foresaw")

    monkeypatch.setattr(target, broken)
    monkeypatch.setenv("KEPU_HOME", str(tmp_path / "kepu"))
    video = next(p for p in package.iterdir() if p.suffix.lower() == ".mp4")
    named = package if names == "package" else video

    assert cli.main(["check", "--campaign", str(small_campaign), str(package)]) == cli.CHECK_BROKE
    out = capsys.readouterr()
    assert "Traceback" not in out.err and "Traceback" not in out.out, out.err
    assert str(named) in out.err and "意外错误" in out.err and "unexpected error" in out.err, out.err
    assert "RuntimeError" in out.err and "-v" in out.err

    assert cli.main(["check", "--json", "--campaign", str(small_campaign), str(package)]) == cli.CHECK_BROKE
    out = capsys.readouterr()
    error = json.loads(out.out)["error"]
    assert error["file"] == str(named) and _CJK.search(error["message_zh"]), error
    assert "Traceback" not in out.err

    # The traceback goes to the log at DEBUG, which ``kepu -v`` prints.
    caplog.set_level(logging.DEBUG, logger="kepu")
    assert cli.main(["-v", "check", "--campaign", str(small_campaign), str(package)]) == cli.CHECK_BROKE
    logged = [r for r in caplog.records if r.exc_info and "broke" in r.getMessage()]
    assert logged and isinstance(logged[0].exc_info[1], RuntimeError), caplog.records  # type: ignore[index]


# --- ffmpeg/ffprobe children under an address-space limit --------------------------------------------------


def test_an_analysis_that_needs_more_than_the_memory_limit_is_unreadable_and_the_check_goes_on(
    tmp_path: Path, small_campaign: Path
) -> None:
    video = hostile.clip_1080p(tmp_path / "inbox" / "1080p.mp4")
    env = {
        "KEPU_HOME": str(tmp_path / "kepu"),
        "KEPU_CAMPAIGN_FILE": str(small_campaign),
        # ffprobe reads the header within this, decoding 1080p pictures through the filters needs about twice it.
        "KEPU_FFMPEG_MEMORY_LIMIT_MB": "300",
        # Both checks must run the analysis; a measurement kept from another test would stand in for it.
        "KEPU_MEDIA_MEMO": "off",
    }
    result = run_kepu(["check", "--json", str(video)], env, timeout=300)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
    report = json.loads(result.stdout[result.stdout.index("{") :])
    unreadable = [f for f in report["findings"] if f["code"] == "M-UNREADABLE"]
    assert len(unreadable) == 1, report["findings"]
    assert "needed more memory than the limit of 300 MiB" in unreadable[0]["message_en"], unreadable
    assert "所需内存超过上限 300 MiB" in unreadable[0]["message_zh"], unreadable
    # The probe's own rules were still judged.
    assert {"V-DURATION", "V-SIZE"} <= {f["code"] for f in report["findings"]}, report["findings"]

    # Without the small limit the same clip is analysed.
    env["KEPU_FFMPEG_MEMORY_LIMIT_MB"] = "0"
    result = run_kepu(["check", "--json", str(video)], env, timeout=300)
    report = json.loads(result.stdout[result.stdout.index("{") :])
    assert not [f for f in report["findings"] if f["code"] == "M-UNREADABLE"], report["findings"]
