"""Aggregation: normalisation recovers the true order better than raw means, trimmed means, agreement,
tie-breaks, entries short of scores, and the cut-off bands."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from kepu.campaign import Conflicts
from kepu.db.judging_records import JudgeRecord
from kepu.judging.aggregate import (
    Policy,
    aggregate,
    cutoff_bands,
    fit_offsets,
    krippendorff_alpha,
    normalise,
    trimmed_mean,
)
from kepu.judging.assign import plan_assignment
from kepu.judging.review import Entry

pytestmark = pytest.mark.unit

POLICY = Policy("zscore", 0.2, 5, 3, ("higher_median", "more_scores", "earlier_received"))
PROVINCES = ("北京市", "上海市", "广东省", "四川省", "湖北省", "浙江省", "江苏省", "陕西省", "河南省", "山东省")


def spearman(a: pd.Series, b: pd.Series) -> float:
    joined = pd.concat([a.rename("a"), b.rename("b")], axis=1, join="inner")
    return float(joined["a"].rank().corr(joined["b"].rank()))


def synthetic_panel(seed: int, *, bias: float = 2.0, noise: float = 0.6) -> tuple[pd.DataFrame, pd.Series]:
    """80 videos of known quality (uniform 4–9), 12 judges with 5 judges per entry and a linking set of 4;
    judge J00 is harsh (−bias) and J01 lenient (+bias); scores rounded to halves and kept in 0–10."""
    rng = np.random.default_rng(seed)
    es = [
        Entry(f"S{i:03d}", "video", None, f"单位{i % 17}", PROVINCES[i % 10], None, None, f"包{i}") for i in range(80)
    ]
    js = [JudgeRecord(f"J{j:02d}", f"评委{j}", f"大学{j}", PROVINCES[(3 * j) % 10]) for j in range(12)]
    plan = plan_assignment(
        es,
        js,
        per_entry=5,
        min_cover=3,
        linking_set=4,
        seed=seed,
        conflicts=Conflicts(same_unit=True, same_province=True),
    )
    truth = pd.Series({e.id: rng.uniform(4, 9) for e in es})
    shift = {"J00": -bias, "J01": +bias}
    rows = []
    for r in plan.rows:
        v = truth[r.submission_id] + shift.get(r.judge_id, 0.0) + rng.normal(0, noise)
        rows.append(
            {
                "judge_id": r.judge_id,
                "submission_id": r.submission_id,
                "kind": "video",
                "weighted": float(np.clip(round(v * 2) / 2, 0, 10)),
            }
        )
    return pd.DataFrame(rows), truth


def test_normalisation_recovers_the_true_order_better_than_the_raw_mean(capsys: pytest.CaptureFixture[str]) -> None:
    figures = []
    for seed in (1, 2, 3, 4, 5):
        scores, truth = synthetic_panel(seed)
        result = aggregate(scores, ranges={"video": (0.0, 10.0)}, policy=POLICY, received={})
        raw = scores.groupby("submission_id")["weighted"].mean()
        normalised = result.ranking.set_index("submission_id")["score"]
        figures.append((seed, spearman(raw, truth), spearman(normalised, truth)))
        # The harsh and the lenient judge are found, with the right sign.
        judges = result.judges.set_index("judge_id")
        assert judges.loc["J00", "severity"] < -1.0 < 1.0 < judges.loc["J01", "severity"]
        assert abs(judges.drop(["J00", "J01"])["severity"]).max() < 1.0
    with capsys.disabled():
        for seed, before, after in figures:
            print(f"\nseed {seed}: Spearman with the true order — raw mean {before:.4f}, normalised {after:.4f}")
    before = float(np.mean([b for _, b, _ in figures]))
    after = float(np.mean([a for _, _, a in figures]))
    with capsys.disabled():
        print(f"mean over 5 panels: raw {before:.4f} → normalised {after:.4f}")
    assert all(a > b for _, b, a in figures), figures
    assert after - before > 0.01 and after > 0.96


def test_normalisation_keeps_the_rubric_scale_and_handles_a_flat_judge() -> None:
    scores = pd.DataFrame(
        [
            *({"judge_id": "harsh", "submission_id": f"S{i}", "kind": "video", "weighted": 2.0 + i} for i in range(4)),
            *({"judge_id": "kind", "submission_id": f"S{i}", "kind": "video", "weighted": 6.0 + i} for i in range(4)),
            *({"judge_id": "flat", "submission_id": f"S{i}", "kind": "video", "weighted": 7.0} for i in range(4)),
        ]
    )
    out = normalise(scores, {"video": (0.0, 10.0)}, "zscore").set_index(["judge_id", "submission_id"])["normalised"]
    # Harsh and lenient judges agree on order: after normalisation they give the same scores.
    for i in range(4):
        assert out["harsh", f"S{i}"] == pytest.approx(out["kind", f"S{i}"])
    # A judge without spread says nothing about order: the grand mean for all.
    grand = scores["weighted"].mean()
    assert all(out["flat", f"S{i}"] == pytest.approx(grand) for i in range(4))
    assert out.between(0, 10).all()


def test_trimmed_mean_only_from_the_configured_count() -> None:
    assert trimmed_mean([1, 5, 6, 7, 100], 0.2, 5) == pytest.approx(6.0)  # 1 and 100 cut
    assert trimmed_mean([1, 5, 100], 0.2, 5) == pytest.approx(106 / 3)  # plain mean below 5 scores
    assert trimmed_mean([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.2, 5) == pytest.approx(5.5)  # 2 cut at each end


def test_krippendorff_alpha_matches_the_published_example() -> None:
    # Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability": 4 observers, 12 units, missing
    # values; interval alpha = 0.849.
    nan = math.nan
    data = np.array(
        [
            [1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
            [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
            [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
            [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan],
        ]
    )
    assert krippendorff_alpha(data) == pytest.approx(0.849, abs=0.0005)
    assert krippendorff_alpha(np.array([[1.0, 2.0], [1.0, 2.0]])) == pytest.approx(1.0)
    assert krippendorff_alpha(np.array([[1.0, nan], [nan, 2.0]])) is None  # nothing pairable


def test_agreement_rises_after_normalisation_on_a_biased_panel() -> None:
    scores, _ = synthetic_panel(7)
    result = aggregate(scores, ranges={"video": (0.0, 10.0)}, policy=POLICY, received={})
    a = result.agreement["video"]
    assert a["alpha_normalised"] > a["alpha_raw"] > 0
    assert a["judges"] == 12 and a["entries"] == 80 and a["pairable_entries"] == 80


def _scores(rows: list[tuple[str, str, float]], kind: str = "video") -> pd.DataFrame:
    return pd.DataFrame([{"judge_id": j, "submission_id": s, "kind": kind, "weighted": v} for j, s, v in rows])


def test_entries_short_of_scores_are_listed_not_ranked() -> None:
    rows = [(f"J{j}", "A", 8.0 - j * 0.1) for j in range(4)] + [("J0", "B", 9.0), ("J1", "B", 9.5)]
    result = aggregate(
        _scores(rows),
        ranges={"video": (0, 10)},
        policy=Policy("none", 0.2, 5, 3, ()),
        received={},
        entries={"A": "video", "B": "video", "C": "video"},
    )
    table = result.ranking.set_index("submission_id")
    assert table.loc["A", "rank"] == 1 and table.loc["A", "status"] == "ranked"
    assert table.loc["B", "status"] == "insufficient" and pd.isna(table.loc["B", "rank"])
    assert table.loc["C", "n_scores"] == 0 and table.loc["C", "status"] == "insufficient"
    assert any("fewer than 3 scores" in n for n in result.notes)


def test_ties_follow_the_campaign_policy() -> None:
    # A and B share a mean of 7; A's median is higher. C and D tie on both; D has more scores.
    # E and F tie on everything; E was received first.
    rows = [
        ("J0", "A", 6.0),
        ("J1", "A", 7.5),
        ("J2", "A", 7.5),
        ("J0", "B", 8.0),
        ("J1", "B", 6.5),
        ("J2", "B", 6.5),
        ("J0", "C", 5.0),
        ("J1", "C", 5.0),
        ("J2", "C", 5.0),
        ("J0", "D", 5.0),
        ("J1", "D", 5.0),
        ("J2", "D", 5.0),
        ("J3", "D", 5.0),
        ("J0", "E", 4.0),
        ("J1", "E", 4.0),
        ("J2", "E", 4.0),
        ("J0", "F", 4.0),
        ("J1", "F", 4.0),
        ("J2", "F", 4.0),
    ]
    received = {"E": datetime(2022, 10, 1, tzinfo=UTC), "F": datetime(2022, 10, 2, tzinfo=UTC)}
    policy = Policy("none", 0.2, 5, 3, POLICY.tie_break, estimator="trimmed_mean")
    result = aggregate(_scores(rows), ranges={"video": (0, 10)}, policy=policy, received=received)
    order = result.ranking.sort_values("rank")["submission_id"].tolist()
    assert order == ["A", "B", "D", "C", "E", "F"]
    assert set(result.ranking.loc[result.ranking["tied"].astype(bool), "submission_id"]) == set("ABCDEF")


def test_receipt_tie_break_ignores_the_machines_time_zone() -> None:
    # G and H tie on everything. A naive receipt time is UTC: G (08:00 UTC) came after H (04:00 UTC, given in
    # Beijing time), whatever TZ says. An entry with no receipt time comes last.
    rows = [(j, s, 4.0) for s in "GHK" for j in ("J0", "J1", "J2")]
    received = {
        "G": datetime(2022, 10, 1, 8, 0),
        "H": datetime(2022, 10, 1, 12, 0, tzinfo=ZoneInfo("Asia/Shanghai")),
        "K": None,
    }
    result = aggregate(
        _scores(rows),
        ranges={"video": (0, 10)},
        policy=Policy("none", 0.2, 5, 3, ("earlier_received",)),
        received=received,
    )
    assert result.ranking.sort_values("rank")["submission_id"].tolist() == ["H", "G", "K"]


def test_cutoff_bands_list_the_entries_near_each_line() -> None:
    ranking = pd.DataFrame(
        {
            "submission_id": [f"S{i}" for i in range(10)],
            "kind": "video",
            "rank": range(1, 11),
            "score": [9.0 - 0.1 * i for i in range(10)],
            "status": "ranked",
        }
    )
    bands = cutoff_bands(ranking, [("excellent_video", "video", 4)], 2)
    assert bands["rank"].tolist() == [3, 4, 5, 6]
    assert bands["inside"].tolist() == [True, True, False, False]
    line = (ranking.loc[3, "score"] + ranking.loc[4, "score"]) / 2
    assert bands["gap"].tolist() == pytest.approx([s - line for s in bands["score"]])


# --- the offsets estimator -------------------------------------------------------------------------------


def offset_panel(
    seed: int, offsets: dict[str, float], *, entries: int = 40, per_entry: int = 3, noise: float = 0.05
) -> tuple[pd.DataFrame, pd.Series]:
    """Entries of known quality, each scored by ``per_entry`` judges in turn, score = quality + offset + noise."""
    rng = np.random.default_rng(seed)
    judges = sorted(offsets)
    truth = pd.Series({f"S{i:03d}": rng.uniform(4, 8) for i in range(entries)})
    rows = []
    for n, (sid, q) in enumerate(truth.items()):
        for k in range(per_entry):
            jid = judges[(n + k) % len(judges)]
            rows.append((jid, str(sid), float(q + offsets[jid] + rng.normal(0, noise))))
    return _scores(rows), truth


OFFSETS = {"J0": -1.0, "J1": -0.5, "J2": 0.0, "J3": 0.0, "J4": 0.5, "J5": 1.0}


def test_offsets_are_recovered_on_a_small_example() -> None:
    scores, truth = offset_panel(7, OFFSETS, entries=120)
    fit = fit_offsets(scores["judge_id"], scores["submission_id"], scores["weighted"])
    assert abs(fit.offset.sum()) < 1e-9  # offsets add up to zero
    for jid, true in OFFSETS.items():
        assert fit.offset[jid] == pytest.approx(true, abs=0.05), jid
    assert (fit.quality - truth).abs().mean() < 0.03 and (fit.quality - truth).abs().max() < 0.15
    assert (fit.weight > 0.5).all()  # nobody is an outlier here
    result = aggregate(scores, ranges={"video": (0, 10)}, policy=POLICY, received={})
    # The normalised score is the raw one less the judge's offset.
    row = result.scores.iloc[0]
    assert row["normalised"] == pytest.approx(row["weighted"] - fit.offset[row["judge_id"]])
    assert spearman(result.ranking.set_index("submission_id")["score"], truth) > 0.99


def test_offsets_fit_is_deterministic() -> None:
    scores, _ = offset_panel(3, OFFSETS, noise=0.5)
    a = fit_offsets(scores["judge_id"], scores["submission_id"], scores["weighted"])
    b = fit_offsets(scores["judge_id"], scores["submission_id"], scores["weighted"])
    pd.testing.assert_series_equal(a.quality, b.quality, check_exact=True)
    pd.testing.assert_series_equal(a.offset, b.offset, check_exact=True)
    shuffled = scores.sample(frac=1.0, random_state=1)
    c = fit_offsets(shuffled["judge_id"], shuffled["submission_id"], shuffled["weighted"])
    assert (a.quality - c.quality).abs().max() < 1e-8 and (a.offset - c.offset).abs().max() < 1e-8
    first = aggregate(scores, ranges={"video": (0, 10)}, policy=POLICY, received={}).ranking
    again = aggregate(shuffled, ranges={"video": (0, 10)}, policy=POLICY, received={}).ranking
    assert first["submission_id"].tolist() == again["submission_id"].tolist()


def test_a_judge_with_one_score_an_entry_with_one_judge_and_missing_scores() -> None:
    scores, _ = offset_panel(5, OFFSETS, noise=0.3)
    # JX scores one entry, 2 points above the others' consensus; S900 is scored by J2 alone.
    consensus = scores[scores["submission_id"] == "S000"]["weighted"].mean()
    extra = _scores([("JX", "S000", consensus + 2.0), ("J2", "S900", 7.0)])
    both = pd.concat([scores, extra], ignore_index=True)
    fit = fit_offsets(both["judge_id"], both["submission_id"], both["weighted"])
    assert np.isfinite(fit.offset).all() and np.isfinite(fit.quality).all()
    assert 0.3 < fit.offset["JX"] < 1.2  # shrunk: one score 2 points high says little about a judge
    assert fit.quality["S900"] == pytest.approx(7.0 - fit.offset["J2"])
    result = aggregate(
        both, ranges={"video": (0, 10)}, policy=Policy("zscore", 0.2, 5, 1, ()), received={}, entries={"S901": "video"}
    )
    table = result.ranking.set_index("submission_id")
    assert table.loc["S900", "status"] == "ranked" and table.loc["S900", "n_scores"] == 1
    assert table.loc["S901", "status"] == "insufficient" and pd.isna(table.loc["S901", "score"])
    assert table["score"].drop("S901").notna().all()


@pytest.mark.parametrize("adversary", ["reversed", "extreme"])
def test_an_adversarial_judge_counts_for_less(adversary: str) -> None:
    rng = np.random.default_rng(11)
    scores, truth = offset_panel(11, OFFSETS, entries=120, per_entry=4, noise=0.6)
    bad = scores["judge_id"] == "J3"
    if adversary == "reversed":
        scores.loc[bad, "weighted"] = 12.0 - scores.loc[bad, "weighted"]
    else:
        scores.loc[bad, "weighted"] = rng.choice([0.0, 10.0], int(bad.sum()))
    fit = fit_offsets(scores["judge_id"], scores["submission_id"], scores["weighted"])
    assert fit.weight["J3"] < 0.5 < fit.weight.drop("J3").min()
    result = aggregate(scores, ranges={"video": (0, 10)}, policy=POLICY, received={})
    assert any("J3" in n and "count for less" in n for n in result.notes)
    raw = scores.groupby("submission_id")["weighted"].mean()
    assert spearman(result.ranking.set_index("submission_id")["score"], truth) > spearman(raw, truth)


def test_the_campaign_chooses_the_estimator() -> None:
    from kepu.campaign import load_campaign, parse_campaign
    from kepu.config import DEFAULT_CAMPAIGN_FILE

    assert Policy.of(load_campaign(DEFAULT_CAMPAIGN_FILE), 3).estimator == "offsets"
    text = DEFAULT_CAMPAIGN_FILE.read_text(encoding="utf-8")
    old = parse_campaign(text.replace("estimator: offsets", "estimator: trimmed_mean"))
    assert Policy.of(old, 3).estimator == "trimmed_mean"
    unset = parse_campaign(text.replace("    estimator: offsets\n", ""))
    assert Policy.of(unset, 3).estimator == "offsets"
    scores, _ = offset_panel(2, OFFSETS, noise=0.5)
    with pytest.raises(ValueError, match="estimator"):
        aggregate(scores, ranges={"video": (0, 10)}, policy=Policy("zscore", 0.2, 5, 3, (), "median"), received={})
