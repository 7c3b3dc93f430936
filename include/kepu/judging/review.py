"""The gates before scoring, and who enters each scoring round.

Formal review (形式审查): an entry whose automated verdict is ``pass`` passes, ``fail`` fails (a failing
entry is put right at intake, e.g. by a quota override, never here), and every ``review`` entry waits
for a person's decision, recorded with who, when and why. A person may also fail a ``pass`` entry.
Content compliance (内容合规审查) and any other ``decision`` stage of the campaign: a reviewer's pass or
fail on every entry that passed the stages before it.

Only entries that passed every gate enter the first scoring round; a later round takes the best entries
of the round before it (``entrants`` in the campaign file).
"""

from __future__ import annotations

import csv
import io
import logging
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from kepu.campaign import Campaign, Stage
from kepu.db.repository import Records
from kepu.errors import JudgingError

log = logging.getLogger(__name__)

GateState = Literal["pass", "fail", "pending", "not_reached"]

GATE_LABELS: dict[str, str] = {
    "pass": "通过 pass",
    "fail": "不通过 fail",
    "pending": "待决定 pending",
    "not_reached": "未到此阶段 not reached",
}
_PASS_WORDS = {"pass", "通过", "合格", "是", "yes", "y", "同意", "√", "✓"}
_FAIL_WORDS = {"fail", "不通过", "不合格", "否", "no", "n", "不同意", "×", "✗"}


@dataclass(frozen=True)
class Entry:
    """An entry as judging sees it."""

    id: str
    kind: str
    title: str | None
    unit: str | None
    province: str | None
    category: str | None
    received_at: Any
    source_name: str
    synopsis: str | None = None
    link: str | None = None


@dataclass(frozen=True)
class GateStatus:
    entry: Entry
    verdict: str | None
    #: Stage key → state, in the campaign's order of gates.
    states: dict[str, GateState] = field(default_factory=dict)

    @property
    def eligible(self) -> bool:
        return all(s == "pass" for s in self.states.values())

    @property
    def pending(self) -> list[str]:
        return [k for k, s in self.states.items() if s == "pending"]


def gate_stages(campaign: Campaign) -> list[Stage]:
    return [s for s in campaign.judging.stages if s.type in ("formal_review", "decision")]


def entry_of(row: dict[str, Any]) -> Entry:
    """An :class:`Entry` from a row of :meth:`Records.campaign_rows`."""
    details = row.get("details") or {}
    form = details.get("form") or {}
    category = form.get("类别（专业领域）") or form.get("专业领域") or details.get("category")
    link = form.get("报送材料网盘链接地址")
    return Entry(
        id=row["id"],
        kind=row["kind"],
        title=row.get("title") or details.get("title_form") or details.get("title_folder"),
        unit=row.get("unit") or row.get("entity"),
        province=row.get("province"),
        category=category or None,
        received_at=row.get("received_at"),
        source_name=row.get("source_name") or row["id"],
        synopsis=details.get("synopsis"),
        link=link or None,
    )


def gate_statuses(records: Records, campaign: Campaign) -> list[GateStatus]:
    """Every entry with its state at each gate, in submission id order."""
    decisions = {(d["submission_id"], d["stage"]): d["decision"] for d in records.list_review_decisions(campaign.id)}
    gates = gate_stages(campaign)
    out = []
    for row in records.campaign_rows(campaign.id):
        states: dict[str, GateState] = {}
        reached = True
        for stage in gates:
            decided = decisions.get((row["id"], stage.key))
            state: GateState
            if not reached:
                state = "not_reached"
            elif stage.type == "formal_review":
                verdict = row.get("verdict")
                if verdict == "fail":
                    state = "fail"
                elif verdict is None:
                    state = "pending"  # not checked yet
                elif decided is not None:
                    state = "pass" if decided == "pass" else "fail"
                else:
                    state = "pass" if verdict == "pass" else "pending"
            else:
                state = "pending" if decided is None else ("pass" if decided == "pass" else "fail")
            states[stage.key] = state
            reached = state == "pass"
        out.append(GateStatus(entry_of(row), row.get("verdict"), states))
    return out


def decide(
    records: Records,
    campaign: Campaign,
    submission_id: str,
    stage_key: str,
    decision: str,
    actor: str,
    reason: str,
    *,
    statuses: dict[str, GateStatus] | None = None,
) -> str:
    """Record a person's decision at a gate; return ``new``, ``changed`` or ``unchanged``.

    ``statuses`` (from :func:`gate_statuses`, by id) saves reading the campaign again for each decision
    of a batch; it must be current for the gates before ``stage_key``.
    """
    stage = campaign.judging.stage(stage_key)
    if stage.type not in ("formal_review", "decision"):
        raise JudgingError(f"{stage.key}（{stage.zh}）是评分阶段，不作人工决定 · {stage.key} is scored, not decided")
    word = parse_decision(decision)
    if statuses is None:
        statuses = {s.entry.id: s for s in gate_statuses(records, campaign)}
    status = statuses.get(submission_id)
    if status is None:
        raise JudgingError(f"没有编号为 {submission_id} 的作品 · no submission {submission_id}")
    if stage.type == "formal_review" and status.verdict == "fail":
        raise JudgingError(
            f"{submission_id} 自动检查结论为不合格，不能在形式审查中改判；请在资格审查中处理（如名额调整）· the "
            "automated verdict is fail: put it right at intake (e.g. a quota override), not at formal review"
        )
    if status.states.get(stage.key) == "not_reached":
        before = [k for k, s in status.states.items() if s != "pass" and k != stage.key]
        raise JudgingError(
            f"{submission_id} 尚未通过 {', '.join(before)}，不能进行{stage.zh} · {submission_id} has not passed "
            f"{', '.join(before)} yet"
        )
    result = records.record_review_decision(campaign.id, submission_id, stage.key, word, actor, reason)
    log.info("%s %s: %s by %s (%s) — %s", stage.key, submission_id, word, actor, reason, result)
    return result


def parse_decision(value: object) -> str:
    word = unicodedata.normalize("NFKC", str(value or "")).strip().casefold()
    if word in _PASS_WORDS:
        return "pass"
    if word in _FAIL_WORDS:
        return "fail"
    raise JudgingError(
        f"无法识别的决定“{value}”，请填写“通过”或“不通过” · unknown decision {value!r}: use pass or fail"
    )


def entrants(records: Records, campaign: Campaign, stage: Stage) -> list[Entry]:
    """Who a scoring round judges: every entry past the gates, or the best of the round before.

    The first round refuses to start while an entry still waits for a decision at a gate.
    """
    if stage.type != "scoring":
        raise JudgingError(f"{stage.key}（{stage.zh}）不是评分阶段 · {stage.key} is not a scoring stage")
    previous = campaign.judging.previous_scoring(stage.key)
    if previous is None:
        statuses = [s for s in gate_statuses(records, campaign) if s.entry.kind in stage.kinds]
        pending = [s for s in statuses if s.pending]
        if pending:
            raise JudgingError(
                f"{len(pending)} 件作品尚待人工决定，{stage.zh}不能开始 · {len(pending)} entries still wait for a "
                f"decision; {stage.en} cannot start",
                [f"{s.entry.id} {s.entry.source_name}: {', '.join(s.pending)}" for s in pending],
            )
        chosen = [s.entry for s in statuses if s.eligible]
    else:
        ranking = records.list_ranking(campaign.id, previous.key)
        if not ranking:
            raise JudgingError(
                f"{previous.zh}尚未汇总，{stage.zh}无法确定入围作品 · {previous.en} has not been aggregated: "
                f"{stage.en} has no entrants yet"
            )
        wanted = stage.entrants or {}
        ids = {r.submission_id for r in ranking if r.kind in wanted and r.rank is not None and r.rank <= wanted[r.kind]}
        rows = {r["id"]: r for r in records.campaign_rows(campaign.id)}
        chosen = [entry_of(rows[i]) for i in sorted(ids)]
    if not chosen:
        raise JudgingError(f"{stage.zh}没有参评作品 · {stage.en} has no entries to judge")
    return sorted(chosen, key=lambda e: e.id)


# --- the decisions sheet ------------------------------------------------------------------------------

DECISION_HEADERS = (
    "编号 submission id",
    "报送包 source",
    "作品名称 title",
    "类型 kind",
    "阶段 stage",
    "阶段名称 stage name",
    "需复核的问题 items to look at",
    "决定 decision（通过/不通过）",
    "复核人 reviewer",
    "理由 reason",
)


def pending_items(records: Records, campaign: Campaign) -> list[list[str]]:
    """One row per decision still to take, for :func:`decision_sheet`."""
    warnings: dict[str, list[str]] = {}
    for f in records.list_findings(campaign_id=campaign.id):
        if f.severity == "warning":
            warnings.setdefault(str(f.submission_id), []).append(f"{f.code}：{f.message_zh}")
    stages = {s.key: s for s in gate_stages(campaign)}
    rows = []
    for status in gate_statuses(records, campaign):
        for key in status.pending:
            stage = stages[key]
            if stage.type == "formal_review":
                items = "\n".join(warnings.get(status.entry.id, [])) or "自动检查待复核 automated review"
            else:
                items = "；".join(f"{c.zh}（{c.en}）" for c in campaign.human_checklist)
            e = status.entry
            rows.append([e.id, e.source_name, e.title or "", e.kind, key, f"{stage.zh} {stage.en}", items, "", "", ""])
    return rows


def decision_sheet(records: Records, campaign: Campaign) -> bytes:
    """A workbook listing every decision still to take, with a list to pick 通过/不通过 from."""
    from openpyxl import Workbook
    from openpyxl.worksheet.datavalidation import DataValidation

    from kepu.judging.xlsx import workbook_bytes, write_table

    rows = pending_items(records, campaign)
    wb = Workbook()
    ws = wb.active
    ws.title = "人工决定 Decisions"
    write_table(ws, DECISION_HEADERS, rows, [26, 40, 28, 10, 16, 22, 60, 16, 14, 30])
    if rows:
        dv = DataValidation(type="list", formula1='"通过,不通过"', allow_blank=True)
        dv.error, dv.errorTitle = "请选择“通过”或“不通过” · pick pass or fail", "决定 decision"
        ws.add_data_validation(dv)
        dv.add(f"H2:H{len(rows) + 1}")
    return workbook_bytes(wb, campaign.deadline.at)


@dataclass(frozen=True)
class DecisionImport:
    recorded: dict[str, int]
    skipped_blank: int


def import_decisions(records: Records, campaign: Campaign, path: Path) -> DecisionImport:
    """Record the decisions of a filled decisions sheet (XLSX or CSV); rows without a decision are skipped.

    Every row is checked first: one bad row (unknown entry, stage or decision, no reviewer or reason)
    stops the import with all problems listed, and nothing is recorded.
    """
    table = _read_table(path)
    if not table:
        raise JudgingError(f"{path.name} 是空表 · {path.name} is empty")
    header = [unicodedata.normalize("NFKC", str(c or "")).strip() for c in table[0]]

    def col(*names: str) -> int:
        for i, h in enumerate(header):
            if any(h.startswith(n) or n in h.split() for n in names):
                return i
        raise JudgingError(f"{path.name} 缺少“{names[0]}”列 · {path.name} has no {names[-1]} column")

    c_id, c_stage, c_dec = col("编号", "submission"), col("阶段", "stage"), col("决定", "decision")
    c_by, c_why = col("复核人", "reviewer"), col("理由", "reason")
    stage_names = {s.key: s.key for s in gate_stages(campaign)} | {s.zh: s.key for s in gate_stages(campaign)}
    by_source = {s.source_name: s.id for s in records.list_submissions(campaign.id)}
    planned: list[tuple[str, str, str, str, str]] = []
    problems: list[str] = []
    blank = 0
    for n, raw in enumerate(table[1:], start=2):
        row = [unicodedata.normalize("NFKC", str(c)).strip() if c is not None else "" for c in raw]
        row += [""] * (len(header) - len(row))
        if not row[c_dec]:
            blank += 1
            continue
        sid = row[c_id] if row[c_id] not in by_source else by_source[row[c_id]]
        stage = stage_names.get(row[c_stage].split()[0] if row[c_stage] else "")
        try:
            word = parse_decision(row[c_dec])
        except JudgingError as exc:
            problems.append(f"第 {n} 行 row {n}: {exc}")
            continue
        if stage is None:
            problems.append(f"第 {n} 行：未知阶段“{row[c_stage]}” · row {n}: unknown stage")
        elif not row[c_by] or not row[c_why]:
            problems.append(f"第 {n} 行：须填写复核人和理由 · row {n}: reviewer and reason are required")
        else:
            planned.append((sid, stage, word, row[c_by], row[c_why]))
    if problems:
        raise JudgingError(f"{path.name} 有误，未记录任何决定 · {path.name} has errors; nothing recorded", problems)
    counts = {"new": 0, "changed": 0, "unchanged": 0}
    errors: list[str] = []
    # Gate by gate, so that a compliance decision sees the formal review decided in the same sheet.
    for gate in gate_stages(campaign):
        mine = [p for p in planned if p[1] == gate.key]
        if not mine:
            continue
        statuses = {s.entry.id: s for s in gate_statuses(records, campaign)}
        for sid, stage, word, actor, reason in mine:
            try:
                counts[decide(records, campaign, sid, stage, word, actor, reason, statuses=statuses)] += 1
            except JudgingError as exc:
                errors.append(f"{sid} {stage}: {exc}")
    if errors:
        raise JudgingError(f"{len(errors)} 项决定未记录 · {len(errors)} decision(s) not recorded", errors)
    return DecisionImport(counts, blank)


def _read_table(path: Path) -> list[Sequence[Any]]:
    data = path.read_bytes()
    if path.suffix.lower() == ".csv":
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = data.decode("gb18030")
        return list(csv.reader(io.StringIO(text)))
    from openpyxl import load_workbook

    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds on a damaged file
        raise JudgingError(f"无法读取 {path.name} · cannot read {path.name}: {exc}") from exc
    return [list(r) for r in wb.worksheets[0].iter_rows(values_only=True)]
