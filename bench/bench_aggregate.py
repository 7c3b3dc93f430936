"""How close the default score estimator comes to an oracle that knows every judge's bias.

A simulated round: 1,000 entries of known quality (normal, mean 6, sd 1 on the 0–10 rubric), 30 judges,
5 judges per entry (each entry's judges drawn at random among the least loaded, so every judge scores
about 167 entries), a bias per judge (normal, sd 0.5) and noise per score (normal, sd 0.8). Over 10 seeds,
the share of the true top 200 that each estimator puts in its own top 200:

- oracle: the mean of each entry's scores minus the judges' true biases;
- raw mean: the plain mean of the scores;
- z-score mean: the plain mean of the per-judge z-scores rescaled to the rubric (``normalise``);
- trimmed mean: the ``trimmed_mean`` estimator (z-scores, 20 % cut from each end of 5 scores);
- default: the campaign file's estimator through :func:`kepu.judging.aggregate.aggregate`.

Then the same rounds with one adversarial judge, who gives reversed scores (12 − honest score) in one
run and random extreme scores (0 or 10) in the other: the default must do no worse than the raw mean.
Targets: default ≥ oracle − 0.01 without an adversary, and ≥ raw mean with each adversary.

Run: ``.venv/bin/python bench/bench_aggregate.py [--seeds 10]``
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

import numpy as np
import pandas as pd

from kepu.campaign import load_campaign
from kepu.config import DEFAULT_CAMPAIGN_FILE
from kepu.judging.aggregate import Policy, aggregate, normalise

ENTRIES, JUDGES, PER_ENTRY, TOP = 1000, 30, 5, 200
BIAS_SD, NOISE_SD = 0.5, 0.8
RANGE = (0.0, 10.0)


def panel(seed: int, adversary: str | None) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """(scores, true quality per entry, true bias per judge); judge J00 is the adversary if any."""
    rng = np.random.default_rng(seed)
    quality = pd.Series(rng.normal(6.0, 1.0, ENTRIES), index=[f"S{i:04d}" for i in range(ENTRIES)])
    bias = pd.Series(rng.normal(0.0, BIAS_SD, JUDGES), index=[f"J{j:02d}" for j in range(JUDGES)])
    load = np.zeros(JUDGES)
    rows = []
    for sid, q in quality.items():
        order = np.lexsort((rng.random(JUDGES), load))  # least loaded first, ties at random
        for j in sorted(order[:PER_ENTRY]):
            load[j] += 1
            jid = bias.index[j]
            honest = q + bias.iloc[j] + rng.normal(0.0, NOISE_SD)
            if jid == "J00" and adversary == "reversed":
                value = 12.0 - honest
            elif jid == "J00" and adversary == "extreme":
                value = float(rng.choice(RANGE))
            else:
                value = honest
            rows.append(
                {"judge_id": jid, "submission_id": sid, "kind": "video", "weighted": float(np.clip(value, *RANGE))}
            )
    return pd.DataFrame(rows), quality, bias


def precision(estimate: pd.Series, truth: pd.Series) -> float:
    best = set(truth.sort_values(ascending=False, kind="mergesort").index[:TOP])
    mine = set(estimate.sort_values(ascending=False, kind="mergesort").index[:TOP])
    return len(best & mine) / TOP


def estimators(policy: Policy) -> dict[str, Callable[[pd.DataFrame, pd.Series], pd.Series]]:
    def ranked(p: Policy) -> Callable[[pd.DataFrame, pd.Series], pd.Series]:
        def run(scores: pd.DataFrame, bias: pd.Series) -> pd.Series:
            result = aggregate(scores, ranges={"video": RANGE}, policy=p, received={})
            return result.ranking.set_index("submission_id")["score"]

        return run

    def oracle(scores: pd.DataFrame, bias: pd.Series) -> pd.Series:
        return (scores["weighted"] - scores["judge_id"].map(bias)).groupby(scores["submission_id"]).mean()

    def raw(scores: pd.DataFrame, bias: pd.Series) -> pd.Series:
        return scores.groupby("submission_id")["weighted"].mean()

    def zmean(scores: pd.DataFrame, bias: pd.Series) -> pd.Series:
        return normalise(scores, {"video": RANGE}, "zscore").groupby("submission_id")["normalised"].mean()

    trimmed = Policy("zscore", policy.trim_fraction, policy.trim_min_scores, 1, policy.tie_break, "trimmed_mean")
    return {
        "oracle": oracle,
        "raw mean": raw,
        "z-score mean": zmean,
        "trimmed mean": ranked(trimmed),
        f"default ({policy.estimator})": ranked(policy),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    campaign = load_campaign(DEFAULT_CAMPAIGN_FILE)
    policy = Policy.of(campaign, 1)
    methods = estimators(policy)
    default = f"default ({policy.estimator})"
    figures: dict[str, dict[str, float]] = {}
    for case in (None, "reversed", "extreme"):
        got: dict[str, list[float]] = {name: [] for name in methods}
        for seed in range(1, args.seeds + 1):
            scores, quality, bias = panel(seed, case)
            for name, method in methods.items():
                got[name].append(precision(method(scores, bias), quality))
        figures[case or "honest"] = {name: float(np.mean(v)) for name, v in got.items()}
        title = {
            "honest": "30 honest judges",
            "reversed": "judge J00 gives reversed scores",
            "extreme": "judge J00 gives random extreme scores (0 or 10)",
        }[case or "honest"]
        print(f"top-{TOP} precision, mean of {args.seeds} seeds — {title}:")
        for name, value in figures[case or "honest"].items():
            print(f"  {name:<22} {value:.4f}")
    failures = []
    honest = figures["honest"]
    if honest[default] < honest["oracle"] - 0.01:
        failures.append(f"default {honest[default]:.4f} is more than 0.01 below the oracle {honest['oracle']:.4f}")
    for case in ("reversed", "extreme"):
        if figures[case][default] < figures[case]["raw mean"]:
            failures.append(
                f"{case}: default {figures[case][default]:.4f} below the raw mean {figures[case]['raw mean']:.4f}"
            )
    for f in failures:
        print("FAIL:", f, file=sys.stderr)
    if not failures:
        print("targets met: default within 0.01 of the oracle; no worse than the raw mean with an adversarial judge")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
