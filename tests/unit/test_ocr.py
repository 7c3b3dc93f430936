"""Burned-in subtitles: when to look, what counts as Chinese text, the finding, OCR missing."""

from __future__ import annotations

import dataclasses
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from kepu.campaign import Campaign, load_campaign
from kepu.config import DEFAULT_CAMPAIGN_FILE
from kepu.media import ocr
from kepu.media.analysis import Interval
from kepu.media.ocr import OcrLine, chinese_line, crop_command, ocr_lines, sample_times, speech_spans
from kepu.media.quality_checks import quality_findings
from kepu.media.subtitles import SubtitleResult, find_subtitles

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_analysis_parse import clean_analysis, clean_timing, make_probe

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def campaign() -> Campaign:
    return load_campaign(DEFAULT_CAMPAIGN_FILE)


@pytest.fixture(autouse=True)
def fresh_engine() -> Iterator[None]:
    """Each test starts without a cached engine and leaves none behind."""
    ocr.reset_engine()
    yield
    ocr.reset_engine()


def test_thresholds_are_campaign_data(campaign: Campaign) -> None:
    rules = campaign.language
    assert rules.ocr_sample_frames == 12 and rules.ocr_min_coverage == 0.5
    assert rules.ocr_min_chars == 2 and rules.ocr_min_confidence == 0.8


def test_speech_is_the_programme_outside_the_silences() -> None:
    silences = [Interval(10.0, 15.0), Interval(0.0, 2.0), Interval(28.0, 31.0)]
    assert speech_spans(silences, 30.0, has_audio=True) == [Interval(2.0, 10.0), Interval(15.0, 28.0)]
    # No sound track, or silence throughout: the whole programme may carry speech.
    assert speech_spans(silences, 30.0, has_audio=False) == [Interval(0.0, 30.0)]
    assert speech_spans([Interval(0.0, 30.0)], 30.0, has_audio=True) == [Interval(0.0, 30.0)]
    assert speech_spans([], None, has_audio=True) == []


def test_samples_fall_in_speech_only_and_are_spread_evenly() -> None:
    spans = [Interval(2.0, 10.0), Interval(15.0, 23.0)]
    times = sample_times(spans, 4)
    assert times == [4.0, 8.0, 17.0, 21.0]
    assert all(any(s.start_s <= t <= s.end_s for s in spans) for t in sample_times(spans, 12))
    assert not any(10.0 < t < 15.0 for t in sample_times(spans, 12))
    assert sample_times(spans, 0) == [] and sample_times([], 5) == []


def test_crops_come_from_one_ffmpeg_run_with_a_fast_seek_per_sample(tmp_path: Path) -> None:
    argv = crop_command(Path("/v.mp4"), 0, [1.5, 7.25], tmp_path)
    assert argv[0] == "ffmpeg" and argv.count("-i") == 2
    # -ss before -i: a demuxer seek, not a decode from the start.
    first = argv.index("-ss")
    assert argv[first + 1] == "1.500" and argv.index("-i") > first
    graph = argv[argv.index("-filter_complex") + 1]
    assert "crop=iw:ih/3:0:ih*2/3" in graph and f"scale={ocr.CROP_WIDTH}:-2" in graph
    assert argv[-1] == str(tmp_path / "crop1.png")


def test_a_moment_counts_with_two_confident_han_characters() -> None:
    def line(*lines: OcrLine) -> str | None:
        return chinese_line(lines, min_chars=2, min_confidence=0.8)

    assert line(OcrLine("月亮自己并不发光", 0.99)) == "月亮自己并不发光"
    assert line(OcrLine("Moon 月", 0.99)) is None  # one character
    assert line(OcrLine("月亮发光", 0.5)) is None  # not sure enough
    assert line(OcrLine("The moon", 0.99), OcrLine("月亮", 0.9)) == "月亮"
    assert line() is None


def test_rapidocr_answers_are_read_with_their_scores() -> None:
    answer = types.SimpleNamespace(txts=("长江里的江豚", "ok"), scores=(0.98, 0.7))
    assert ocr_lines(answer) == [OcrLine("长江里的江豚", 0.98), OcrLine("ok", 0.7)]
    assert ocr_lines(types.SimpleNamespace(txts=None, scores=None)) == []


def test_engine_uses_the_models_inside_the_package_and_never_a_download_path() -> None:
    models = Path("/site-packages/rapidocr/models")
    params = ocr.engine_params(models)
    for key in ("Det.model_path", "Rec.model_path", "Cls.model_path"):
        assert Path(params[key]).parent == models
    assert params["Global.use_cls"] is False and params["Det.limit_type"] == "max"


def test_missing_package_keeps_the_review_path(
    tmp_path: Path, campaign: Campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The import itself fails, as when rapidocr (or onnxruntime under it) is not installed.
    monkeypatch.setitem(sys.modules, "rapidocr", None)
    assert ocr.model_dir() is None and ocr.ocr_engine() is None
    result = find_subtitles(tmp_path / "v.mp4", make_probe(), campaign, sidecars=[], timeout=5)
    assert result == SubtitleResult(False, "ocr-unavailable", ("ocr-unavailable",))
    findings = quality_findings(campaign, make_probe(), clean_analysis(), clean_timing(), result, duration=240.0)
    (finding,) = [f for f in findings if f.code == "L-SUBTITLE"]
    assert finding.value == "ocr-unavailable" and "未检查画面内嵌字幕" in finding.message_zh


def test_a_broken_runtime_keeps_the_review_path(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(name: str) -> object:
        raise ImportError("libonnxruntime.so: cannot open shared object file")

    if ocr.model_dir() is None:
        pytest.skip("rapidocr is not installed")
    monkeypatch.setattr(ocr.importlib, "import_module", fail)
    assert ocr.build_engine() is None


def test_finding_gives_the_coverage_and_the_lines_read(campaign: Campaign) -> None:
    subs = SubtitleResult(
        False, "ocr", ("ocr",), ocr_samples=12, ocr_coverage=0.25, ocr_lines=("月相的秘密", "Moon phases")
    )
    findings = quality_findings(campaign, make_probe(), clean_analysis(), clean_timing(), subs, duration=240.0)
    (finding,) = [f for f in findings if f.code == "L-SUBTITLE"]
    assert finding.value == "0.25" and finding.limit == ">=0.5"
    assert "覆盖 25% 的讲话时刻" in finding.message_zh and "抽查 12 处" in finding.message_zh
    assert "「月相的秘密」" in finding.message_zh and "Moon phases" in finding.message_en
    covered = SubtitleResult(True, "ocr", ("ocr",), "burned-in", "月相", ocr_samples=12, ocr_coverage=0.75)
    no_finding = quality_findings(campaign, make_probe(), clean_analysis(), clean_timing(), covered, duration=240.0)
    assert "L-SUBTITLE" not in {f.code for f in no_finding}


def test_entry_page_shows_the_coverage_and_the_lines_read() -> None:
    from kepu.dashboard.detail import probe_summary

    subs = SubtitleResult(
        False, "ocr", ("stream", "ocr"), ocr_samples=12, ocr_coverage=0.25, ocr_lines=("月相的秘密", "Moon")
    )
    rows = dict(probe_summary({"subtitles": dataclasses.asdict(subs)}, None))
    assert rows["中文字幕 Chinese subtitles"].startswith("未发现 none")
    burned = rows["画面内嵌字幕 burned-in subtitles"]
    assert "覆盖 25 %" in burned and "抽查 12 处" in burned and "「月相的秘密」 / 「Moon」" in burned
    # Found in a soft track: OCR did not run and nothing is said about burned-in text.
    stream = SubtitleResult(True, "stream", ("stream",), "stream #2 (mov_text)", "月亮")
    assert "画面内嵌字幕 burned-in subtitles" not in dict(
        probe_summary({"subtitles": dataclasses.asdict(stream)}, None)
    )
