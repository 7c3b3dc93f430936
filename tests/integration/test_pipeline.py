"""The intake steps in one process, on the embedded default and on PostgreSQL + S3."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from openpyxl import load_workbook

from conftest import check_outcomes, outcomes
from kepu.config import Settings, load_settings
from kepu.context import Context, open_context
from kepu.devtools.sample import SUMMARY_SHEET
from kepu.errors import KepuError
from kepu.intake import steps
from kepu.intake.export import COLUMNS
from kepu.intake.report import SHEET_ELIGIBILITY, SHEET_FINDINGS, SHEET_QUOTAS, SHEET_REVIEW, SHEETS
from kepu.intake.steps import EligibilitySummary
from kepu.storage import ObjectStore


def _content_keys(store: ObjectStore) -> list[str]:
    """Every object but the per-run audit records (one per run by design)."""
    return sorted(k for k in store.list_keys("campaigns/") if "/audit/" not in k)


pytestmark = pytest.mark.integration


def _embedded(tmp_path: Path, inbox: Path, campaign: Path) -> Settings:
    return load_settings(
        {"KEPU_HOME": str(tmp_path / "kepu"), "KEPU_INBOX": str(inbox), "KEPU_CAMPAIGN_FILE": str(campaign)}
    )


@dataclass(frozen=True)
class FirstRun:
    ctx: Context
    summary: EligibilitySummary


@pytest.fixture(scope="module")
def first_run(
    tmp_path_factory: pytest.TempPathFactory, small_inbox: tuple[Path, dict], small_campaign: Path
) -> FirstRun:
    """The sample inbox through every intake step on the embedded default, once for the module (for each
    pytest-xdist worker that runs one of its tests): the export test reads what it wrote, the rerun test then runs
    it again and checks that nothing changes."""
    inbox, _ = small_inbox
    ctx = open_context(_embedded(tmp_path_factory.mktemp("first-run"), inbox, small_campaign), migrate=True)
    return FirstRun(ctx, steps.run_intake(ctx, run_id="r1"))


def test_export_has_one_row_per_package(first_run: FirstRun, small_inbox: tuple[Path, dict]) -> None:
    _, expected = small_inbox
    ctx, summary = first_run.ctx, first_run.summary
    with ctx.store.open_local(summary["exports"]["xlsx"].split("/store/", 1)[1]) as xlsx:
        wb = load_workbook(xlsx)
        # The eligibility list, the quota table per unit, findings per submission, the review checklist.
        assert wb.sheetnames[:4] == list(SHEETS)
        rows = list(wb[SHEET_ELIGIBILITY].iter_rows(values_only=True))
        quota_rows = list(wb[SHEET_QUOTAS].iter_rows(values_only=True))
        assert quota_rows[0][0] == "报送主体 entity" and len(quota_rows) > 1
        finding_rows = list(wb[SHEET_FINDINGS].iter_rows(values_only=True))[1:]
        assert {r[2] for r in finding_rows} >= {c for _, cs in expected.values() for c in cs}
        review = list(wb[SHEET_REVIEW].iter_rows(values_only=True))[1:]
        assert any("普通话" in str(r[2]) for r in review)  # the human checklist is on it
    assert list(rows[0]) == [h for _, h in COLUMNS]
    by_source = {r[0]: r for r in rows[1:]}
    assert set(by_source) == set(expected)
    verdict_col = [k for k, _ in COLUMNS].index("verdict")
    codes_col = [k for k, _ in COLUMNS].index("codes")
    for name, (verdict, codes) in expected.items():
        assert by_source[name][verdict_col] == verdict
        assert codes <= set((by_source[name][codes_col] or "").split(";")) - {""}
    with ctx.store.open_local(summary["exports"]["csv"].split("/store/", 1)[1]) as csv_path:
        text = csv_path.read_bytes()
    assert text.startswith(b"\xef\xbb\xbf")  # Excel needs the BOM to show Chinese
    assert len(text.decode("utf-8-sig").splitlines()) >= len(expected) + 1
    with ctx.store.open_local(summary["exports"]["html"].split("/store/", 1)[1]) as html_path:
        page = html_path.read_text(encoding="utf-8")
    assert "资格审查报告" in page and "<svg" in page and "按省份" in page


def test_every_package_gets_its_findings_and_reruns_change_nothing(
    first_run: FirstRun, small_inbox: tuple[Path, dict]
) -> None:
    _, expected = small_inbox
    ctx, summary = first_run.ctx, first_run.summary
    check_outcomes(outcomes(ctx.settings), expected)
    assert summary["submissions"] == len(expected)

    # Conformant entries get a publication copy by remux (no re-encode), failing ones none.
    for sub in ctx.records.list_submissions(ctx.campaign.id):
        rendition = ctx.records.get_details(sub.id).get("rendition")
        if sub.verdict == "fail":
            assert rendition is None, sub.source_name
        else:
            assert rendition and rendition["mode"] == "remux", (sub.source_name, rendition)
            for out in rendition["outputs"].values():
                assert ctx.store.exists(out["key"])
    counts = ctx.records.table_counts()
    keys = _content_keys(ctx.store)
    # Every file of every package is stored once, under its submission, with its checksum.
    for sub in ctx.records.list_submissions(ctx.campaign.id):
        for m in ctx.records.list_materials(sub.id):
            head = ctx.store.head(m.object_key)
            assert head is not None and (head.sha256, head.size) == (m.sha256, m.size_bytes)
            assert m.object_key.startswith(f"campaigns/{ctx.campaign.id}/submissions/{sub.id}/")

    assert steps.register_submissions(ctx, run_id="r2", dag_id="test") == []  # nothing new
    steps.run_intake(ctx, run_id="r3", force=True)
    again = ctx.records.table_counts()
    for table in ("campaigns", "submitters", "submissions", "materials", "findings"):
        assert again[table] == counts[table], table
    assert _content_keys(ctx.store) == keys
    check_outcomes(outcomes(ctx.settings), expected)


def test_a_changed_package_is_processed_again_and_its_history_kept(
    tmp_path: Path, small_inbox: tuple[Path, dict], small_campaign: Path
) -> None:
    inbox = tmp_path / "inbox"
    src, expected = small_inbox
    names = [n for n, (v, _) in expected.items() if v == "pass"][:1]
    for name in names:
        shutil.copytree(src / name, inbox / name)
    shutil.copy2(src / SUMMARY_SHEET, inbox / SUMMARY_SHEET)  # gives the channel and receipt time
    ctx = open_context(_embedded(tmp_path, inbox, small_campaign), migrate=True)
    steps.run_intake(ctx, run_id="r1")
    assert outcomes(ctx.settings)[names[0]][0] == "pass"
    (inbox / names[0] / "封面.jpg").unlink()
    assert len(steps.register_submissions(ctx, run_id="r2", dag_id="test")) == 1
    steps.run_intake(ctx, run_id="r2")
    verdict, codes = outcomes(ctx.settings)[names[0]]
    assert verdict == "fail" and "M-COVER-MISSING" in codes
    actions = [a["action"] for a in ctx.records.list_audit()]
    assert "submission.changed" in actions and "objects.removed" in actions
    sid = ctx.records.list_submissions(ctx.campaign.id)[0].id
    assert not any("/cover/" in k for k in ctx.store.list_keys(f"campaigns/{ctx.campaign.id}/submissions/{sid}/"))


def test_postgres_and_s3(
    tmp_path: Path, small_inbox: tuple[Path, dict], small_campaign: Path, pg_url: str, s3_settings: Settings
) -> None:
    inbox, expected = small_inbox
    settings = load_settings(
        {
            **s3_settings.as_env(),
            "KEPU_INBOX": str(inbox),
            "KEPU_CAMPAIGN_FILE": str(small_campaign),
            "KEPU_DATABASE_URL": pg_url,
        }
    )
    ctx = open_context(settings, migrate=True)
    summary = steps.run_intake(ctx, run_id="pg1")
    assert summary["exports"]["xlsx"].startswith("s3://")
    check_outcomes(outcomes(ctx.settings), expected)
    counts = ctx.records.table_counts()
    # A nightly run over the bucket finds every file and every publication copy in place.
    assert steps.register_submissions(ctx, run_id="pg-nightly", dag_id="test", dry_run=True) == []
    assert steps.plan_renditions(ctx, max_tasks=4) == []
    steps.run_intake(ctx, run_id="pg2", force=True)
    assert ctx.records.table_counts()["materials"] == counts["materials"]
    assert ctx.records.table_counts()["findings"] == counts["findings"]


def test_quota_keeps_the_earliest_and_an_override_survives_reruns(
    tmp_path: Path, small_inbox: tuple[Path, dict], small_campaign: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import csv

    from kepu.cli import main

    src, expected = small_inbox
    first, second = sorted(n for n, (v, _) in expected.items() if v == "pass")[:2]
    inbox = tmp_path / "inbox"
    for name in (first, second):
        shutil.copytree(src / name, inbox / name)
    # One individual member sends two works; the notice allows one (个人会员…作品1部).
    rows = list(csv.reader((src / SUMMARY_SHEET).open(encoding="utf-8-sig")))
    header = rows[0]
    col = {h: i for i, h in enumerate(header)}
    kept = []
    for r in rows[1:]:
        if any(name.endswith(r[col["作品名称"]]) for name in (first, second)):
            r[col["报送单位"]], r[col["报送渠道"]] = "张三", "个人会员"
            r[col["接收时间"]] = "2022-10-10 09:00" if first.endswith(r[col["作品名称"]]) else "2022-10-12 09:00"
            kept.append(r)
    with open(inbox / SUMMARY_SHEET, "w", encoding="utf-8-sig", newline="") as fh:
        csv.writer(fh).writerows([header, *kept])
    settings = _embedded(tmp_path, inbox, small_campaign)
    ctx = open_context(settings, migrate=True)
    steps.run_intake(ctx, run_id="q1")
    got = outcomes(settings)
    assert got[first] == ("pass", set())
    assert got[second][0] == "fail" and got[second][1] == {"Q-QUOTA"}
    quota_msg = next(f.message_zh for f in ctx.records.list_findings(campaign_id="2022") if f.code == "Q-QUOTA")
    assert "个人会员" in quota_msg and "1" in quota_msg

    for key, value in settings.as_env().items():
        monkeypatch.setenv(key, value)
    assert (
        main(["quota", "override", second, "--decision", "keep", "--by", "王老师", "--reason", "评审组同意例外"]) == 0
    )
    assert main(["quota", "override", "no-such-package", "--decision", "keep", "--by", "x", "--reason", "y"]) == 2
    steps.run_intake(ctx, run_id="q2")
    steps.run_intake(ctx, run_id="q3", force=True)
    assert outcomes(settings)[second] == ("pass", set())
    (override,) = ctx.records.list_quota_overrides("2022")
    assert (override["actor"], override["reason"]) == ("王老师", "评审组同意例外")


def test_an_s3_inbox(
    tmp_path: Path, small_inbox: tuple[Path, dict], small_campaign: Path, s3_settings: Settings
) -> None:
    """Packages waiting under an S3 prefix (folders and a zip) are read like a local inbox."""
    import zipfile

    from kepu.storage import S3Store, open_store

    src, expected = small_inbox
    clean = sorted(n for n, (v, _) in expected.items() if v == "pass")[:2]
    defect = next(n for n, (_, c) in expected.items() if "V-ASPECT" in c)
    store = open_store(s3_settings)
    assert isinstance(store, S3Store)
    for name in (clean[0], defect):
        for f in sorted((src / name).iterdir()):
            store.put_file(f"inbox/{name}/{f.name}", f)
    archive = tmp_path / f"{clean[1]}.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in sorted((src / clean[1]).iterdir()):
            zf.write(f, f"{clean[1]}/{f.name}")
    store.put_file(f"inbox/{archive.name}", archive)
    store.put_file(f"inbox/{SUMMARY_SHEET}", src / SUMMARY_SHEET)
    settings = load_settings(
        {**s3_settings.as_env(), "KEPU_INBOX": f"s3://{store.bucket}/inbox", "KEPU_CAMPAIGN_FILE": str(small_campaign)}
    )
    ctx = open_context(settings, migrate=True)
    steps.run_intake(ctx, run_id="s3")
    got = outcomes(settings)
    assert set(got) == {clean[0], defect, archive.name}
    assert got[clean[0]] == ("pass", set())
    assert got[defect][0] == "fail" and "V-ASPECT" in got[defect][1]
    # The zip is not in the folder-named sheet: only its channel and date are unknown.
    assert not {c for c in got[archive.name][1] if c.startswith(("M-", "V-", "A-"))}
    subs = {s.source_name: s for s in ctx.records.list_submissions("2022")}
    assert subs[clean[0]].source_uri == f"s3://{store.bucket}/inbox/{clean[0]}"
    received = subs[clean[0]].received_at
    assert subs[clean[0]].channel and received is not None and received.year == 2022
    # The same prefix given as the run's inbox Param (the trigger form) is read as a URL too.
    local = load_settings({**settings.as_env(), "KEPU_INBOX": str(tmp_path / "nothing-here")})
    options = steps.run_options({"inbox": f"s3://{store.bucket}/inbox", "dry_run": True, "force": True}, {})
    assert options["inbox"] == f"s3://{store.bucket}/inbox"
    dry = steps.register_submissions(open_context(local), run_id="s3-dry", dag_id="test", **options)
    assert set(dry) == {s.id for s in subs.values()}
    with pytest.raises(KepuError, match="s3://"):
        steps.register_submissions(ctx, run_id="x", dag_id="test", inbox="https://example.org/inbox")


def test_dry_run_writes_nothing_and_province_selects(
    tmp_path: Path, small_inbox: tuple[Path, dict], small_campaign: Path
) -> None:
    inbox, expected = small_inbox
    ctx = open_context(_embedded(tmp_path, inbox, small_campaign), migrate=True)
    ids = steps.register_submissions(ctx, run_id="dry", dag_id="test", dry_run=True)
    assert len(ids) == len(expected)
    assert all(n == 0 for n in ctx.records.table_counts().values())
    assert list(ctx.store.list_keys("campaigns/")) == []
    options = steps.run_options({"province": "湖北", "dry_run": True}, {})
    assert options["province"] == "湖北省"
    only_hubei = steps.register_submissions(ctx, run_id="dry2", dag_id="test", **options)
    assert len(only_hubei) == sum(1 for n in expected if n.startswith("湖北"))
    with pytest.raises(KepuError, match="unknown province"):
        steps.run_options({"province": "火星"}, {})


def test_a_nightly_rerun_reuses_the_publication_copy_and_restores_lost_files(
    tmp_path: Path, small_inbox: tuple[Path, dict], small_campaign: Path
) -> None:
    inbox = tmp_path / "inbox"
    src, expected = small_inbox
    name = next(n for n, (v, _) in expected.items() if v == "pass")
    shutil.copytree(src / name, inbox / name)
    shutil.copy2(src / SUMMARY_SHEET, inbox / SUMMARY_SHEET)
    ctx = open_context(_embedded(tmp_path, inbox, small_campaign), migrate=True)
    steps.run_intake(ctx, run_id="r1")
    assert outcomes(ctx.settings)[name][0] == "pass"
    (sub,) = ctx.records.list_submissions(ctx.campaign.id)
    rendition = ctx.records.get_details(sub.id)["rendition"]
    assert rendition["source_sha256"] == next(m.sha256 for m in ctx.records.list_materials(sub.id) if m.role == "video")

    # Nothing changed: nothing to fetch, nothing to encode again.
    assert steps.register_submissions(ctx, run_id="r2", dag_id="test") == []
    assert steps.plan_renditions(ctx, max_tasks=4) == []
    assert steps.plan_renditions(ctx, max_tasks=4, force=True) == [[sub.id]]

    # A publication copy that went missing is made again.
    ctx.store.delete(next(iter(rendition["outputs"].values()))["key"])
    assert steps.plan_renditions(ctx, max_tasks=4) == [[sub.id]]

    # Raw files that went missing from the store (records kept) make the package be fetched again.
    video = next(m for m in ctx.records.list_materials(sub.id) if m.role == "video")
    ctx.store.delete(video.object_key)
    assert steps.register_submissions(ctx, run_id="r3", dag_id="test") == [sub.id]
    steps.run_intake(ctx, run_id="r4")
    assert ctx.store.exists(video.object_key)
    assert outcomes(ctx.settings)[name][0] == "pass"
    assert steps.plan_renditions(ctx, max_tasks=4) == []
