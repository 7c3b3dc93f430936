"""The dashboard app through FastAPI's TestClient, with Airflow's login replaced at the Access boundary."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from dashboard_seed import XSS, Seeded, seed, settings_for
from kepu.certificates.lookup import CertificateStatus, TableCertificateLookup, status_from_row
from kepu.dashboard import URL_PREFIX, LazyApp
from kepu.dashboard.app import Services, create_app
from kepu.dashboard.auth import Access, Viewer
from kepu.dashboard.judging import Labels, judging_view, to_table
from kepu.db import dispose_engine
from kepu.storage import LocalStore

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
PROTECTED = [
    "/",
    "/submissions",
    "/submissions?verdict=fail",
    "/submissions/s-good",
    "/judging",
    "/submissions/s-good/media?key=x",
]


class FakeAccess(Access):
    """Logged in as ``user`` (None: anonymous), allowed or not."""

    def __init__(self, user: str | None = "tester", allowed: bool = True) -> None:
        self.user, self.allowed = user, allowed

    async def authenticate(self, request: Request) -> Viewer | None:
        return Viewer(self.user) if self.user else None

    def authorize(self, viewer: Viewer) -> bool:
        return self.allowed

    def login_url(self, next_url: str) -> str | None:
        return f"/auth/login?next={next_url}"


@dataclass
class Dash:
    seeded: Seeded
    services: Services

    def client(self, access: Access | None = None) -> TestClient:
        outer = FastAPI()
        outer.mount(URL_PREFIX, create_app(services=self.services, access=access or FakeAccess()))
        return TestClient(outer, follow_redirects=False)


@pytest.fixture(scope="module")
def dash(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dash]:
    home = tmp_path_factory.mktemp("dash")
    settings = settings_for(home / "kepu")
    seeded = seed(settings, home / "scratch")
    yield Dash(seeded, Services(settings))
    dispose_engine(settings.database_url)


def get(client: TestClient, path: str, **kwargs: Any) -> Any:
    return client.get(URL_PREFIX + path, **kwargs)


# --- access ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PROTECTED)
def test_anonymous_browser_is_sent_to_the_airflow_login(dash: Dash, path: str) -> None:
    r = get(dash.client(FakeAccess(user=None)), path, headers={"accept": "text/html"})
    assert r.status_code == 303
    assert r.headers["location"].startswith("/auth/login?next=http://testserver/kepu")
    assert "会飞的种子" not in r.text


@pytest.mark.parametrize("path", PROTECTED)
def test_anonymous_script_gets_401_and_no_data(dash: Dash, path: str) -> None:
    r = get(dash.client(FakeAccess(user=None)), path, headers={"accept": "application/json"})
    assert r.status_code == 401
    assert "会飞的种子" not in r.text


@pytest.mark.parametrize("path", PROTECTED)
def test_logged_in_without_permission_gets_403(dash: Dash, path: str) -> None:
    r = get(dash.client(FakeAccess(allowed=False)), path, headers={"accept": "text/html"})
    assert r.status_code == 403
    assert "没有查看权限" in r.text and "会飞的种子" not in r.text


def test_verification_needs_no_login(dash: Dash) -> None:
    client = dash.client(FakeAccess(user=None))
    for path in ("/verify", "/verify/KP2022-0001", "/static/dashboard.css"):
        assert get(client, path, headers={"accept": "text/html"}).status_code == 200, path


# --- headers and escaping ---------------------------------------------------------------------------------


def test_security_headers(dash: Dash) -> None:
    r = get(dash.client(), "/")
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'self'" in csp
    assert "unsafe-inline" not in csp and "script-src" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "SAMEORIGIN"
    assert r.headers["cache-control"] == "no-store"
    assert "<script" not in r.text and " style=" not in r.text


@pytest.mark.parametrize("path", ["/submissions", "/submissions/s-xss", "/submissions?q=alert"])
def test_html_from_a_submission_shows_as_text(dash: Dash, path: str) -> None:
    r = get(dash.client(), path)
    assert r.status_code == 200
    assert XSS not in r.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text


def test_html_in_a_province_or_channel_shows_as_text_in_the_charts(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "kepu")
    seeded = seed(settings, tmp_path / "scratch")
    with seeded.records.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE submissions SET province = ?, channel = ? WHERE id = 's-late'", (XSS, XSS))
    outer = FastAPI()
    outer.mount(URL_PREFIX, create_app(services=Services(settings), access=FakeAccess()))
    text = TestClient(outer).get("/kepu/").text
    assert XSS not in text and text.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 4  # two charts, two tables
    dispose_engine(settings.database_url)


# --- overview and list ------------------------------------------------------------------------------------


def test_overview_counts(dash: Dash) -> None:
    r = get(dash.client(), "/")
    assert r.status_code == 200
    text = r.text
    assert '<span class="n">6</span><span>作品总数 submissions</span>' in text
    assert '<span class="n">2</span><span>不合格 fail</span>' in text
    assert '<span class="n">1</span><span>未完成 pending</span>' in text
    for label in ("按省份 By province", "按渠道 By channel", "常见问题代码 Top finding codes", "<svg"):
        assert label in text
    assert 'href="/kepu/submissions?code=A-SILENCE"' in text
    assert "尚未开始评审" in text


def test_overview_shows_the_latest_runs_run_findings_escaped(tmp_path: Path) -> None:
    from kepu.intake.steps import run_finding

    settings = settings_for(tmp_path / "kepu")
    seeded = seed(settings, tmp_path / "scratch")
    cid = seeded.campaign.id
    outer = FastAPI()
    outer.mount(URL_PREFIX, create_app(services=Services(settings), access=FakeAccess()))
    client = TestClient(outer)
    assert "运行问题" not in client.get("/kepu/").text  # no run recorded yet: no block
    damaged = run_finding(
        "M-UNREADABLE", "error", f"汇总表{XSS}.xlsx", f"汇总表无法读取 {XSS}", f"summary sheet cannot be read {XSS}"
    )
    seeded.records.start_run("run-a-old", cid, "kepu_intake", {"run_findings": [damaged]})
    seeded.records.start_run("run-b-new", cid, "kepu_intake", {"run_findings": [damaged]})
    seeded.records.start_run("run-c-judging", cid, "kepu_judging", {"only": None})  # records no run findings
    text = client.get("/kepu/").text
    assert "运行问题" in text and "Run findings" in text and "run-b-new" in text and "run-a-old" not in text
    assert "M-UNREADABLE" in text and "s-error" in text
    assert XSS not in text
    for shown in (
        "汇总表&lt;script&gt;alert(1)&lt;/script&gt;.xlsx",
        "汇总表无法读取 &lt;script&gt;",
        "summary sheet cannot be read &lt;script&gt;",
    ):
        assert shown in text
    seeded.records.start_run("run-d-clean", cid, "kepu_intake", {"run_findings": []})  # a later run read the sheet
    assert "运行问题" not in client.get("/kepu/").text
    dispose_engine(settings.database_url)


def test_overview_aggregates_in_sql(dash: Dash) -> None:
    from kepu.dashboard.queries import overview

    ov = overview(dash.seeded.records.engine, dash.seeded.campaign.id)
    assert ov.total == 6
    assert dict(ov.by_province) == {"广东省": 2, "四川省": 2, "北京市": 2}
    assert dict(ov.by_kind) == {"video": 5, "account": 1}
    assert dict(ov.by_verdict) == {"pass": 2, "review": 1, "fail": 2, "pending": 1}
    silence = next(c for c in ov.top_codes if c.code == "A-SILENCE")
    assert (silence.findings, silence.submissions) == (2, 2)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("verdict=fail", {"s-late", "s-short"}),
        ("verdict=pending", {"s-pending"}),
        ("code=A-SILENCE", {"s-xss", "s-short"}),
        ("province=四川省", {"s-short", "s-account"}),
        ("unit=少年宫", {"s-good", "s-short"}),
        ("kind=account", {"s-account"}),
        ("channel=other", {"s-xss", "s-pending"}),
        ("q=种子", {"s-good"}),
        ("q=s-late", {"s-late"}),
        ("q=100%25", set()),
        ("verdict=fail&province=广东省", {"s-late"}),
    ],
)
def test_list_filters(dash: Dash, query: str, expected: set[str]) -> None:
    r = get(dash.client(), f"/submissions?{query}")
    assert r.status_code == 200
    shown = {sid for sid in dash.seeded.ids if f'href="/kepu/submissions/{sid}"' in r.text}
    assert shown == expected


def test_list_pages_in_sql(dash: Dash) -> None:
    from kepu.dashboard.queries import Filters, list_submissions

    engine, cid = dash.seeded.records.engine, dash.seeded.campaign.id
    first = list_submissions(engine, cid, Filters(), page=1, per_page=4)
    second = list_submissions(engine, cid, Filters(), page=2, per_page=4)
    assert (first.total, first.pages, len(first.rows), len(second.rows)) == (6, 2, 4, 2)
    assert not {r.id for r in first.rows} & {r.id for r in second.rows}
    short = next(r for r in first.rows + second.rows if r.id == "s-short")
    assert short.codes == [("V-DURATION", "error"), ("A-SILENCE", "warning")]


# --- one submission ---------------------------------------------------------------------------------------


def test_submission_page(dash: Dash) -> None:
    r = get(dash.client(), "/submissions/s-good")
    assert r.status_code == 200
    text = r.text
    assert "<video" in text and "publication-1080p.mp4" in text
    assert 'poster="/kepu/submissions/s-good/media?key=' in text
    assert text.count("thumbnail%2Fthumb-") >= 4
    assert "响度 loudness" in text and "-16.2 LUFS" in text
    assert "13800000000" in text  # operators see the form's contacts
    assert "配音和解说使用普通话" in text  # the campaign's human checklist
    assert "直接封装" in text


def test_findings_link_to_their_time_in_the_video(dash: Dash) -> None:
    text = get(dash.client(), "/submissions/s-xss").text
    assert "1:15.2" in text or "1:15.3" in text
    assert "V-FREEZE" in text and "静帧" in text
    started = get(dash.client(), "/submissions/s-good?t=75.25").text
    assert "publication-1080p.mp4#t=75.25" in started
    assert get(dash.client(), "/submissions/s-good?t=-1").status_code == 422


def test_unknown_submission_is_404(dash: Dash) -> None:
    assert get(dash.client(), "/submissions/nope").status_code == 404


# --- media ------------------------------------------------------------------------------------------------


def _key(dash: Dash, name: str) -> str:
    rendition = dash.seeded.records.get_details("s-good")["rendition"]
    return str(rendition["outputs"][name]["key"])


def test_media_from_the_local_store_with_ranges(dash: Dash) -> None:
    key = _key(dash, "publication-1080p.mp4")
    client = dash.client()
    full = get(client, "/submissions/s-good/media", params={"key": key})
    assert full.status_code == 200 and full.headers["content-type"] == "video/mp4"
    assert full.headers["accept-ranges"] == "bytes"
    assert "sandbox" in full.headers["content-security-policy"]
    part = get(client, "/submissions/s-good/media", params={"key": key}, headers={"range": "bytes=0-99"})
    assert part.status_code == 206
    assert part.headers["content-range"].startswith("bytes 0-99/")
    assert part.content == full.content[:100]


def test_media_download_keeps_a_chinese_file_name(dash: Dash) -> None:
    video = next(m for m in dash.seeded.records.list_materials("s-good") if m.role == "video")
    r = get(dash.client(), "/submissions/s-good/media", params={"key": video.object_key})
    assert r.status_code == 200
    assert "filename*=utf-8''%E4%BC%9A%E9%A3%9E%E7%9A%84%E7%A7%8D%E5%AD%90.mp4" in r.headers["content-disposition"]


def test_media_serves_only_the_submissions_own_objects(dash: Dash) -> None:
    key = _key(dash, "publication-1080p.mp4")
    client = dash.client()
    assert get(client, "/submissions/s-late/media", params={"key": key}).status_code == 404
    assert get(client, "/submissions/s-good/media", params={"key": "campaigns/2022/exports/x.csv"}).status_code == 404
    assert get(client, "/submissions/s-good/media", params={"key": "../../etc/passwd"}).status_code == 404


def test_submitted_html_is_a_download(dash: Dash, tmp_path: Path) -> None:
    from kepu.db.repository import MaterialRecord
    from kepu.storage import object_key

    records, store = dash.seeded.records, dash.seeded.store
    key = object_key("2022", "s-late", "attachment", "page.html")
    obj = store.put_bytes(key, b"<script>alert(1)</script>")
    records.replace_materials("s-late", [MaterialRecord("attachment", "page.html", key, obj.sha256, obj.size)])
    r = get(dash.client(), "/submissions/s-late/media", params={"key": key})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["content-disposition"].startswith("attachment")


class SigningStore(LocalStore):
    """A local store that signs URLs like S3 does."""

    def presigned_url(self, key: str, expires_s: int = 600) -> str | None:
        return f"https://kepu.s3.example.test/{key}?X-Amz-Expires={expires_s}&X-Amz-Signature=abc"


def test_an_s3_store_gives_presigned_urls_and_the_csp_allows_them(dash: Dash) -> None:
    services = Services(dash.seeded.settings)
    services.store = SigningStore(Path(dash.seeded.settings.home / "store"))
    outer = FastAPI()
    outer.mount(URL_PREFIX, create_app(services=services, access=FakeAccess()))
    client = TestClient(outer, follow_redirects=False)
    r = get(client, "/submissions/s-good")
    assert 'src="https://kepu.s3.example.test/campaigns/2022/submissions/s-good/rendition/' in r.text
    csp = r.headers["content-security-policy"]
    assert "media-src 'self' https://kepu.s3.example.test" in csp
    assert "img-src 'self' data: https://kepu.s3.example.test" in csp
    redirect = get(client, "/submissions/s-good/media", params={"key": _key(dash, "poster.jpg")})
    assert redirect.status_code == 303
    assert redirect.headers["location"].startswith("https://kepu.s3.example.test/")


# --- judging and certificates -----------------------------------------------------------------------------


def test_judging_not_started(dash: Dash) -> None:
    text = get(dash.client(), "/judging").text
    assert "尚未开始评审" in text and "judging has not started" in text
    assert "尚未颁发证书" in text


@dataclass
class Award:
    submission_id: str
    title: str
    rank: int
    score: float
    award: str
    phone: str


class JudgedRecords:
    """Records as they will be once judging exists: the dashboard needs no change to show them."""

    def judging_progress(self, campaign_id: str) -> dict[str, Any]:
        return {"entries": 5, "scored": 3, "email": "x@example.org"}

    def list_awards(self, campaign_id: str) -> list[Any]:
        return [Award("s-good", f"{XSS}会飞的种子", 1, 9.1, "创作之星", "13800000000")]

    def list_certificates(self, campaign_id: str) -> list[dict[str, Any]]:
        return [{"number": "KP2022-0001", "submission_id": "s-good", "status": "valid"}]


def test_judging_shown_when_records_have_it() -> None:
    view = judging_view(JudgedRecords(), "2022")
    assert view.started
    assert ("参评作品 entries", 5) in view.progress
    assert all(v != "x@example.org" for _, v in view.progress)
    assert view.awards is not None and [k for k, _ in view.awards.columns][:4] == [
        "rank",
        "award",
        "submission_id",
        "title",
    ]
    assert "phone" not in {k for k, _ in view.awards.columns}
    assert view.certificates is not None and view.certificates.rows[0]["number"] == "KP2022-0001"


def test_judging_page_renders_awards_escaped(dash: Dash) -> None:
    services = Services(dash.seeded.settings)
    services.records = JudgedRecords()
    services.campaign = dash.seeded.campaign
    outer = FastAPI()
    outer.mount(URL_PREFIX, create_app(services=services, access=FakeAccess()))
    text = TestClient(outer).get("/kepu/judging").text
    assert "创作之星" in text and "13800000000" not in text
    assert XSS not in text and "&lt;script&gt;" in text
    assert 'href="/kepu/verify/KP2022-0001"' in text


def test_judging_tables_missing_means_not_started() -> None:
    class Unmigrated:
        def list_awards(self, campaign_id: str) -> list[Any]:
            raise sa.exc.OperationalError("SELECT", {}, Exception("no such table: awards"))

    assert not judging_view(Unmigrated(), "2022").started


def test_to_table_accepts_any_row_shape() -> None:
    table = to_table([{"rank": 2, "extra": [1, 2]}, Award("s", "t", 1, 1.0, "a", "p")])
    assert [k for k, _ in table.columns] == ["rank", "award", "submission_id", "title", "score", "extra"]
    assert table.rows[0]["extra"] == "[1, 2]"


class FakeCertificates:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def lookup(self, number: str) -> CertificateStatus:
        self.asked.append(number)
        if number == "KP2022-0001":
            return CertificateStatus(number, "valid", award="创作之星", title=XSS, holder="广州市少年宫")
        if number == "KP2022-0002":
            return CertificateStatus(number, "revoked", title="水的旅行")
        return CertificateStatus(number, "unknown")


def test_verification_page_states(dash: Dash) -> None:
    certs = FakeCertificates()
    outer = FastAPI()
    outer.mount(
        URL_PREFIX,
        create_app(services=Services(dash.seeded.settings, certificates=certs), access=FakeAccess(user=None)),
    )
    client = TestClient(outer, follow_redirects=False)
    valid = client.get("/kepu/verify/KP2022-0001")
    assert valid.status_code == 200 and "有效" in valid.text and "创作之星" in valid.text
    assert XSS not in valid.text
    assert valid.headers["x-robots-tag"] == "noindex"
    assert "已撤销" in client.get("/kepu/verify/KP2022-0002").text
    assert "查无此证书" in client.get("/kepu/verify/KP2022-9999").text
    bad = client.get("/kepu/verify/%3Cscript%3E")
    assert "查无此证书" in bad.text and "<script>" not in bad.text
    assert certs.asked == ["KP2022-0001", "KP2022-0002", "KP2022-9999"]  # a malformed number is never looked up
    form = client.get("/kepu/verify", params={"number": " KP2022-0001 "})
    assert form.status_code == 303 and form.headers["location"] == "/kepu/verify/KP2022-0001"


def test_certificate_lookup_is_unknown_until_the_table_exists(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'c.db'}")
    lookup = TableCertificateLookup(engine)
    assert lookup.lookup("KP2022-0001").state == "unknown"
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE certificates (number TEXT PRIMARY KEY, status TEXT, award TEXT, title TEXT, holder TEXT,"
            " phone TEXT, email TEXT, issued_at DATE, revoked_at DATE)"
        )
        conn.exec_driver_sql(
            "INSERT INTO certificates VALUES ('KP2022-0001', 'valid', '创作之星', '会飞的种子', '广州市少年宫',"
            " '13800000000', 'a@example.org', '2022-12-01', NULL), ('KP2022-0002', 'revoked', NULL, '水的旅行', NULL,"
            " NULL, NULL, '2022-12-01', '2023-01-05')"
        )
    valid = lookup.lookup("KP2022-0001")
    assert valid.state == "valid" and valid.award == "创作之星" and valid.holder == "广州市少年宫"
    assert "13800000000" not in repr(valid) and "a@example.org" not in repr(valid)
    assert lookup.lookup("KP2022-0002").state == "revoked"
    assert lookup.lookup("KP2022-0003").state == "unknown"
    assert lookup.lookup("x' OR 1=1 --").state == "unknown"
    engine.dispose()


def test_a_certificate_with_an_odd_status_is_not_called_valid() -> None:
    assert status_from_row("KP1-0001", {"status": "draft"}).state == "unknown"
    assert status_from_row("KP1-0001", {"status": None, "revoked_at": "2023-01-01"}).state == "revoked"


# --- records not there yet, and the plugin --------------------------------------------------------------


def test_no_records_yet_is_a_clear_503(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "empty")
    outer = FastAPI()
    outer.mount(URL_PREFIX, create_app(services=Services(settings), access=FakeAccess()))
    r = TestClient(outer).get("/kepu/")
    assert r.status_code == 503 and "尚未运行作品接收" in r.text
    dispose_engine(settings.database_url)


def test_a_broken_campaign_file_is_a_clear_503(dash: Dash, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("schema_version: 1\nunknown_key: 1\n", encoding="utf-8")
    settings = replace(dash.seeded.settings, campaign_file=broken)
    outer = FastAPI()
    outer.mount(URL_PREFIX, create_app(services=Services(settings), access=FakeAccess()))
    r = TestClient(outer).get("/kepu/")
    assert r.status_code == 503 and "活动文件无法读取" in r.text


def test_lazy_app_builds_on_first_request(dash: Dash) -> None:
    lazy = LazyApp(services=dash.services, access=FakeAccess())
    assert lazy._app is None
    outer = FastAPI()
    outer.mount(URL_PREFIX, lazy)
    assert TestClient(outer).get("/kepu/").status_code == 200
    assert lazy._app is not None


def test_plugin_registers_the_app_the_guard_and_the_nav_entry_and_imports_little() -> None:
    script = textwrap.dedent(
        """
        import json, runpy, sys
        sys.path.insert(0, sys.argv[1])
        import airflow.plugins_manager  # what Airflow itself loads is not the plugin's cost
        before = set(sys.modules)
        ns = runpy.run_path(sys.argv[1] + "/kepu_dashboard.py")
        plugin = ns["KepuDashboardPlugin"]
        loaded = sorted(m for m in sys.modules if m not in before and not m.startswith(("kepu_dashboard", "kepu")))
        light = ("kepu.dashboard", "kepu.orchestration", "kepu.orchestration.sqlite_writes")
        loaded += sorted(m for m in sys.modules if m.startswith("kepu.") and m not in light)
        print(json.dumps({"apps": [{k: v for k, v in a.items() if k != "app"} for a in plugin.fastapi_apps],
                          "middleware": [m["middleware"].__name__ for m in plugin.fastapi_root_middlewares],
                          "views": plugin.external_views, "loaded": loaded}))
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "KEPU_"))}
    proc = subprocess.run(
        [sys.executable, "-c", script, str(REPO / "plugins")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["apps"] == [{"url_prefix": "/kepu", "name": "科普征集看板 kepu dashboard"}]
    # The api-server's guard on a SQLite metadata database (kepu.orchestration.sqlite_writes).
    assert out["middleware"] == ["OneWriteAtATime"]
    (view,) = out["views"]
    assert view["href"] == "kepu/" and view["url_route"] == "kepu" and view["destination"] == "nav"
    assert out["loaded"] == []


# --- judging rounds: labels and judges' sheets --------------------------------------------------------------


@pytest.fixture(scope="module")
def judged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dash]:
    """The seeded campaign in its first round: three judges with sheets issued; J01 returned an accepted
    sheet scoring one of its two entries, J02 a rejected one, J03 nothing yet; a judging report exported."""
    from kepu.db.judging_records import AssignmentRow, JudgeRecord, ScoreRow
    from kepu.judging import keys
    from kepu.storage import export_key

    home = tmp_path_factory.mktemp("judged")
    settings = settings_for(home / "kepu")
    seeded = seed(settings, home / "scratch")
    records, store, cid = seeded.records, seeded.store, seeded.campaign.id
    roster = [
        JudgeRecord("J01", "张评委", "大学一", "北京市"),
        JudgeRecord("J02", f"{XSS}李", "大学二", "上海市"),
        JudgeRecord("J03", "王评委", "大学三", "广东省"),
    ]
    records.replace_judges(cid, roster, "a" * 64)
    rows = [
        AssignmentRow("J01", "s-good", 1),
        AssignmentRow("J01", "s-account", 2),
        AssignmentRow("J02", "s-good", 1),
        AssignmentRow("J03", "s-account", 1),
    ]
    records.save_round(
        cid, "first_round", seed=1, roster_sha256="a" * 64, assignment_sha256="b" * 64, summary={}, rows=rows
    )
    for j in roster:
        store.put_bytes(keys.sheet_key(cid, "first_round", j.id, j.name), b"xlsx of " + j.id.encode())
    good = keys.archive_key(cid, "first_round", "c" * 64)
    store.put_bytes(good, b"returned by J01")
    records.record_sheet(
        cid,
        "first_round",
        judge_id="J01",
        object_key=keys.returned_prefix(cid, "first_round") + "J01.xlsx",
        archive_key=good,
        sha256="c" * 64,
        rows=[ScoreRow("J01", "s-good", {"scientific": 8}, 8.0)],
    )
    records.record_sheet(
        cid,
        "first_round",
        judge_id="J02",
        object_key=keys.returned_prefix(cid, "first_round") + "J02.xlsx",
        archive_key=store.put_bytes(keys.archive_key(cid, "first_round", "d" * 64), b"bad").key,
        sha256="d" * 64,
        problems=[{"code": "bad"}],
    )
    store.put_bytes(export_key(cid, "judging-report.html"), "<html><body>评审报告</body></html>".encode())
    yield Dash(seeded, Services(settings))
    dispose_engine(settings.database_url)


def test_judging_round_names_and_judges_sheets(judged: Dash) -> None:
    s = judged.seeded
    view = judging_view(s.records, s.campaign.id, s.campaign, s.store)
    assert [r.label for r in view.rounds] == ["初评 first round"]
    by_id = {p.judge_id: p for p in view.rounds[0].judges}
    assert (by_id["J01"].assigned, by_id["J01"].scored, by_id["J01"].returned) == (2, 1, True)
    sheet = next(x for x in s.records.list_sheets(s.campaign.id, "first_round") if x.judge_id == "J01")
    at = sheet.ingested_at if sheet.ingested_at.tzinfo else sheet.ingested_at.replace(tzinfo=dt.UTC)
    assert by_id["J01"].returned_at == at.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M")
    assert (by_id["J02"].returned, by_id["J02"].status, by_id["J02"].scored) == (False, "被退回 rejected", 0)
    assert (by_id["J03"].returned, by_id["J03"].status, by_id["J03"].returned_at) == (
        False,
        "未交回 not returned",
        None,
    )
    assert all(p.sheet_key for p in by_id.values()) and by_id["J03"].returned_key is None
    assert view.report_key is not None
    assert ("当前阶段 stage", "初评 first round") in view.progress
    assert ("评分完整 complete", "否 no") in view.progress


def test_judging_page_shows_labels_not_keys_and_who_returned(judged: Dash) -> None:
    client = judged.client()
    text = get(client, "/judging").text
    for label in (
        "初评 first round",
        "未交回 not returned",
        "已交回 returned",
        "被退回 rejected",
        "否 no",
        "1 / 2",
        "已交回 1 / 3",
    ):
        assert label in text, label
    shown = re.sub(r'href="[^"]*"', "", text)  # keys may appear in links only
    for raw in ("first_round", "final_round", "excellent_video", "True", "False", ">accepted<", ">rejected<"):
        assert raw not in shown, raw
    assert XSS not in text and "&lt;script&gt;alert(1)&lt;/script&gt;李" in text
    rows = {m.group(1): m.group(0) for m in re.finditer(r"<tr class=\"\w+\">\s*<td>(J\d\d)</td>.*?</tr>", text, re.S)}
    assert 'class="returned"' in rows["J01"] and 'class="missing"' in rows["J02"] and 'class="missing"' in rows["J03"]
    links = re.findall(r'href="(/kepu/judging/file\?key=[^"]+)"', text)
    assert len(links) == 3 + 2 + 1  # three issued sheets, two returned ones, the report
    for link in links:
        assert client.get(link.replace("&amp;", "&")).status_code == 200, link
    assert get(client, "/judging/file", params={"key": "campaigns/2022/exports/other.xlsx"}).status_code == 404
    assert get(client, "/judging/file", params={"key": s_key(judged)}).status_code == 404


def s_key(d: Dash) -> str:
    """An object of a submission: not a judging object, never served by the judging route."""
    return d.seeded.records.list_materials("s-good")[0].object_key


def test_award_and_kind_keys_are_named() -> None:
    from kepu.campaign import load_campaign
    from kepu.config import load_settings

    campaign = load_campaign(load_settings({}).campaign_file)
    rows = [{"award": "excellent_video", "stage": "first_round", "kind": "video", "status": "ranked", "tied": True}]
    table = to_table(rows, Labels.of(campaign))
    assert table.rows == [
        {
            "award": "优秀科普微视频 Excellent science micro-video",
            "stage": "初评 first round",
            "kind": "科普微视频 science micro-video",
            "status": "已排名 ranked",
            "tied": "是 yes",
        }
    ]
