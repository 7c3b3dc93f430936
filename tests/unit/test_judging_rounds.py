"""Judging rounds on the embedded default (SQLite records, a local store): gates, byte-identical sheets,
returned sheets validated with Great Expectations, corrections, the ranking export and the release."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from judging_factory import (
    cell_of,
    edit_sheet,
    fill_sheet,
    make_judges,
    pass_gates,
    seed_entries,
    settings_for,
    truthful,
    write_campaign,
    write_roster,
)
from kepu.context import Context, open_context
from kepu.db.repository import MaterialRecord
from kepu.errors import JudgingError
from kepu.judging import keys, steps
from kepu.judging.review import decide, decision_sheet, gate_statuses, import_decisions
from kepu.storage import export_key

pytestmark = pytest.mark.unit

CID = "2022"
R1 = "first_round"


def context(tmp: Path, **judging: Any) -> Context:
    settings = settings_for(tmp, write_campaign(tmp / "campaign.yaml", **judging))
    return open_context(settings, migrate=True)


def ready(tmp: Path, *, judges: int = 6, **seed_kw: Any) -> tuple[Context, dict[str, dict[str, Any]]]:
    """Entries past every gate and a roster loaded."""
    ctx = context(tmp)
    entries = seed_entries(ctx.records, CID, videos=12, accounts=4, **seed_kw)
    steps.load_roster(ctx, str(write_roster(tmp / "评委名单.csv", make_judges(judges))))
    pass_gates(ctx.records, CID, entries)
    return ctx, entries


def issued(ctx: Context, stage: str = R1) -> dict[str, bytes]:
    out = {}
    for jid in steps.round_judges(ctx, stage):
        key = next(k for k in ctx.store.list_keys(keys.round_prefix(CID, stage) + "sheets/") if f"-{jid}-" in k)
        with ctx.store.open_local(key) as path:
            out[jid] = path.read_bytes()
    return out


def hand_in(ctx: Context, name: str, data: bytes, stage: str = R1) -> str:
    key = keys.returned_prefix(CID, stage) + name
    ctx.store.put_bytes(key, data)
    return key


TRUTH = {f"E{i:03d}": 3.0 + (i * 7 % 13) / 2 for i in range(40)}


# --- gates ------------------------------------------------------------------------------------------------


def test_gates_decide_who_enters_the_first_round(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    seed_entries(ctx.records, CID, videos=6, accounts=2, review=[1, 2], fail=[3])
    steps.load_roster(ctx, str(write_roster(tmp_path / "r.csv", make_judges(6))))
    # Nothing decided yet: the round refuses to start and names who waits for what.
    with pytest.raises(JudgingError) as info:
        steps.prepare_round(ctx, R1)
    assert "wait for a decision" in str(info.value)
    waiting = {p.split()[0]: p.split(": ")[-1] for p in info.value.problems}
    assert waiting["E001"] == "formal_review" and waiting["E000"] == "compliance" and "E003" not in waiting

    # A failing entry is put right at intake, never at formal review.
    with pytest.raises(JudgingError, match="automated verdict is fail"):
        decide(ctx.records, ctx.campaign, "E003", "formal_review", "通过", "张审核", "看过了")
    # Compliance needs the formal review first.
    with pytest.raises(JudgingError, match="has not passed formal_review"):
        decide(ctx.records, ctx.campaign, "E001", "compliance", "pass", "张审核", "内容合规")
    with pytest.raises(ValueError, match="who made it and why"):
        decide(ctx.records, ctx.campaign, "E001", "formal_review", "pass", "张审核", " ")

    # The decisions sheet lists what is pending; filled in and read back, it records who, when, why.
    template = tmp_path / "decisions.xlsx"
    template.write_bytes(decision_sheet(ctx.records, ctx.campaign))
    wb = load_workbook(template)
    ws = wb.active
    rows = list(ws.iter_rows(min_row=2))
    assert sorted((r[0].value, r[4].value) for r in rows) == sorted(
        [("E001", "formal_review"), ("E002", "formal_review")] + [(f"E{i:03d}", "compliance") for i in (0, 4, 5, 6, 7)]
    )
    for r in rows:
        r[7].value = "不通过" if (r[0].value, r[4].value) == ("E002", "formal_review") else "通过"
        r[8].value, r[9].value = "张审核", "复核完毕"
    wb.save(template)
    assert import_decisions(ctx.records, ctx.campaign, template).recorded == {"new": 7, "changed": 0, "unchanged": 0}
    # The compliance of E001 could only be decided once its formal review passed: a second sheet.
    template.write_bytes(decision_sheet(ctx.records, ctx.campaign))
    wb = load_workbook(template)
    (row,) = list(wb.active.iter_rows(min_row=2))
    assert (row[0].value, row[4].value) == ("E001", "compliance")
    row[7].value, row[8].value, row[9].value = "不通过", "李审核", "内容不符合要求"
    wb.save(template)
    import_decisions(ctx.records, ctx.campaign, template)
    assert import_decisions(ctx.records, ctx.campaign, template).recorded["unchanged"] == 1  # again: nothing new

    states = {s.entry.id: s for s in gate_statuses(ctx.records, ctx.campaign)}
    assert [sid for sid, s in sorted(states.items()) if s.eligible] == ["E000", "E004", "E005", "E006", "E007"]
    decisions = {(d["submission_id"], d["stage"]): d for d in ctx.records.list_review_decisions(CID)}
    assert decisions["E001", "compliance"]["actor"] == "李审核" and decisions["E001", "compliance"]["at"].tzinfo
    audit = [a for a in ctx.records.list_audit("submission", "E001")]
    assert [a["action"] for a in audit] == ["formal_review.decided", "compliance.decided"]
    summary = steps.prepare_round(ctx, R1)
    assert summary["entries"] == 5 and summary["result"] == "new"


# --- sheets ----------------------------------------------------------------------------------------------------


def test_same_seed_same_sheets_byte_for_byte(tmp_path: Path) -> None:
    ctx, _ = ready(tmp_path / "a")
    first = steps.prepare_round(ctx, R1, seed=42)
    sheets = steps.write_sheets(ctx, R1)["sheets"]
    # A rerun changes nothing; a fresh installation with the same inputs writes the very same bytes.
    assert steps.prepare_round(ctx, R1)["result"] == "unchanged"
    assert steps.write_sheets(ctx, R1)["sheets"] == sheets
    other, _ = ready(tmp_path / "b")
    steps.prepare_round(other, R1, seed=42)
    again = steps.write_sheets(other, R1)["sheets"]
    assert {j: s["sha256"] for j, s in again.items()} == {j: s["sha256"] for j, s in sheets.items()}
    assert {Path(s["key"]).name for s in again.values()} == {Path(s["key"]).name for s in sheets.values()}

    # Another seed is another assignment: refused unless reassign is asked for (no score is in yet).
    with pytest.raises(JudgingError, match="set reassign"):
        steps.prepare_round(ctx, R1, seed=43)
    changed = steps.prepare_round(ctx, R1, seed=43, reassign=True)
    assert changed["result"] == "changed" and changed["assignment_sha256"] != first["assignment_sha256"]
    assert [a["action"] for a in ctx.records.list_audit("round")] == ["round.reassigned"]

    # What a judge opens: protected sheet, one cell per criterion with the rubric's range, links.
    data = issued(ctx)["J00"]
    wb = load_workbook(io.BytesIO(data))
    ws = wb["微视频评分 Video scores"]
    assert ws.protection.sheet and ws["B2"].value == "J00" and ws["D2"].value == "评委00"
    ranges = {(dv.formula1, dv.formula2) for dv in ws.data_validations.dataValidation}
    assert ranges == {("0", "10")} and len(ws.data_validations.dataValidation) == 6
    first_row = [c.value for c in ws[5]]
    assert first_row[1].startswith("E") and first_row[5].startswith("第")  # id and synopsis
    assert "科学性" in str(ws.cell(row=4, column=7).value) and "25%" in str(ws.cell(row=4, column=7).value)

    # The watch link is the 1080p publication copy when there is one, else the video as received.
    base = "campaigns/2022/submissions/E000"
    ctx.records.replace_materials(
        "E000",
        [
            MaterialRecord("video", "原片.mp4", f"{base}/video/原片.mp4", "0" * 64, 10),
            MaterialRecord("rendition", "E000-720p.mp4", f"{base}/rendition/E000-720p.mp4", "1" * 64, 10),
            MaterialRecord("rendition", "E000-1080p.mp4", f"{base}/rendition/E000-1080p.mp4", "2" * 64, 10),
            MaterialRecord("synopsis", "简介.txt", f"{base}/synopsis/简介.txt", "3" * 64, 10),
        ],
    )
    steps.write_sheets(ctx, R1)
    holder = next(r.judge_id for r in ctx.records.list_assignments(CID, R1) if r.submission_id == "E000")
    ws = load_workbook(io.BytesIO(issued(ctx)[holder]))["微视频评分 Video scores"]
    assert cell_of(ws, "E000", "watch").hyperlink.target == ctx.store.uri(f"{base}/rendition/E000-1080p.mp4")
    assert cell_of(ws, "E000", "synopsis").hyperlink.target == ctx.store.uri(f"{base}/synopsis/简介.txt")


# --- returned sheets ------------------------------------------------------------------------------------------


def test_bad_sheets_are_rejected_with_their_reasons_and_the_others_count(tmp_path: Path) -> None:
    ctx, entries = ready(tmp_path)
    steps.prepare_round(ctx, R1)
    steps.write_sheets(ctx, R1)
    sheets = issued(ctx)
    scorer = truthful(TRUTH)
    good = {jid: fill_sheet(data, scorer) for jid, data in sheets.items()}
    round_rows = ctx.records.list_assignments(CID, R1)
    mine = {j: {r.submission_id for r in round_rows if r.judge_id == j} for j in sheets}
    foreign = next(sid for sid in sorted(entries) if sid not in mine["J01"] and entries[sid]["kind"] == "video")

    def unassigned(wb: Any) -> None:  # J01 swaps one of their videos for an entry they were not given
        ws = wb["微视频评分 Video scores"]
        ws.cell(row=5, column=2, value=foreign)

    def out_of_range(wb: Any) -> None:
        ws = wb["微视频评分 Video scores"]
        ws.cell(row=6, column=7, value=12)

    def missing(wb: Any) -> None:
        ws = wb["科普号评分 Account scores"]
        ws.cell(row=5, column=8).value = None

    def relabelled(wb: Any) -> None:  # J04's sheet sent in as J05's
        for ws in wb.worksheets[1:]:
            ws["B2"], ws["D2"] = "J05", "评委05"

    hand_in(ctx, "J00.xlsx", good["J00"])
    hand_in(ctx, "J01.xlsx", edit_sheet(good["J01"], unassigned))
    hand_in(ctx, "J02.xlsx", edit_sheet(good["J02"], out_of_range))
    hand_in(ctx, "J03.xlsx", edit_sheet(good["J03"], missing))
    hand_in(ctx, "J05.xlsx", edit_sheet(good["J04"], relabelled))
    hand_in(ctx, "notes.xlsx", b"not a workbook")
    summary = steps.ingest_sheets(ctx, R1)
    assert [a["judge"] for a in summary["accepted"]] == ["J00"]
    assert len(summary["rejected"]) == 5 and summary["judges_missing"] == ["J01", "J02", "J03", "J04", "J05"]

    reasons = {s.object_key.rsplit("/", 1)[-1]: s.problems for s in ctx.records.list_sheets(CID, R1)}
    (p,) = [p for p in reasons["J01.xlsx"] if p["check"] == "unassigned"]
    assert p["row"] == 5 and p["submission_id"] == foreign
    assert p["zh"] == f"第 5 行：作品 {foreign} 未分配给该评委" and "not assigned to this judge" in p["en"]
    assert any(q["check"] == "missing_entries" for q in reasons["J01.xlsx"])  # the swapped-out video
    (p,) = reasons["J02.xlsx"]
    assert p["check"] == "range" and p["criterion"] == "scientific" and p["value"] == "12"
    assert "“科学性” 12 超出 0–10" in p["zh"] and "is outside 0–10" in p["en"]
    (p,) = reasons["J03.xlsx"]
    assert p["check"] == "blank" and p["criterion"] == "method_spirit" and "未评分" in p["zh"]
    # J04's sheet under J05's name: the code gives it away first, then the entries J05 never had.
    assert (
        reasons["J05.xlsx"][0]["check"] == "code" and "not the one issued to judge J05" in reasons["J05.xlsx"][0]["en"]
    )
    assert {q["check"] for q in reasons["J05.xlsx"]} <= {"code", "unassigned", "missing_entries"}
    assert [q["check"] for q in reasons["notes.xlsx"]] == ["unreadable"]

    # Every sheet is kept exactly as received, under its checksum.
    for sheet in ctx.records.list_sheets(CID, R1):
        with ctx.store.open_local(sheet.archive_key) as path, ctx.store.open_local(sheet.object_key) as orig:
            assert path.read_bytes() == orig.read_bytes()
        assert sheet.archive_key.endswith(f"received/{sheet.sha256}.xlsx")

    # The good sheet still counts: its entries have one score each, listed but not ranked yet.
    assert steps.aggregate_round(ctx, R1)["insufficient"] == 16

    # The others are corrected and handed in; the rejected files are still there and change nothing.
    counts = ctx.records.table_counts()
    assert steps.ingest_sheets(ctx, R1)["unchanged"] == 6 and ctx.records.table_counts() == counts
    for jid in ("J01", "J02", "J03", "J04", "J05"):
        hand_in(ctx, f"{jid}-更正.xlsx", good[jid])
    again = steps.ingest_sheets(ctx, R1)
    assert len(again["accepted"]) == 5 and again["judges_missing"] == []
    result = steps.aggregate_round(ctx, R1)
    assert result["ranked"] == 16 and result["insufficient"] == 0

    # A corrected sheet replaces the judge's scores; the earlier ones stay, and the change is audited.
    def lower(wb: Any) -> None:
        ws = wb["微视频评分 Video scores"]
        cell_of(ws, ws.cell(row=5, column=2).value, "scientific").value = 0

    before = {(s.judge_id, s.submission_id): s.criteria for s in ctx.records.list_scores(CID, R1)}
    hand_in(ctx, "J00-v2.xlsx", edit_sheet(good["J00"], lower))
    third = steps.ingest_sheets(ctx, R1)
    assert [(a["judge"], a["replaces"] is not None) for a in third["accepted"]] == [("J00", True)]
    after = {(s.judge_id, s.submission_id): s.criteria for s in ctx.records.list_scores(CID, R1)}
    changed = [k for k in after if after[k] != before[k]]
    assert len(changed) == 1 and changed[0][0] == "J00" and after[changed[0]]["scientific"] == 0
    history = ctx.records.list_scores(CID, R1, current_only=False)
    assert len(history) == len(after) + len([k for k in before if k[0] == "J00"])
    statuses = {s.object_key.rsplit("/", 1)[-1]: s.status for s in ctx.records.list_sheets(CID, R1)}
    assert statuses["J00.xlsx"] == "superseded" and statuses["J00-v2.xlsx"] == "accepted"
    (audit,) = ctx.records.list_audit("judge", f"{CID}/{R1}/J00")
    assert audit["action"] == "scores.replaced" and list(audit["detail"]["changed"]) == [changed[0][1]]


def test_two_rounds_a_byte_identical_ranking_and_a_single_release(tmp_path: Path) -> None:
    ctx, _ = ready(tmp_path)
    scorer = truthful(TRUTH, {"J00": -2.0, "J01": 2.0})
    steps.prepare_round(ctx, R1)
    steps.write_sheets(ctx, R1)
    filled = {jid: fill_sheet(data, scorer) for jid, data in issued(ctx).items()}
    for jid, data in filled.items():
        hand_in(ctx, f"{jid}.xlsx", data)
    steps.ingest_sheets(ctx, R1)
    steps.aggregate_round(ctx, R1)
    partial = steps.select_awards(ctx)
    assert not partial["complete"] and "final round is not aggregated yet" in partial["notes"][0]
    with pytest.raises(JudgingError, match="incomplete"):
        steps.release_results(ctx, confirm=CID, actor="李主任")

    final = steps.prepare_round(ctx, "final_round")
    assert final["entries"] == 4 and final["kinds"] == {"video": 4}
    first_ranking = ctx.records.list_ranking(CID, R1)
    top4 = {r.submission_id for r in first_ranking if r.kind == "video" and r.rank is not None and r.rank <= 4}
    assert {r.submission_id for r in ctx.records.list_assignments(CID, "final_round")} == top4
    steps.write_sheets(ctx, "final_round")
    for jid, data in issued(ctx, "final_round").items():
        hand_in(ctx, f"{jid}.xlsx", fill_sheet(data, scorer), stage="final_round")
    steps.ingest_sheets(ctx, "final_round")
    steps.aggregate_round(ctx, "final_round")
    chosen = steps.select_awards(ctx)
    assert chosen["complete"] and chosen["awards"] == {"excellent_video": 6, "excellent_account": 2, "best_video": 2}
    progress = ctx.records.judging_progress(CID)
    assert progress == {
        "stage": "final_round",
        "judges": 6,
        "entries": 4,
        "assigned": progress["assigned"],
        "sheets": 6,
        "scored": 4,
        "complete": True,
    }
    report = steps.write_report(ctx)
    with ctx.store.open_local(export_key(CID, "judging-report.html")) as path:
        page = path.read_text(encoding="utf-8")
    assert report["html"].endswith("judging-report.html") and page.count("<svg") >= 8
    assert "规范化前后" in page and "Krippendorff" in page and "名额线 cut-off" in page

    # The same sheets give the same ranking export, byte for byte, and the same checksum.
    with ctx.store.open_local(export_key(CID, "judging-ranking.xlsx")) as path:
        export = path.read_bytes()
    assert steps.select_awards(ctx)["result"] == "unchanged"
    with ctx.store.open_local(export_key(CID, "judging-ranking.xlsx")) as path:
        assert path.read_bytes() == export
    wb = load_workbook(io.BytesIO(export))
    assert wb.sheetnames[0] == "获奖名单 Awards" and wb["获奖名单 Awards"].max_row == 11

    # Releasing needs the campaign id typed; once released, releasing again does nothing.
    with pytest.raises(JudgingError, match="type the campaign id"):
        steps.release_results(ctx, confirm="yes", actor="李主任")
    first = steps.release_results(ctx, confirm=CID, actor="李主任", reason="评审结束")
    again = steps.release_results(ctx, confirm=f" {CID} ", actor="王主任")
    assert first["released"] and first["status"] == "released"
    assert (
        not again["released"] and again["release_id"] == first["release_id"] and "already released" in again["message"]
    )
    assert len(ctx.records.list_releases(CID)) == 1
    awards = ctx.records.list_awards(CID)
    assert len(awards) == 10 and {a.release_id for a in awards} == {first["release_id"]}
    best = [a for a in awards if a.award == "best_video"]
    assert [a.rank for a in best] == [1, 2] and all(a.kind == "video" and a.title and a.province for a in best)
    excellent = {a.submission_id for a in awards if a.award == "excellent_video"}
    assert {a.submission_id for a in best} <= excellent

    # A corrected sheet changes the ranking after the release: only an explicit, audited re-release.
    def swap(wb: Any) -> None:
        ws = wb["微视频评分 Video scores"]
        for r in range(5, ws.max_row + 1):
            for col in range(7, 13):
                ws.cell(row=r, column=col, value=10 - float(ws.cell(row=r, column=col).value))

    target = next(j for j in filled if any(r.judge_id == j for r in ctx.records.list_assignments(CID, R1)))
    hand_in(ctx, f"{target}-更正.xlsx", edit_sheet(filled[target], swap))
    steps.ingest_sheets(ctx, R1)
    steps.aggregate_round(ctx, R1)
    changed = steps.select_awards(ctx)
    assert changed["ranking_sha256"] != first["ranking_sha256"]
    with pytest.raises(JudgingError, match="set re_release") as refused:
        steps.release_results(ctx, confirm=CID, actor="李主任")
    assert "北京时间" in str(refused.value) and "UTC" not in str(refused.value)
    assert ctx.records.list_awards(CID)[0].ranking_sha256 == first["ranking_sha256"]  # still the released one
    redo = steps.release_results(ctx, confirm=CID, actor="李主任", reason="更正评分表", re_release=True)
    assert redo["status"] == "re-released" and redo["release_id"] == first["release_id"] + 1
    audit = [a for a in ctx.records.list_audit("campaign", CID) if a["action"].startswith("results.")]
    assert [a["action"] for a in audit] == ["results.released", "results.re_released"]
    assert audit[1]["detail"]["previous_sha256"] == first["ranking_sha256"]
    assert {a.release_id for a in ctx.records.list_awards(CID)} == {redo["release_id"]}

    # An intake backfill upstream that changes nothing: every step again, nothing new, nothing released.
    counts = ctx.records.table_counts()
    for stage in (R1, "final_round"):
        assert steps.prepare_round(ctx, stage)["result"] == "kept"
        assert steps.ingest_sheets(ctx, stage)["accepted"] == []
        assert steps.aggregate_round(ctx, stage)["changed"] is False
    assert steps.select_awards(ctx)["result"] == "unchanged"
    assert not steps.release_results(ctx, confirm=CID, actor="李主任")["released"]
    assert ctx.records.table_counts() == counts

    # One that disqualifies a best video (say D-LATE after a corrected receipt time): the judges' sheets stand,
    # the entry is set aside and not ranked, and the new ranking needs an explicit re-release.
    loser = next(a.submission_id for a in ctx.records.list_awards(CID) if a.award == "best_video")
    ctx.records.set_verdict(loser, "fail")
    kept = steps.prepare_round(ctx, R1)
    assert kept["result"] == "kept" and any(loser in n for n in kept["changes"])
    assert steps.aggregate_round(ctx, R1)["withdrawn"] == 1
    steps.aggregate_round(ctx, "final_round")
    assert {r.status for r in ctx.records.list_ranking(CID, R1) if r.submission_id == loser} == {"withdrawn"}
    moved = steps.select_awards(ctx)
    assert moved["complete"] and loser not in {a.submission_id for a in ctx.records.list_awards(CID, released=False)}
    with pytest.raises(JudgingError, match="set re_release"):
        steps.release_results(ctx, confirm=CID, actor="李主任")


def test_release_times_are_shown_in_beijing_time() -> None:
    """The status table and the re-release refusal give the release time as the operator's clock reads it."""
    import datetime as dt

    from kepu.clock import beijing_text
    from kepu.judging.commands import _when

    when = dt.datetime(2022, 12, 20, 16, 30, tzinfo=dt.UTC)
    assert beijing_text(when) == "2022-12-21 00:30"
    assert beijing_text(when.replace(tzinfo=None)) == "2022-12-21 00:30"  # the records' naive UTC
    assert _when(when.isoformat()) == _when(when) == "2022-12-21 00:30"
    assert beijing_text(None) == "" and _when(None) == ""
