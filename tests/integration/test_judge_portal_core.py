"""The judges' portal below the web pages, on SQLite and PostgreSQL: links (tokens of other judges and rounds,
expired, revoked, reissued), drafts checked like sheet cells, a submit checked by the sheet validator and
recorded as a sheet, the later of a portal submit and a returned workbook counting, links in the sheets,
``kepu judging links`` and the link e-mails sent once."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from openpyxl import load_workbook

from judging_factory import (
    PORTAL_SECRET,
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
from kepu.db import current_revision, get_engine, head_revision, upgrade
from kepu.db.judging_records import token_sha256
from kepu.db.schema import PORTAL_TABLES, judge_links, metadata
from kepu.judging import keys, portal, steps
from kepu.judging.portal import PortalInputError, PortalLocked, PortalRefused
from kepu.judging.sheets import PORTAL_CELL, PORTAL_LABEL
from mail_support import Inbox, smtp_inbox

pytestmark = pytest.mark.integration

CID = "2022"
R1 = "first_round"
BASE = "https://kepu.example.org"
TRUTH = {f"E{i:03d}": 3.0 + (i * 7 % 13) / 2 for i in range(40)}


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    return url


def ready(tmp: Path, db_url: str | None = None, *, emails: bool = False, **judging: Any) -> Context:
    """A first round assigned, its sheets written (and the links with them)."""
    extra = {"KEPU_PUBLIC_BASE_URL": BASE, **({"KEPU_DATABASE_URL": db_url} if db_url else {})}
    settings = settings_for(tmp, write_campaign(tmp / "campaign.yaml", **judging), extra)
    ctx = open_context(settings, migrate=True)
    entries = seed_entries(ctx.records, CID, videos=12, accounts=4)
    judges = make_judges(6)
    if emails:
        judges = [dataclasses.replace(j, email=f"{j.id.lower()}@judges.example.org") for j in judges[:5]] + judges[5:]
    steps.load_roster(ctx, str(write_roster(tmp / "评委名单.csv", judges)))
    pass_gates(ctx.records, CID, entries)
    steps.prepare_round(ctx, R1)
    steps.write_sheets(ctx, R1)
    return ctx


def tokens(ctx: Context) -> dict[str, str]:
    return {link.judge_id: link.url.rstrip("/").rsplit("/", 1)[-1] for link in portal.issue_links(ctx, R1)}


def mine(ctx: Context, judge_id: str) -> list[str]:
    return [r.submission_id for r in ctx.records.list_assignments(CID, R1) if r.judge_id == judge_id]


def score_all(ctx: Context, judge: portal.PortalJudge, value: float | None = None) -> None:
    """The judge scores every entry (near its true quality, or ``value`` everywhere)."""
    for e in portal.portal_entries(ctx, judge):
        v = value if value is not None else max(0.0, min(10.0, round(TRUTH[e.submission_id] * 2) / 2))
        portal.save_draft(ctx, judge, e.submission_id, {c.key: str(v) for c in e.criteria}, "在线评语")


def issued_sheet(ctx: Context, judge_id: str) -> bytes:
    key = next(k for k in ctx.store.list_keys(keys.round_prefix(CID, R1) + "sheets/") if f"-{judge_id}-" in k)
    with ctx.store.open_local(key) as path:
        return path.read_bytes()


def current_scores(ctx: Context, judge_id: str) -> dict[str, dict[str, float]]:
    return {s.submission_id: dict(s.criteria) for s in ctx.records.list_scores(CID, R1) if s.judge_id == judge_id}


# --- migration -------------------------------------------------------------------------------------------------


def test_migration_0005_goes_up_and_down_and_matches_the_schema(db_url: str) -> None:
    from alembic import command

    from kepu.db import _alembic_config

    def tables() -> set[str]:
        return set(sa.inspect(get_engine(db_url)).get_table_names())

    portal_tables = {t.name for t in PORTAL_TABLES}
    upgrade(db_url)
    assert current_revision(db_url) == head_revision() == "0005" and portal_tables <= tables()
    with get_engine(db_url).begin() as conn:
        cfg = _alembic_config(db_url)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0004")
    assert current_revision(db_url) == "0004" and not portal_tables & tables() and "score_sheets" in tables()
    upgrade(db_url)
    with get_engine(db_url).connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata) == []


# --- links ------------------------------------------------------------------------------------------------------


def test_a_token_opens_its_own_judge_and_round_only(tmp_path: Path, db_url: str) -> None:
    ctx = ready(tmp_path, db_url)
    toks = tokens(ctx)
    assert set(toks) == set(steps.round_judges(ctx, R1)) and len(set(toks.values())) == len(toks)
    # Deterministic: the same secret, campaign, round, judge and generation give the same token.
    secret = portal.load_portal_secret(ctx.settings)
    assert secret == PORTAL_SECRET.encode() and toks["J00"] == portal.make_token(secret, CID, R1, "J00", 0)
    # Only the sha256 is recorded.
    with get_engine(ctx.settings.database_url).connect() as conn:
        rows = conn.execute(sa.select(judge_links)).mappings().all()
    assert {r["token_sha256"] for r in rows} == {token_sha256(t) for t in toks.values()}
    assert not any(t in json.dumps([dict(r) for r in rows], default=str) for t in toks.values())

    judge = portal.open_portal(ctx, toks["J01"])
    assert (judge.judge_id, judge.stage, judge.judge_name, judge.stage_zh) == ("J01", R1, "评委01", "初评")
    entries = portal.portal_entries(ctx, judge)
    assert sorted(e.submission_id for e in entries) == sorted(mine(ctx, "J01"))
    # The judge's seeded order, numbered 1… as on their sheet.
    assert [e.position for e in entries] == list(range(1, len(entries) + 1))
    first = next(e for e in entries if e.kind == "account")
    assert first.title and first.unit and first.province and first.criteria and first.values == {}
    assert first.kind_zh == "科普号"

    # Another judge's entry, another round's token, a forged token, a token of another key: refused.
    other = next(sid for sid in mine(ctx, "J00") if sid not in mine(ctx, "J01"))
    with pytest.raises(PortalInputError, match="not assigned to you"):
        portal.save_draft(ctx, judge, other, {"scientific": "5"}, None)
    for forged in (
        portal.make_token(secret, CID, "final_round", "J01", 0),
        portal.make_token(b"another-key-of-32-characters....", CID, R1, "J01", 0),
        toks["J01"][:-1] + ("A" if toks["J01"][-1] != "A" else "B"),
        toks["J01"] + "x",
        "../../etc/passwd",
        "",
    ):
        with pytest.raises(PortalRefused) as info:
            portal.open_portal(ctx, forged)
        assert info.value.reason == "unknown" and info.value.status_code == 404

    # Visits are recorded: the first one once, every one as last seen.
    link = ctx.records.get_judge_link(CID, R1, "J01")
    assert link is not None and link.opened_at is not None and link.last_seen_at == link.opened_at
    later = link.opened_at + dt.timedelta(minutes=5)
    portal.open_portal(ctx, toks["J01"], now=later)
    link = ctx.records.get_judge_link(CID, R1, "J01")
    assert link is not None and link.last_seen_at == later and link.opened_at is not None and link.opened_at < later
    assert [a["action"] for a in ctx.records.list_audit("portal", f"{CID}/{R1}/J01")].count("portal.opened") == 1


def test_links_expire_and_a_revoke_stops_the_old_token_for_good(tmp_path: Path, db_url: str) -> None:
    ctx = ready(tmp_path, db_url)
    old = tokens(ctx)["J02"]
    link = ctx.records.get_judge_link(CID, R1, "J02")
    assert link is not None
    # No deadline: valid_days after it was issued; at that moment it no longer opens.
    assert link.expires_at == link.created_at + dt.timedelta(days=45)
    portal.open_portal(ctx, old, now=link.expires_at - dt.timedelta(seconds=1), touch=False)
    with pytest.raises(PortalRefused) as info:
        portal.open_portal(ctx, old, now=link.expires_at)
    assert info.value.reason == "expired" and info.value.status_code == 410 and "过期" in info.value.zh

    # A round deadline: grace_days after it.
    deadline = dt.datetime(2030, 12, 20, 18, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    steps.write_sheets(ctx, R1, deadline=deadline)
    link = ctx.records.get_judge_link(CID, R1, "J02")
    assert link is not None and link.deadline == deadline and link.expires_at == deadline + dt.timedelta(days=7)
    assert portal.open_portal(ctx, old).deadline == deadline

    portal.revoke(ctx, CID, R1, "J02", actor="王老师")
    with pytest.raises(PortalRefused) as info:
        portal.open_portal(ctx, old)
    assert info.value.reason == "revoked" and info.value.status_code == 403
    # The next issue makes a new token; the old one stays refused as revoked.
    new = tokens(ctx)["J02"]
    assert new != old and portal.open_portal(ctx, new).judge_id == "J02"
    with pytest.raises(PortalRefused) as info:
        portal.open_portal(ctx, old)
    assert info.value.reason == "revoked"
    actions = [a["action"] for a in ctx.records.list_audit("portal", f"{CID}/{R1}/J02")]
    assert "portal.link_revoked" in actions and "portal.link_reissued" in actions
    assert ctx.records.list_audit("portal", f"{CID}/{R1}/J02")[-1]["detail"]["generation"] == 1


def test_a_blind_portal_hides_unit_and_province_and_plays_the_publication_copy(tmp_path: Path) -> None:
    ctx = ready(tmp_path, portal={"valid_days": 10, "grace_days": 2, "blind": True})
    judge = portal.open_portal(ctx, tokens(ctx)["J00"])
    video = next(e for e in portal.portal_entries(ctx, judge) if e.kind == "video")
    assert video.unit is None and video.province is None and video.title and video.synopsis
    assert video.video_key is None and video.cover_key is None  # nothing in the store for the synthetic entries
    link = ctx.records.get_judge_link(CID, R1, "J00")
    assert link is not None and link.expires_at == link.created_at + dt.timedelta(days=10)
    # The publication copy recorded with the submission (the largest one), and the normalised cover.
    sid = video.submission_id
    base = f"campaigns/{CID}/submissions/{sid}"
    ctx.records.set_rendition(
        sid,
        {
            "outputs": {
                "video-720p.mp4": {"key": f"{base}/rendition/video-720p.mp4", "role": "rendition", "height": 720},
                "video-1080p.mp4": {"key": f"{base}/rendition/video-1080p.mp4", "role": "rendition", "height": 1080},
                "cover-16x9.jpg": {"key": f"{base}/poster/cover-16x9.jpg", "role": "poster"},
                "frame-001.jpg": {"key": f"{base}/poster/frame-001.jpg", "role": "poster"},
            }
        },
        run_id=None,
    )
    (entry,) = [e for e in portal.portal_entries(ctx, judge) if e.submission_id == sid]
    assert entry.video_key == f"{base}/rendition/video-1080p.mp4" and entry.cover_key == f"{base}/poster/cover-16x9.jpg"


# --- drafts ------------------------------------------------------------------------------------------------------


def test_drafts_are_checked_like_sheet_cells(tmp_path: Path, db_url: str) -> None:
    ctx = ready(tmp_path, db_url)
    judge = portal.open_portal(ctx, tokens(ctx)["J03"])
    video = next(e for e in portal.portal_entries(ctx, judge) if e.kind == "video")
    sid = video.submission_id
    for raw, check in (
        ("11", "outside 0–10"),
        ("-0.5", "outside 0–10"),
        ("nan", "not a finite number"),
        ("inf", "not a finite number"),
        (math.nan, "not a finite number"),
        (math.inf, "not a finite number"),
        ("1e999", "not a finite number"),
        ("很好", "not a finite number"),
        ("8分", "not a finite number"),
    ):
        with pytest.raises(PortalInputError) as info:
            portal.save_draft(ctx, judge, sid, {"scientific": raw}, None)
        assert check in info.value.en and info.value.field == "scientific" and "科学性" in info.value.zh
    with pytest.raises(PortalInputError) as info:
        portal.save_draft(ctx, judge, sid, {"no_such": "5"}, None)
    assert info.value.field == "no_such"
    with pytest.raises(PortalInputError, match="not assigned"):
        portal.save_draft(ctx, judge, "E999", {"scientific": "5"}, None)
    assert ctx.records.list_portal_drafts(CID, R1, "J03") == []  # nothing refused was saved

    # Full-width digits are digits; values merge; a blank clears one; None leaves the comment.
    entry = portal.save_draft(ctx, judge, sid, {"scientific": "１０", "informative": 7.5}, "　好作品 ")
    assert entry.values == {"scientific": 10.0, "informative": 7.5} and entry.comment == "好作品" and not entry.complete
    entry = portal.save_draft(ctx, judge, sid, {"informative": "", "artistic": "0"}, None)
    assert entry.values == {"scientific": 10.0, "artistic": 0.0} and entry.comment == "好作品"
    entry = portal.save_draft(ctx, judge, sid, {c.key: "6" for c in video.criteria}, "")
    assert entry.complete and entry.comment is None
    saves = [a for a in ctx.records.list_audit("portal", f"{CID}/{R1}/J03") if a["action"] == "portal.draft_saved"]
    assert len(saves) == 3 and saves[0]["actor"] == "judge:J03"
    # The same values again change nothing, and are not audited again.
    portal.save_draft(ctx, judge, sid, {c.key: "6" for c in video.criteria}, None)
    assert len([a for a in ctx.records.list_audit("portal") if a["action"] == "portal.draft_saved"]) == 3


# --- submit -------------------------------------------------------------------------------------------------------


def test_a_submit_goes_through_the_sheet_validator_and_locks(tmp_path: Path, db_url: str) -> None:
    ctx = ready(tmp_path, db_url)
    judge = portal.open_portal(ctx, tokens(ctx)["J04"])
    entries = portal.portal_entries(ctx, judge)
    score_all(ctx, judge)
    # One criterion left blank: the validator's own reason (check "blank", its Chinese and English).
    blank = entries[-1]
    portal.save_draft(ctx, judge, blank.submission_id, {blank.criteria[1].key: None}, None)
    outcome = portal.submit(ctx, judge)
    assert not outcome.accepted and outcome.sheet_id is None
    (p,) = outcome.problems
    assert (p["check"], p["submission_id"], p["criterion"]) == ("blank", blank.submission_id, blank.criteria[1].key)
    assert p["zh"].endswith(f"“{blank.criteria[1].zh}”未评分") and "no score for" in p["en"]
    # A value the drafts never let through, written straight into the records: the validator's range check.
    crit = blank.criteria[0]
    ctx.records.save_portal_draft(
        CID,
        R1,
        "J04",
        blank.submission_id,
        criteria={crit.key: 11.0, blank.criteria[1].key: 5.0},
        comment=None,
        set_comment=False,
    )
    outcome = portal.submit(ctx, judge)
    assert [(q["check"], q["value"]) for q in outcome.problems] == [("range", "11")]
    assert f"“{crit.zh}” 11 超出 0–10" in outcome.problems[0]["zh"]
    assert ctx.records.list_sheets(CID, R1) == [] and not ctx.records.get_judge_link(CID, R1, "J04").locked  # type: ignore[union-attr]

    portal.save_draft(ctx, judge, blank.submission_id, {crit.key: "9"}, None)
    outcome = portal.submit(ctx, judge)
    assert outcome.accepted and outcome.problems == [] and outcome.sheet_id is not None
    (sheet,) = ctx.records.list_sheets(CID, R1)
    assert sheet.id == outcome.sheet_id and sheet.status == "accepted" and sheet.judge_id == "J04"
    assert sheet.object_key.startswith(keys.portal_prefix(CID, R1)) and ctx.store.exists(sheet.object_key)
    assert sheet.archive_key == keys.archive_key(CID, R1, sheet.sha256) and ctx.store.exists(sheet.archive_key)
    drafts = {d.submission_id: dict(d.criteria) for d in ctx.records.list_portal_drafts(CID, R1, "J04")}
    assert current_scores(ctx, "J04") == drafts
    assert {s.comment for s in ctx.records.list_scores(CID, R1)} == {"在线评语"}

    # Locked: no draft, no second submit; the page says so.
    assert portal.open_portal(ctx, tokens(ctx)["J04"]).locked
    with pytest.raises(PortalLocked):
        portal.save_draft(ctx, judge, blank.submission_id, {crit.key: "1"}, None)
    with pytest.raises(PortalLocked):
        portal.submit(ctx, judge)
    # An operator reopens: the submitted scores still count until the judge submits again.
    portal.reopen(ctx, CID, R1, "J04", actor="李主任")
    judge = portal.open_portal(ctx, tokens(ctx)["J04"])
    assert not judge.locked and current_scores(ctx, "J04") == drafts
    portal.save_draft(ctx, judge, blank.submission_id, {crit.key: "1"}, None)
    again = portal.submit(ctx, judge)
    assert again.accepted and again.sheet_id != outcome.sheet_id
    assert current_scores(ctx, "J04")[blank.submission_id][crit.key] == 1.0
    actions = [a["action"] for a in ctx.records.list_audit("portal", f"{CID}/{R1}/J04")]
    assert actions.count("portal.submitted") == 2 and "portal.reopened" in actions
    (replaced,) = [a for a in ctx.records.list_audit("judge", f"{CID}/{R1}/J04") if a["action"] == "scores.replaced"]
    assert list(replaced["detail"]["changed"]) == [blank.submission_id]

    # The round's sensor counts the judge as back; the status says who did what.
    assert steps.portal_submitted(ctx, R1) == ["J04"]
    back = steps.returned_status([], steps.round_judges(ctx, R1), steps.portal_submitted(ctx, R1))
    assert back["judges_back"] == ["J04"] and not back["complete"]
    status = {s.judge_id: s for s in portal.portal_status(ctx, R1)}
    assert status["J04"].locked and status["J04"].submitted_at and status["J04"].counts == "portal"
    assert status["J04"].scored == status["J04"].total == len(entries) and not status["J04"].sheet_returned
    assert status["J00"].opened_at is None and status["J00"].scored == 0 and status["J00"].counts is None


def _xlsx_scores(ctx: Context, judge_id: str, value: float) -> bytes:
    return fill_sheet(issued_sheet(ctx, judge_id), lambda j, s, c: value, comment="表格评语")


def test_the_later_of_a_returned_sheet_and_a_portal_submit_counts(tmp_path: Path, db_url: str) -> None:
    ctx = ready(tmp_path, db_url)
    prefix = keys.returned_prefix(CID, R1)

    # Sheet first (taken in), then the portal: the portal counts; the sheet stays, superseded.
    judge = portal.open_portal(ctx, tokens(ctx)["J00"])
    ctx.store.put_bytes(prefix + "J00.xlsx", _xlsx_scores(ctx, "J00", 2.0))
    assert [a["judge"] for a in steps.ingest_sheets(ctx, R1)["accepted"]] == ["J00"]
    score_all(ctx, judge, 8.0)
    assert portal.submit(ctx, judge).accepted
    assert {v for s in current_scores(ctx, "J00").values() for v in s.values()} == {8.0}
    statuses = {s.object_key.rsplit("/", 1)[-1]: s.status for s in ctx.records.list_sheets(CID, R1)}
    assert statuses["J00.xlsx"] == "superseded"

    # Portal then a sheet uploaded later: the sheet counts.
    ctx.store.put_bytes(prefix + "J00-更正.xlsx", _xlsx_scores(ctx, "J00", 3.0))
    assert [a["judge"] for a in steps.ingest_sheets(ctx, R1)["accepted"]] == ["J00"]
    assert {v for s in current_scores(ctx, "J00").values() for v in s.values()} == {3.0}

    # A sheet uploaded before the portal submit but taken in after it: recorded, kept in the audit, not counted.
    judge = portal.open_portal(ctx, tokens(ctx)["J01"])
    key = prefix + "J01.xlsx"
    ctx.store.put_bytes(key, _xlsx_scores(ctx, "J01", 2.0))
    path = ctx.store.local_path(key)  # type: ignore[attr-defined]
    an_hour_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).timestamp()
    os.utime(path, (an_hour_ago, an_hour_ago))  # when the operator dropped it in
    score_all(ctx, judge, 9.0)
    submitted = portal.submit(ctx, judge)
    assert submitted.accepted
    ingested = steps.ingest_sheets(ctx, R1)
    assert ingested["accepted"] == [] and [(x["judge"], x["counts"]) for x in ingested["late"]] == [
        ("J01", submitted.sheet_id)
    ]
    assert {v for s in current_scores(ctx, "J01").values() for v in s.values()} == {9.0}
    late = next(s for s in ctx.records.list_sheets(CID, R1) if s.object_key == key)
    assert late.status == "superseded" and late.superseded_by == submitted.sheet_id
    history = [s for s in ctx.records.list_scores(CID, R1, current_only=False) if s.sheet_id == late.id]
    assert history and {v for s in history for v in s.criteria.values()} == {2.0}
    (audit,) = [
        a for a in ctx.records.list_audit("judge", f"{CID}/{R1}/J01") if a["action"] == "scores.superseded_on_arrival"
    ]
    assert audit["detail"]["current_sheet"] == submitted.sheet_id and audit["detail"]["object_key"] == key
    # Nothing changes on a rerun.
    counts = ctx.records.table_counts()
    assert steps.ingest_sheets(ctx, R1)["late"] == [] and ctx.records.table_counts() == counts
    status = {s.judge_id: s for s in portal.portal_status(ctx, R1)}
    assert status["J00"].counts == "sheet" and status["J00"].sheet_returned
    assert status["J01"].counts == "portal" and status["J01"].sheet_returned


# --- sheets, command line, mail ---------------------------------------------------------------------------------


def test_sheets_carry_the_judges_link_and_stay_byte_identical(tmp_path: Path) -> None:
    ctx = ready(tmp_path)
    toks = tokens(ctx)
    first = steps.write_sheets(ctx, R1)["sheets"]
    assert steps.write_sheets(ctx, R1)["sheets"] == first
    wb = load_workbook(io.BytesIO(issued_sheet(ctx, "J00")))
    url = f"{BASE}/kepu/judge/{toks['J00']}/"
    for ws in wb.worksheets[1:]:
        assert (
            ws["I2"].value == PORTAL_LABEL and ws[PORTAL_CELL].value == url and ws[PORTAL_CELL].hyperlink.target == url
        )
    info = wb.worksheets[0]
    (cell,) = [row[1] for row in info.iter_rows() if row[0].value == PORTAL_LABEL]
    assert cell.value == url and cell.hyperlink.target == url
    # A judge fills in and returns the sheet with the link on it: accepted as before.
    ctx.store.put_bytes(
        keys.returned_prefix(CID, R1) + "J00.xlsx", fill_sheet(issue_bytes := issued_sheet(ctx, "J00"), truthful(TRUTH))
    )
    assert [a["judge"] for a in steps.ingest_sheets(ctx, R1)["accepted"]] == ["J00"] and issue_bytes
    # After a revoke the sheet written next carries the new link.
    portal.revoke(ctx, CID, R1, "J05", actor="王老师")
    after = steps.write_sheets(ctx, R1)["sheets"]
    assert after["J05"]["sha256"] != first["J05"]["sha256"] and after["J00"] == first["J00"]
    ws = load_workbook(io.BytesIO(issued_sheet(ctx, "J05"))).worksheets[1]
    assert ws[PORTAL_CELL].value == f"{BASE}/kepu/judge/{tokens(ctx)['J05']}/" != f"{BASE}/kepu/judge/{toks['J05']}/"


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    with smtp_inbox(monkeypatch, "judging@kepu.example.org") as inbox:
        yield inbox


def test_each_judge_is_mailed_their_link_once(tmp_path: Path, smtp: Inbox) -> None:
    ctx = ready(tmp_path, emails=True)
    deadline = dt.datetime(2030, 12, 20, 10, 0, tzinfo=dt.UTC)  # 18:00 in Beijing
    steps.write_sheets(ctx, R1, deadline=deadline)
    toks = tokens(ctx)
    with portal.link_mailer(ctx) as mailer:
        sent = portal.mail_links(ctx, R1, mailer, domain=mailer.domain)
    assert sent["sent"] == ["J00", "J01", "J02", "J03", "J04"] and sent["no_address"] == ["J05"]
    assert len(smtp.messages) == 5
    rcpt, msg = next(m for m in smtp.messages if m[0] == ["j01@judges.example.org"])
    body = str(msg.get_body(preferencelist=("html",)).get_content())  # type: ignore[union-attr]
    assert f"{BASE}/kepu/judge/{toks['J01']}/" in body and "评委01" in body
    assert "2030-12-20 18:00" in body and "北京时间" in body and "Beijing time" in body
    assert "在线评审" in str(msg["Subject"]) and "online judging" in str(msg["Subject"])
    assert str(msg["Message-ID"]).endswith("@kepu.example.org>")

    # A rerun mails nobody; a new link after a revoke is a new message, to that judge only.
    with portal.link_mailer(ctx) as mailer:
        assert portal.mail_links(ctx, R1, mailer)["sent"] == []
    portal.revoke(ctx, CID, R1, "J02", actor="王老师")
    with portal.link_mailer(ctx) as mailer:
        assert portal.mail_links(ctx, R1, mailer)["sent"] == ["J02"]
    rcpt, msg = smtp.messages[-1]
    assert rcpt == ["j02@judges.example.org"] and len(smtp.messages) == 6
    assert tokens(ctx)["J02"] != toks["J02"] and tokens(ctx)["J02"] in str(msg.get_body().get_content())  # type: ignore[union-attr]
    assert {s.judge_id: s.mailed for s in portal.portal_status(ctx, R1)} == {
        "J00": True,
        "J01": True,
        "J02": True,
        "J03": True,
        "J04": True,
        "J05": False,
    }


def test_kepu_judging_links_lists_revokes_reopens_and_mails_to_the_outbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from kepu.cli import main

    ctx = ready(tmp_path, emails=True)
    for name, value in ctx.settings.as_env().items():
        monkeypatch.setenv(name, value)
    for name in ("AIRFLOW_CONN_KEPU_SMTP", "AIRFLOW_CONN_SMTP_DEFAULT"):
        monkeypatch.delenv(name, raising=False)
    toks = tokens(ctx)
    assert main(["judging", "links", "--stage", R1]) == 0
    out = capsys.readouterr().out
    assert "北京时间" in out and "Beijing time" in out
    for jid, token in toks.items():
        assert f"{BASE}/kepu/judge/{token}/" in out and jid in out
    link = ctx.records.get_judge_link(CID, R1, "J00")
    assert link is not None and portal.local_time(ctx, link.expires_at) in out

    assert main(["judging", "links", "--stage", R1, "--judge", "J00", "--revoke", "--by", "王老师"]) == 0
    out = capsys.readouterr().out
    assert "revoked: J00" in out and toks["J00"] not in out and tokens(ctx)["J00"] in out
    assert main(["judging", "links", "--stage", R1, "--revoke"]) == 2  # revoking needs --judge

    judge = portal.open_portal(ctx, tokens(ctx)["J03"])
    score_all(ctx, judge)
    assert portal.submit(ctx, judge).accepted
    # What the returned-sheets sensor and its trigger look at: the portal submit counts as back.
    from kepu.judging.steps import store_status

    panel = steps.round_judges(ctx, R1)
    assert store_status(keys.returned_prefix(CID, R1), panel, R1)["judges_back"] == ["J03"]
    assert main(["judging", "links", "--stage", R1, "--judge", "J03", "--reopen", "--by", "李主任"]) == 0
    assert "reopened: J03" in capsys.readouterr().out
    assert not portal.open_portal(ctx, tokens(ctx)["J03"]).locked
    assert store_status(keys.returned_prefix(CID, R1), panel, R1)["judges_back"] == []

    # No SMTP connection on the embedded default: the loopback mail sink keeps the messages in the outbox.
    assert main(["judging", "links", "--stage", R1, "--mail"]) == 0
    assert "sent 5" in capsys.readouterr().out
    outbox = ctx.settings.outbox_dir
    emls = sorted(outbox.glob("*.eml"))
    assert len(emls) == 5
    text = b"".join(p.read_bytes() for p in emls)
    assert b"j00@judges.example.org" in text and b"j05" not in text
    assert main(["judging", "links", "--stage", R1, "--mail"]) == 0
    assert "sent 0" in capsys.readouterr().out and len(list(outbox.glob("*.eml"))) == 5
