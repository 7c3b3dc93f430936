"""Awards from the rankings, and the ranking's checksum.

Each award of the campaign (``excellent_video``, ``excellent_account``, ``best_video``) is decided by the
scoring stage that lists it: the best ``N`` ranked entries of its kind get it, ``N`` from the campaign's
``awards``. An award chosen among another (the 10 best videos among the 200 excellent ones) only goes to
entries holding that one.

:func:`ranking_document` is the canonical form of every stage's ranking and the awards; its SHA-256 is the
*ranking checksum* a release records. It depends on the outcome only (ranks, rounded scores, awards), so
the same sheets always give the same checksum, and a re-saved but identical sheet does not count as a
change.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kepu.campaign import AWARD_SPECS, Campaign
from kepu.db.judging_records import AwardRow, RankingRow

DECIMALS = 6


@dataclass(frozen=True)
class Selection:
    awards: list[AwardRow]
    notes: list[str]
    complete: bool
    document: dict[str, Any]

    @property
    def ranking_sha256(self) -> str:
        return hashlib.sha256(canonical_json(self.document)).hexdigest()


def canonical_json(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def _q(x: float | None) -> float | None:
    return None if x is None else round(float(x), DECIMALS)


def ranking_document(
    campaign_id: str, rankings: Mapping[str, Sequence[RankingRow]], awards: Sequence[AwardRow]
) -> dict[str, Any]:
    return {
        "campaign": campaign_id,
        "stages": {
            stage: [
                [r.submission_id, r.kind, r.status, r.rank, _q(r.score), r.n_scores]
                for r in sorted(rows, key=lambda r: (r.kind, r.rank is None, r.rank or 0, r.submission_id))
            ]
            for stage, rows in sorted(rankings.items())
        },
        "awards": [[a.award, a.submission_id, a.stage, a.rank, _q(a.score)] for a in awards],
    }


def select_awards(
    campaign: Campaign,
    rankings: Mapping[str, Sequence[RankingRow]],
    entrants: Mapping[str, set[str]] | None = None,
) -> Selection:
    """The awards the rankings give, with notes an operator must read, and whether they are complete.

    ``rankings`` maps each aggregated stage to its ranking; ``entrants`` (stage → entries assigned) lets
    the notes say when a later round's entrants are no longer the best of the round before. Results are
    complete when every award's stage is ranked and no entry of it lacks scores.
    """
    notes: list[str] = []
    complete = True
    chosen: dict[str, list[AwardRow]] = {}
    for award, (kind, _field, among) in AWARD_SPECS.items():
        count = campaign.judging.awards.count(award)
        stage = campaign.judging.award_stage(award)
        if stage is None or count == 0:
            continue
        rows = rankings.get(stage.key) or []
        if not rows:
            complete = False
            notes.append(
                f"{stage.zh}尚未汇总，{_label(award)[0]}未评出 · {stage.en} is not aggregated yet: no "
                f"{_label(award)[1]}"
            )
            continue
        mine = [r for r in rows if r.kind == kind]
        short = [r for r in mine if r.status == "insufficient"]
        if short:
            complete = False
            notes.append(
                f"{stage.zh}有 {len(short)} 件{campaign.kinds[kind].label_zh}评分不足，未排名：{'、'.join(r.submission_id for r in short[:20])}"
                f" · {len(short)} {kind} entries of the {stage.en} lack scores and are not ranked"
            )
        ranked = sorted((r for r in mine if r.rank is not None), key=lambda r: r.rank or 0)
        if among is not None:
            holders = {a.submission_id for a in chosen.get(among, [])}
            outside = [r.submission_id for r in ranked[:count] if r.submission_id not in holders]
            if outside:
                notes.append(
                    f"{stage.zh}前 {count} 名中有作品不在{_label(among)[0]}之列，已跳过：{'、'.join(outside)} · "
                    f"entries among the top {count} of the {stage.en} without {among} were passed over"
                )
            ranked = [r for r in ranked if r.submission_id in holders]
        picked = ranked[:count]
        if len(picked) < count:
            notes.append(
                f"{_label(award)[0]}名额 {count} 个，只有 {len(picked)} 件作品可评 · {count} {_label(award)[1]} "
                f"planned, {len(picked)} entries ranked"
            )
        chosen[award] = [
            AwardRow(award, r.submission_id, stage.key, int(r.rank or 0), float(r.score or 0.0)) for r in picked
        ]
    for stage in campaign.judging.scoring_stages:
        previous = campaign.judging.previous_scoring(stage.key)
        if previous is None or not stage.entrants or entrants is None or stage.key not in entrants:
            continue
        best = {
            r.submission_id
            for r in rankings.get(previous.key) or []
            if r.rank is not None and r.kind in stage.entrants and r.rank <= stage.entrants[r.kind]
        }
        if best and best != entrants[stage.key]:
            gone = sorted(entrants[stage.key] - best)
            new = sorted(best - entrants[stage.key])
            notes.append(
                f"{stage.zh}入围作品与当前{previous.zh}排名不一致（已不在前列：{'、'.join(gone) or '—'}；新进入前列：{'、'.join(new) or '—'}）· "
                f"the {stage.en} entrants are no longer the top of the {previous.en}"
            )
    awards = [a for award in AWARD_SPECS for a in chosen.get(award, [])]
    return Selection(awards, notes, complete, ranking_document(campaign.id, rankings, awards))


AWARD_LABELS: dict[str, tuple[str, str]] = {
    "excellent_video": ("优秀作品", "excellent videos"),
    "excellent_account": ("优秀科普号", "excellent accounts"),
    "best_video": ("最佳作品（推荐创作之星）", "best videos"),
}


def _label(award: str) -> tuple[str, str]:
    return AWARD_LABELS.get(award, (award, award))
