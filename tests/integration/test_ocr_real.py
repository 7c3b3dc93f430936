"""Burned-in subtitles read by OCR on generated clips (tests/media_factory.py, drawtext with a CJK font).

Each 24 s clip has narration with a 5 s pause and no subtitle stream; only the one with Chinese
cues over the speech passes. Judged against the 2022 campaign, analysed once per session.
"""

from __future__ import annotations

import socket
import sys
import sysconfig
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from kepu.campaign import Campaign, load_campaign
from kepu.config import DEFAULT_CAMPAIGN_FILE
from kepu.findings import Finding
from kepu.media import ocr
from kepu.media.probe import probe_file
from kepu.media.quality_checks import analyse_entry

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import media_factory as factory  # tests/ is not a package: found through sys.path

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not factory.CJK_FONT.is_file(), reason="needs fonts-wqy-microhei (make setup)"),
    pytest.mark.skipif(ocr.model_dir() is None, reason="needs rapidocr (requirements.txt)"),
]

Result = tuple[list[Finding], dict[str, Any]]


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("burned-in")


@pytest.fixture(scope="module")
def campaign() -> Campaign:
    return load_campaign(DEFAULT_CAMPAIGN_FILE)


@pytest.fixture(scope="module")
def analysed() -> dict[str, Result]:
    return {}


def result_of(kind: str, clip_dir: Path, campaign: Campaign, cache: dict[str, Result]) -> Result:
    if kind not in cache:
        clip = factory.make_burned_in(clip_dir, kind)
        cache[kind] = analyse_entry(clip.path, probe_file(clip.path), campaign, sidecars=[], timeout=120)
    return cache[kind]


def subtitle_finding(findings: list[Finding]) -> Finding | None:
    return next((f for f in findings if f.code == "L-SUBTITLE"), None)


def test_chinese_subtitles_over_the_speech_pass(
    clip_dir: Path, campaign: Campaign, analysed: dict[str, Result]
) -> None:
    findings, metrics = result_of("chinese", clip_dir, campaign, analysed)
    assert subtitle_finding(findings) is None
    subs = metrics["subtitles"]
    assert subs["found"] and subs["method"] == "ocr" and subs["looked"] == ["ocr"]
    assert subs["ocr_samples"] == campaign.language.ocr_sample_frames
    # No sample falls in the pause (where there is no subtitle), so nearly every moment is covered.
    assert subs["ocr_coverage"] >= 0.8
    assert subs["sample"] in factory.BURNED_CUES
    assert set(subs["ocr_lines"]) <= set(factory.BURNED_CUES) and len(subs["ocr_lines"]) >= 2


@pytest.mark.parametrize("kind", ["none", "english", "title_card"])
def test_no_chinese_subtitles_over_the_speech_is_reported(
    kind: str, clip_dir: Path, campaign: Campaign, analysed: dict[str, Result]
) -> None:
    findings, metrics = result_of(kind, clip_dir, campaign, analysed)
    finding = subtitle_finding(findings)
    assert finding is not None and finding.severity == "warning"
    subs = metrics["subtitles"]
    assert not subs["found"] and subs["method"] == "ocr"
    assert subs["ocr_coverage"] < campaign.language.ocr_min_coverage
    assert finding.value == str(subs["ocr_coverage"]) and "讲话时刻" in finding.message_zh
    if kind == "none":
        assert subs["ocr_coverage"] == 0 and subs["ocr_lines"] == []
    if kind == "english":
        # Legible, but not Chinese: shown to the reviewer, not counted.
        assert subs["ocr_coverage"] == 0 and any("moon" in line.lower() for line in subs["ocr_lines"])
        assert "moon" in finding.message_en.lower()
    if kind == "title_card":
        # The title is read while it is shown, then nothing: a small share of the speech.
        assert 0 < subs["ocr_coverage"] <= 0.34 and "科普微视频" in subs["ocr_lines"]


def test_engine_loads_the_packaged_models_without_network(clip_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh engine built and run with every socket connection and every rapidocr download refused."""
    import rapidocr.utils.download_file as download

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(download.DownloadFile, "run", classmethod(lambda cls, *a, **k: refuse(*a)))

    models = ocr.model_dir()
    assert models is not None and models.is_relative_to(Path(sysconfig.get_paths()["purelib"]))
    engine = ocr.build_engine()
    assert engine is not None
    for key in ("Det", "Rec"):
        assert Path(str(engine.cfg[key].model_path)).parent == models

    clip = factory.make_burned_in(clip_dir, "chinese")
    crops = ocr.grab_crops(clip.path, probe_file(clip.path), [1.0], clip_dir, timeout=60)
    lines = ocr.ocr_lines(engine(str(crops[0])))
    assert ocr.chinese_line(lines, min_chars=2, min_confidence=0.8) == factory.BURNED_CUES[0]


def test_what_the_engine_read_on_a_crop_is_kept_by_the_crop_s_bytes(
    clip_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A package checked again (a forced rerun, a backfill) is not read again: the same crop, wherever it was
    written, gives what the engine read the first time; a reader that is not RapidOCR is always run."""
    monkeypatch.setenv("KEPU_MEDIA_MEMO", str(tmp_path / "memo"))
    engine = ocr.ocr_engine()
    assert engine is not None
    reads: list[str] = []
    real = type(engine).__call__

    def counting(self: Any, img: Any, *args: Any, **kwargs: Any) -> Any:
        reads.append(str(img))
        return real(self, img, *args, **kwargs)

    monkeypatch.setattr(type(engine), "__call__", counting)
    clip = factory.make_burned_in(clip_dir, "chinese")
    (crop,) = ocr.grab_crops(clip.path, probe_file(clip.path), [1.0], tmp_path, timeout=60)
    copy = tmp_path / "elsewhere" / "crop.png"
    copy.parent.mkdir()
    copy.write_bytes(crop.read_bytes())
    first, again = ocr.read_crop(engine, crop), ocr.read_crop(engine, copy)
    assert ocr.chinese_line(first, min_chars=2, min_confidence=0.8) == factory.BURNED_CUES[0]
    assert again == first and reads == [str(crop)]

    stub_reads: list[str] = []

    def stub(img: str) -> Any:
        stub_reads.append(img)
        return SimpleNamespace(txts=("另一个读者",), scores=(0.9,))

    assert ocr.read_crop(stub, crop) == ocr.read_crop(stub, crop) == [ocr.OcrLine("另一个读者", 0.9)]
    assert stub_reads == [str(crop), str(crop)]


def test_a_package_whose_crops_were_read_before_loads_no_model(
    clip_dir: Path, campaign: Campaign, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A forced rerun or a backfill in a new task process: every crop was read before, so the engine is not built
    (its models cost about a CPU-second to load); the result is the first check's."""
    from kepu.media.subtitles import find_subtitles

    monkeypatch.setenv("KEPU_MEDIA_MEMO", str(tmp_path / "memo"))
    clip = factory.make_burned_in(clip_dir, "chinese")
    probe = probe_file(clip.path)
    ocr.reset_engine()
    first = find_subtitles(clip.path, probe, campaign, sidecars=[], timeout=120)
    assert first.found and first.method == "ocr"
    builds: list[int] = []
    monkeypatch.setattr(ocr, "build_engine", lambda: builds.append(1))
    ocr.reset_engine()  # a new process
    try:
        assert find_subtitles(clip.path, probe, campaign, sidecars=[], timeout=120) == first
        assert builds == []
        # A crop never read before needs the engine: here it cannot start, so OCR is unavailable.
        monkeypatch.setenv("KEPU_MEDIA_MEMO", str(tmp_path / "another-memo"))
        again = find_subtitles(clip.path, probe, campaign, sidecars=[], timeout=120)
        assert builds == [1] and again.method == "ocr-unavailable" and not again.found
    finally:
        ocr.reset_engine()


def test_engine_is_built_once_per_process() -> None:
    assert ocr.ocr_engine() is ocr.ocr_engine() is not None


def test_a_moment_past_the_last_picture_has_no_crop(clip_dir: Path) -> None:
    clip = factory.make_burned_in(clip_dir, "none")
    out = clip_dir / "past-end"
    out.mkdir(exist_ok=True)
    crops = ocr.grab_crops(clip.path, probe_file(clip.path), [1.0, factory.BURNED_DURATION_S + 5], out, timeout=60)
    assert [c.name for c in crops] == ["crop0.png"]
