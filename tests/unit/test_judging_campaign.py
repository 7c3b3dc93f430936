"""The judging section of the campaign file: strict, and consistent with itself."""

from __future__ import annotations

import pytest
import yaml

from kepu.campaign import load_campaign, parse_campaign
from kepu.config import DEFAULT_CAMPAIGN_FILE
from kepu.errors import CampaignError

pytestmark = pytest.mark.unit

TEXT = DEFAULT_CAMPAIGN_FILE.read_text(encoding="utf-8")


def test_2022_judging_is_campaign_data() -> None:
    j = load_campaign(DEFAULT_CAMPAIGN_FILE).judging
    assert [s.key for s in j.stages] == ["formal_review", "compliance", "first_round", "final_round"]
    first, final = j.stage("first_round"), j.stage("final_round")
    assert (first.min_judges_per_entry, first.linking_set, first.min_scores) == (5, 4, 3)
    assert first.awards == ["excellent_video", "excellent_account"] and final.awards == ["best_video"]
    assert final.min_judges_per_entry is None and final.entrants == {"video": 30} and final.kinds == ["video"]
    assert (j.awards.count("excellent_video"), j.awards.count("excellent_account"), j.awards.count("best_video")) == (
        200,
        20,
        10,
    )
    assert (j.aggregation.normalise, j.aggregation.trim_fraction, j.aggregation.trim_min_scores) == ("zscore", 0.2, 5)
    assert j.cutoff_band == 3 and j.assignment.seed == 20221031 and j.conflicts.same_province
    assert j.previous_scoring("final_round") == first and j.previous_scoring("first_round") is None
    assert {c.zh for c in j.criteria["video"]} >= {"科学性", "知识性", "通俗性", "艺术性", "趣味性", "完整、短而精"}


def _with(edit: object) -> str:
    data = yaml.safe_load(TEXT)
    edit(data["judging"])  # type: ignore[operator]
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def _problems(text: str) -> list[str]:
    with pytest.raises(CampaignError) as info:
        parse_campaign(text, "bad.yaml")
    return info.value.problems


def test_unknown_judging_keys_stay_errors() -> None:
    problems = _problems(TEXT.replace("  cutoff_band: 3", "  cutoff_band: 3\n  cut_off_band: 3"))
    assert any("unknown key 'cut_off_band'" in p for p in problems)
    problems = _problems(TEXT.replace("trim_fraction: 0.2", "trim_fraction: 0.2\n    trim_fractoin: 0.1"))
    assert any("unknown key 'trim_fractoin'" in p and "line" in p for p in problems)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda j: j["stages"][1].update(min_scores=3), "not scored"),
        (lambda j: j["stages"][2].pop("min_scores"), "needs min_scores"),
        (lambda j: j["stages"][2].update(min_scores=9), "exceeds min_judges_per_entry"),
        (lambda j: j["stages"][3].update(awards=[]), "no scoring stage awards best_video"),
        (lambda j: j["stages"].insert(0, j["stages"].pop(2)), "formal review first"),
        (lambda j: j["stages"][3].update(kinds=["account"], entrants={"account": 5}), "does not judge video"),
        (lambda j: j["aggregation"].update(trim_fraction=0.5), "trim_fraction"),
        (lambda j: j.update(tie_break=["higher_median", "higher_median"]), "repeats"),
        (lambda j: j["criteria"]["video"][0].update(min=10, max=0), "must be below max"),
        (lambda j: j["stages"][2].update(entrants={"video": 5}), "no previous stage"),
    ],
)
def test_inconsistent_judging_is_refused(edit: object, message: str) -> None:
    assert any(message in p for p in _problems(_with(edit))), message
