"""The judging steps, one function per DAG task (and per ``kepu judging`` command).

Like the intake steps, they take a :class:`~kepu.context.Context` and ids, and return small JSON-ready
summaries: sheets, rankings and reports live in the object store and the records, never in XCom. Every
step can run again: the same inputs leave the records and the store as they were.

A problem an operator must fix (no roster, an entry waiting for a decision, a release not confirmed)
raises :class:`~kepu.errors.JudgingError` with a Chinese and English message; a platform problem raises
whatever the store or database raised, and Airflow retries.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NotRequired, TypedDict, cast

from kepu.campaign import AWARD_SPECS, Stage, campaign_sha256
from kepu.db.judging_records import (
    SYSTEM_ACTOR,
    AssignmentSummary,
    DecisionResult,
    JudgeRecord,
    RankingRow,
    RoundSummary,
    ScoreRow,
    SheetRecord,
)
from kepu.errors import JudgingError
from kepu.judging import keys

if TYPE_CHECKING:
    from kepu.context import Context
    from kepu.judging.ingest import Checked, RoundFacts
    from kepu.judging.review import Entry
    from kepu.judging.sheets import SheetEntry

log = logging.getLogger(__name__)

RANKING_EXPORT = "judging-ranking.xlsx"
REPORT_EXPORT = "judging-report.html"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def scoring_stage(ctx: Context, stage_key: str) -> Stage:
    stage = ctx.campaign.judging.stage(stage_key)
    if stage.type != "scoring":
        scoring = ", ".join(s.key for s in ctx.campaign.judging.scoring_stages)
        raise JudgingError(
            f"{stage.key}（{stage.zh}）不是评分阶段，可选：{scoring} · {stage.key} is not a scoring "
            f"stage; choose one of {scoring}"
        )
    return stage


def parse_deadline(ctx: Context, text: str | None) -> datetime | None:
    """A round's deadline from a Param: ISO date-time; without an offset it is the campaign's time zone."""
    if not text or not str(text).strip():
        return None
    from zoneinfo import ZoneInfo

    try:
        when = datetime.fromisoformat(str(text).strip())
    except ValueError as exc:
        raise JudgingError(
            f"截止时间“{text}”格式有误，例如 2022-12-20T18:00+08:00 · deadline {text!r} is not an ISO "
            "date-time, e.g. 2022-12-20T18:00+08:00"
        ) from exc
    return when if when.tzinfo else when.replace(tzinfo=ZoneInfo(ctx.campaign.campaign.timezone))


# --- roster and round ------------------------------------------------------------------------------------


def _read_source(ctx: Context, source: str) -> tuple[str, bytes]:
    """A file given as a local path or as an object key of the store."""
    path = Path(source)
    if path.is_file():
        return path.name, path.read_bytes()
    if ctx.store.exists(source):
        with ctx.store.open_local(source) as local:
            return Path(source).name, local.read_bytes()
    raise JudgingError(f"找不到文件 {source}（本地路径或对象存储键）· no such file or object: {source}")


class RosterLoaded(TypedDict):
    """What :func:`load_roster` recorded: the roster's judges and checksum, where the file is kept, and the
    ids of the judges added, changed and removed against the roster before."""

    judges: int
    roster_sha256: str
    stored: str
    added: list[str]
    changed: list[str]
    removed: list[str]


class RoundAssigned(AssignmentSummary):
    """What :func:`prepare_round` did: the round's summary without the judges' loads, and ``result``: new,
    changed, unchanged, or kept when scores are in (then ``changes`` says how the entrants moved since)."""

    stage: str
    roster_sha256: str
    kinds: dict[str, int]
    result: DecisionResult | Literal["kept"]
    changes: NotRequired[list[str]]


class RoundAggregated(TypedDict):
    """What :func:`aggregate_round` recorded: the round's counts, whether the ranking changed, the judges'
    agreement by kind, and how many entries lie near a cut-off."""

    stage: str
    entries: int
    scores: int
    ranked: int
    insufficient: int
    withdrawn: int
    changed: bool
    agreement: dict[str, Any]
    near_cutoff: int


class SheetWritten(TypedDict):
    """One judge's score sheet in the store (``entries`` as text: it goes into XCom and the log as is)."""

    key: str
    sha256: str
    entries: str


class SheetsWritten(TypedDict):
    """What :func:`write_sheets` wrote: each judge's sheet and where the returned ones are awaited."""

    stage: str
    sheets: dict[str, SheetWritten]
    returned_prefix: str


class ReturnedStatus(TypedDict):
    """Which judges' scores seem back (:func:`returned_status`): what the wait for returned sheets polls."""

    files: int
    judges_back: list[str]
    judges_missing: list[str]
    portal_submitted: list[str]
    complete: bool


class SheetsIngested(TypedDict):
    """What :func:`ingest_sheets` made of the returned sheets."""

    stage: str
    found: int
    accepted: list[dict[str, Any]]
    rejected: list[dict[str, Any]]
    late: list[dict[str, Any]]
    unchanged: int
    ambiguous: list[str]
    judges_missing: list[str]


class AwardsSelected(TypedDict):
    """What :func:`select_awards` recorded and exported."""

    ranking_sha256: str
    complete: bool
    awards: dict[str, int]
    notes: list[str]
    export: str
    export_sha256: str
    result: str


class ReportWritten(TypedDict):
    """Where :func:`write_report` put the HTML report, and the ranking workbook beside it."""

    html: str
    ranking: str


class ReleaseSummary(TypedDict):
    """What :func:`release_results` did, as the DAG and the command line show it."""

    campaign: str
    released: bool
    status: Literal["released", "re-released", "unchanged"]
    release_id: int
    ranking_sha256: str
    released_at: str
    changes: dict[str, list[str]]
    message: str


class RoundRun(TypedDict):
    """What each step of a round did when :func:`run_round` ran them all."""

    assign: RoundAssigned
    sheets: SheetsWritten
    ingest: SheetsIngested
    aggregate: RoundAggregated
    select: AwardsSelected
    report: ReportWritten


def load_roster(ctx: Context, source: str) -> RosterLoaded:
    """Read the judges' roster, keep the file in the store under its checksum, record the judges."""
    from kepu.judging.roster import parse_roster

    c = ctx.campaign
    name, data = _read_source(ctx, source)
    roster = parse_roster(c.id, name, data)
    ctx.records.upsert_campaign(c.id, c.campaign.name_zh, campaign_sha256(ctx.settings.campaign_file))
    stored = ctx.store.put_bytes(keys.roster_key(c.id, roster.sha256, name), data)
    changes = ctx.records.replace_judges(c.id, roster.judges, roster.sha256)
    summary: RosterLoaded = {
        "judges": len(roster.judges),
        "roster_sha256": roster.sha256,
        "stored": stored.uri,
        "added": changes["added"],
        "changed": changes["changed"],
        "removed": changes["removed"],
    }
    log.info("roster %s: %s", name, summary)
    return summary


def prepare_round(
    ctx: Context,
    stage_key: str,
    *,
    seed: int | None = None,
    roster: str | None = None,
    reassign: bool = False,
) -> RoundAssigned:
    """Decide the round's entrants and assign them to the judges; the same inputs keep the assignment.

    ``seed`` defaults to the round's recorded seed, else the campaign's. A different assignment than the
    recorded one is refused unless ``reassign`` is set and no score of the round is in yet.
    """
    from kepu.judging.assign import load_table, plan_assignment
    from kepu.judging.review import entrants

    c = ctx.campaign
    stage = scoring_stage(ctx, stage_key)
    if roster:
        load_roster(ctx, roster)
    judges = ctx.records.list_judges(c.id)
    roster_sha = ctx.records.roster_sha256(c.id)
    if not judges or roster_sha is None:
        raise JudgingError(
            "尚未导入评委名单：请在参数 roster 中给出名单文件，或运行 kepu judging roster FILE · no judges' "
            "roster is loaded: give the roster file as the roster Param or run kepu judging roster FILE"
        )
    current = ctx.records.get_round(c.id, stage.key)
    chosen_seed = seed if seed is not None else (int(current["seed"]) if current else c.judging.assignment.seed)
    scored = current is not None and any(
        s.status in ("accepted", "superseded") for s in ctx.records.list_sheets(c.id, stage.key)
    )
    if scored and current is not None and chosen_seed == int(current["seed"]) and not reassign:
        # Scores are in: the judges' sheets stand. What changed upstream since (a backfill, a late decision)
        # is reported; an entry no longer eligible is left out of the ranking by the aggregation.
        notes = _entrant_changes(ctx, stage)
        if current["roster_sha256"] != roster_sha:
            notes.append(
                "评委名单已更换，本轮已有评分，分配保持不变 · the roster changed; this round has scores, so its "
                "assignment stays"
            )
        log.info("%s keeps its assignment (scores are in): %s", stage.key, notes or "no change upstream")
        kept = _assigned(current["summary"], "kept")
        kept["changes"] = notes
        return kept
    people = entrants(ctx.records, c, stage)
    plan = plan_assignment(
        people,
        judges,
        per_entry=stage.min_judges_per_entry,
        min_cover=stage.min_scores or 1,
        linking_set=stage.linking_set,
        seed=chosen_seed,
        conflicts=c.judging.conflicts,
        prefer_expertise=c.judging.assignment.prefer_expertise,
    )
    summary: RoundSummary = {
        **plan.summary(),
        "stage": stage.key,
        "roster_sha256": roster_sha,
        "loads": load_table(plan, judges),
        "kinds": {k: sum(1 for e in people if e.kind == k) for k in stage.kinds},
    }
    result = ctx.records.save_round(
        c.id,
        stage.key,
        seed=chosen_seed,
        roster_sha256=roster_sha,
        assignment_sha256=plan.sha256,
        summary=summary,
        rows=plan.rows,
        replace=reassign,
    )
    log.info(
        "%s: %d entries, %d judges, loads %d–%d, assignment %s (%s)",
        stage.key,
        len(people),
        len(judges),
        summary["load_min"],
        summary["load_max"],
        plan.sha256[:12],
        result,
    )
    return _assigned(summary, result)


def _assigned(summary: RoundSummary, result: DecisionResult | Literal["kept"]) -> RoundAssigned:
    """The round's summary as :func:`prepare_round` shows it: the judges' loads left out, what was done added."""
    shown = {k: v for k, v in summary.items() if k != "loads"}
    return cast(RoundAssigned, shown | {"result": result})


def _entrant_changes(ctx: Context, stage: Stage) -> list[str]:
    """How the entrants a round would have now differ from the ones it was assigned."""
    from kepu.judging.review import entrants

    assigned = {r.submission_id for r in ctx.records.list_assignments(ctx.campaign.id, stage.key)}
    try:
        now = {e.id for e in entrants(ctx.records, ctx.campaign, stage)}
    except JudgingError as exc:
        return [f"参评作品无法重新确定 · the entrants cannot be worked out again: {exc}"]
    notes = []
    gone, new = sorted(assigned - now), sorted(now - assigned)
    if gone:
        notes.append(f"已不符合参评条件：{'、'.join(gone)} · no longer eligible: {', '.join(gone)}")
    if new:
        notes.append(f"新符合条件但不在本轮：{'、'.join(new)} · newly eligible but not in this round: {', '.join(new)}")
    return notes


def withdrawn_entries(ctx: Context, stage: Stage, assigned: set[str]) -> set[str]:
    """Entries of a round that no longer pass every gate (a verdict changed by a backfill, a decision
    reversed): their scores are set aside and they are not ranked."""
    from kepu.judging.review import gate_statuses

    eligible = {s.entry.id for s in gate_statuses(ctx.records, ctx.campaign) if s.eligible}
    return assigned - eligible


def round_or_fail(ctx: Context, stage: Stage) -> dict[str, Any]:
    """The record of the stage's round; a JudgingError when its judges have not been assigned yet."""
    found = ctx.records.get_round(ctx.campaign.id, stage.key)
    if found is None:
        raise JudgingError(
            f"{stage.zh}尚未分配评委，请先运行分配 · the {stage.en} has no assignment yet: assign it first"
        )
    return found


def campaign_entries(ctx: Context, ids: set[str] | None = None) -> dict[str, Entry]:
    """The campaign's entries by submission id, those of ``ids`` only when given."""
    from kepu.judging.review import entry_of

    return {r["id"]: entry_of(r) for r in ctx.records.campaign_rows(ctx.campaign.id) if ids is None or r["id"] in ids}


@dataclass(frozen=True)
class EntryMedia:
    """The objects a judge opens for one entry (object keys in the store)."""

    #: The publication copy (the 1080p one first), else the video as received.
    video_key: str | None
    #: The cover normalised for the publication (16:9), else the cover as received.
    cover_key: str | None
    synopsis_key: str | None


def entry_media(ctx: Context, ids: set[str]) -> dict[str, EntryMedia]:
    """What a judge opens of each entry: the publication copies (recorded with the submission's rendition, or
    as materials), else the raw video; the cover; the synopsis file."""
    out: dict[str, EntryMedia] = {}
    for sid in sorted(ids):
        mats = ctx.records.list_materials(sid)
        outputs = ((ctx.records.get_details(sid).get("rendition") or {}).get("outputs")) or {}
        derived = [
            (str(name), str(o["key"]), str(o.get("role") or ""))
            for name, o in sorted(outputs.items())
            if isinstance(o, dict) and o.get("key")
        ]
        copies = [(m.filename, m.object_key) for m in mats if m.role == "rendition"]
        copies += [(name, key) for name, key, role in derived if role == "rendition"]
        renditions = sorted(
            ((n, k) for n, k in copies if k.endswith(".mp4")), key=lambda nk: ("1080" not in nk[0], nk[1])
        )
        video = [k for _, k in renditions] or [m.object_key for m in mats if m.role == "video"]
        covers = [k for name, k, role in derived if role == "poster" and name.startswith("cover")]
        covers += [m.object_key for m in mats if m.role == "cover"]
        syn = [m.object_key for m in mats if m.role == "synopsis"]
        out[sid] = EntryMedia(video[0] if video else None, covers[0] if covers else None, syn[0] if syn else None)
    return out


def _links(ctx: Context, ids: set[str]) -> tuple[dict[str, str | None], dict[str, str | None]]:
    """What a judge's sheet links to: the publication copy, else the raw video; the synopsis."""
    media = entry_media(ctx, ids)
    watch = {sid: ctx.store.uri(m.video_key) if m.video_key else None for sid, m in media.items()}
    synopsis = {sid: ctx.store.uri(m.synopsis_key) if m.synopsis_key else None for sid, m in media.items()}
    return watch, synopsis


def codes_of(ctx: Context, stage: Stage, round_row: Mapping[str, Any], judge_ids: set[str]) -> dict[str, str]:
    from kepu.judging.sheets import sheet_code

    return {j: sheet_code(ctx.campaign.id, stage.key, j, round_row["assignment_sha256"]) for j in sorted(judge_ids)}


def sheet_entries(ctx: Context, stage: Stage, judge_ids: set[str] | None = None) -> dict[str, list[SheetEntry]]:
    """Each judge's entries of the round as their sheet lists them (``judge_ids``: only these judges)."""
    from kepu.judging.sheets import SheetEntry

    rows = [
        r
        for r in ctx.records.list_assignments(ctx.campaign.id, stage.key)
        if judge_ids is None or r.judge_id in judge_ids
    ]
    ids = {r.submission_id for r in rows}
    entries = campaign_entries(ctx, ids)
    watch, synopsis = _links(ctx, ids)
    per_judge: dict[str, list[SheetEntry]] = defaultdict(list)
    for r in rows:
        e = entries[r.submission_id]
        per_judge[r.judge_id].append(SheetEntry(e, r.position, watch.get(e.id) or e.link, synopsis.get(e.id)))
    return dict(per_judge)


def write_sheets(ctx: Context, stage_key: str, *, deadline: datetime | None = None) -> SheetsWritten:
    """One workbook per judge under ``…/judging/{stage}/sheets/``; the same assignment gives the same bytes.

    Each sheet carries the judge's personal link to the portal (issued here when the judge has none yet;
    ``deadline``, when given, becomes the round's and sets when the links expire).
    """
    from kepu.judging.portal import issue_links
    from kepu.judging.sheets import build_sheet

    c = ctx.campaign
    stage = scoring_stage(ctx, stage_key)
    round_row = round_or_fail(ctx, stage)
    judges = {j.id: j for j in ctx.records.list_judges(c.id, active_only=False)}
    per_judge = sheet_entries(ctx, stage)
    codes = codes_of(ctx, stage, round_row, set(per_judge))
    links = {link.judge_id: link.url for link in issue_links(ctx, stage.key, deadline=deadline, set_deadline=True)}
    out: dict[str, SheetWritten] = {}
    for jid in sorted(per_judge):
        judge = judges[jid]
        data = build_sheet(
            c, stage, judge, per_judge[jid], code=codes[jid], deadline=deadline, portal_url=links.get(jid)
        )
        stored = ctx.store.put_bytes(keys.sheet_key(c.id, stage.key, jid, judge.name), data, content_type=XLSX)
        out[jid] = {"key": stored.key, "sha256": stored.sha256, "entries": str(len(per_judge[jid]))}
    log.info("%s: %d score sheets under %s", stage.key, len(out), keys.round_prefix(c.id, stage.key) + "sheets/")
    return {"stage": stage.key, "sheets": out, "returned_prefix": keys.returned_prefix(c.id, stage.key)}


# --- returned sheets ---------------------------------------------------------------------------------------


def round_judges(ctx: Context, stage_key: str) -> list[str]:
    """The judges who have a sheet in the round."""
    return sorted({r.judge_id for r in ctx.records.list_assignments(ctx.campaign.id, stage_key)})


def returned_status(keys_found: list[str], judge_ids: list[str], submitted: Collection[str] = ()) -> ReturnedStatus:
    """Which judges' scores seem to be back (what the sensor waits on): a returned file whose name holds the
    judge id, or a submit in the portal (``submitted``)."""
    names = [k.rsplit("/", 1)[-1] for k in keys_found if k.lower().endswith(".xlsx")]
    by_file = {j for j in judge_ids if any(j in n for n in names)}
    in_portal = {j for j in judge_ids if j in set(submitted)}
    back = sorted(by_file | in_portal)
    # Files whose names hold no judge id may be anyone's: as many files as judges without a portal submit
    # is taken as everything back.
    return {
        "files": len(names),
        "judges_back": back,
        "judges_missing": sorted(set(judge_ids) - set(back)),
        "portal_submitted": sorted(in_portal),
        "complete": bool(judge_ids) and (len(back) == len(judge_ids) or len(names) >= len(set(judge_ids) - in_portal)),
    }


def portal_submitted(ctx: Context, stage_key: str) -> list[str]:
    """The judges of the round whose scores were submitted in the portal (and not reopened since)."""
    return sorted(
        link.judge_id
        for link in ctx.records.list_judge_links(ctx.campaign.id, stage_key)
        if link.submitted_at is not None and link.locked
    )


def round_facts(ctx: Context, stage: Stage) -> RoundFacts:
    """What every sheet of the round is checked against: panel, assignment, sheet codes."""
    from kepu.judging.ingest import RoundFacts

    c = ctx.campaign
    round_row = round_or_fail(ctx, stage)
    rows = ctx.records.list_assignments(c.id, stage.key)
    entries = campaign_entries(ctx, {r.submission_id for r in rows})
    assigned: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for r in rows:
        assigned[r.judge_id][entries[r.submission_id].kind].add(r.submission_id)
    judges = {j.id: j for j in ctx.records.list_judges(c.id, active_only=False) if j.id in assigned}
    return RoundFacts(
        campaign=c,
        stage=stage,
        panel=judges,
        assigned={j: {k: frozenset(v) for k, v in kinds.items()} for j, kinds in assigned.items()},
        codes=codes_of(ctx, stage, round_row, set(assigned)),
    )


@dataclass(frozen=True)
class RecordedSheet:
    """What :func:`record_checked` did with one checked sheet."""

    checked: Checked
    sheet: SheetRecord
    #: The judge's earlier sheet this one replaces.
    previous: SheetRecord | None
    archive_key: str

    @property
    def late(self) -> bool:
        """Accepted, but handed in before the judge's current sheet was recorded: kept, and it does not count."""
        return self.checked.accepted and self.sheet.status == "superseded"


def record_checked(
    ctx: Context,
    stage: Stage,
    key: str,
    sha: str,
    data: bytes,
    checked: Checked,
    *,
    stored_at: datetime | None = None,
    actor: str = SYSTEM_ACTOR,
    then: Callable[[SheetRecord], object] | None = None,
) -> RecordedSheet:
    """Keep a checked sheet exactly as received under ``received/`` and record it (a returned workbook and a
    portal submit alike): accepted with its scores, or rejected with its reasons.

    ``stored_at`` is when it was handed in (see :meth:`~kepu.db.judging_records.JudgingRecords.record_sheet`:
    the later action counts). ``then(sheet)`` runs in the same transaction as the record. Should the records
    refuse the sheet, it is recorded as rejected (``record_failed``) rather than stopping the caller.
    """
    from kepu.judging.ingest import Checked
    from kepu.judging.sheets import problem

    c = ctx.campaign
    archive = keys.archive_key(c.id, stage.key, sha)
    if any(p["check"] == "macro" for p in checked.problems):
        # Kept as evidence, but never again under a name a spreadsheet program opens by itself.
        archive = archive.removesuffix(".xlsx") + ".macro-quarantined.bin"
        ctx.store.put_bytes(archive, data, content_type="application/octet-stream")
    else:
        ctx.store.put_bytes(archive, data, content_type=XLSX)
    try:
        with ctx.records.transaction():
            sheet, previous = ctx.records.record_sheet(
                c.id,
                stage.key,
                judge_id=checked.judge_id,
                object_key=key,
                archive_key=archive,
                sha256=sha,
                problems=checked.problems,
                rows=checked.rows if checked.accepted else None,
                actor=actor,
                stored_at=stored_at,
            )
            if then is not None and sheet.status == "accepted":
                then(sheet)
    except Exception as exc:  # one sheet the records refuse never stops the others, nor a later run
        log.exception("sheet %s could not be recorded; recorded as rejected", key)
        checked = Checked(
            checked.judge_id,
            None,
            [
                problem(
                    "record_failed",
                    zh=f"评分表无法写入记录（{type(exc).__name__}），已退回，请检查后重新交回",
                    en=f"the sheet could not be recorded ({type(exc).__name__}) and is rejected; check it and return it again",
                )
            ],
        )
        sheet, previous = ctx.records.record_sheet(
            c.id,
            stage.key,
            judge_id=checked.judge_id,
            object_key=key,
            archive_key=archive,
            sha256=sha,
            problems=checked.problems,
            rows=None,
            actor=actor,
        )
    return RecordedSheet(checked, sheet, previous, archive)


def ingest_sheets(ctx: Context, stage_key: str) -> SheetsIngested:
    """Validate and record every new sheet under the round's ``returned/`` prefix.

    Bad sheets are recorded as rejected with their reasons and never stop the others. Two new, valid but
    different sheets of one judge in the same run are left unrecorded (``ambiguous``): the operator keeps
    one and runs again.
    """
    from kepu.judging.ingest import SheetValidator, sha256_bytes

    c = ctx.campaign
    stage = scoring_stage(ctx, stage_key)
    facts = round_facts(ctx, stage)
    assigned = facts.assigned
    prefix = keys.returned_prefix(c.id, stage.key)
    found = sorted(ctx.store.list_keys(prefix))
    unchanged: list[str] = []
    fresh: dict[str, tuple[str, bytes]] = {}
    seen: set[str] = set()
    for key in found:
        with ctx.store.open_local(key) as local:
            data = local.read_bytes()
        sha = sha256_bytes(data)
        if sha in seen or ctx.records.get_sheet(c.id, stage.key, sha) is not None:
            unchanged.append(key)
            continue
        seen.add(sha)
        fresh[key] = (sha, data)
    checked_all = _check_sheets(SheetValidator(facts), {k: _parse_or_problem(d) for k, (_, d) in fresh.items()})
    by_judge: dict[str, list[str]] = defaultdict(list)
    for key, checked in checked_all.items():
        if checked.accepted and checked.judge_id:
            by_judge[checked.judge_id].append(key)
    ambiguous = {k for ks in by_judge.values() if len(ks) > 1 for k in ks}
    accepted: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    late: list[dict[str, Any]] = []
    for key, checked in sorted(checked_all.items()):
        if key in ambiguous:
            continue
        sha, data = fresh[key]
        stored_at = None
        if checked.accepted:
            head = ctx.store.head(key)
            stored_at = head.modified if head is not None else None
        done = record_checked(ctx, stage, key, sha, data, checked, stored_at=stored_at)
        checked, previous = done.checked, done.previous
        if done.late:
            late.append(
                {
                    "key": key,
                    "judge": checked.judge_id,
                    "scores": len(checked.rows or []),
                    "counts": done.sheet.superseded_by,
                }
            )
            log.warning(
                "sheet %s of %s was handed in before the judge's current scores were recorded: kept, not counted",
                key,
                checked.judge_id,
            )
        elif checked.accepted:
            accepted.append(
                {
                    "key": key,
                    "judge": checked.judge_id,
                    "scores": len(checked.rows or []),
                    "replaces": previous.sha256 if previous else None,
                }
            )
        else:
            rejected.append(
                {
                    "key": key,
                    "judge": checked.judge_id,
                    "problems": len(checked.problems),
                    "first": f"{checked.problems[0]['zh']} · {checked.problems[0]['en']}",
                }
            )
            log.warning("sheet %s rejected: %s", key, "; ".join(p["en"] for p in checked.problems[:5]))
    current = {s.judge_id for s in ctx.records.list_sheets(c.id, stage.key) if s.status == "accepted"}
    summary: SheetsIngested = {
        "stage": stage.key,
        "found": len(found),
        "accepted": accepted,
        "rejected": rejected,
        "late": late,
        "unchanged": len(unchanged),
        "ambiguous": sorted(ambiguous),
        "judges_missing": sorted(set(assigned) - current),
    }
    log.info(
        "%s sheets: %d new accepted, %d rejected, %d already seen, %d ambiguous; missing judges %s",
        stage.key,
        len(accepted),
        len(rejected),
        len(unchanged),
        len(ambiguous),
        summary["judges_missing"],
    )
    return summary


def _parse_or_problem(data: bytes) -> Any:
    """The parsed sheet, or a sheet with one ``unreadable`` problem when reading it failed in any way."""
    from kepu.judging.sheets import ParsedSheet, parse_sheet, unreadable

    try:
        return parse_sheet(data)
    except Exception as exc:  # a workbook crafted to break the reader is one rejected sheet, not a failed run
        log.warning("sheet could not be read: %r", exc)
        return ParsedSheet([], [unreadable(exc)])


def _check_sheets(validator: Any, parsed: dict[str, Any]) -> dict[str, Any]:
    """All sheets in one validation; should that fail, each on its own, so one sheet that breaks the checks is
    rejected alone and the others are still taken in."""
    from kepu.judging.ingest import Checked
    from kepu.judging.sheets import problem

    if not parsed:
        return {}
    try:
        out: dict[str, Any] = validator.check_all(parsed)
        return out
    except Exception:
        log.exception("checking %d sheets together failed; checking them one by one", len(parsed))
    out = {}
    for key, sheet in parsed.items():
        try:
            out[key] = validator.check_all({key: sheet})[key]
        except Exception as exc:
            log.exception("sheet %s could not be checked", key)
            out[key] = Checked(
                None,
                None,
                [
                    problem(
                        "unreadable",
                        zh=f"评分表无法检查（{type(exc).__name__}），已退回",
                        en=f"the sheet could not be checked ({type(exc).__name__}) and is rejected",
                    )
                ],
            )
    return out


# --- aggregate, select, report ---------------------------------------------------------------------------


def _box(values: Any) -> list[float] | None:
    import numpy as np

    arr = np.asarray(list(values), dtype=float)
    if arr.size == 0:
        return None
    return [round(float(v), 6) for v in np.quantile(arr, [0, 0.25, 0.5, 0.75, 1.0])]


def _f(x: Any) -> float | None:
    import math

    if x is None:
        return None
    v = float(x)
    return None if math.isnan(v) else round(v, 6)


def aggregate_round(ctx: Context, stage_key: str) -> RoundAggregated:
    """Rank the round's entries from the accepted scores and record the ranking and the statistics."""
    import pandas as pd

    from kepu.judging.aggregate import Policy, aggregate, cutoff_bands, rubric_range

    c = ctx.campaign
    stage = scoring_stage(ctx, stage_key)
    round_or_fail(ctx, stage)
    rows = ctx.records.list_assignments(c.id, stage.key)
    everyone = campaign_entries(ctx, {r.submission_id for r in rows})
    withdrawn = withdrawn_entries(ctx, stage, set(everyone))
    entries = {sid: e for sid, e in everyone.items() if sid not in withdrawn}
    scores: list[ScoreRow] = ctx.records.list_scores(c.id, stage.key)
    frame = pd.DataFrame(
        [
            {
                "judge_id": s.judge_id,
                "submission_id": s.submission_id,
                "kind": entries[s.submission_id].kind,
                "weighted": s.weighted,
            }
            for s in scores
            if s.submission_id in entries
        ],
        columns=["judge_id", "submission_id", "kind", "weighted"],
    )
    ranges: dict[str, tuple[float, float]] = {k: rubric_range(c.judging.criteria[k]) for k in stage.kinds}
    policy = Policy.of(c, stage.min_scores or 1)
    result = aggregate(
        frame,
        ranges=ranges,
        policy=policy,
        received={sid: e.received_at for sid, e in entries.items()},
        entries={sid: e.kind for sid, e in entries.items()},
    )
    ranking = [
        RankingRow(
            submission_id=str(r.submission_id),
            kind=str(r.kind),
            status=str(r.status),
            n_scores=int(r.n_scores),
            rank=None if pd.isna(r.rank) else int(r.rank),
            score=_f(r.score),
            raw_mean=_f(r.raw_mean),
            median=_f(r.median),
        )
        for r in result.ranking.itertuples(index=False)
    ]
    set_aside = {sid: sum(1 for s in scores if s.submission_id == sid) for sid in sorted(withdrawn)}
    ranking += [RankingRow(sid, everyone[sid].kind, "withdrawn", n) for sid, n in set_aside.items()]
    if withdrawn:
        result.notes.append(
            f"{len(withdrawn)} 件作品已不符合参评条件，评分不计、不排名：{'、'.join(sorted(withdrawn))} · "
            f"{len(withdrawn)} entries no longer pass the gates: their scores are set aside and they are not ranked"
        )
    changed = ctx.records.replace_ranking(c.id, stage.key, ranking)
    cutoffs = [(a, AWARD_SPECS[a][0], c.judging.awards.count(a)) for a in stage.awards]
    bands = cutoff_bands(result.ranking, cutoffs, c.judging.cutoff_band)
    judge_rows = []
    for j in result.judges.itertuples(index=False):
        mine = result.scores[(result.scores["judge_id"] == j.judge_id) & (result.scores["kind"] == j.kind)]
        judge_rows.append(
            {
                "kind": j.kind,
                "judge_id": j.judge_id,
                "n": int(j.n),
                "raw_mean": _f(j.raw_mean),
                "raw_sd": _f(j.raw_sd),
                "severity": _f(j.severity),
                "deviation": _f(j.deviation),
                "correlation": _f(j.correlation),
                "box_raw": _box(mine["weighted"]),
                "box_normalised": _box(mine["normalised"]),
            }
        )
    sheets = {s.judge_id: s.sha256 for s in ctx.records.list_sheets(c.id, stage.key) if s.status == "accepted"}
    aggregate_doc: dict[str, Any] = {
        "policy": {
            "normalise": policy.normalise,
            "trim_fraction": policy.trim_fraction,
            "trim_min_scores": policy.trim_min_scores,
            "min_scores": policy.min_scores,
            "tie_break": list(policy.tie_break),
        },
        "ranges": {k: list(v) for k, v in ranges.items()},
        "agreement": {
            k: {kk: (_f(vv) if isinstance(vv, float) else vv) for kk, vv in a.items()}
            for k, a in result.agreement.items()
        },
        "judges": judge_rows,
        "bands": [
            {
                **b,
                "score": _f(b["score"]),
                "gap": _f(b["gap"]),
                "rank": int(b["rank"]),
                "cutoff": int(b["cutoff"]),
                "inside": bool(b["inside"]),
            }
            for b in bands.to_dict("records")
        ],
        "tied": sorted(str(s) for s in result.ranking.loc[result.ranking["tied"].astype(bool), "submission_id"]),
        "notes": result.notes,
        "sheets": dict(sorted(sheets.items())),
        "counts": {
            "entries": len(entries),
            "scores": len(frame),
            "ranked": sum(1 for r in ranking if r.status == "ranked"),
            "insufficient": sum(1 for r in ranking if r.status == "insufficient"),
            "withdrawn": len(withdrawn),
        },
    }
    ctx.records.set_round_aggregate(c.id, stage.key, aggregate_doc)
    counts = aggregate_doc["counts"]
    summary: RoundAggregated = {
        "stage": stage.key,
        "entries": counts["entries"],
        "scores": counts["scores"],
        "ranked": counts["ranked"],
        "insufficient": counts["insufficient"],
        "withdrawn": counts["withdrawn"],
        "changed": changed,
        "agreement": aggregate_doc["agreement"],
        "near_cutoff": len(aggregate_doc["bands"]),
    }
    log.info("%s aggregated: %s", stage.key, summary)
    return summary


def _report_data(ctx: Context) -> tuple[Any, Any]:
    from kepu.judging.report import JudgingReport, StageReport
    from kepu.judging.select import select_awards as choose

    c = ctx.campaign
    rankings: dict[str, list[RankingRow]] = {}
    stages: list[StageReport] = []
    entrants: dict[str, set[str]] = {}
    rounds: dict[str, Any] = {}
    for stage in c.judging.scoring_stages:
        found = ctx.records.get_round(c.id, stage.key)
        if found is None or found.get("aggregate") is None:
            continue
        ranking = ctx.records.list_ranking(c.id, stage.key)
        rankings[stage.key] = ranking
        entrants[stage.key] = {r.submission_id for r in ctx.records.list_assignments(c.id, stage.key)}
        sheets = ctx.records.list_sheets(c.id, stage.key)
        panel = set(round_judges(ctx, stage.key))
        accepted = {s.judge_id for s in sheets if s.status == "accepted"}
        stages.append(StageReport(stage, ranking, found["aggregate"], sheets, sorted(panel - accepted)))
        rounds[stage.key] = {
            "seed": int(found["seed"]),
            "assignment_sha256": found["assignment_sha256"],
            "sheets": found["aggregate"].get("sheets", {}),
        }
    selection = choose(c, rankings, entrants)
    inputs = {
        "campaign_sha256": campaign_sha256(ctx.settings.campaign_file),
        "roster_sha256": ctx.records.roster_sha256(c.id),
        "rounds": rounds,
    }
    judges: dict[str, JudgeRecord] = {j.id: j for j in ctx.records.list_judges(c.id, active_only=False)}
    releases = ctx.records.list_releases(c.id)
    report = JudgingReport(
        campaign=c,
        stages=stages,
        entries=campaign_entries(ctx),
        judges=judges,
        awards=selection.awards,
        notes=selection.notes,
        complete=selection.complete,
        ranking_sha256=selection.ranking_sha256,
        inputs=inputs,
        release=releases[-1] if releases else None,
    )
    return selection, report


def select_awards(ctx: Context) -> AwardsSelected:
    """Choose the awards from every aggregated round, write the ranking workbook, record the selection.

    The workbook depends on the sheets only: the same sheets give the same bytes and the same checksum.
    """
    from dataclasses import replace

    from kepu.judging.report import ranking_workbook
    from kepu.storage import export_key

    c = ctx.campaign
    selection, report = _report_data(ctx)
    if not report.stages:
        raise JudgingError("尚无已汇总的评审轮次 · no judging round has been aggregated yet")
    data = ranking_workbook(replace(report, release=None))
    stored = ctx.store.put_bytes(export_key(c.id, RANKING_EXPORT), data, content_type=XLSX)
    result = ctx.records.save_selection(
        c.id,
        selection.ranking_sha256,
        inputs=report.inputs,
        notes=selection.notes,
        complete=selection.complete,
        award_rows=selection.awards,
        export_key=stored.key,
        export_sha256=stored.sha256,
    )
    counts: dict[str, int] = defaultdict(int)
    for a in selection.awards:
        counts[a.award] += 1
    summary: AwardsSelected = {
        "ranking_sha256": selection.ranking_sha256,
        "complete": selection.complete,
        "awards": dict(counts),
        "notes": selection.notes,
        "export": stored.uri,
        "export_sha256": stored.sha256,
        "result": result,
    }
    log.info("selection: %s", summary)
    return summary


def write_report(ctx: Context) -> ReportWritten:
    """The HTML report under the campaign's exports."""
    from kepu.judging.report import render_html
    from kepu.storage import export_key

    _selection, report = _report_data(ctx)
    text = render_html(report).encode("utf-8")
    stored = ctx.store.put_bytes(
        export_key(ctx.campaign.id, REPORT_EXPORT), text, content_type="text/html; charset=utf-8"
    )
    return {"html": stored.uri, "ranking": ctx.store.uri(export_key(ctx.campaign.id, RANKING_EXPORT))}


# --- release ---------------------------------------------------------------------------------------------


def release_results(
    ctx: Context, *, confirm: str, actor: str, reason: str = "", re_release: bool = False
) -> ReleaseSummary:
    """An operator's release of the current results: recorded once per ranking.

    ``confirm`` must be the campaign id, typed. Releasing the released ranking again is a no-op that says
    so; a ranking that changed after a release needs ``re_release`` and a reason, and is audited.
    """
    c = ctx.campaign
    if (confirm or "").strip() != c.id:
        raise JudgingError(
            f"确认码不符：请在 confirm 中输入活动编号“{c.id}”以确认发布 · confirmation does not match: type "
            f"the campaign id {c.id!r} in confirm to release"
        )
    outcome = ctx.records.release_results(c.id, actor=actor, reason=reason, allow_change=re_release)
    when = outcome.released_at.isoformat()
    if outcome.status == "unchanged":
        message = (
            f"该排名已于 {when} 发布（第 {outcome.release_id} 次发布），无需重复发布，未发出任何通知 · this ranking was "
            f"already released ({when}, release #{outcome.release_id}): nothing released, nothing sent"
        )
    elif outcome.status == "re-released":
        message = (
            f"已重新发布（第 {outcome.release_id} 次发布，取代第 {outcome.supersedes} 次）· re-released as release "
            f"#{outcome.release_id}, replacing #{outcome.supersedes}"
        )
    else:
        message = f"已发布（第 {outcome.release_id} 次发布）· released as release #{outcome.release_id}"
    log.info("%s", message)
    return {
        "campaign": c.id,
        "released": outcome.released,
        "status": outcome.status,
        "release_id": outcome.release_id,
        "ranking_sha256": outcome.ranking_sha256,
        "released_at": when,
        "changes": outcome.changes,
        "message": message,
    }


def run_round(ctx: Context, stage_key: str, *, seed: int | None = None, deadline: datetime | None = None) -> RoundRun:
    """Every step of a round in this process, for the command line and tests: assign, sheets, ingest
    what is back, aggregate, select, report."""
    assigned = prepare_round(ctx, stage_key, seed=seed)
    sheets = write_sheets(ctx, stage_key, deadline=deadline)
    ingested = ingest_sheets(ctx, stage_key)
    aggregated = aggregate_round(ctx, stage_key)
    selected = select_awards(ctx)
    return {
        "assign": assigned,
        "sheets": sheets,
        "ingest": ingested,
        "aggregate": aggregated,
        "select": selected,
        "report": write_report(ctx),
    }


def store_status(prefix: str, judge_ids: list[str], stage: str | None = None) -> ReturnedStatus:
    """What is under ``prefix`` now and, given the ``stage``, who submitted in the portal (blocking: the store
    client and the records are synchronous). The wait for returned sheets
    (:mod:`kepu.orchestration.sensors`) polls it."""
    from kepu.context import open_context

    ctx = open_context()
    submitted = portal_submitted(ctx, stage) if stage else []
    return returned_status(list(ctx.store.list_keys(prefix)), judge_ids, submitted)
