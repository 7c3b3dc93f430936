"""Synthetic judging data: a campaign scaled to a small panel, entries with a known true quality, a roster,
and judges who fill in their sheets (some of them harsh or lenient) — for the judging tests."""

from __future__ import annotations

import io
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from kepu.config import DEFAULT_CAMPAIGN_FILE, Settings, load_settings
from kepu.db.judging_records import JudgeRecord
from kepu.db.repository import Records, SubmissionRecord

PROVINCES = ("北京市", "上海市", "广东省", "四川省", "湖北省", "浙江省", "江苏省", "陕西省")
CATEGORIES = ("物理", "生物", "天文", "化学")


def write_campaign(dest: Path, **judging: Any) -> Path:
    """The 2022 campaign with its judging numbers scaled to a small synthetic panel.

    Defaults: 3 judges per entry, 2 linking entries, 6 excellent videos, 2 excellent accounts, 2 best videos
    among the 4 best of the first round. ``judging`` overrides keys of the ``judging`` section.
    """
    data = yaml.safe_load(DEFAULT_CAMPAIGN_FILE.read_text(encoding="utf-8"))
    j = data["judging"]
    first = next(s for s in j["stages"] if s["key"] == "first_round")
    final = next(s for s in j["stages"] if s["key"] == "final_round")
    first.update(min_judges_per_entry=3, linking_set=2, min_scores=2)
    final.update(min_scores=3, entrants={"video": 4})
    j["awards"] = {"excellent_videos": 6, "excellent_accounts": 2, "best_videos": 2}
    j["cutoff_band"] = 2
    j["aggregation"]["trim_min_scores"] = 5
    for key, value in judging.items():
        j[key] = value
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return dest


#: One portal key for every test installation, as one deployment shares one: sheets (which carry the judges'
#: portal links) of two installations with the same inputs are then byte-identical.
PORTAL_SECRET = "portal-test-secret-0123456789abcdef"


def settings_for(tmp: Path, campaign_file: Path, extra: dict[str, str] | None = None) -> Settings:
    return load_settings(
        {
            "KEPU_HOME": str(tmp / "kepu"),
            "KEPU_CAMPAIGN_FILE": str(campaign_file),
            "KEPU_PORTAL_SECRET": PORTAL_SECRET,
            **(extra or {}),
        }
    )


@dataclass
class Panel:
    """Entries with their true quality and the judges who score them."""

    entries: dict[str, dict[str, Any]]
    judges: list[JudgeRecord]
    truth: dict[str, float]
    bias: dict[str, float] = field(default_factory=dict)


def seed_entries(
    records: Records,
    campaign_id: str,
    *,
    videos: int = 16,
    accounts: int = 6,
    review: Iterable[int] = (),
    fail: Iterable[int] = (),
    seed: int = 7,
) -> dict[str, dict[str, Any]]:
    """Checked submissions: ``videos`` + ``accounts`` entries spread over the provinces and a few units.

    Entries whose index is in ``review``/``fail`` get that automated verdict; the others pass.
    """
    rng = random.Random(seed)
    records.upsert_campaign(campaign_id, "2022年青少年科技教育活动主题微视频征集", "sha-test")
    review, fail = set(review), set(fail)
    base = datetime(2022, 10, 1, 8, 0, tzinfo=UTC)
    out: dict[str, dict[str, Any]] = {}
    for i in range(videos + accounts):
        kind = "video" if i < videos else "account"
        sid = f"E{i:03d}"
        province = PROVINCES[i % len(PROVINCES)]
        unit = f"{province}科技馆{i % 3}"
        category = CATEGORIES[rng.randrange(len(CATEGORIES))]
        verdict = "fail" if i in fail else "review" if i in review else "pass"
        records.upsert_submission(
            SubmissionRecord(
                id=sid,
                campaign_id=campaign_id,
                kind=kind,
                source_name=f"{province}+{unit}+作品{i}",
                source_uri=f"file:///inbox/{sid}",
                fingerprint=f"fp-{sid}",
                title=f"{'科普号' if kind == 'account' else '作品'}{i}",
                province=province,
                unit=unit,
                received_at=base + timedelta(hours=i),
                verdict=verdict,
                status="checked",
            )
        )
        field_name = "类别（专业领域）" if kind == "video" else "专业领域"
        records.set_details(sid, {"form": {field_name: category}, "synopsis": f"第 {i} 号作品的简介。"})
        out[sid] = {"kind": kind, "province": province, "unit": unit, "category": category, "verdict": verdict}
    return out


def make_judges(n: int = 8, *, provinces: Iterable[str] | None = None) -> list[JudgeRecord]:
    provs = list(provinces or PROVINCES)
    return [
        JudgeRecord(
            id=f"J{j:02d}",
            name=f"评委{j:02d}",
            unit=f"{provs[j % len(provs)]}大学{j}",
            province=provs[j % len(provs)],
            expertise=(CATEGORIES[j % len(CATEGORIES)],),
        )
        for j in range(n)
    ]


def write_roster(path: Path, judges: list[JudgeRecord]) -> Path:
    from kepu.judging.roster import write_roster_csv

    return write_roster_csv(judges, path)


def pass_gates(records: Records, campaign_id: str, ids: Iterable[str], actor: str = "张审核") -> None:
    """Every ``review`` entry passes formal review and every entry passes compliance."""
    for sid in ids:
        sub = records.get_submission(sid)
        assert sub is not None
        if sub.verdict == "fail":
            continue
        if sub.verdict == "review":
            records.record_review_decision(campaign_id, sid, "formal_review", "pass", actor, "人工复核：警告可接受")
        records.record_review_decision(campaign_id, sid, "compliance", "pass", actor, "内容合规")


Scorer = Callable[[str, str, str], Any]


def truthful(
    truth: dict[str, float], bias: dict[str, float] | None = None, noise: float = 0.4, seed: int = 1
) -> Scorer:
    """A judge who scores every criterion near the entry's true quality, shifted by their bias."""
    rng = random.Random(seed)
    bias = bias or {}

    def score(judge_id: str, submission_id: str, criterion: str) -> float:
        value = truth[submission_id] + bias.get(judge_id, 0.0) + rng.gauss(0, noise)
        return max(0.0, min(10.0, round(value * 2) / 2))

    return score


def fill_sheet(data: bytes, scorer: Scorer, *, comment: str | None = "好") -> bytes:
    """A judge's returned sheet: every criterion cell filled by ``scorer(judge, entry, criterion)``."""
    from openpyxl import load_workbook

    from kepu.judging.sheets import COMMENT_KEY, FIRST_ROW, FIXED_KEYS, JUDGE_ID_CELL, KEY_ROW, MARKER

    wb = load_workbook(io.BytesIO(data))
    for ws in wb.worksheets:
        marker = str(ws.cell(row=KEY_ROW, column=1).value or "")
        if not marker.startswith(MARKER):
            continue
        judge = str(ws[JUDGE_ID_CELL].value)
        keys = [str(c.value or "") for c in ws[KEY_ROW]]
        sid_col = keys.index("submission_id") + 1
        for r in range(FIRST_ROW, ws.max_row + 1):
            sid = ws.cell(row=r, column=sid_col).value
            if not sid:
                continue
            for col, key in enumerate(keys, start=1):
                if key == COMMENT_KEY and comment:
                    ws.cell(row=r, column=col, value=comment)
                elif key and key not in FIXED_KEYS and key != COMMENT_KEY and not key.startswith(MARKER):
                    ws.cell(row=r, column=col, value=scorer(judge, str(sid), key))
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def edit_sheet(data: bytes, edit: Callable[[Any], None]) -> bytes:
    """Apply ``edit(workbook)`` to a sheet's bytes (a judge's mistake, for the rejection tests)."""
    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(data))
    edit(wb)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def cell_of(ws: Any, submission_id: str, key: str) -> Any:
    """The cell of ``key`` (a criterion, ``comment``, …) in the row of ``submission_id``."""
    from kepu.judging.sheets import FIRST_ROW, KEY_ROW

    keys = [str(c.value or "") for c in ws[KEY_ROW]]
    sid_col = keys.index("submission_id") + 1
    for r in range(FIRST_ROW, ws.max_row + 1):
        if ws.cell(row=r, column=sid_col).value == submission_id:
            return ws.cell(row=r, column=keys.index(key) + 1)
    raise KeyError(submission_id)
