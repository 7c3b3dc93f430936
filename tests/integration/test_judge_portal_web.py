"""The judging portal's pages through FastAPI's TestClient, on SQLite and on PostgreSQL records.

A token opens only its own judge's entries of its own round; expired, revoked and unknown tokens are refused
with a Chinese and English page; every POST needs the CSRF token and this origin; text from submissions is
escaped; the pages load no third-party script; a submit locks the judge's scores until an operator reopens.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from conftest import fresh_database
from kepu.dashboard import URL_PREFIX
from kepu.dashboard.app import Services, create_app
from kepu.dashboard.auth import Access, Viewer
from kepu.dashboard.judge import csrf_token
from kepu.db import dispose_engine
from portal_world import CID, HOSTILE_SYNOPSIS, HOSTILE_TITLE, R1, R2, PortalWorld, build, full_scores, token_of

pytestmark = pytest.mark.integration

ORIGIN = "http://testserver"
SAME = {"origin": ORIGIN}


class Operator(Access):
    async def authenticate(self, request: Request) -> Viewer | None:
        return Viewer("operator")

    def authorize(self, viewer: Viewer) -> bool:
        return True

    def login_url(self, next_url: str) -> str | None:
        return None


@dataclass
class Site:
    world: PortalWorld
    client: TestClient

    def csrf(self, judge_id: str) -> str:
        from kepu.judging.portal import portal_secret

        return csrf_token(portal_secret(self.world.ctx.settings), self.world.tokens[judge_id])

    def home(self, judge_id: str) -> str:
        return f"{URL_PREFIX}/judge/{self.world.tokens[judge_id]}/"

    def entry(self, judge_id: str, sid: str) -> str:
        return f"{self.home(judge_id)}entry/{sid}"

    def save(self, judge_id: str, sid: str, data: dict[str, str], *, json: bool = False, **headers: str) -> Any:
        form = {"csrf": self.csrf(judge_id), **data}
        h = {**SAME, **({"accept": "application/json"} if json else {}), **headers}
        return self.client.post(self.entry(judge_id, sid), data=form, headers=h)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp(f"portal-{request.param}")
    if request.param == "sqlite":
        world = build(tmp)
        url = world.ctx.settings.database_url
        try:
            yield _site(world)
        finally:
            dispose_engine(url)
    else:
        with fresh_database("kepu_portal") as url:
            world = build(tmp, url)
            yield _site(world)


def _site(world: PortalWorld) -> Site:
    services = Services(world.ctx.settings)
    services.campaign = world.ctx.campaign
    outer = FastAPI()
    outer.mount(URL_PREFIX, create_app(services=services, access=Operator()))
    return Site(world, TestClient(outer, follow_redirects=False))


def _judges(site: Site) -> list[str]:
    return site.world.judges()


# --- what a token opens -------------------------------------------------------------------------------------


def test_a_token_lists_its_own_entries_with_progress_and_beijing_times(site: Site) -> None:
    a = _judges(site)[0]
    r = site.client.get(site.home(a))
    assert r.status_code == 200, r.text
    mine = site.world.assigned(a)
    assert re.search(rf"已评 0 / {len(mine)}", r.text)
    for sid in mine:
        assert f"/entry/{sid}" in r.text
    others = {s for j in _judges(site) for s in site.world.assigned(j)} - set(mine)
    for sid in others:
        assert f'/entry/{sid}"' not in r.text
    assert "北京时间" in r.text and "链接有效期至" in r.text


def test_other_judges_entries_other_rounds_and_unassigned_submissions_are_404(site: Site) -> None:
    a, b = _judges(site)[:2]
    mine = set(site.world.assigned(a))
    foreign = next(s for s in site.world.assigned(b) if s not in mine)
    unassigned = "E005"  # failed the gates: in no round
    assert unassigned not in {s for j in _judges(site) for s in site.world.assigned(j)}
    for sid in (foreign, unassigned, "NOPE", "..%2F..%2Fetc"):
        r = site.client.get(site.entry(a, sid))
        assert r.status_code == 404, (sid, r.status_code)
        assert "%2F" in sid or ("不在您的评审范围内" in r.text and "assigned to you" in r.text)
        for which in ("video", "cover"):
            assert site.client.get(f"{site.home(a)}media/{sid}/{which}").status_code == 404
        assert site.save(a, foreign, full_scores(site.world, foreign)).status_code == 404
    # The foreign entry opens with its own judge's token.
    assert site.client.get(site.entry(b, foreign)).status_code == 200


def test_a_token_opens_only_its_own_round(tmp_path: Path) -> None:
    """The first round scored from returned sheets, the final round assigned and its links issued: a judge's
    token of one round does not open the entries the same judge has only in the other round."""
    from judging_factory import fill_sheet, truthful
    from kepu.judging import keys, steps
    from kepu.judging.portal import issue_links

    world = build(tmp_path)
    ctx = world.ctx
    try:
        scorer = truthful({sid: 3.0 + (int(sid[1:]) * 7 % 13) / 2 for sid in world.entries})
        for jid, info in steps.write_sheets(ctx, R1)["sheets"].items():
            with ctx.store.open_local(info["key"]) as path:
                ctx.store.put_bytes(
                    keys.returned_prefix(CID, R1) + f"{jid}-已评.xlsx", fill_sheet(path.read_bytes(), scorer)
                )
        assert not steps.ingest_sheets(ctx, R1)["rejected"]
        steps.aggregate_round(ctx, R1)
        steps.prepare_round(ctx, R2)
        final = {link.judge_id: token_of(link.url) for link in issue_links(ctx, R2)}
        site = _site(world)
        checked = 0
        for jid, token2 in final.items():
            token1 = world.tokens[jid]
            assert token1 != token2
            only_final = set(world.assigned(jid, R2)) - set(world.assigned(jid, R1))
            only_first = set(world.assigned(jid, R1)) - set(world.assigned(jid, R2))
            for sid in only_final:
                assert site.client.get(f"{URL_PREFIX}/judge/{token1}/entry/{sid}").status_code == 404
                assert site.client.get(f"{URL_PREFIX}/judge/{token2}/entry/{sid}").status_code == 200
                checked += 1
            for sid in only_first:
                assert site.client.get(f"{URL_PREFIX}/judge/{token2}/entry/{sid}").status_code == 404
                assert site.client.get(f"{URL_PREFIX}/judge/{token2}/media/{sid}/video").status_code == 404
                checked += 1
        assert checked > 0
    finally:
        dispose_engine(ctx.settings.database_url)


@pytest.mark.parametrize("token", ["x" * 32, "short", "%3Cscript%3E"])
def test_unknown_tokens_are_refused_with_404(site: Site, token: str) -> None:
    r = site.client.get(f"{URL_PREFIX}/judge/{token}/")
    assert r.status_code == 404
    assert "<script>" not in r.text
    assert re.search(r"[\u4e00-\u9fff]", r.text) and re.search(r"[a-z]{4,}", r.text)
    assert r.headers["cache-control"] == "no-store" and r.headers["referrer-policy"] == "no-referrer"


def test_an_expired_link_is_refused_with_410(site: Site) -> None:
    d = _judges(site)[3]
    assert site.client.get(site.home(d)).status_code == 200
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    with site.world.ctx.records.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE judge_links SET expires_at = :t WHERE campaign_id = :c AND stage = :s AND judge_id = :j"),
            {"t": past, "c": CID, "s": R1, "j": d},
        )
    r = site.client.get(site.home(d))
    assert r.status_code == 410, r.text
    assert "过期" in r.text and "expired" in r.text
    sid = site.world.assigned(d)[0]
    assert site.client.get(site.entry(d, sid)).status_code == 410
    assert site.client.get(f"{site.home(d)}media/{sid}/video").status_code == 410
    assert site.save(d, sid, full_scores(site.world, sid)).status_code == 410


def test_a_revoked_link_is_refused_with_403(site: Site) -> None:
    from kepu.judging.portal import revoke

    c = _judges(site)[4]
    assert site.client.get(site.home(c)).status_code == 200
    revoke(site.world.ctx, CID, R1, c, actor="李主任")
    r = site.client.get(site.home(c))
    assert r.status_code == 403
    assert "作废" in r.text and "revoked" in r.text
    sid = site.world.assigned(c)[0]
    assert site.save(c, sid, full_scores(site.world, sid)).status_code == 403


# --- CSRF and origin ------------------------------------------------------------------------------------------


def test_posts_need_the_csrf_token_and_this_origin(site: Site) -> None:
    a = _judges(site)[0]
    sid = site.world.assigned(a)[0]
    url = site.entry(a, sid)
    data = full_scores(site.world, sid, 3)
    refusals = [
        ({**data}, SAME),  # no token
        ({**data, "csrf": "0" * 43}, SAME),  # a wrong one
        ({**data, "csrf": site.csrf(_judges(site)[1])}, SAME),  # another judge's
        ({**data, "csrf": site.csrf(a)}, {"origin": "https://evil.example"}),
        ({**data, "csrf": site.csrf(a)}, {"referer": "https://evil.example/page"}),
        ({**data, "csrf": site.csrf(a)}, {"sec-fetch-site": "cross-site", "origin": ORIGIN}),
        ({**data, "csrf": site.csrf(a)}, {}),  # no origin at all
    ]
    for form, headers in refusals:
        r = site.client.post(url, data=form, headers=headers)
        assert r.status_code == 403, (form.get("csrf"), headers, r.status_code)
        assert "请求" in r.text and "request" in r.text
    assert site.client.post(site.home(a) + "submit", data={"confirm": "yes"}, headers=SAME).status_code == 403
    # Nothing was saved by the refused posts.
    page = site.client.get(url).text
    assert 'value="3"' not in page
    # The token in the header instead of the form, as judge.js sends it.
    r = site.client.post(url, data=data, headers={**SAME, "x-csrf-token": site.csrf(a), "accept": "application/json"})
    assert r.status_code == 200 and r.json()["ok"] is True
    # A browser's own post under the page's no-referrer policy: Sec-Fetch-Site same-origin, Origin null.
    r = site.save(a, sid, data, origin="null", **{"sec-fetch-site": "same-origin"})  # type: ignore[arg-type]
    assert r.status_code == 303


# --- escaping and headers -------------------------------------------------------------------------------------


def _judge_of(site: Site, sid: str) -> str:
    return next(j for j in _judges(site) if sid in site.world.assigned(j))


def test_hostile_title_and_synopsis_are_shown_as_text(site: Site) -> None:
    sid = site.world.hostile
    j = _judge_of(site, sid)
    for url in (site.home(j), site.entry(j, sid)):
        html = site.client.get(url).text
        assert (
            "<script>alert(1)" not in html and "<img src=x" not in html and 'evil.example/x.js"></script>' not in html
        )
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "=HYPERLINK(" in html  # a formula is plain text on a web page
        scripts = re.findall(r"<script\b[^>]*>", html)
        assert all(re.fullmatch(r'<script src="/kepu/static/judge\.js" defer>', s) for s in scripts), scripts
    html = site.client.get(site.entry(j, sid)).text
    assert "&lt;/p&gt;&lt;script src=https://evil.example/x.js&gt;" in html
    assert HOSTILE_TITLE not in html and HOSTILE_SYNOPSIS not in html


def test_judge_pages_carry_the_strict_headers_and_no_third_party_resource(site: Site) -> None:
    a = _judges(site)[0]
    sid = next(s for s in site.world.assigned(a) if site.world.entries[s]["kind"] == "video")
    for url in (site.home(a), site.entry(a, sid), site.home(a) + "submit"):
        r = site.client.get(url)
        csp = r.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "unsafe-eval" not in csp and "frame-ancestors 'self'" in csp
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["cache-control"] == "no-store"
        assert "noindex" in r.headers["x-robots-tag"]
        for ref in re.findall(r'(?:src|href|action|poster)="([^"]*)"', r.text):
            assert ref.startswith("/kepu/"), ref
    html = site.client.get(site.entry(a, sid)).text
    assert re.search(r"<video[^>]*\bcontrols\b[^>]*\bplaysinline\b[^>]*preload=\"metadata\"", html)
    assert 'inputmode="decimal"' in html and 'min="0"' in html and 'max="10"' in html and "step=" in html
    assert "权重" in html and "weight" in html


def test_the_media_route_serves_only_assigned_entries_with_ranges(site: Site) -> None:
    a = _judges(site)[0]
    sid = next(s for s in site.world.assigned(a) if site.world.entries[s]["kind"] == "video")
    r = site.client.get(f"{site.home(a)}media/{sid}/video")
    assert r.status_code == 200 and r.headers["content-type"] == "video/mp4"
    assert r.content == site.world.mp4
    ranged = site.client.get(f"{site.home(a)}media/{sid}/video", headers={"range": "bytes=100-199"})
    assert ranged.status_code == 206 and ranged.content == site.world.mp4[100:200]
    assert ranged.headers["content-range"] == f"bytes 100-199/{len(site.world.mp4)}"
    cover = site.client.get(f"{site.home(a)}media/{sid}/cover")
    assert cover.status_code == 200 and cover.headers["content-type"].startswith("image/")
    assert site.client.get(f"{site.home(a)}media/{sid}/form").status_code == 404
    # A judge's token never reaches the objects of an entry that is not theirs, whatever the path says.
    b = next(j for j in _judges(site) if any(s not in site.world.assigned(a) for s in site.world.assigned(j)))
    foreign = next(s for s in site.world.assigned(b) if s not in site.world.assigned(a))
    assert site.client.get(f"{site.home(a)}media/{foreign}/video").status_code == 404


# --- saving, submitting, reopening -----------------------------------------------------------------------------


def test_saves_validate_like_the_sheet(site: Site) -> None:
    a = _judges(site)[0]
    sid = site.world.assigned(a)[1]
    crit = site.world.ctx.campaign.judging.criteria[site.world.entries[sid]["kind"]][0].key
    for bad in ("11", "-1", "abc", "nan", "inf"):
        r = site.save(a, sid, {f"score.{crit}": bad}, json=True)
        assert r.status_code == 422, (bad, r.status_code, r.text)
        body = r.json()
        assert body["ok"] is False and body["zh"] and body["en"]
    r = site.save(a, sid, {f"score.{crit}": "11", "comment": "<b>好</b>"})
    assert r.status_code == 422 and 'value="11"' in r.text and "&lt;b&gt;好&lt;/b&gt;" in r.text
    r = site.save(a, sid, {f"score.{crit}": "8.5", "comment": "节奏好"}, json=True)
    assert r.status_code == 200 and r.json()["ok"] is True and r.json()["complete"] is False
    page = site.client.get(site.entry(a, sid)).text
    assert 'value="8.5"' in page and "节奏好" in page


def test_submit_locks_the_scores_until_an_operator_reopens(site: Site) -> None:
    b = _judges(site)[1]
    mine = site.world.assigned(b)
    # Not everything scored: the confirm page names what is missing; the submit is not accepted.
    confirm = site.client.get(site.home(b) + "submit")
    assert confirm.status_code == 200 and "尚未评完" in confirm.text
    for n, sid in enumerate(mine):
        r = site.save(b, sid, full_scores(site.world, sid, 5 + n % 4), go="next")
        assert r.status_code == 303, r.text
    listing = site.client.get(site.home(b)).text
    assert f"已评 {len(mine)} / {len(mine)}" in listing
    confirm = site.client.get(site.home(b) + "submit").text
    assert 'name="confirm" value="yes"' in confirm
    r = site.client.post(site.home(b) + "submit", data={"csrf": site.csrf(b), "confirm": "yes"}, headers=SAME)
    assert r.status_code == 303, r.text
    listing = site.client.get(site.home(b)).text
    assert "已提交，如需修改请联系工作人员" in listing and "ask the organisers to reopen" in listing
    assert "提交评分" not in listing
    # The scores are in the records, the same as a returned sheet's.
    scores = [s for s in site.world.ctx.records.list_scores(CID, R1) if s.judge_id == b]
    assert {s.submission_id for s in scores} == set(mine)
    # Locked: saves are refused, in either form.
    sid = mine[0]
    assert site.save(b, sid, full_scores(site.world, sid, 1), json=True).status_code == 409
    r = site.save(b, sid, full_scores(site.world, sid, 1))
    assert r.status_code == 409 and "已提交" in r.text
    assert 'value="1"' not in site.client.get(site.entry(b, sid)).text
    # The operator's dashboard shows it in words.
    judging = site.client.get(f"{URL_PREFIX}/judging").text
    assert "已在线提交" in judging and "已打开" in judging
    # The operator reopens from the dashboard (a form with its own CSRF token); without the token, nothing.
    assert "重新开放 reopen" in judging
    form = {"stage": R1, "judge_id": b}
    assert site.client.post(f"{URL_PREFIX}/judging/reopen", data=form, headers=SAME).status_code == 403
    csrf = re.search(r'name="csrf" value="([^"]+)"', judging)
    assert csrf is not None
    r = site.client.post(
        f"{URL_PREFIX}/judging/reopen", data={**form, "csrf": csrf.group(1)}, headers={"origin": "https://evil.example"}
    )
    assert r.status_code == 403
    r = site.client.post(f"{URL_PREFIX}/judging/reopen", data={**form, "csrf": csrf.group(1)}, headers=SAME)
    assert r.status_code == 303
    # Reopened: the judge can save again.
    assert "已提交，如需修改" not in site.client.get(site.home(b)).text
    r = site.save(b, sid, full_scores(site.world, sid, 9), json=True)
    assert r.status_code == 200 and r.json()["ok"] is True


def test_the_link_without_its_slash_and_the_dashboard_login_are_unaffected(site: Site) -> None:
    a = _judges(site)[0]
    r = site.client.get(site.home(a).rstrip("/"))
    assert r.status_code in (200, 307) and (r.status_code == 200 or r.headers["location"].endswith("/"))
    # The dashboard's own pages still need the login; the portal does not.
    anonymous = FastAPI()

    class Nobody(Operator):
        async def authenticate(self, request: Request) -> Viewer | None:
            return None

    services = Services(site.world.ctx.settings)
    anonymous.mount(URL_PREFIX, create_app(services=services, access=Nobody()))
    client = TestClient(anonymous, follow_redirects=False)
    assert client.get(f"{URL_PREFIX}/judging").status_code == 401
    assert client.get(site.home(a)).status_code == 200


def test_on_s3_the_player_gets_a_presigned_url_the_page_allows(tmp_path: Path, s3_settings: Any) -> None:
    """Production keeps the media on S3: the media route redirects to a presigned GET of an assigned entry's
    publication copy, the entry page's CSP admits that endpoint for the player, and the URL serves the file."""
    import urllib.request

    env = {
        k: v
        for k, v in s3_settings.as_env().items()
        if k in ("KEPU_STORE_URL", "KEPU_S3_ENDPOINT_URL", "KEPU_S3_REGION")
    }
    site = _site(build(tmp_path, videos=4, accounts=1, judges=5, extra_env=env))
    try:
        a = _judges(site)[0]
        sid = next(s for s in site.world.assigned(a) if site.world.entries[s]["kind"] == "video")
        endpoint = env["KEPU_S3_ENDPOINT_URL"].rstrip("/")
        r = site.client.get(f"{site.home(a)}media/{sid}/video")
        assert r.status_code in (302, 303, 307) and r.headers["location"].startswith(endpoint + "/")
        assert "X-Amz-Signature=" in r.headers["location"] and "rendition" in r.headers["location"]
        with urllib.request.urlopen(r.headers["location"], timeout=30) as got:
            assert got.read() == site.world.mp4
        page = site.client.get(site.entry(a, sid))
        assert page.status_code == 200
        csp = page.headers["content-security-policy"]
        media_src = next(d for d in csp.split(";") if d.strip().startswith("media-src"))
        assert endpoint in media_src.split() and "'self'" in media_src.split()
        # Another judge's entry gets no presigned URL from this token.
        foreign = next(s for j in _judges(site) for s in site.world.assigned(j) if s not in site.world.assigned(a))
        assert site.client.get(f"{site.home(a)}media/{foreign}/video").status_code == 404
    finally:
        dispose_engine(site.world.ctx.settings.database_url)
