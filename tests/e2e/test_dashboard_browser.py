"""The dashboard in the real Airflow api-server, seen through headless Chromium.

The api-server runs on the embedded default (kepu.localairflow: SQLite, simple auth manager, the
passwords file) with the repository's plugins folder. The test logs in through Airflow's own login
form, opens the overview, a submission (player, findings, thumbnails) and the public verification
page, and writes a screenshot of each under ``test-output/dashboard/``.

Chromium comes from Debian (``apt-get install chromium``, which ``make test`` runs first): found on PATH,
or installed here when running as root. Without it the test is skipped, except under CI=true, where it fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from conftest import service_unavailable
from dashboard_seed import XSS, Seeded, seed, settings_for
from kepu.db import dispose_engine
from kepu.localairflow import LocalAirflow

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "test-output" / "dashboard"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def _find_chromium() -> str | None:
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


def _has_chinese_font() -> bool:
    if not shutil.which("fc-list"):
        return False
    out = subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True, check=False).stdout
    return bool(out.strip())


@pytest.fixture(scope="module")
def chromium() -> str:
    """Debian's Chromium: found, or installed with apt-get when running as root (with a small Chinese font,
    so that the screenshots are readable)."""
    path = _find_chromium()
    packages = ([] if path else ["chromium"]) + ([] if _has_chinese_font() else ["fonts-wqy-microhei"])
    if packages and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        # `make test` installs them first (its browser target); run alone, the test modules that share this fixture
        # may each get here at once in their pytest-xdist workers: apt-get then waits for the lock the first holds.
        wait = ["-o", "DPkg::Lock::Timeout=900"]
        for argv in (["apt-get", *wait, "update", "-qq"], ["apt-get", *wait, "install", "-y", "-qq", *packages]):
            proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900, check=False)
            if proc.returncode != 0 and path is None:
                service_unavailable(f"`{' '.join(argv)}` failed: {proc.stderr[-1500:]}")
        path = _find_chromium()
    if path is None:
        service_unavailable(
            "Chromium is not installed and cannot be installed here (not root): apt-get install chromium"
        )
    assert path is not None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        service_unavailable(f"the playwright package is missing ({exc}); see requirements-dev.txt")
    return path


@dataclass(frozen=True)
class Server:
    url: str  # http://127.0.0.1:PORT
    password: str
    seeded: Seeded


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("dashboard-e2e")
    settings = settings_for(root / "kepu")
    seeded = seed(settings, root / "scratch", real_video=True)
    airflow = LocalAirflow(root / "airflow", extra_env=settings.as_env())
    airflow.start(api_server_only=True)
    try:
        yield Server(f"http://127.0.0.1:{airflow.port}", airflow.admin_password, seeded)
    finally:
        airflow.stop()
        dispose_engine(settings.database_url)


def _issue_certificates(server: Server) -> None:
    """Two rows in the records' certificates table, one valid and one revoked."""
    import datetime as dt

    from kepu.db.schema import certificates

    cid = server.seeded.campaign.id
    issued = dt.datetime(2022, 12, 20, 2, 0, tzinfo=dt.UTC)
    common = {
        "campaign_id": cid,
        "type": "excellent_video",
        "award": "优秀作品 excellent work",
        "generation": 0,
        "issued_at": issued,
    }
    rows = [
        {
            **common,
            "number": "KP2022-0001",
            "submission_id": "s-good",
            "holder": "广州市少年宫",
            "title": "会飞的种子",
            "unit": "广州市少年宫",
            "status": "valid",
            "revoked_at": None,
        },
        {
            **common,
            "number": "KP2022-0002",
            "submission_id": "s-late",
            "holder": "深圳科学馆",
            "title": "水的旅行",
            "unit": None,
            "status": "revoked",
            "revoked_at": issued + dt.timedelta(days=16),
        },
    ]
    with server.seeded.records.engine.begin() as conn:
        conn.execute(certificates.insert(), rows)


def _status(url: str, accept: str) -> tuple[int, str]:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers={"Accept": accept}), timeout=30) as resp:
            return resp.status, resp.headers.get("location", "")
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("location", "")


def test_anonymous_requests_are_refused_but_verification(server: Server) -> None:
    key = server.seeded.records.list_materials("s-good")[0].object_key
    protected = [
        "/kepu/",
        "/kepu/submissions",
        "/kepu/submissions/s-good",
        "/kepu/judging",
        f"/kepu/submissions/s-good/media?key={quote(key)}",
    ]
    for path in protected:
        code, location = _status(server.url + path, "text/html")
        assert code == 303 and location.startswith("/auth/login?next="), (path, code, location)
        assert _status(server.url + path, "*/*")[0] == 401, path
    assert _status(server.url + "/kepu/verify/KP2022-0001", "text/html")[0] == 200


def test_dashboard_in_headless_chromium(server: Server, chromium: str) -> None:
    from playwright.sync_api import ConsoleMessage, Dialog, expect, sync_playwright

    if not shutil.which("ffmpeg"):
        service_unavailable("ffmpeg makes the playable rendition of this test (make setup installs it)")
    SHOTS.mkdir(parents=True, exist_ok=True)
    csp_errors: list[str] = []
    dialogs: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
            page = context.new_page()

            def on_console(message: ConsoleMessage) -> None:
                if "Content Security Policy" in message.text:
                    csp_errors.append(message.text)

            def on_dialog(dialog: Dialog) -> None:
                dialogs.append(dialog.message)
                dialog.dismiss()

            page.on("console", on_console)
            page.on("dialog", on_dialog)

            # Anonymous: sent to Airflow's login form, then back to the dashboard.
            page.goto(server.url + "/kepu/")
            expect(page).to_have_url(f"{server.url}/auth/login?next=" + quote(server.url + "/kepu/", safe=""))
            page.fill("input[name=username]", "admin")
            page.fill("input[name=password]", server.password)
            page.click("button[type=submit]")
            page.wait_for_url(server.url + "/kepu/")

            # Overview.
            expect(page.locator("h1")).to_contain_text("活动概览")
            expect(page.locator(".card").first).to_contain_text("6")
            expect(page.locator("svg[aria-label='按省份 By province']")).to_be_visible()
            expect(page.locator("body")).to_contain_text("尚未开始评审")
            expect(page.locator("header .viewer")).to_have_text("admin")
            page.screenshot(path=str(SHOTS / "overview.png"), full_page=True)

            # The list, filtered by a finding code from the overview.
            page.click("a[href='/kepu/submissions?code=A-SILENCE']")
            expect(page.locator("table.list tbody tr")).to_have_count(2)
            page.screenshot(path=str(SHOTS / "submissions.png"), full_page=True)

            # A submission: player, findings at their time, poster and thumbnails, form, checklist.
            page.goto(server.url + "/kepu/submissions/s-good")
            expect(page.locator("h1")).to_have_text("会飞的种子")
            video = page.locator("video")
            expect(video).to_have_count(1)
            page.wait_for_function("document.querySelector('video').readyState >= 1", timeout=30_000)
            duration = float(page.evaluate("document.querySelector('video').duration"))
            assert 1.5 < duration < 2.5, duration
            thumbs = page.locator(".thumbs img")
            expect(thumbs).to_have_count(6)
            for src in thumbs.evaluate_all("imgs => imgs.map(i => i.getAttribute('src'))"):
                assert page.request.get(server.url + src).status == 200, src
            expect(page.locator("body")).to_contain_text("响度 loudness")
            expect(page.locator("ul.checklist")).to_contain_text("配音和解说使用普通话")
            page.screenshot(path=str(SHOTS / "submission.png"), full_page=True)

            # A submission whose texts are HTML: shown as text, nothing runs.
            page.goto(server.url + "/kepu/submissions/s-xss")
            expect(page.locator("h1")).to_have_text(XSS)
            page.click("a[href='?t=75.25#player']")  # V-FREEZE at 1:15.3 opens the player there
            expect(page.locator("video")).to_have_attribute("src", re.compile(r"publication-1080p\.mp4#t=75\.25$"))
            page.screenshot(path=str(SHOTS / "submission-xss.png"), full_page=True)

            # The navigation entry inside Airflow's UI shows the dashboard in its frame.
            page.goto(server.url + "/plugin/kepu")
            frame = page.frame_locator("iframe[title='科普征集 Kepu']")
            expect(frame.locator("h1")).to_contain_text("活动概览", timeout=30_000)
            page.screenshot(path=str(SHOTS / "airflow-nav.png"))

            # Verification needs no login: a fresh context without the cookie.
            anonymous = browser.new_context(viewport={"width": 1000, "height": 700}, locale="zh-CN")
            public = anonymous.new_page()
            public.goto(server.url + "/kepu/verify/KP2022-0001")
            expect(public.locator(".verdict .state")).to_contain_text("查无此证书")
            expect(public.locator("header nav")).not_to_contain_text("作品 Submissions")
            public.screenshot(path=str(SHOTS / "verify-unknown.png"), full_page=True)
            # Once certificates exist (a table the certificates step will migrate), the same page answers.
            _issue_certificates(server)
            public.fill("input[name=number]", "KP2022-0001")
            public.click("button[type=submit]")
            public.wait_for_url(server.url + "/kepu/verify/KP2022-0001")
            expect(public.locator(".verdict .state")).to_contain_text("有效")
            expect(public.locator(".verdict")).to_contain_text("会飞的种子")
            expect(public.locator("body")).not_to_contain_text("13800000000")
            public.screenshot(path=str(SHOTS / "verify.png"), full_page=True)
            public.goto(server.url + "/kepu/verify/KP2022-0002")
            expect(public.locator(".verdict .state")).to_contain_text("已撤销")
        finally:
            browser.close()
    assert dialogs == [], "a script ran"
    assert csp_errors == [], csp_errors
    for name in ("overview", "submissions", "submission", "submission-xss", "airflow-nav", "verify", "verify-unknown"):
        assert (SHOTS / f"{name}.png").stat().st_size > 5_000, name
