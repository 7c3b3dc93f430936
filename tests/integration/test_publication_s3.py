"""Publication against the S3 endpoint (moto on loopback) and partner platforms standing in on loopback:
packages, catalog and gallery made; 5xx retried to success, 4xx refused for good; a rerun pushes nothing new;
works without a pledge not published and reported; no contact data in any published file or payload."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from award_factory import CID, need_ffmpeg, seed_release
from kepu.config import DEFAULT_CAMPAIGN_FILE, Settings, load_settings
from kepu.context import Context, open_context
from kepu.publication import steps
from kepu.publication.package import public_prefix
from kepu.publication.platforms import IDEMPOTENCY_HEADER
from kepu.publication.report import report_keys
from kepu.storage import S3Store
from platform_server import Platforms, platform_server

pytestmark = pytest.mark.integration

CONNECTED = ("kepu_china", "douyin")


def fast_campaign(dest: Path) -> Path:
    """The 2022 campaign with waits between push tries cut to a few milliseconds."""
    data = yaml.safe_load(DEFAULT_CAMPAIGN_FILE.read_text(encoding="utf-8"))
    data["publication"]["push"].update(backoff_s=0.01, max_backoff_s=0.05, timeout_s=5)
    dest.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return dest


@pytest.fixture
def platforms(monkeypatch: pytest.MonkeyPatch) -> Any:
    with platform_server() as server:
        for key in CONNECTED:
            monkeypatch.setenv(f"AIRFLOW_CONN_KEPU_PLATFORM_{key.upper()}", server.conn(key))
        for key in ("wechat", "kechuang_zhumeng"):
            monkeypatch.delenv(f"AIRFLOW_CONN_KEPU_PLATFORM_{key.upper()}", raising=False)
        yield server


def run(ctx: Context, *, dry_run: bool = False) -> dict[str, Any]:
    plan = steps.plan_publication(ctx)
    for batch in plan["batches"]:
        steps.build_packages(ctx, batch)
    catalog = steps.write_catalog(ctx)
    failures = []
    for item in steps.plan_pushes(ctx, dry_run=dry_run, max_tasks=4):
        try:
            steps.push_works(ctx, item["platform"], item["batch"])
        except Exception as exc:
            failures.append(str(exc))
    reports = steps.write_reports(ctx, dry_run=dry_run)
    return {"plan": plan, "catalog": catalog, "reports": reports, "failures": failures}


def objects(ctx: Context, prefix: str) -> dict[str, str]:
    return {k: ctx.store.head(k).sha256 for k in ctx.store.list_keys(prefix)}  # type: ignore[union-attr]


def report(ctx: Context, platform: str) -> dict[str, Any]:
    with ctx.store.open_local(report_keys(CID, platform)[1]) as path:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def no_contacts(data: bytes, contacts: list[str], where: str) -> None:
    for value in contacts:
        for enc in ("utf-8", "utf-16-le"):
            assert value.encode(enc) not in data, f"{value} in {where}"
    assert not re.search(rb"[A-Za-z0-9._%+-]+@example\.cn", data), where


def test_publication_through_s3_and_partner_platforms(
    tmp_path: Path, s3_settings: Settings, platforms: Platforms
) -> None:
    need_ffmpeg()
    settings = load_settings(
        {
            **s3_settings.as_env(),
            "KEPU_CAMPAIGN_FILE": str(fast_campaign(tmp_path / "c.yaml")),
            "KEPU_CERT_SECRET": "x" * 32,
        }
    )
    ctx = open_context(settings, migrate=True)
    assert isinstance(ctx.store, S3Store)
    seeded = seed_release(
        ctx.records, videos=4, accounts=1, best=1, no_pledge=(1,), extra=1, store=ctx.store, scratch=tmp_path / "media"
    )
    platforms.script[("kepu_china", "s0002")] = [500, 500]  # busy twice, then takes it
    platforms.script[("douyin", "s0003")] = [422]  # refuses it

    first = run(ctx)
    assert first["plan"]["works"] == 3 and first["plan"]["withheld"] == {"s0001": "no_pledge"}
    assert first["catalog"]["published"] == 3 and first["failures"] == []

    # Pushes: kepu_china took s0002 on the third try under one idempotency key; douyin refused s0003 once.
    china = platforms.received("kepu_china")
    assert sorted(r["work"] for r in china) == ["s0000", "s0002", "s0002", "s0002", "s0003"]
    keys = {r["headers"][IDEMPOTENCY_HEADER] for r in china if r["work"] == "s0002"}
    assert len(keys) == 1 and keys.pop().startswith("kepu-2022-s0002-")
    assert all(r["headers"]["X-Partner"] == "kepu" and r["path"] == "/kepu_china/works" for r in china)
    assert sorted(r["work"] for r in platforms.received("douyin")) == ["s0000", "s0002", "s0003"]
    assert platforms.received("wechat") == []
    pushes = {(p["platform"], p["submission_id"]): p for p in ctx.records.list_pushes(CID)}
    assert pushes[("kepu_china", "s0002")]["attempts"] == 3 and pushes[("kepu_china", "s0002")]["status"] == "accepted"
    assert pushes[("kepu_china", "s0002")]["remote_id"] == "kepu_china-s0002"
    assert (pushes[("douyin", "s0003")]["status"], pushes[("douyin", "s0003")]["http_status"]) == ("rejected", 422)
    payload = json.loads(china[0]["body"])
    assert payload["work"]["title"] and set(payload["urls"]) == {
        "video.mp4",
        "cover.jpg",
        "subtitles.srt",
        "subtitles.vtt",
    }

    # Reports, per platform, in Chinese: accepted, refused, not published for want of a pledge, not configured.
    china_report = {w["submission_id"]: w for w in report(ctx, "kepu_china")["works"]}
    assert {k: w["state"] for k, w in china_report.items()} == {
        "s0000": "accepted",
        "s0002": "accepted",
        "s0003": "accepted",
        "s0001": "no_pledge",
    }
    assert china_report["s0001"]["state_zh"] == "未发布：无作者承诺"
    assert {w["state"] for w in report(ctx, "douyin")["works"]} == {"accepted", "rejected", "no_pledge"}
    assert {w["state"] for w in report(ctx, "wechat")["works"]} == {"no_connection", "no_pledge"}
    assert ctx.store.exists(report_keys(CID, "kepu_china")[0])

    # The public prefix: catalog, gallery with relative links, one package per published work.
    prefix = public_prefix(CID)
    published = objects(ctx, prefix)
    with ctx.store.open_local(prefix + "catalog.json") as path:
        catalog = json.loads(path.read_text(encoding="utf-8"))
    assert [w["id"] for w in catalog["works"]] == ["s0000", "s0002", "s0003"]  # the best work first
    assert catalog["works"][0]["video"] == "works/s0000/video.mp4"
    for sid in ("s0000", "s0002", "s0003"):
        for name in ("video.mp4", "cover.jpg", "subtitles.srt", "subtitles.vtt", "metadata.json", "index.html"):
            assert f"{prefix}works/{sid}/{name}" in published, (sid, name)
    assert not any("/s0001/" in k for k in published)
    with ctx.store.open_local(prefix + "index.html") as path:
        index = path.read_text(encoding="utf-8")
    assert "会飞的种子0" in index and 'href="works/s0000/index.html"' in index and "<script" not in index
    assert not re.search(r'(?:href|src)="(?:https?:|/)', index)
    with ctx.store.open_local(prefix + "works/s0000/index.html") as path:
        page = path.read_text(encoding="utf-8")
    assert '<source src="video.mp4"' in page and 'src="subtitles.vtt"' in page and 'href="../../style.css"' in page
    with ctx.store.open_local(prefix + "works/s0000/metadata.json") as path:
        meta = json.loads(path.read_text(encoding="utf-8"))
    assert meta["credits"].startswith("张老师") and "联系方式已隐去" in meta["synopsis"]
    assert [a["key"] for a in meta["awards"]] == ["best_video", "excellent_video"]
    with ctx.store.open_local(prefix + "works/s0000/video.mp4") as path:
        tags = subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "format_tags", "-of", "json", str(path)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    assert "comment" not in tags and "artist" not in tags

    # No personal contact data in any published object, nor in anything a platform received.
    for key in published:
        with ctx.store.open_local(key) as path:
            no_contacts(path.read_bytes(), seeded.contacts, key)
    for r in platforms.received():
        no_contacts(r["body"], seeded.contacts, f"payload to {r['platform']}")

    # A rerun pushes nothing new and rewrites nothing.
    count = len(platforms.received())
    again = run(ctx)
    assert len(platforms.received()) == count and again["failures"] == []
    assert objects(ctx, prefix) == published

    # The pledge of s0001 turns up on paper: a dry run writes its package and says it would push it, pushing nothing …
    ctx.records.record_attestation(CID, "s0001", "pledge", value=True, actor="王老师", reason="收到签字的承诺书原件")
    dry = run(ctx, dry_run=True)
    assert len(platforms.received()) == count and dry["catalog"]["published"] == 4
    assert {w["submission_id"]: w["state"] for w in report(ctx, "kepu_china")["works"]}["s0001"] == "dry_run"
    # … and the next real run pushes that work alone, to each connected platform.
    run(ctx)
    assert sorted((r["platform"], r["work"]) for r in platforms.received()[count:]) == [
        ("douyin", "s0001"),
        ("kepu_china", "s0001"),
    ]


def test_a_platform_down_fails_the_push_and_the_retry_sends_only_what_is_missing(
    tmp_path: Path, s3_settings: Settings, platforms: Platforms
) -> None:
    need_ffmpeg()
    settings = load_settings({**s3_settings.as_env(), "KEPU_CAMPAIGN_FILE": str(fast_campaign(tmp_path / "c.yaml"))})
    ctx = open_context(settings, migrate=True)
    seed_release(
        ctx.records, videos=2, accounts=0, best=0, no_pledge=(), extra=0, store=ctx.store, scratch=tmp_path / "media"
    )
    platforms.script[("kepu_china", "s0001")] = [503] * 5  # every try of the first run
    plan = steps.plan_publication(ctx)
    for batch in plan["batches"]:
        steps.build_packages(ctx, batch)
    steps.write_catalog(ctx)
    with pytest.raises(Exception, match="推送失败"):
        steps.push_works(ctx, "kepu_china", ["s0000", "s0001"])
    assert ctx.records.get_push(CID, "kepu_china", "s0001")["status"] == "failed"  # type: ignore[index]
    before = len(platforms.received("kepu_china"))
    (item,) = steps.plan_pushes(ctx, dry_run=False, platforms=["kepu_china"])
    assert item["batch"] == ["s0001"]
    assert steps.push_works(ctx, "kepu_china", item["batch"])["accepted"] == 1
    assert [r["work"] for r in platforms.received("kepu_china")[before:]] == ["s0001"]
