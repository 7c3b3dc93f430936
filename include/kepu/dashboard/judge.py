"""评审入口 The judging portal: a judge's personal pages, opened by the token in their link.

No Airflow login here: the token (see :mod:`kepu.judging.portal`) is the credential, and it opens only the
entries assigned to its judge in its round. The routes only call the portal's domain functions
(``open_portal``, ``portal_entries``, ``save_draft``, ``submit``); every check of who may see or change
what lives there, and every text from a submission goes through Jinja2's autoescaping.

Everything works as plain HTML forms; ``static/judge.js`` adds autosave (a debounced ``fetch`` to the same
form target, answered with JSON). Every POST carries a CSRF token, HMAC(portal secret, "csrf|" + token),
and must come from this origin. The pages carry the dashboard's strict CSP plus ``script-src 'self'`` (for
judge.js) and ``connect-src 'self'`` (for its saves), ``Referrer-Policy: no-referrer`` (the token is in the
URL), ``Cache-Control: no-store`` and ``X-Robots-Tag: noindex``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRouter

if TYPE_CHECKING:
    from kepu.context import Context
    from kepu.judging.portal import PortalEntry, PortalJudge

log = logging.getLogger(__name__)

#: The dashboard's policy, plus judge.js and its saves; media from the store's origin when it is S3.
JUDGE_CSP = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' data:{extra}; "
    "media-src 'self'{extra}; form-action 'self'; base-uri 'none'; frame-ancestors 'self'"
)
JUDGE_HEADERS = {
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
    "x-robots-tag": "noindex, nofollow",
}
#: Refusal reasons of the portal and the HTTP status each one answers with.
REFUSAL_STATUS = {"unknown": 404, "expired": 410, "revoked": 403}
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
#: Form field of a criterion's value: ``score.<criterion key>``.
SCORE_PREFIX = "score."
#: Longest comment accepted from the form (the sheet's comment cell holds far less in practice).
MAX_COMMENT = 4000
LOCKED_ZH = "已提交，如需修改请联系工作人员"
LOCKED_EN = "submitted; ask the organisers to reopen"

router = APIRouter(prefix="/judge")


class Refused(Exception):
    """A request the portal answers with a refusal page (bad token, bad CSRF token, foreign origin)."""

    def __init__(self, status: int, zh: str, en: str) -> None:
        super().__init__(en)
        self.status, self.zh, self.en = status, zh, en


# --- helpers ----------------------------------------------------------------------------------------------


def _context(request: Request) -> Context:
    from kepu.context import Context

    s = request.app.state.services
    return Context(s.settings, s.campaign, s.records, s.store)


def _open(request: Request, token: str, *, touch: bool = True) -> tuple[Context, PortalJudge]:
    from kepu.judging.portal import PortalRefused, open_portal

    ctx = _context(request)
    try:
        judge = open_portal(ctx, token, touch=touch)
    except PortalRefused as exc:
        raise Refused(REFUSAL_STATUS.get(exc.reason, 404), exc.zh, exc.en) from exc
    return ctx, judge


def csrf_token(secret: bytes, token: str) -> str:
    """The CSRF token of a judge's pages: it proves a POST came from a page the server rendered for ``token``."""
    mac = hmac.new(secret, f"csrf|{token}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def _secret(ctx: Context) -> bytes:
    from kepu.judging.portal import portal_secret

    return portal_secret(ctx.settings)


def own_origins(request: Request, ctx: Context) -> set[str]:
    """This app's origin as the request reached it, and as the public base URL names it (behind a proxy that
    ends TLS, the request's own scheme can be http while the browser's is https)."""
    origins = {f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"}
    if getattr(ctx.settings, "public_base_url_set", False):
        parts = urlsplit(ctx.settings.public_base_url)
        if parts.scheme and parts.netloc:
            origins.add(f"{parts.scheme}://{parts.netloc}")
    return origins


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def same_origin(request: Request, origins: set[str]) -> bool:
    """Whether a POST came from a page of this origin.

    Browsers say so in ``Sec-Fetch-Site``. Without it, ``Origin`` (or else ``Referer``) must name this origin.
    The pages' ``no-referrer`` policy makes browsers send ``Origin: null`` with their own form posts, so an
    old browser sending neither ``Sec-Fetch-Site`` nor a real origin is left to the CSRF token; a request
    with no header at all (not a browser's) is refused.
    """
    h = request.headers
    site = h.get("sec-fetch-site")
    if site is not None:
        return site == "same-origin"
    origin = h.get("origin")
    if origin and origin != "null":
        return origin in origins
    referer = h.get("referer")
    if referer:
        return _origin_of(referer) in origins
    return origin == "null"


CSRF_ZH = "请求无法验证（页面可能已过期），请刷新页面后重试"
CSRF_EN = "the request could not be verified (the page may be stale); reload the page and try again"


async def _check_post(request: Request, ctx: Context, token: str) -> dict[str, str]:
    """The form of a POST after its CSRF token and origin were checked; refused with 403 otherwise."""
    form = await request.form()
    fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    sent = request.headers.get(CSRF_HEADER) or fields.get(CSRF_FIELD, "")
    expected = csrf_token(_secret(ctx), token)
    if not hmac.compare_digest(sent.encode(), expected.encode()):
        log.warning("judge portal: POST %s without a valid CSRF token", request.url.path.rsplit("/", 1)[-1])
        raise Refused(403, CSRF_ZH, CSRF_EN)
    if not same_origin(request, own_origins(request, ctx)):
        log.warning("judge portal: cross-origin POST refused (origin %r)", request.headers.get("origin"))
        raise Refused(403, "不接受来自其他网站的请求", "a request from another site is not accepted")
    return fields


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def _base(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def _home(request: Request, token: str) -> str:
    return f"{_base(request)}/judge/{quote(token, safe='')}/"


def _entry_url(request: Request, token: str, sid: str) -> str:
    return f"{_home(request, token)}entry/{quote(sid, safe='')}"


def _media_origins(ctx: Context, entries: Iterable[PortalEntry]) -> set[str]:
    """Origins the media route redirects to (the S3 endpoint), which the page's CSP must allow."""
    origins = set()
    for e in entries:
        for key in (e.video_key, e.cover_key):
            if key:
                url = ctx.store.presigned_url(key)
                if url:
                    origins.add(_origin_of(str(url)))
    return {o for o in origins if o}


def _headers(response: Response, media_origins: Iterable[str] = ()) -> Response:
    extra = "".join(f" {o}" for o in sorted(set(media_origins)))
    response.headers["content-security-policy"] = JUDGE_CSP.format(extra=extra)
    response.headers.update(JUDGE_HEADERS)
    return response


def _render(
    request: Request,
    template: str,
    *,
    status_code: int = 200,
    media_origins: Iterable[str] = (),
    **context: Any,
) -> HTMLResponse:
    env = request.app.state.templates
    try:
        campaign = request.app.state.services.campaign
    except Exception:  # the refusal page must render even when the campaign file is broken
        campaign = None
    html = env.get_template(template).render(base=_base(request), campaign=campaign, **context)
    response = HTMLResponse(html, status_code=status_code)
    _headers(response, media_origins)
    return response


def refusal_page(request: Request, exc: Refused) -> Response:
    if _wants_json(request):
        return _headers(JSONResponse({"ok": False, "zh": exc.zh, "en": exc.en}, status_code=exc.status))
    return _render(request, "judge_refused.html", status_code=exc.status, message_zh=exc.zh, message_en=exc.en)


@dataclass(frozen=True)
class Progress:
    scored: int
    total: int

    @property
    def percent(self) -> int:
        return round(100 * self.scored / self.total) if self.total else 0


def _progress(entries: list[PortalEntry]) -> Progress:
    return Progress(sum(1 for e in entries if e.complete), len(entries))


def _page_context(request: Request, ctx: Context, token: str, judge: PortalJudge) -> dict[str, Any]:
    return {
        "judge": judge,
        "token": token,
        "home": _home(request, token),
        "csrf": csrf_token(_secret(ctx), token),
        "locked_zh": LOCKED_ZH,
        "locked_en": LOCKED_EN,
        "now": dt.datetime.now(dt.UTC),
    }


def _value_text(value: float | None) -> str:
    """A saved value as the number input shows it (7.0 → "7", 7.5 → "7.5")."""
    if value is None:
        return ""
    return f"{value:g}"


# --- pages ------------------------------------------------------------------------------------------------


@router.get("/{token}/", response_class=HTMLResponse)
def judge_home(request: Request, token: str) -> Response:
    from kepu.judging.portal import portal_entries

    ctx, judge = _open(request, token)
    entries = portal_entries(ctx, judge)
    return _render(
        request,
        "judge_list.html",
        entries=entries,
        progress=_progress(entries),
        entry_url=lambda sid: _entry_url(request, token, sid),
        **_page_context(request, ctx, token, judge),
    )


def _entry_page(
    request: Request,
    ctx: Context,
    token: str,
    judge: PortalJudge,
    entries: list[PortalEntry],
    entry: PortalEntry,
    *,
    status_code: int = 200,
    error: tuple[str, str, str | None] | None = None,
    typed: dict[str, str] | None = None,
) -> HTMLResponse:
    i = next(n for n, e in enumerate(entries) if e.submission_id == entry.submission_id)
    prev_e = entries[i - 1] if i > 0 else None
    next_e = entries[i + 1] if i + 1 < len(entries) else None
    values = {c.key: _value_text(entry.values.get(c.key)) for c in entry.criteria}
    comment = entry.comment or ""
    if typed is not None:  # a refused plain post shows what the judge typed, not the saved draft
        values = {c.key: typed.get(SCORE_PREFIX + c.key, "") for c in entry.criteria}
        comment = typed.get("comment", "")
    media = f"{_home(request, token)}media/{quote(entry.submission_id, safe='')}"
    return _render(
        request,
        "judge_entry.html",
        status_code=status_code,
        media_origins=_media_origins(ctx, [entry]),
        entry=entry,
        index=i + 1,
        progress=_progress(entries),
        prev_url=_entry_url(request, token, prev_e.submission_id) if prev_e else None,
        next_url=_entry_url(request, token, next_e.submission_id) if next_e else None,
        video_url=f"{media}/video" if entry.video_key else None,
        cover_url=f"{media}/cover" if entry.cover_key else None,
        action=_entry_url(request, token, entry.submission_id),
        link=entry.link if entry.link and urlsplit(entry.link).scheme in ("http", "https") else None,
        saved=request.query_params.get("saved") == "1" and error is None,
        values=values,
        comment=comment,
        error=error,
        score_prefix=SCORE_PREFIX,
        **_page_context(request, ctx, token, judge),
    )


def _find(entries: list[PortalEntry], sid: str) -> PortalEntry:
    entry = next((e for e in entries if e.submission_id == sid), None)
    if entry is None:
        raise Refused(404, "没有这件作品，或它不在您的评审范围内", "no such entry among the entries assigned to you")
    return entry


@router.get("/{token}/entry/{submission_id}", response_class=HTMLResponse)
def judge_entry(request: Request, token: str, submission_id: str) -> Response:
    from kepu.judging.portal import portal_entries

    ctx, judge = _open(request, token)
    entries = portal_entries(ctx, judge)
    return _entry_page(request, ctx, token, judge, entries, _find(entries, submission_id))


Go = Literal["stay", "next", "prev", "list"]


@router.post("/{token}/entry/{submission_id}")
async def judge_save(request: Request, token: str, submission_id: str) -> Response:
    """Save one entry's draft: JSON to judge.js's autosave, a redirect (or the page with the problem) to a
    plain form post."""
    from starlette.concurrency import run_in_threadpool

    from kepu.judging.portal import PortalInputError, PortalLocked, portal_entries, save_draft

    ctx, judge = await run_in_threadpool(_open, request, token)
    fields = await _check_post(request, ctx, token)
    entries = await run_in_threadpool(portal_entries, ctx, judge)
    entry = _find(entries, submission_id)
    as_json = _wants_json(request)
    if judge.locked:
        if as_json:
            return _headers(JSONResponse({"ok": False, "zh": LOCKED_ZH, "en": LOCKED_EN, "locked": True}, 409))
        return _entry_page(
            request, ctx, token, judge, entries, entry, status_code=409, error=(LOCKED_ZH, LOCKED_EN, None)
        )
    values: dict[str, str | float | None] = {}
    for c in entry.criteria:
        raw = fields.get(SCORE_PREFIX + c.key)
        if raw is not None:  # a field left out is left as it was saved
            values[c.key] = raw.strip() or None
    typed_comment = fields.get("comment")
    # None leaves the saved comment as it is; "" clears it.
    comment = None if typed_comment is None else typed_comment.strip()[:MAX_COMMENT]
    try:
        saved = await run_in_threadpool(save_draft, ctx, judge, submission_id, values, comment)
    except PortalLocked:  # submitted meanwhile (from another tab or device)
        if as_json:
            return _headers(JSONResponse({"ok": False, "zh": LOCKED_ZH, "en": LOCKED_EN, "locked": True}, 409))
        return _entry_page(
            request, ctx, token, judge, entries, entry, status_code=409, error=(LOCKED_ZH, LOCKED_EN, None)
        )
    except PortalInputError as exc:
        field = getattr(exc, "field", None)
        if as_json:
            body = {"ok": False, "zh": exc.zh, "en": exc.en, "field": field}
            return _headers(JSONResponse(body, status_code=422))
        return _entry_page(
            request, ctx, token, judge, entries, entry, status_code=422, error=(exc.zh, exc.en, field), typed=fields
        )
    if as_json:
        now_done = [saved if e.submission_id == submission_id else e for e in entries]
        progress = _progress(now_done)
        return _headers(
            JSONResponse({"ok": True, "complete": saved.complete, "scored": progress.scored, "total": progress.total})
        )
    go: str = fields.get("go", "stay")
    i = next(n for n, e in enumerate(entries) if e.submission_id == submission_id)
    target = _entry_url(request, token, submission_id) + "?saved=1"
    if go == "next" and i + 1 < len(entries):
        target = _entry_url(request, token, entries[i + 1].submission_id)
    elif go == "prev" and i > 0:
        target = _entry_url(request, token, entries[i - 1].submission_id)
    elif go == "list":
        target = _home(request, token)
    return _headers(RedirectResponse(target, status_code=303))


@router.get("/{token}/submit", response_class=HTMLResponse)
def judge_confirm(request: Request, token: str) -> Response:
    """The confirmation step before the final submit (works without script)."""
    from kepu.judging.portal import portal_entries

    ctx, judge = _open(request, token)
    entries = portal_entries(ctx, judge)
    return _render(
        request,
        "judge_submit.html",
        entries=entries,
        progress=_progress(entries),
        missing=[e for e in entries if not e.complete],
        entry_url=lambda sid: _entry_url(request, token, sid),
        outcome=None,
        **_page_context(request, ctx, token, judge),
    )


@router.post("/{token}/submit")
async def judge_submit(request: Request, token: str) -> Response:
    from starlette.concurrency import run_in_threadpool

    from kepu.judging.portal import portal_entries, submit

    ctx, judge = await run_in_threadpool(_open, request, token)
    fields = await _check_post(request, ctx, token)
    if judge.locked:
        return _headers(RedirectResponse(_home(request, token), status_code=303))
    if fields.get("confirm") != "yes":
        return _headers(RedirectResponse(_home(request, token) + "submit", status_code=303))
    outcome = await run_in_threadpool(submit, ctx, judge)
    if outcome.accepted:
        log.info("judge portal: %s submitted the %s scores", judge.judge_id, judge.stage)
        return _headers(RedirectResponse(_home(request, token) + "?submitted=1", status_code=303))
    ctx, judge = await run_in_threadpool(_open, request, token)
    entries = await run_in_threadpool(portal_entries, ctx, judge)
    return _render(
        request,
        "judge_submit.html",
        status_code=422,
        entries=entries,
        progress=_progress(entries),
        missing=[e for e in entries if not e.complete],
        entry_url=lambda sid: _entry_url(request, token, sid),
        outcome=outcome,
        **_page_context(request, ctx, token, judge),
    )


@router.get("/{token}/media/{submission_id}/{which}")
def judge_media(request: Request, token: str, submission_id: str, which: str) -> Response:
    """The video or cover of an entry assigned to this judge: a presigned URL on S3, the file (with ranges,
    so the player can seek) on the local store."""
    from kepu.dashboard.detail import INLINE_TYPES, content_type
    from kepu.judging.portal import portal_entries

    if which not in ("video", "cover"):
        raise Refused(404, "没有这个文件", "no such file")
    ctx, judge = _open(request, token, touch=False)
    entry = _find(portal_entries(ctx, judge), submission_id)
    key = entry.video_key if which == "video" else entry.cover_key
    if not key:
        raise Refused(404, "这件作品没有这个文件", "this entry has no such file")
    url = ctx.store.presigned_url(key)
    if url:
        return _headers(RedirectResponse(str(url), status_code=303))
    local_path = getattr(ctx.store, "local_path", None)  # the local store's; S3 answered above
    path = local_path(key) if local_path is not None else None
    if path is None:
        raise Refused(404, "文件不在存储中", "the file is not in the store")
    ctype = "video/mp4" if key.lower().endswith(".mp4") else content_type(key)
    if ctype not in INLINE_TYPES or not ctype.startswith("video/" if which == "video" else "image/"):
        ctype = "application/octet-stream"
    return FileResponse(
        path,
        media_type=ctype,
        content_disposition_type="inline",
        filename=key.rpartition("/")[2],
        headers={
            "content-security-policy": "default-src 'none'; sandbox",
            "cache-control": "private, max-age=300",
            "referrer-policy": "no-referrer",
            "x-robots-tag": "noindex",
        },
    )


def install(app: FastAPI) -> None:
    """Mount the portal on the dashboard app (beside the login-protected pages, not behind them)."""
    app.include_router(router)
    app.add_exception_handler(Refused, refusal_page)  # type: ignore[arg-type]
