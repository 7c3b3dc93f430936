"""The dashboard's FastAPI app: pages rendered on the server from Jinja2 templates, no script at all (but the
judging portal's small autosave script, see :mod:`kepu.dashboard.judge`).

Every text that came from a submission goes through Jinja2's autoescaping. Responses carry a strict
Content-Security-Policy (no script source, styles only from the app's own stylesheet, framing only by
the Airflow UI of the same origin) and ``Cache-Control: no-store`` for the pages behind the login.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from functools import cached_property
from typing import Annotated, Any
from urllib.parse import quote, urlencode, urlsplit

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.routing import APIRouter
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kepu.certificates.lookup import CertificateLookup
from kepu.config import Settings
from kepu.dashboard.auth import Access, AirflowAccess, LoginRequired, NotAllowed, Viewer, require_viewer
from kepu.dashboard.outbox import router as outbox_pages
from kepu.errors import KepuError

log = logging.getLogger(__name__)

PER_PAGE = 50
VERDICT_LABELS = {"pass": "通过 pass", "review": "待复核 review", "fail": "不合格 fail", "pending": "未完成 pending"}
STATUS_LABELS = {
    "registered": "已登记 registered",
    "awaiting_download": "待下载 awaiting download",
    "fetched": "已接收 fetched",
    "checked": "已检查 checked",
    "error": "出错 error",
}
SEVERITY_LABELS = {"error": "错误 error", "warning": "警告 warning", "info": "提示 info"}
CERT_STATES = {
    "valid": ("有效", "valid"),
    "revoked": ("已撤销", "revoked"),
    "unknown": ("查无此证书", "unknown"),
}

#: The pages' Content-Security-Policy; ``{extra}`` adds origins (" https://…") to img-src and media-src.
CSP_TEMPLATE = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:{extra}; media-src 'self'{extra}; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'self'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP_TEMPLATE.format(extra=""),
    "x-content-type-options": "nosniff",
    "x-frame-options": "SAMEORIGIN",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
    "cache-control": "no-store",
}


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every response that does not set them itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


class Services:
    """Settings, campaign, records and store, built from the environment on first use (never at import)."""

    def __init__(self, settings: Settings | None = None, certificates: CertificateLookup | None = None) -> None:
        self._settings = settings
        self._certificates = certificates
        self._campaign: Any = None

    @cached_property
    def settings(self) -> Settings:
        from kepu.config import load_settings

        return self._settings or load_settings()

    @property
    def campaign(self) -> Any:
        """The campaign file as it is now (an added deadline extension shows without a restart)."""
        from kepu.campaign import load_campaign

        # load_campaign re-reads the file and parses it again only when its content changed.
        return self._campaign or load_campaign(self.settings.campaign_file)

    @campaign.setter
    def campaign(self, value: Any) -> None:
        self._campaign = value

    @cached_property
    def records(self) -> Any:
        from kepu.db.repository import Records

        return Records.from_url(self.settings.database_url)

    @cached_property
    def store(self) -> Any:
        from kepu.storage import open_store

        return open_store(self.settings)

    @cached_property
    def certificates(self) -> CertificateLookup:
        from kepu.certificates.lookup import TableCertificateLookup

        return self._certificates or TableCertificateLookup(self.records.engine)


# --- rendering -------------------------------------------------------------------------------------


def _environment() -> Environment:
    from kepu.clock import beijing_text
    from kepu.dashboard.detail import seconds_label

    env = Environment(
        loader=PackageLoader("kepu.dashboard", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["mmss"] = seconds_label
    env.filters["bj"] = beijing_text
    env.filters["mb"] = lambda n: "" if n is None else f"{n / 1e6:.1f} MB"
    env.globals.update(
        verdict_labels=VERDICT_LABELS,
        status_labels=STATUS_LABELS,
        severity_labels=SEVERITY_LABELS,
    )
    return env


def _base(request: Request) -> str:
    """The app's own path prefix (``/kepu`` under the api-server, with Airflow's base URL path before it)."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") and parts.netloc else ""


def render(
    request: Request,
    template: str,
    *,
    viewer: Viewer | None,
    status_code: int = 200,
    media_origins: Iterable[str] = (),
    **context: Any,
) -> HTMLResponse:
    env: Environment = request.app.state.templates
    services: Services = request.app.state.services
    try:
        campaign = services.campaign
    except Exception:  # the error page must render even when the campaign file is broken
        campaign = None
    base = _base(request)
    html = env.get_template(template).render(base=base, viewer=viewer, campaign=campaign, **context)
    response = HTMLResponse(html, status_code=status_code)
    extra = sorted({o for o in media_origins if o})
    if extra:
        response.headers["content-security-policy"] = CSP_TEMPLATE.format(extra="".join(f" {o}" for o in extra))
    return response


# --- pages behind the login ------------------------------------------------------------------------

# Every route of this router needs the login, also one that forgets to ask for the viewer.
pages = APIRouter(dependencies=[Depends(require_viewer)])
ViewerDep = Annotated[Viewer, Depends(require_viewer)]


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


@pages.get("/", response_class=HTMLResponse)
def overview(request: Request, viewer: ViewerDep) -> HTMLResponse:
    from kepu.dashboard import queries
    from kepu.dashboard.judging import judging_view
    from kepu.intake.report import bar_chart, verdict_chart

    s = _services(request)
    c = s.campaign
    ov = queries.overview(s.records.engine, c.id)
    channels = {k: f"{v.label_zh} {k}" for k, v in c.channels.items()}
    kinds = {k: f"{v.label_zh} {k}" for k, v in c.kinds.items()}
    charts = [
        verdict_chart(ov.by_verdict, VERDICT_LABELS),
        bar_chart("按省份 By province", [(p or "（未识别 unknown）", n) for p, n in ov.by_province]),
        bar_chart(
            "按渠道 By channel", [(channels.get(ch, ch or "（未知 unknown）"), n) for ch, n in ov.by_channel], "#8a5fb0"
        ),
        bar_chart("按类型 By kind", [(kinds.get(k, k), n) for k, n in ov.by_kind], "#2f8f8f"),
        bar_chart(
            "常见问题代码 Top finding codes",
            [(f"{x.code} ({x.severity})", x.findings) for x in ov.top_codes],
            "#c0392b",
        ),
    ]
    return render(
        request,
        "overview.html",
        viewer=viewer,
        ov=ov,
        charts=[Markup(chart) for chart in charts],  # kepu.intake.report escapes every label
        channels=channels,
        kinds=kinds,
        judging=judging_view(s.records, c.id),
        run_problems=queries.latest_run_findings(s.records.engine, c.id),
        nav="overview",
    )


@pages.get("/submissions", response_class=HTMLResponse)
def submissions(
    request: Request,
    viewer: ViewerDep,
    verdict: str = "",
    code: str = "",
    province: str = "",
    unit: str = "",
    kind: str = "",
    channel: str = "",
    q: str = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    from kepu.dashboard import queries

    s = _services(request)
    c = s.campaign
    flt = queries.Filters(
        verdict=verdict.strip(),
        code=code.strip(),
        province=province.strip(),
        unit=unit.strip(),
        kind=kind.strip(),
        channel=channel.strip(),
        q=q.strip(),
    )
    result = queries.list_submissions(s.records.engine, c.id, flt, page=page, per_page=PER_PAGE)
    active = flt.active()
    return render(
        request,
        "submissions.html",
        viewer=viewer,
        flt=flt,
        result=result,
        provinces=queries.provinces(s.records.engine, c.id),
        codes=queries.present_codes(s.records.engine, c.id),
        channels={k: f"{v.label_zh} {k}" for k, v in c.channels.items()},
        kinds={k: f"{v.label_zh} {k}" for k, v in c.kinds.items()},
        page_link=lambda n: "?" + urlencode({**active, "page": n}),
        nav="submissions",
    )


def _object_url(request: Request, submission_id: str, key: str) -> str:
    url = _services(request).store.presigned_url(key)
    if url:
        return str(url)
    return f"{_base(request)}/submissions/{quote(submission_id, safe='')}/media?{urlencode({'key': key})}"


@pages.get("/submissions/{submission_id}", response_class=HTMLResponse)
def submission(
    request: Request,
    submission_id: str,
    viewer: ViewerDep,
    t: Annotated[float | None, Query(ge=0, le=86_400, description="start the player here (seconds)")] = None,
) -> HTMLResponse:
    from kepu.dashboard.detail import submission_page

    s = _services(request)
    origins: set[str] = set()

    def url_for(sid: str, key: str) -> str:
        url = _object_url(request, sid, key)
        origins.add(_origin(url))
        return url

    page = submission_page(s.records, s.campaign, submission_id, url_for)
    if page is None:
        return render(
            request,
            "error.html",
            viewer=viewer,
            status_code=404,
            message_zh="没有这个作品",
            message_en=f"no submission {submission_id!r}",
        )
    return render(
        request, "submission.html", viewer=viewer, p=page, start_at=t, media_origins=origins, nav="submissions"
    )


@pages.get("/submissions/{submission_id}/media")
def media(request: Request, submission_id: str, key: str, viewer: ViewerDep) -> Response:
    """One stored object of a submission: served from the local store (with ranges), or a redirect to a
    presigned URL of the S3 store. Only the submission's own objects are served."""
    from kepu.dashboard.detail import INLINE_TYPES, allowed_keys, content_type

    s = _services(request)
    if s.records.get_submission(submission_id) is None or key not in allowed_keys(s.records, submission_id):
        return PlainTextResponse("not found", status_code=404)
    url = s.store.presigned_url(key)
    if url:
        return RedirectResponse(url, status_code=303)
    path = s.store.local_path(key)
    if path is None:
        return PlainTextResponse("not in the store", status_code=404)
    ctype = content_type(key)
    inline = ctype in INLINE_TYPES
    return FileResponse(
        path,
        media_type=ctype if inline else "application/octet-stream",
        filename=key.rpartition("/")[2],
        content_disposition_type="inline" if inline else "attachment",
        headers={"content-security-policy": "default-src 'none'; sandbox", "cache-control": "private, max-age=300"},
    )


@pages.get("/judging", response_class=HTMLResponse)
def judging(request: Request, viewer: ViewerDep) -> HTMLResponse:
    from kepu.dashboard.judging import judging_view

    s = _services(request)
    c = s.campaign
    view = judging_view(s.records, c.id, c, s.store, _portal_status(s))
    csrf = _operator_csrf(s, viewer) if view.portal else ""
    return render(request, "judging.html", viewer=viewer, j=view, csrf=csrf, nav="judging")


def _operator_csrf(s: Services, viewer: Viewer) -> str:
    """The CSRF token of an operator's forms: bound to the logged-in user, signed with the portal's secret."""
    from kepu.dashboard.judge import csrf_token
    from kepu.judging.portal import portal_secret

    return csrf_token(portal_secret(s.settings), f"operator|{viewer.name}")


@pages.post("/judging/reopen")
async def judging_reopen(request: Request, viewer: ViewerDep) -> Response:
    """重新开放 Reopen a judge's submitted portal scores (audited with the operator's name)."""
    import hmac

    from starlette.concurrency import run_in_threadpool

    from kepu.context import Context
    from kepu.dashboard.judge import own_origins, same_origin
    from kepu.judging.portal import reopen

    s = _services(request)
    form = await request.form()
    fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    expected = _operator_csrf(s, viewer)
    ctx = Context(s.settings, s.campaign, s.records, s.store)
    if not hmac.compare_digest(fields.get("csrf", "").encode(), expected.encode()) or not same_origin(
        request, own_origins(request, ctx)
    ):
        return render(
            request,
            "error.html",
            viewer=viewer,
            status_code=403,
            message_zh="请求无法验证，请刷新页面后重试",
            message_en="the request could not be verified; reload the page and try again",
        )
    stage, judge_id = fields.get("stage", ""), fields.get("judge_id", "")
    if stage not in {st.key for st in s.campaign.judging.scoring_stages} or not judge_id:
        return render(
            request,
            "error.html",
            viewer=viewer,
            status_code=404,
            message_zh="没有这位评委的评审链接",
            message_en="no portal link of that judge in that round",
        )
    await run_in_threadpool(reopen, ctx, s.campaign.id, stage, judge_id, actor=viewer.name)
    log.info("dashboard: %s reopened the %s scores of %s", viewer.name, stage, judge_id)
    return RedirectResponse(f"{_base(request)}/judging", status_code=303)


def _portal_status(s: Services) -> Any:
    """The judging portal's per-judge status of a round, as a function of the stage key."""
    from kepu.context import Context
    from kepu.judging.portal import portal_status

    ctx = Context(s.settings, s.campaign, s.records, s.store)
    return lambda stage_key: portal_status(ctx, stage_key)


@pages.get("/judging/file")
def judging_file(request: Request, key: str, viewer: ViewerDep) -> Response:
    """A score sheet (issued or returned) or the judging report."""
    from kepu.dashboard.judging import judging_file

    s = _services(request)
    return judging_file(s.store, s.campaign, key)


# --- public verification -----------------------------------------------------------------------------

public = APIRouter()


@public.get("/verify", response_class=HTMLResponse)
def verify_form(request: Request, number: str = "") -> Response:
    number = number.strip()
    if number:
        return RedirectResponse(f"{_base(request)}/verify/{quote(number, safe='')}", status_code=303)
    response = render(request, "verify.html", viewer=None, status=None, nav="verify")
    response.headers["x-robots-tag"] = "noindex"
    return response


@public.get("/verify/{number}", response_class=HTMLResponse)
def verify(request: Request, number: str) -> HTMLResponse:
    from kepu.certificates.lookup import canonical_number, unknown, valid_number

    number = canonical_number(number)  # as printed, however it was typed (case, spaces, full width)
    status = _services(request).certificates.lookup(number) if valid_number(number) else unknown(number)
    zh, en = CERT_STATES[status.state]
    response = render(request, "verify.html", viewer=None, status=status, state_zh=zh, state_en=en, nav="verify")
    response.headers["x-robots-tag"] = "noindex"
    return response


# --- the app -------------------------------------------------------------------------------------------


def create_app(
    *,
    services: Services | None = None,
    access: Access | None = None,
) -> FastAPI:
    """The dashboard app. Defaults: settings from the environment, Airflow's auth manager for the login."""
    import sqlalchemy as sa

    app = FastAPI(
        title="kepu dashboard",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.services = services or Services()
    app.state.access = access or AirflowAccess()
    app.state.templates = _environment()
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(packages=[("kepu.dashboard", "static")]), name="static")
    app.include_router(pages)
    app.include_router(outbox_pages)
    app.include_router(public)
    # The judging portal: its token is the credential, so it stays outside the login of ``pages``.
    from kepu.dashboard.judge import install as install_judge_portal

    install_judge_portal(app)

    @app.exception_handler(LoginRequired)
    def _login(request: Request, exc: LoginRequired) -> Response:
        access: Access = request.app.state.access
        wants_html = "text/html" in request.headers.get("accept", "")
        login = access.login_url(str(request.url)) if wants_html and request.method == "GET" else None
        if login:
            return RedirectResponse(login, status_code=303)
        return PlainTextResponse(
            "请先登录 Airflow / log in to Airflow first", status_code=401, headers={"www-authenticate": "Bearer"}
        )

    @app.exception_handler(NotAllowed)
    def _forbidden(request: Request, exc: NotAllowed) -> Response:
        return render(
            request,
            "error.html",
            viewer=None,
            status_code=403,
            message_zh="没有查看权限",
            message_en="you may not read the kepu DAGs; ask an Airflow admin",
        )

    @app.exception_handler(sa.exc.OperationalError)
    @app.exception_handler(sa.exc.ProgrammingError)
    def _records_down(request: Request, exc: Exception) -> Response:
        log.error("dashboard: the records cannot be read: %s", exc)
        return render(
            request,
            "error.html",
            viewer=None,
            status_code=503,
            message_zh="记录库无法读取：尚未运行作品接收，或数据库不可用",
            message_en="the records cannot be read: no intake has run yet, or the database is down",
        )

    @app.exception_handler(KepuError)
    def _kepu_error(request: Request, exc: KepuError) -> Response:
        log.error("dashboard: %s", exc)
        return render(
            request,
            "error.html",
            viewer=None,
            status_code=503,
            message_zh="配置有误（如活动文件无法读取），详见 api-server 日志",
            message_en="a configuration problem (such as an unreadable campaign file); see the api-server log",
        )

    return app
