"""Judges score in the judging portal with headless Chromium, on a desktop screen and on a phone (390×844).

The dashboard app (which carries the portal) is served by uvicorn on 127.0.0.1; no Airflow is needed, since
the portal's token is the credential. Over records and a local store holding real small MP4s, each judge
opens their link, plays an entry's video, scores every assigned entry (autosave: a reload shows the values),
sees the progress and submits; the other judges score through the portal's domain functions; then
``aggregate_round`` ranks every entry. An expired link is refused. Screenshots go to
``test-output/judge-portal/``.
"""

from __future__ import annotations

import datetime as dt
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI, Request
from test_dashboard_browser import chromium  # noqa: F401 - the fixture: Debian's Chromium

from conftest import service_unavailable
from kepu.dashboard import URL_PREFIX
from kepu.dashboard.app import Services, create_app
from kepu.dashboard.auth import Access, Viewer
from kepu.db import dispose_engine
from portal_world import CID, R1, PortalWorld, build

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "test-output" / "judge-portal"
DESKTOP: dict[str, Any] = {"viewport": {"width": 1366, "height": 900}}
PHONE: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844},
    "is_mobile": True,
    "has_touch": True,
    "device_scale_factor": 3,
}


class NoLogin(Access):
    """The portal needs none; the dashboard's own pages stay closed."""

    async def authenticate(self, request: Request) -> Viewer | None:
        return None

    def authorize(self, viewer: Viewer) -> bool:
        return False

    def login_url(self, next_url: str) -> str | None:
        return None


@dataclass
class Served:
    url: str  # http://127.0.0.1:PORT
    world: PortalWorld

    def link(self, judge_id: str) -> str:
        return f"{self.url}{URL_PREFIX}/judge/{self.world.tokens[judge_id]}/"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    import uvicorn

    if not shutil.which("ffmpeg"):
        service_unavailable("ffmpeg makes the entries' MP4s (make setup installs it)")
    world = build(tmp_path_factory.mktemp("judge-portal"))
    services = Services(world.ctx.settings)
    services.campaign = world.ctx.campaign
    outer = FastAPI()
    outer.mount(URL_PREFIX, create_app(services=services, access=NoLogin()))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(outer, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield Served(f"http://127.0.0.1:{port}", world)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        dispose_engine(world.ctx.settings.database_url)


def _judge_in_browser(served: Served, browser: Any, judge_id: str, name: str, options: dict[str, Any]) -> None:
    from playwright.sync_api import ConsoleMessage, expect

    world = served.world
    mine = world.assigned(judge_id)
    context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", **options)
    page = context.new_page()
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or message.type == "error":
            problems.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    try:
        response = page.goto(served.link(judge_id))
        assert response is not None and response.status == 200
        expect(page.locator("#progress")).to_contain_text(f"已评 0 / {len(mine)}")
        expect(page.locator("dl.dates")).to_contain_text("北京时间")
        page.screenshot(path=str(SHOTS / f"{name}-list.png"), full_page=True)

        for n, sid in enumerate(mine):
            page.locator(f"ol.entries a[href$='/entry/{sid}']").click()
            page.wait_for_url(f"**/entry/{sid}")
            kind = world.entries[sid]["kind"]
            criteria = world.ctx.campaign.judging.criteria[kind]
            if kind == "video" and not any(world.entries[s]["kind"] == "video" for s in mine[:n]):
                _plays(page)
            if options.get("is_mobile"):
                _fits_a_phone(page)
            inputs = page.locator("form#score-form input[type=number]")
            expect(inputs).to_have_count(len(criteria))
            for i, c in enumerate(criteria):
                page.fill(f"#c-{c.key}", f"{5 + (n + i) % 5}.5")
            page.fill("#comment", f"第{n + 1}件：讲解清楚")
            expect(page.locator("#save-state")).to_contain_text("已保存", timeout=15_000)
            if n == 0:
                page.screenshot(path=str(SHOTS / f"{name}-entry.png"), full_page=True)
                # Autosaved: a reload shows the values from the records.
                page.reload()
                for i, c in enumerate(criteria):
                    expect(page.locator(f"#c-{c.key}")).to_have_value(f"{5 + (n + i) % 5}.5")
                expect(page.locator("#comment")).to_have_value(f"第{n + 1}件：讲解清楚")
            expect(page.locator("#scored")).to_have_text(str(n + 1))
            page.locator("nav.crumbs a").first.click()
            page.wait_for_url(served.link(judge_id))

        expect(page.locator("#progress")).to_contain_text(f"已评 {len(mine)} / {len(mine)}")
        expect(page.locator("ol.entries li.todo")).to_have_count(0)
        page.click("a.button.primary")  # 提交评分: the confirm step
        expect(page.locator("h1")).to_contain_text("确认提交")
        page.screenshot(path=str(SHOTS / f"{name}-confirm.png"), full_page=True)
        page.click("form.confirm button[type=submit]")
        page.wait_for_url("**/?submitted=1")
        expect(page.locator(".locked")).to_contain_text("已提交，如需修改请联系工作人员")
        expect(page.locator("a.button.primary")).to_have_count(0)
        page.screenshot(path=str(SHOTS / f"{name}-submitted.png"), full_page=True)
        # Locked: the form is disabled.
        page.locator(f"ol.entries a[href$='/entry/{mine[0]}']").click()
        expect(page.locator("form#score-form input[type=number]").first).to_be_disabled()
    finally:
        context.close()
    assert problems == [], problems


def _wait(page: Any, predicate: str, timeout_s: float = 30) -> None:
    """Wait until ``predicate`` (a JS function) is true; polled from here, since the page's CSP (no
    'unsafe-eval') refuses Playwright's in-page wait_for_function."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(predicate):
        assert time.monotonic() < deadline, f"still false after {timeout_s} s: {predicate}"
        time.sleep(0.1)


def _plays(page: Any) -> None:
    """The <video> of the publication copy plays: its currentTime advances after play()."""
    video = page.locator("video#player")
    assert video.get_attribute("playsinline") is not None and video.get_attribute("preload") == "metadata"
    _wait(page, "() => document.querySelector('video').readyState >= 1")
    page.evaluate("() => { const v = document.querySelector('video'); v.muted = true; return v.play(); }")
    _wait(page, "() => document.querySelector('video').currentTime > 0.5")
    # Seeking needs ranges from the media route.
    page.evaluate("() => { document.querySelector('video').currentTime = 4; }")
    _wait(page, "() => document.querySelector('video').currentTime >= 4")
    page.evaluate("() => document.querySelector('video').pause()")


def _fits_a_phone(page: Any) -> None:
    """No horizontal scroll at 390 px, the video as wide as the column, inputs large enough to tap."""
    width = page.evaluate("() => document.documentElement.clientWidth")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width
    if page.locator("video").count():
        box = page.locator("video").bounding_box()
        assert box is not None and box["width"] >= width - 40
    for box in page.locator("form#score-form input[type=number]").evaluate_all(
        "els => els.map(e => e.getBoundingClientRect().height)"
    ):
        assert box >= 40


def _others_score_and_submit(world: PortalWorld, done: set[str]) -> None:
    """The rest of the panel scores through the portal's own functions (as their browsers would)."""
    from kepu.judging.portal import open_portal, portal_entries, save_draft, submit

    for jid in world.judges():
        if jid in done:
            continue
        judge = open_portal(world.ctx, world.tokens[jid])
        for e in portal_entries(world.ctx, judge):
            value = 3 + (int(e.submission_id[1:]) * 7 % 13) / 2
            save_draft(world.ctx, judge, e.submission_id, {c.key: value for c in e.criteria}, "好")
        outcome = submit(world.ctx, open_portal(world.ctx, world.tokens[jid]))
        assert outcome.accepted, outcome.problems


def test_judges_score_in_the_browser_on_desktop_and_phone(served: Served, chromium: str) -> None:  # noqa: F811
    from playwright.sync_api import sync_playwright

    from kepu.judging import steps

    SHOTS.mkdir(parents=True, exist_ok=True)
    world = served.world
    desktop_judge, phone_judge, expired_judge = world.judges()[:3]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"]
        )
        try:
            _judge_in_browser(served, browser, desktop_judge, "desktop", DESKTOP)
            _judge_in_browser(served, browser, phone_judge, "phone", PHONE)

            # An expired link is refused, with a page a judge understands.
            with world.ctx.records.engine.begin() as conn:
                conn.execute(
                    sa.text(
                        "UPDATE judge_links SET expires_at = :t WHERE campaign_id = :c AND stage = :s AND judge_id = :j"
                    ),
                    {"t": dt.datetime.now(dt.UTC) - dt.timedelta(hours=1), "c": CID, "s": R1, "j": expired_judge},
                )
            context = browser.new_context(locale="zh-CN", **PHONE)
            page = context.new_page()
            response = page.goto(served.link(expired_judge))
            assert response is not None and response.status == 410
            assert "过期" in page.inner_text("body") and "expired" in page.inner_text("body")
            page.screenshot(path=str(SHOTS / "phone-expired.png"), full_page=True)
            context.close()
        finally:
            browser.close()

    # Back to a valid link for the expired judge, so that the whole panel can score; then the round is ranked.
    with world.ctx.records.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE judge_links SET expires_at = :t WHERE campaign_id = :c AND stage = :s AND judge_id = :j"),
            {"t": dt.datetime.now(dt.UTC) + dt.timedelta(days=7), "c": CID, "s": R1, "j": expired_judge},
        )
    _others_score_and_submit(world, {desktop_judge, phone_judge})
    browser_scores = [s for s in world.ctx.records.list_scores(CID, R1) if s.judge_id == desktop_judge]
    assert {s.submission_id for s in browser_scores} == set(world.assigned(desktop_judge))
    summary = steps.aggregate_round(world.ctx, R1)
    assigned = {s for j in world.judges() for s in world.assigned(j)}
    assert summary["ranked"] == len(assigned) and summary["insufficient"] == 0, summary
    for name in ("desktop-list", "desktop-entry", "desktop-submitted", "phone-list", "phone-entry", "phone-expired"):
        assert (SHOTS / f"{name}.png").stat().st_size > 5_000, name
