"""The judges' portal: a personal link per judge and round, draft scores, and a submit that becomes a sheet.

A judge's link is ``{base}/kepu/judge/{token}/``. The token is HMAC-SHA256 of campaign, round, judge and the
link's generation under ``KEPU_PORTAL_SECRET`` (else a random key kept in ``$KEPU_HOME/portal-secret``),
base64url, 32 characters: the same judge and round always get the same token — so ``write_sheets`` keeps
writing the same bytes — and nobody derives one without the key. Only its sha256 is recorded. A link
expires ``judging.portal.grace_days`` after the round's deadline, or ``valid_days`` after it was issued when
the round has none; a revoke stops it at once and the next issue makes a new one (the next generation).

What a judge types is saved as a draft, checked as they go like the sheet validator checks a cell (a finite
number inside the criterion's range, full-width digits read as digits; only entries assigned to the judge;
nothing once submitted). A submit builds the workbook the judge would have returned — the same
:func:`~kepu.judging.sheets.build_sheet` with the sheet code issued to them, filled with the drafts — checks
it with the very :class:`~kepu.judging.ingest.SheetValidator` and Great Expectations suites of returned
sheets, and records it through :func:`kepu.judging.steps.record_checked`, the path of a returned sheet: portal
and workbook scores are the same records, the later action counts, the earlier stays in the audit log. An
accepted submit locks the judge's scores until an operator reopens them.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import html
import logging
import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypedDict

from kepu.campaign import Criterion
from kepu.config import Settings
from kepu.db.judging_records import JudgeLink, JudgeRecord, PortalLockedError, token_sha256
from kepu.errors import ConfigError, JudgingError, KepuError
from kepu.judging import keys

if TYPE_CHECKING:
    from kepu.context import Context
    from kepu.publication.notify import Mailer

log = logging.getLogger(__name__)

SECRET_FILE = "portal-secret"
SECRET_BYTES = 32
MIN_SECRET_LENGTH = 16
TOKEN_LENGTH = 32
_TOKEN = re.compile(rf"[A-Za-z0-9_-]{{{TOKEN_LENGTH}}}")
#: Longest comment kept (a judge's comment is a few sentences).
MAX_COMMENT = 2000
PORTAL_PATH = "/kepu/judge/"

RefusalReason = Literal["unknown", "expired", "revoked"]


# --- the key and the tokens ----------------------------------------------------------------------------------


def load_portal_secret(settings: Settings) -> bytes:
    """The key of the links: ``KEPU_PORTAL_SECRET``, or the one kept under ``KEPU_HOME`` (made on first use)."""
    if settings.portal_secret:
        if len(settings.portal_secret) < MIN_SECRET_LENGTH:
            raise ConfigError(f"KEPU_PORTAL_SECRET is shorter than {MIN_SECRET_LENGTH} characters")
        return settings.portal_secret.encode()
    from kepu.storage import open_private, private_dir

    path = Path(settings.home) / SECRET_FILE
    if not path.exists():
        private_dir(path.parent)
        draft = path.with_name(f".{SECRET_FILE}.{secrets.token_hex(6)}")
        with open_private(draft) as fh:
            fh.write(secrets.token_bytes(SECRET_BYTES))
        try:
            # A hard link never replaces a file: of two processes starting at once, the first key stands.
            os.link(draft, path)
            log.warning("KEPU_PORTAL_SECRET is not set: made a key for the judges' links in %s", path)
        except FileExistsError:
            pass
        finally:
            draft.unlink(missing_ok=True)
    secret = path.read_bytes()
    if len(secret) < MIN_SECRET_LENGTH:
        raise ConfigError(f"the portal key in {path} is empty or too short; remove it or set KEPU_PORTAL_SECRET")
    return secret


def portal_secret(settings: Settings) -> bytes:
    """The key the judges' tokens are signed with (the web pages derive their CSRF tokens from it too)."""
    return load_portal_secret(settings)


def make_token(secret: bytes, campaign_id: str, stage: str, judge_id: str, generation: int) -> str:
    """A judge's token for one round and link generation."""
    digest = hmac.new(secret, f"{campaign_id}|{stage}|{judge_id}|{generation}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:TOKEN_LENGTH]


def portal_url(settings: Settings, token: str) -> str:
    return f"{settings.public_base_url}{PORTAL_PATH}{token}/"


def _expiry(ctx: Context) -> Callable[[dt.datetime, dt.datetime | None], dt.datetime]:
    rules = ctx.campaign.judging.portal

    def expiry(created: dt.datetime, deadline: dt.datetime | None) -> dt.datetime:
        if deadline is not None:
            return deadline + dt.timedelta(days=rules.grace_days)
        return created + dt.timedelta(days=rules.valid_days)

    return expiry


def local_time(ctx: Context, when: dt.datetime | None) -> str:
    """``2022-12-20 18:00`` in Beijing time, the campaign's clock (``—`` for no time)."""
    from kepu.clock import beijing_text

    return beijing_text(when) or "—"


# --- what the portal gives out -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PortalJudge:
    """What a valid token opens."""

    campaign_id: str
    stage: str
    stage_zh: str
    stage_en: str
    judge_id: str
    judge_name: str
    expires_at: dt.datetime
    deadline: dt.datetime | None
    locked: bool
    submitted_at: dt.datetime | None


@dataclass(frozen=True)
class PortalEntry:
    submission_id: str
    position: int
    kind: str
    kind_zh: str
    title: str
    category: str | None
    synopsis: str | None
    #: None when the campaign's portal is blind.
    unit: str | None
    province: str | None
    #: The publication copy (rendition) in the store, else the raw video.
    video_key: str | None
    cover_key: str | None
    #: Account entries: the account's public link.
    link: str | None
    criteria: list[Criterion]
    #: Saved draft values.
    values: dict[str, float]
    comment: str | None
    #: Every criterion filled.
    complete: bool


class PortalRefused(KepuError):
    """A token that opens nothing: unknown (404), expired (410) or revoked (403). Chinese and English."""

    STATUS: ClassVar[dict[str, int]] = {"unknown": 404, "expired": 410, "revoked": 403}

    def __init__(self, reason: RefusalReason, zh: str, en: str) -> None:
        self.reason: RefusalReason = reason
        self.zh = zh
        self.en = en
        super().__init__(f"{zh} · {en}")

    @property
    def status_code(self) -> int:
        return self.STATUS[self.reason]


class PortalInputError(KepuError):
    """A value, an entry or an action the portal refuses; ``field`` is the criterion key (or ``comment``)
    concerned, None when it is about the whole entry or the judge's scores."""

    def __init__(self, zh: str, en: str, field: str | None = None) -> None:
        self.zh = zh
        self.en = en
        self.field = field
        super().__init__(f"{zh} · {en}")


class PortalLocked(PortalInputError):
    """The judge's scores are submitted (and not reopened): nothing changes."""

    def __init__(self) -> None:
        super().__init__(
            "评分已提交并锁定；如需修改，请联系组织方重新开放",
            "your scores are submitted and locked; ask the organisers to reopen them to make changes",
        )


@dataclass(frozen=True)
class SubmitOutcome:
    accepted: bool
    #: The sheet validator's reasons (``check``, ``row``, ``submission_id``, ``criterion``, ``value``, ``zh``, ``en``).
    problems: list[dict[str, Any]] = field(default_factory=list)
    #: The recorded sheet (score_sheets.id) of an accepted submit.
    sheet_id: int | None = None


@dataclass(frozen=True)
class IssuedLink:
    judge_id: str
    judge_name: str
    email: str | None
    url: str
    expires_at: dt.datetime
    generation: int = 0
    deadline: dt.datetime | None = None
    #: ``new``, ``reissued`` (after a revoke), ``changed`` (another deadline) or ``unchanged``.
    result: str = "unchanged"


@dataclass(frozen=True)
class JudgePortalStatus:
    judge_id: str
    judge_name: str
    email: str | None
    #: Entries with every criterion saved, of the judge's entries.
    scored: int
    total: int
    opened_at: dt.datetime | None
    last_seen_at: dt.datetime | None
    submitted_at: dt.datetime | None
    locked: bool
    #: A returned workbook of the judge passed the checks.
    sheet_returned: bool
    #: Which scores count now: ``portal``, ``sheet`` (a returned workbook) or None.
    counts: str | None
    expires_at: dt.datetime | None
    revoked: bool
    revoked_at: dt.datetime | None = None
    #: The judge was mailed their current link.
    mailed: bool = False


# --- links -------------------------------------------------------------------------------------------------


def _round_judges(ctx: Context, stage_key: str, judge_ids: list[str] | None) -> tuple[Any, dict[str, JudgeRecord]]:
    from kepu.judging.steps import round_judges, scoring_stage

    stage = scoring_stage(ctx, stage_key)
    panel = round_judges(ctx, stage.key)
    if not panel:
        raise JudgingError(
            f"{stage.zh}尚未分配评委，请先运行分配 · the {stage.en} has no assignment yet: assign it first"
        )
    if judge_ids:
        unknown = sorted(set(judge_ids) - set(panel))
        if unknown:
            raise JudgingError(f"不是{stage.zh}的评委 · not judges of the {stage.en}", unknown)
        panel = [j for j in panel if j in set(judge_ids)]
    people = {j.id: j for j in ctx.records.list_judges(ctx.campaign.id, active_only=False)}
    return stage, {j: people[j] for j in panel}


def issue_links(
    ctx: Context,
    stage_key: str,
    *,
    judge_ids: list[str] | None = None,
    deadline: dt.datetime | None = None,
    set_deadline: bool = False,
) -> list[IssuedLink]:
    """Every judge of the round (or ``judge_ids``) with their live link, issued when they had none and
    reissued after a revoke. ``set_deadline`` makes ``deadline`` the round's (``write_sheets`` does: the
    links then expire ``grace_days`` after it); otherwise the recorded deadline stands."""
    c = ctx.campaign
    stage, judges = _round_judges(ctx, stage_key, judge_ids)
    secret = load_portal_secret(ctx.settings)
    expiry = _expiry(ctx)
    out = []
    for jid, judge in judges.items():

        def token_for(generation: int, jid: str = jid) -> str:
            return make_token(secret, c.id, stage.key, jid, generation)

        link, result = ctx.records.issue_judge_link(
            c.id, stage.key, jid, token_for=token_for, expiry=expiry, deadline=deadline, set_deadline=set_deadline
        )
        out.append(
            IssuedLink(
                jid,
                judge.name,
                judge.email,
                portal_url(ctx.settings, token_for(link.generation)),
                link.expires_at,
                link.generation,
                link.deadline,
                result,
            )
        )
    return out


def _refused(reason: RefusalReason) -> PortalRefused:
    if reason == "expired":
        return PortalRefused(
            reason,
            "该评审链接已过期，请联系组织方获取新链接",
            "this judging link has expired; ask the organisers for a new one",
        )
    if reason == "revoked":
        return PortalRefused(
            reason,
            "该评审链接已作废，请使用组织方发给您的新链接",
            "this judging link was revoked; use the new link the organisers sent you",
        )
    return PortalRefused(
        reason, "评审链接无效，请检查链接是否完整", "this judging link is not valid; check that it is complete"
    )


def _old_token(ctx: Context, token: str) -> bool:
    """Whether ``token`` was a link of this campaign before a revoke (an earlier generation)."""
    secret = load_portal_secret(ctx.settings)
    for link in ctx.records.list_judge_links(ctx.campaign.id):
        for generation in range(link.generation):
            if hmac.compare_digest(make_token(secret, link.campaign_id, link.stage, link.judge_id, generation), token):
                return True
    return False


def open_portal(ctx: Context, token: str, *, now: dt.datetime | None = None, touch: bool = True) -> PortalJudge:
    """The judge and round a token opens; refused (:class:`PortalRefused`) when unknown, expired or revoked.

    ``touch`` records the visit (``opened_at`` the first time, ``last_seen_at`` every time)."""
    now = now or dt.datetime.now(dt.UTC)
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        raise _refused("unknown")
    link = ctx.records.find_judge_link(token_sha256(token))
    if link is None or link.campaign_id != ctx.campaign.id:
        raise _refused("revoked" if link is None and _old_token(ctx, token) else "unknown")
    if link.revoked_at is not None:
        raise _refused("revoked")
    if now >= link.expires_at:
        raise _refused("expired")
    try:
        stage = ctx.campaign.judging.stage(link.stage)
    except KepuError:
        raise _refused("unknown") from None
    judge = next(
        (j for j in ctx.records.list_judges(link.campaign_id, active_only=False) if j.id == link.judge_id), None
    )
    if judge is None:
        raise _refused("unknown")
    if touch:
        link = ctx.records.touch_judge_link(link.campaign_id, link.stage, link.judge_id, now)
    return _judge_of(link, stage.zh, stage.en, judge.name)


def _judge_of(link: JudgeLink, stage_zh: str, stage_en: str, name: str) -> PortalJudge:
    return PortalJudge(
        link.campaign_id,
        link.stage,
        stage_zh,
        stage_en,
        link.judge_id,
        name,
        link.expires_at,
        link.deadline,
        link.locked,
        link.submitted_at,
    )


# --- entries and drafts ------------------------------------------------------------------------------------------


def _entries_of(ctx: Context, judge: PortalJudge, only: str | None = None) -> list[PortalEntry]:
    from kepu.judging.steps import campaign_entries, entry_media

    c = ctx.campaign
    mine = [
        r
        for r in ctx.records.list_assignments(c.id, judge.stage)
        if r.judge_id == judge.judge_id and (only is None or r.submission_id == only)
    ]
    ids = {r.submission_id for r in mine}
    entries = campaign_entries(ctx, ids)
    media = entry_media(ctx, ids)
    drafts = {d.submission_id: d for d in ctx.records.list_portal_drafts(c.id, judge.stage, judge.judge_id)}
    blind = c.judging.portal.blind
    out = []
    for r in mine:
        e = entries[r.submission_id]
        criteria: list[Criterion] = list(c.judging.criteria.get(e.kind, []))  # type: ignore[call-overload]
        draft = drafts.get(e.id)
        values = {k: float(v) for k, v in (draft.criteria if draft else {}).items()}
        kind = c.kinds.get(e.kind)  # type: ignore[call-overload]
        out.append(
            PortalEntry(
                submission_id=e.id,
                position=r.position,
                kind=e.kind,
                kind_zh=kind.label_zh if kind else e.kind,
                title=e.title or e.source_name,
                category=e.category,
                synopsis=e.synopsis,
                unit=None if blind else e.unit,
                province=None if blind else e.province,
                video_key=media[e.id].video_key,
                cover_key=media[e.id].cover_key,
                link=e.link if e.kind == "account" else None,
                criteria=criteria,
                values=values,
                comment=draft.comment if draft else None,
                complete=all(cr.key in values for cr in criteria),
            )
        )
    # The judge's seeded order, numbered as on their sheet (the assignment numbers videos before accounts).
    return sorted(out, key=lambda pe: pe.position)


def portal_entries(ctx: Context, judge: PortalJudge) -> list[PortalEntry]:
    """The judge's entries of the round, in the order of their sheet, with what they have saved."""
    return _entries_of(ctx, judge)


def parse_score(criterion: Criterion, raw: str | float | None) -> float | None:
    """A typed score as a number (None: blank), checked as the sheet validator checks a score cell: a finite
    number (full-width digits read after NFKC) inside the criterion's range."""
    from kepu.judging.sheets import as_number, shown

    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    number, bad = as_number(raw)
    if number is None:
        text = shown(bad if bad is not None else raw)
        raise PortalInputError(
            f"“{criterion.zh}”的值“{text}”不是有效数字（须为有限数值）",
            f"“{criterion.en}” value “{text}” is not a finite number",
            criterion.key,
        )
    if not criterion.min <= number <= criterion.max:
        raise PortalInputError(
            f"“{criterion.zh}” {number:g} 超出 {criterion.min:g}–{criterion.max:g}",
            f"“{criterion.en}” {number:g} is outside {criterion.min:g}–{criterion.max:g}",
            criterion.key,
        )
    return number


def save_draft(
    ctx: Context,
    judge: PortalJudge,
    submission_id: str,
    values: Mapping[str, str | float | None],
    comment: str | None,
) -> PortalEntry:
    """Save what the judge typed for one entry (only the criteria given; a blank one is cleared; ``comment``
    None leaves the comment as it is). Raises :class:`PortalInputError` on a bad value, an entry not assigned
    to the judge, and :class:`PortalLocked` once the scores are submitted."""
    current = _entries_of(ctx, judge, only=submission_id)
    if not current:
        raise PortalInputError(f"作品 {submission_id} 未分配给您", f"entry {submission_id} is not assigned to you")
    link = ctx.records.get_judge_link(judge.campaign_id, judge.stage, judge.judge_id)
    if link is None or link.locked:
        raise PortalLocked()
    entry = current[0]
    by_key = {c.key: c for c in entry.criteria}
    parsed: dict[str, float | None] = {}
    for key, raw in values.items():
        crit = by_key.get(key)
        if crit is None:
            raise PortalInputError(f"没有评分项“{key}”", f"there is no criterion “{key}”", key)
        parsed[key] = parse_score(crit, raw)
    text = None
    if comment is not None:
        text = comment.strip() or None
        if text is not None and len(text) > MAX_COMMENT:
            raise PortalInputError(
                f"评语超过 {MAX_COMMENT} 字", f"the comment is longer than {MAX_COMMENT} characters", "comment"
            )
    try:
        ctx.records.save_portal_draft(
            judge.campaign_id,
            judge.stage,
            judge.judge_id,
            submission_id,
            criteria=parsed,
            comment=text,
            set_comment=comment is not None,
        )
    except PortalLockedError:
        raise PortalLocked() from None
    return _entries_of(ctx, judge, only=submission_id)[0]


# --- submit ------------------------------------------------------------------------------------------------------


def filled_sheet(ctx: Context, judge: PortalJudge, *, at: dt.datetime) -> bytes:
    """The workbook the judge would have returned: their sheet (the same code, entries and order) with the
    saved drafts in the score and comment cells. ``at`` is written as its time, so each submit is its own
    sheet (a submit after a returned workbook replaces it, even with the same scores)."""
    from kepu.clock import in_beijing
    from kepu.judging.sheets import COMMENT_KEY, FIRST_ROW, KEY_ROW, MARKER, sheet_workbook
    from kepu.judging.steps import codes_of, round_or_fail, scoring_stage, sheet_entries
    from kepu.judging.xlsx import workbook_bytes

    c = ctx.campaign
    stage = scoring_stage(ctx, judge.stage)
    round_row = round_or_fail(ctx, stage)
    person = next(j for j in ctx.records.list_judges(c.id, active_only=False) if j.id == judge.judge_id)
    mine = sheet_entries(ctx, stage, {judge.judge_id}).get(judge.judge_id, [])
    code = codes_of(ctx, stage, round_row, {judge.judge_id})[judge.judge_id]
    deadline = in_beijing(judge.deadline) if judge.deadline else None
    wb = sheet_workbook(c, stage, person, mine, code=code, deadline=deadline)
    drafts = {d.submission_id: d for d in ctx.records.list_portal_drafts(c.id, stage.key, judge.judge_id)}
    for ws in wb.worksheets:
        marker = str(ws.cell(row=KEY_ROW, column=1).value or "")
        if not marker.startswith(f"{MARKER}:"):
            continue
        columns = {str(cell.value): cell.column for cell in ws[KEY_ROW] if cell.value}
        for r in range(FIRST_ROW, ws.max_row + 1):
            draft = drafts.get(str(ws.cell(row=r, column=columns["submission_id"]).value or ""))
            if draft is None:
                continue
            for key, value in draft.criteria.items():
                if key in columns:
                    ws.cell(row=r, column=columns[key], value=float(value))
            if draft.comment:
                ws.cell(row=r, column=columns[COMMENT_KEY], value=draft.comment)
    return workbook_bytes(wb, at)


def submit(ctx: Context, judge: PortalJudge, *, now: dt.datetime | None = None) -> SubmitOutcome:
    """Hand in the judge's scores: the filled workbook is checked like a returned sheet and, when accepted,
    kept and recorded as one, and the judge's scores are locked. A refused submit changes nothing and says why
    (the validator's reasons); :class:`PortalLocked` when already submitted."""
    from kepu.judging.ingest import SheetValidator, sha256_bytes
    from kepu.judging.sheets import parse_sheet
    from kepu.judging.steps import XLSX, record_checked, round_facts, scoring_stage

    c = ctx.campaign
    link = ctx.records.get_judge_link(judge.campaign_id, judge.stage, judge.judge_id)
    if link is None or link.locked:
        raise PortalLocked()
    stage = scoring_stage(ctx, judge.stage)
    at = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    data = filled_sheet(ctx, judge, at=at)
    checked = SheetValidator(round_facts(ctx, stage)).check(parse_sheet(data))
    if not checked.accepted:
        log.info(
            "portal submit of %s (%s) refused: %s",
            judge.judge_id,
            stage.key,
            "; ".join(p["en"] for p in checked.problems[:5]),
        )
        return SubmitOutcome(False, checked.problems, None)
    sha = sha256_bytes(data)
    key = keys.portal_sheet_key(c.id, stage.key, judge.judge_id, sha)
    ctx.store.put_bytes(key, data, content_type=XLSX)
    done = record_checked(
        ctx,
        stage,
        key,
        sha,
        data,
        checked,
        actor=f"judge:{judge.judge_id}",
        then=lambda sheet: ctx.records.lock_judge_link(c.id, stage.key, judge.judge_id, sheet.id),
    )
    if not done.checked.accepted or done.sheet.status != "accepted":
        return SubmitOutcome(False, done.checked.problems, None)
    log.info("portal submit of %s (%s) accepted as sheet %d", judge.judge_id, stage.key, done.sheet.id)
    return SubmitOutcome(True, [], done.sheet.id)


# --- operators -----------------------------------------------------------------------------------------------------


def reopen(ctx: Context, campaign_id: str, stage: str, judge_id: str, *, actor: str) -> None:
    """Let a judge change submitted scores again (audited); their submitted scores count until they submit anew."""
    if not ctx.records.reopen_judge_link(campaign_id, stage, judge_id, actor=actor):
        log.info("%s/%s/%s: not locked, nothing to reopen", campaign_id, stage, judge_id)


def revoke(ctx: Context, campaign_id: str, stage: str, judge_id: str, *, actor: str) -> None:
    """Stop a judge's link at once (audited); the next issue (``write_sheets``, ``kepu judging links``) makes a new
    one, and the sheet must be written again to carry it."""
    ctx.records.revoke_judge_link(campaign_id, stage, judge_id, actor=actor)


def portal_status(ctx: Context, stage_key: str) -> list[JudgePortalStatus]:
    """Each judge of the round: visits, progress, submit, lock, returned workbook, link expiry or revoke."""
    from kepu.judging.steps import campaign_entries

    c = ctx.campaign
    stage, judges = _round_judges(ctx, stage_key, None)
    rows = ctx.records.list_assignments(c.id, stage.key)
    kinds = {sid: e.kind for sid, e in campaign_entries(ctx, {r.submission_id for r in rows}).items()}
    criteria: dict[str, set[str]] = {str(k): {cr.key for cr in v} for k, v in c.judging.criteria.items()}
    drafts = {(d.judge_id, d.submission_id): d for d in ctx.records.list_portal_drafts(c.id, stage.key)}
    links = {link.judge_id: link for link in ctx.records.list_judge_links(c.id, stage.key)}
    sheets = ctx.records.list_sheets(c.id, stage.key)
    portal = keys.portal_prefix(c.id, stage.key)
    mailed = {
        (m["judge_id"], m["generation"]) for m in ctx.records.list_link_mails(c.id, stage.key) if m["status"] == "sent"
    }
    out = []
    for jid, judge in judges.items():
        mine = [r.submission_id for r in rows if r.judge_id == jid]
        scored = sum(
            1
            for sid in mine
            if (d := drafts.get((jid, sid))) is not None and criteria.get(kinds[sid], set()) <= set(d.criteria)
        )
        theirs = [s for s in sheets if s.judge_id == jid]
        current = next((s for s in theirs if s.status == "accepted"), None)
        link = links.get(jid)
        out.append(
            JudgePortalStatus(
                judge_id=jid,
                judge_name=judge.name,
                email=judge.email,
                scored=scored,
                total=len(mine),
                opened_at=link.opened_at if link else None,
                last_seen_at=link.last_seen_at if link else None,
                submitted_at=link.submitted_at if link else None,
                locked=bool(link and link.locked),
                sheet_returned=any(
                    not s.object_key.startswith(portal) and s.status in ("accepted", "superseded") for s in theirs
                ),
                counts=None if current is None else "portal" if current.object_key.startswith(portal) else "sheet",
                expires_at=link.expires_at if link else None,
                revoked=bool(link and link.revoked_at),
                revoked_at=link.revoked_at if link else None,
                mailed=bool(link and (jid, link.generation) in mailed and link.revoked_at is None),
            )
        )
    return out


# --- mail --------------------------------------------------------------------------------------------------------


def compose_link_mail(ctx: Context, link: IssuedLink, stage_zh: str, stage_en: str, entries: int) -> tuple[str, str]:
    """Subject and HTML body of a judge's link e-mail, Chinese with English beside; times in Beijing time."""
    c = ctx.campaign.campaign
    e = html.escape
    subject = f"{c.name_zh} · {stage_zh}在线评审链接 · {stage_en} online judging link"
    deadline = (
        (
            f"<p>评分截止（北京时间）：{e(local_time(ctx, link.deadline))}<br>"
            f"Scores due by (Beijing time): {e(local_time(ctx, link.deadline))}</p>"
        )
        if link.deadline
        else ""
    )
    body = f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{e(subject)}</title></head>
<body>
<p>{e(link.judge_name)} 老师：您好！<br>Dear {e(link.judge_name)},</p>
<p>感谢您担任“{e(c.name_zh)}”{e(stage_zh)}评委。您共有 {entries} 件作品待评，可在手机或电脑浏览器中打开以下个人链接，
观看作品并在线评分；评分自动保存，全部评完后请点击“提交”。<br>
Thank you for judging the {e(stage_en)} of “{e(c.name_en)}”. {entries} entries are assigned to you: open your personal
link below in a phone or computer browser to watch them and score them online. Scores are saved as you go; press
“Submit” once every entry is scored.</p>
<p><a href="{e(link.url)}">{e(link.url)}</a></p>
{deadline}<p>链接有效期至（北京时间）：{e(local_time(ctx, link.expires_at))}<br>
The link works until (Beijing time): {e(local_time(ctx, link.expires_at))}</p>
<p>此链接仅供您本人使用，请勿转发。您也可以继续使用评分表（XLSX）评分并交回；以较晚提交的一份为准。<br>
This link is yours alone: please do not forward it. You may also score in the XLSX sheet and return it; whichever you
hand in later counts.</p>
<p>{e(c.organiser_zh)}<br>{e(c.organiser_en)}</p>
</body></html>
"""
    return subject, body


class LinkMailsSent(TypedDict):
    """What :func:`mail_links` did, judge by judge: mailed now, mailed before, without an address, failed."""

    sent: list[str]
    skipped: list[str]
    no_address: list[str]
    failed: list[str]


def mail_links(
    ctx: Context, stage_key: str, mailer: Mailer, *, judge_ids: list[str] | None = None, domain: str = "kepu.invalid"
) -> LinkMailsSent:
    """Mail each judge of the round their current link, once: the sent-log (per judge and link generation) keeps
    a rerun from mailing anyone twice; a new link after a revoke is a new message. A failed message is recorded
    and sent by the next run."""
    from kepu.intake.form_values import is_valid_email
    from kepu.publication.notify import Mail

    c = ctx.campaign
    stage = ctx.campaign.judging.stage(stage_key)
    links = issue_links(ctx, stage_key, judge_ids=judge_ids)
    counts: dict[str, int] = {}
    for r in ctx.records.list_assignments(c.id, stage.key):
        counts[r.judge_id] = counts.get(r.judge_id, 0) + 1
    out: dict[str, list[str]] = {"sent": [], "skipped": [], "no_address": [], "failed": []}
    for link in links:
        address = link.email if link.email and is_valid_email(link.email) else None
        if not ctx.records.claim_link_mail(c.id, stage.key, link.judge_id, link.generation, address):
            out["skipped" if address else "no_address"].append(link.judge_id)
            continue
        assert address is not None
        subject, body = compose_link_mail(ctx, link, stage.zh, stage.en, counts.get(link.judge_id, 0))
        message_id = f"<kepu.{c.id}.{stage.key}.{link.judge_id}.g{link.generation}.portal@{domain}>"
        try:
            mailer.send(Mail(address, subject, body, message_id))
        except Exception as exc:  # the mail server's reasons are many; each is recorded and retried
            log.warning("link mail to %s failed: %s", link.judge_id, exc)
            ctx.records.finish_link_mail(
                c.id, stage.key, link.judge_id, link.generation, status="failed", error=str(exc)[:500]
            )
            out["failed"].append(link.judge_id)
            continue
        ctx.records.finish_link_mail(
            c.id, stage.key, link.judge_id, link.generation, status="sent", message_id=message_id
        )
        out["sent"].append(link.judge_id)
    log.info("link mails of %s: %s", stage.key, {k: len(v) for k, v in out.items()})
    return {"sent": out["sent"], "skipped": out["skipped"], "no_address": out["no_address"], "failed": out["failed"]}


def link_mailer(ctx: Context) -> Any:
    """The mailer of the result e-mails (the campaign's SMTP connections, in order) as a context manager. On the
    embedded default without any connection (a ``kepu`` command outside Airflow), the loopback mail sink is
    started for the while, keeping the messages as ``.eml`` files under ``$KEPU_HOME/outbox``."""
    from contextlib import ExitStack, contextmanager

    from kepu.errors import AwardError
    from kepu.publication.notify import mailer_for
    from kepu.storage import LocalStore

    @contextmanager
    def opened() -> Any:
        with ExitStack() as stack:
            try:
                mailer = mailer_for(ctx.campaign)
            except AwardError:
                if not isinstance(ctx.store, LocalStore):
                    raise
                from kepu.mailsink import MailSink, conn_env_var, connection_json

                sink = stack.enter_context(MailSink(ctx.settings.outbox_dir))
                name = conn_env_var()
                before = os.environ.get(name)
                os.environ[name] = connection_json(sink.port)
                stack.callback(
                    lambda: os.environ.pop(name, None) if before is None else os.environ.update({name: before})
                )
                mailer = mailer_for(ctx.campaign)
            yield stack.enter_context(mailer)

    return opened()


__all__ = [
    "IssuedLink",
    "JudgePortalStatus",
    "LinkMailsSent",
    "PortalEntry",
    "PortalInputError",
    "PortalJudge",
    "PortalLocked",
    "PortalRefused",
    "SubmitOutcome",
    "issue_links",
    "mail_links",
    "open_portal",
    "portal_entries",
    "portal_status",
    "reopen",
    "revoke",
    "save_draft",
    "submit",
]
