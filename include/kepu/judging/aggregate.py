"""From judges' scores to a ranking: normalisation, trimmed means, agreement and judges' severity.

1. Each score is the criteria's weighted sum (weights from the campaign file), on the rubric's scale.
2. Per judge and kind, scores become z-scores and are rescaled to the rubric: ``grand mean + z × grand
   SD`` of that kind, clipped to the rubric's range. A harsh or lenient judge no longer moves the entries
   they happened to score. A judge with a single score or no spread gives ``z = 0`` (the grand mean): such
   a sheet says nothing about order.
3. An entry's score comes from the campaign's ``estimator``:

   - ``offsets`` (the default): per kind, ``score_ij = quality_i + offset_j + noise``, fitted by weighted
     least squares (:func:`fit_offsets`). Offsets add up to zero, so qualities stay on the rubric's scale;
     a judge's offset is shrunk toward zero as if they had also given ``λ`` scores at offset 0, with
     ``λ`` = noise variance / variance of the offsets (estimated from the data, at least 1), so a judge
     with few scores moves little. Judges are then reweighted: one whose residual variance is well above the
     others' (reversed or random scores) counts for less, in proportion, and the fit is repeated. The
     ``normalised`` score is then ``weighted - offset_j``, clipped to the rubric's range.
   - ``trimmed_mean``: the trimmed mean of its normalised scores when it has at least ``trim_min_scores``
     of them (``trim_fraction`` cut from each end), the plain mean otherwise.

   An entry with fewer than the round's ``min_scores`` is listed, not ranked.
4. Ranks follow the score; ties are broken by the campaign's ``tie_break`` rules in order, then by id.
5. Agreement: Krippendorff's alpha (interval metric), which handles the incomplete design (each judge
   sees only some entries) natively, on raw and on normalised scores. Each judge gets a severity (mean of
   their raw score minus the other judges' mean on the same entries; negative is harsh) and a deviation
   (root mean square distance of their normalised score from the others' mean).

Pure pandas/numpy: no database, no store; :mod:`kepu.judging.steps` feeds it and records the result.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from kepu.campaign import Campaign, Criterion

SCORE_COLUMNS = ("judge_id", "submission_id", "kind", "weighted")
#: Decimals kept when comparing scores, so float noise never decides a rank.
PRECISION = 9


@dataclass(frozen=True)
class Policy:
    normalise: str
    trim_fraction: float
    trim_min_scores: int
    min_scores: int
    tie_break: Sequence[str]
    estimator: str = "offsets"

    @classmethod
    def of(cls, campaign: Campaign, min_scores: int) -> Policy:
        a = campaign.judging.aggregation
        return cls(
            a.normalise, a.trim_fraction, a.trim_min_scores, min_scores, tuple(campaign.judging.tie_break), a.estimator
        )


@dataclass(frozen=True)
class Result:
    scores: pd.DataFrame  # one row per (judge, entry): raw weighted, normalised
    ranking: pd.DataFrame  # one row per entry: kind, n, score, raw_mean, median, status, rank, tied
    agreement: dict[str, dict[str, Any]]  # per kind
    judges: pd.DataFrame  # per (judge, kind): n, raw mean, raw sd, severity, deviation, correlation
    notes: list[str] = field(default_factory=list)


def weighted_score(criteria: Sequence[Criterion], values: Mapping[str, float]) -> float:
    """The weighted sum of one entry's criteria (the weights add up to 1)."""
    return round(sum(c.weight * float(values[c.key]) for c in criteria), 6)


def rubric_range(criteria: Sequence[Criterion]) -> tuple[float, float]:
    return (sum(c.weight * c.min for c in criteria), sum(c.weight * c.max for c in criteria))


def normalise(scores: pd.DataFrame, ranges: Mapping[str, tuple[float, float]], method: str) -> pd.DataFrame:
    """``scores`` with a ``normalised`` column: per-judge z-scores rescaled to the rubric (see the module)."""
    out = scores.copy()
    out["normalised"] = out["weighted"].astype(float)
    if method == "none" or out.empty:
        return out
    for kind, group in out.groupby("kind", sort=True):
        lo, hi = ranges[str(kind)]
        values = group["weighted"].astype(float)
        grand_mean = float(values.mean())
        grand_sd = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        by_judge = group.groupby("judge_id")["weighted"]
        mean = by_judge.transform("mean")
        sd = by_judge.transform(lambda s: float(s.std(ddof=1)) if len(s) > 1 else 0.0)
        z = ((values - mean) / sd.where(sd > 0)).fillna(0.0)
        out.loc[group.index, "normalised"] = (grand_mean + z * grand_sd).clip(lo, hi)
    return out


#: Least weight of the offsets' prior, in scores: a judge's offset never rests on one score alone.
MIN_SHRINKAGE = 1.0


@dataclass(frozen=True)
class OffsetFit:
    """The fit of ``score_ij = quality_i + offset_j + noise`` on one kind's scores."""

    quality: pd.Series  # per entry
    offset: pd.Series  # per judge; adds up to zero
    weight: pd.Series  # per judge, in (0, 1]: 1 for a judge as consistent as the others
    residual_sd: pd.Series  # per judge
    shrinkage: float  # λ: the offset prior's weight, in scores


def fit_offsets(
    judge: Sequence[str],
    entry: Sequence[str],
    score: Sequence[float],
    *,
    rounds: int = 8,
    tolerance: float = 1e-10,
    max_sweeps: int = 2000,
) -> OffsetFit:
    """Robust weighted least squares of ``score = quality[entry] + offset[judge] + noise``.

    Each sweep alternates the normal equations' two blocks (qualities given offsets: weighted means;
    offsets given qualities: shrunk means, then centred to add up to zero) until nothing moves by more
    than ``tolerance``. Between rounds, ``λ`` and the judges' weights are estimated again from the
    residuals: ``weight_j = min(1, s0² / s_j²)`` with ``s_j²`` the judge's residual variance (pooled with
    ``s0²`` as if they had 3 more scores at it, so that a judge with few scores is not judged on them)
    and ``s0²`` the median of the judges'. Deterministic: judges and entries are taken in sorted order.
    """
    y = np.asarray(score, dtype=float)
    judges, j = np.unique(np.asarray(judge, dtype=str), return_inverse=True)
    entries, i = np.unique(np.asarray(entry, dtype=str), return_inverse=True)
    if len(y) == 0:
        empty = pd.Series(dtype=float)
        return OffsetFit(empty, empty, empty, empty, 0.0)
    nj = np.bincount(j, minlength=len(judges)).astype(float)
    w = np.ones(len(judges))
    b = np.zeros(len(judges))
    lam = MIN_SHRINKAGE
    q = np.zeros(len(entries))
    s2 = np.zeros(len(judges))
    for _round in range(rounds):
        for _sweep in range(max_sweeps):
            wi = w[j]
            q_new = np.bincount(i, wi * (y - b[j]), len(entries)) / np.bincount(i, wi, len(entries))
            # Offsets given qualities: the mean residual, shrunk toward 0 as if λ more scores sat at 0.
            b_new = np.bincount(j, y - q_new[i], len(judges)) / (nj + lam)
            b_new -= float(np.mean(b_new))  # the constraint: offsets add up to zero
            moved = max(float(np.max(np.abs(q_new - q))), float(np.max(np.abs(b_new - b))))
            q, b = q_new, b_new
            if moved < tolerance:
                break
        resid = y - q[i] - b[j]
        # Residual degrees of freedom: each entry's quality uses up one of its scores.
        per_entry = np.bincount(i, minlength=len(entries))[i].astype(float)
        dof = np.bincount(j, 1.0 - 1.0 / per_entry, len(judges))
        raw = np.bincount(j, resid**2, len(judges)) / np.maximum(dof, 1e-9)
        informative = dof >= 2
        s0 = float(np.median(raw[informative])) if informative.any() else float(np.mean(raw))
        s0 = max(s0, 1e-12)
        s2 = (dof * raw + 3.0 * s0) / (dof + 3.0)
        w_new = np.minimum(1.0, s0 / s2)
        # λ = noise variance / variance of the offsets, the latter by moments from the unshrunk offsets.
        unshrunk = b * (nj + lam) / nj
        tau2 = float(np.average(unshrunk**2, weights=nj)) - float(np.average(s0 / nj, weights=nj))
        lam_new = float(min(max(s0 / max(tau2, 1e-12), MIN_SHRINKAGE), 1e6))
        if np.allclose(w_new, w, atol=1e-9) and math.isclose(lam_new, lam, rel_tol=1e-9):
            break
        w, lam = w_new, lam_new
    return OffsetFit(
        quality=pd.Series(q, index=entries),
        offset=pd.Series(b, index=judges),
        weight=pd.Series(w, index=judges),
        residual_sd=pd.Series(np.sqrt(s2), index=judges),
        shrinkage=lam,
    )


def trimmed_mean(values: Sequence[float], fraction: float, min_count: int) -> float:
    """Mean after cutting ``floor(fraction × n)`` values from each end, when ``n >= min_count``."""
    ordered = sorted(values)
    n = len(ordered)
    cut = math.floor(fraction * n) if n >= min_count else 0
    kept = ordered[cut : n - cut] if n - 2 * cut > 0 else ordered
    return float(np.mean(kept))


def krippendorff_alpha(matrix: np.ndarray) -> float | None:
    """Krippendorff's alpha with the interval metric for a judges × entries matrix with NaN where a judge
    did not score an entry. Entries with fewer than two scores carry no pairs and are left out.

    ``alpha = 1 - D_o / D_e`` with the observed disagreement ``D_o`` inside entries and the expected one
    ``D_e`` over all pairable values; None when nothing is pairable or the values do not vary.
    """
    data = np.asarray(matrix, dtype=float)
    counts = np.sum(~np.isnan(data), axis=0)
    units = data[:, counts >= 2]
    m = counts[counts >= 2].astype(float)
    n = float(m.sum())
    if n <= 1:
        return None
    sums = np.nansum(units, axis=0)
    squares = np.nansum(units**2, axis=0)
    # Σ over ordered pairs (i ≠ j) of (v_i - v_j)² inside a unit = 2 m Σv² - 2 (Σv)².
    within = (2 * m * squares - 2 * sums**2) / (m - 1)
    d_o = float(within.sum()) / n
    values = units[~np.isnan(units)]
    d_e = float(2 * n * np.sum(values**2) - 2 * np.sum(values) ** 2) / (n * (n - 1))
    if d_e == 0:
        return None
    return 1.0 - d_o / d_e


def _matrix(scores: pd.DataFrame, column: str) -> np.ndarray:
    matrix: np.ndarray = scores.pivot_table(
        index="judge_id", columns="submission_id", values=column, aggfunc="mean"
    ).to_numpy()
    return matrix


def _received_key(when: datetime | None) -> float:
    """Seconds since the epoch of a receipt time, for sorting; an unknown time sorts last.

    Never ``datetime.max.timestamp()``: on a naive value that is local time, which overflows east of UTC.
    A naive receipt time is UTC (the records store UTC), whatever the machine's time zone.
    """
    if when is None:
        return math.inf
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def _rank_kind(entries: pd.DataFrame, policy: Policy, received: Mapping[str, datetime | None]) -> pd.DataFrame:
    ranked = entries[entries["status"] == "ranked"].copy()
    keys: list[str] = ["_score"]
    ascending: list[bool] = [False]
    ranked["_score"] = ranked["score"].round(PRECISION)
    for rule in policy.tie_break:
        if rule == "higher_median":
            ranked["_median"] = ranked["median"].round(PRECISION)
            keys.append("_median")
            ascending.append(False)
        elif rule == "more_scores":
            keys.append("n_scores")
            ascending.append(False)
        elif rule == "earlier_received":
            ranked["_received"] = [_received_key(received.get(s)) for s in ranked["submission_id"]]
            keys.append("_received")
            ascending.append(True)
    keys.append("submission_id")
    ascending.append(True)
    ranked = ranked.sort_values(keys, ascending=ascending, kind="mergesort")
    ranked["rank"] = range(1, len(ranked) + 1)
    dup = ranked["_score"].duplicated(keep=False)
    ranked["tied"] = dup
    return ranked.drop(columns=[c for c in ranked.columns if c.startswith("_")])


def _judge_stats(scores: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (kind, judge), group in scores.groupby(["kind", "judge_id"], sort=True):
        others = scores[(scores["kind"] == kind) & (scores["judge_id"] != judge)]
        consensus = others.groupby("submission_id")[["weighted", "normalised"]].mean()
        shared = group.join(consensus, on="submission_id", rsuffix="_others").dropna(subset=["weighted_others"])
        severity = float((shared["weighted"] - shared["weighted_others"]).mean()) if len(shared) else None
        deviation = (
            float(np.sqrt(((shared["normalised"] - shared["normalised_others"]) ** 2).mean())) if len(shared) else None
        )
        correlation = None
        if len(shared) >= 3 and shared["normalised"].std() > 0 and shared["normalised_others"].std() > 0:
            correlation = float(np.corrcoef(shared["normalised"], shared["normalised_others"])[0, 1])
        rows.append(
            {
                "kind": kind,
                "judge_id": judge,
                "n": len(group),
                "raw_mean": float(group["weighted"].mean()),
                "raw_sd": float(group["weighted"].std(ddof=1)) if len(group) > 1 else 0.0,
                "severity": severity,
                "deviation": deviation,
                "correlation": correlation,
            }
        )
    return pd.DataFrame(
        rows, columns=["kind", "judge_id", "n", "raw_mean", "raw_sd", "severity", "deviation", "correlation"]
    )


def aggregate(
    scores: pd.DataFrame,
    *,
    ranges: Mapping[str, tuple[float, float]],
    policy: Policy,
    received: Mapping[str, datetime | None],
    entries: Mapping[str, str] | None = None,
) -> Result:
    """Rank the entries of one round from ``scores`` (columns :data:`SCORE_COLUMNS`).

    ``entries`` (id → kind) lists every entry of the round, so that one nobody scored is listed too;
    ``received`` gives receipt times for the ``earlier_received`` tie-break.
    """
    missing = [c for c in SCORE_COLUMNS if c not in scores.columns]
    if missing:
        raise ValueError(f"scores lack column(s) {missing}")
    if scores.duplicated(["judge_id", "submission_id"]).any():
        raise ValueError("a judge scored an entry twice")
    if policy.estimator not in ("offsets", "trimmed_mean"):
        raise ValueError(f"unknown estimator {policy.estimator!r}")
    scored = normalise(scores.reset_index(drop=True), ranges, policy.normalise)
    quality: dict[str, float] = {}
    down_weighted: list[str] = []
    if policy.estimator == "offsets":
        for kind, group in scored.groupby("kind", sort=True):
            fit = fit_offsets(group["judge_id"].tolist(), group["submission_id"].tolist(), group["weighted"].tolist())
            lo, hi = ranges[str(kind)]
            adjusted = group["weighted"].astype(float) - group["judge_id"].astype(str).map(fit.offset)
            scored.loc[group.index, "normalised"] = adjusted.clip(lo, hi)
            quality.update({str(k): float(v) for k, v in fit.quality.items()})
            down_weighted += [f"{jid}（{w:.2f}）" for jid, w in fit.weight.items() if w < 0.5]
    rows = []
    for sid, group in scored.groupby("submission_id", sort=True):
        values = group["normalised"].astype(float).tolist()
        n = len(values)
        rows.append(
            {
                "submission_id": sid,
                "kind": group["kind"].iloc[0],
                "n_scores": n,
                "score": quality[str(sid)]
                if policy.estimator == "offsets"
                else trimmed_mean(values, policy.trim_fraction, policy.trim_min_scores),
                "raw_mean": float(group["weighted"].mean()),
                "median": float(np.median(values)),
                "status": "ranked" if n >= policy.min_scores else "insufficient",
            }
        )
    for sid, kind in sorted((entries or {}).items()):
        if sid not in set(scored["submission_id"]):
            rows.append(
                {
                    "submission_id": sid,
                    "kind": kind,
                    "n_scores": 0,
                    "score": None,
                    "raw_mean": None,
                    "median": None,
                    "status": "insufficient",
                }
            )
    table = pd.DataFrame(
        rows, columns=["submission_id", "kind", "n_scores", "score", "raw_mean", "median", "status"]
    ).astype({"score": float, "raw_mean": float, "median": float})
    parts = []
    for kind in sorted(table["kind"].unique()):
        mine = table[table["kind"] == kind]
        ranked = _rank_kind(mine, policy, received)
        rest = mine[mine["status"] != "ranked"].sort_values("submission_id").assign(rank=None, tied=False)
        parts.extend([ranked, rest])
    ranking = pd.concat(parts, ignore_index=True) if parts else table.assign(rank=None, tied=False)

    agreement: dict[str, dict[str, Any]] = {}
    for kind, group in scored.groupby("kind", sort=True):
        raw = _matrix(group, "weighted")
        norm = _matrix(group, "normalised")
        pairable = int((np.sum(~np.isnan(raw), axis=0) >= 2).sum())
        agreement[str(kind)] = {
            "alpha_raw": krippendorff_alpha(raw),
            "alpha_normalised": krippendorff_alpha(norm),
            "judges": int(raw.shape[0]),
            "entries": int(raw.shape[1]),
            "pairable_entries": pairable,
            "scores": int(np.sum(~np.isnan(raw))),
        }
    notes = []
    insufficient = ranking[ranking["status"] == "insufficient"]
    if len(insufficient):
        notes.append(
            f"{len(insufficient)} 件作品评分不足 {policy.min_scores} 份，列出但不排名 · {len(insufficient)} entries have "
            f"fewer than {policy.min_scores} scores: listed, not ranked"
        )
    if down_weighted:
        notes.append(
            f"评分与其他评委差异很大、权重降低的评委（权重）：{'、'.join(down_weighted)} · judges whose scores "
            "disagree far more than the others' and count for less (weight in brackets)"
        )
    return Result(scored, ranking, agreement, _judge_stats(scored), notes)


def cutoff_bands(ranking: pd.DataFrame, cutoffs: Sequence[tuple[str, str, int]], band: int) -> pd.DataFrame:
    """Entries ranked within ``band`` of each cut-off, for a second look.

    ``cutoffs`` holds (award, kind, N): the last rank that gets the award. ``gap`` is the entry's score
    minus the midpoint between rank N and N+1 (positive: inside the award).
    """
    rows = []
    for award, kind, cut in cutoffs:
        mine = ranking[(ranking["kind"] == kind) & ranking["rank"].notna()].sort_values("rank")
        if mine.empty or cut <= 0:
            continue
        scores = mine.set_index("rank")["score"]
        inside = scores.get(cut)
        outside = scores.get(cut + 1)
        line = (
            (float(inside) + float(outside)) / 2
            if inside is not None and outside is not None
            else float(inside if inside is not None else scores.iloc[-1])
        )
        near = mine[(mine["rank"] >= cut - band + 1) & (mine["rank"] <= cut + band)]
        for r in near.itertuples():
            rows.append(
                {
                    "award": award,
                    "kind": kind,
                    "cutoff": cut,
                    "rank": int(r.rank),
                    "submission_id": r.submission_id,
                    "score": float(r.score),
                    "gap": float(r.score) - line,
                    "inside": int(r.rank) <= cut,
                }
            )
    return pd.DataFrame(rows, columns=["award", "kind", "cutoff", "rank", "submission_id", "score", "gap", "inside"])
