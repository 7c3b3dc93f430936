"""A deadline extension reaches the late entries it covers through a backfill of its window.

The procedure an operator follows (docs/operator-guide.md, "Deadline extensions"): add the extension to the campaign
file, then backfill the extension window. Entries received inside the window turn from D-LATE into
D-EXTENDED and become eligible; an entry received after the extension stays late.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
import yaml

from kepu.config import load_settings
from kepu.context import open_context
from kepu.db.repository import Records
from kepu.devtools.sample import SUMMARY_SHEET
from kepu.localairflow import LocalAirflow
from kepu.storage import export_key, open_store

pytestmark = pytest.mark.e2e

DAG_ID = "kepu_intake"


def _rewrite_sheet(inbox: Path, received: dict[str, str]) -> None:
    """Keep the sheet's rows for the copied packages, with the given receipt times."""
    sheet = inbox / SUMMARY_SHEET
    with open(sheet, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    title, when = header.index("作品名称"), header.index("接收时间")
    kept = [r for r in body if r[title] in received]
    for r in kept:
        r[when] = received[r[title]]
    with open(sheet, "w", encoding="utf-8-sig", newline="") as fh:
        csv.writer(fh).writerows([header, *kept])


@pytest.mark.long(140)
def test_backfill_of_an_extension_window(tmp_path: Path, small_inbox: tuple[Path, dict], small_campaign: Path) -> None:
    src, expected = small_inbox
    conformant = sorted(name for name, (verdict, _) in expected.items() if verdict == "pass")[:3]
    inbox = tmp_path / "inbox"
    for name in conformant:
        shutil.copytree(src / name, inbox / name)
    shutil.copy2(src / SUMMARY_SHEET, inbox / SUMMARY_SHEET)
    titles = [
        name.replace("＋", "+").replace(" + ", "+").replace("-", "+").split("+")[-1].strip() for name in conformant
    ]
    on_time, in_window, after = titles
    _rewrite_sheet(
        inbox,
        {on_time: "2022-10-20 09:00", in_window: "2022-11-03 10:00", after: "2022-11-20 10:00"},
    )
    campaign_file = tmp_path / "campaign.yaml"
    shutil.copy2(small_campaign, campaign_file)
    settings = load_settings(
        {"KEPU_HOME": str(tmp_path / "kepu"), "KEPU_INBOX": str(inbox), "KEPU_CAMPAIGN_FILE": str(campaign_file)}
    )

    def codes_by_title() -> dict[str, tuple[str | None, set[str]]]:
        ctx = open_context(settings)
        found: dict[str, set[str]] = {}
        for f in ctx.records.list_findings(campaign_id=ctx.campaign.id):
            found.setdefault(str(f.submission_id), set()).add(f.code)
        return {
            str(s.title): (s.verdict, found.get(s.id, set())) for s in ctx.records.list_submissions(ctx.campaign.id)
        }

    with LocalAirflow(tmp_path / "airflow", extra_env=settings.as_env()) as airflow:
        airflow.wait_for_dag(DAG_ID)
        airflow.trigger(DAG_ID, "before_extension", {})
        assert airflow.wait_for_run(DAG_ID, "before_extension", timeout=600) == "success"
        before = codes_by_title()
        assert before[on_time] == ("pass", set())
        assert before[in_window][0] == "fail" and "D-LATE" in before[in_window][1]
        assert before[after][0] == "fail" and "D-LATE" in before[after][1]

        # The operator extends the deadline to 5 November (Beijing time) …
        data = yaml.safe_load(campaign_file.read_text(encoding="utf-8"))
        data["deadline"]["extensions"] = [
            {"until": "2022-11-05T23:59:59+08:00", "reason": "各省报送延期 · extension for all provinces"}
        ]
        campaign_file.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
        # … and backfills the window in which the late entry arrived.
        airflow.backfill(DAG_ID, "2022-11-02", "2022-11-04")
        runs = airflow.wait_for_backfill(DAG_ID)
        assert runs and all(r["state"] == "success" for r in runs), runs

    after_backfill = codes_by_title()
    assert after_backfill[on_time] == ("pass", set())
    assert after_backfill[in_window][0] == "pass", after_backfill[in_window]
    assert "D-EXTENDED" in after_backfill[in_window][1] and "D-LATE" not in after_backfill[in_window][1]
    assert after_backfill[after][0] == "fail" and "D-LATE" in after_backfill[after][1]

    # The backfill re-processed the entry received in its window, and only that one.
    records = Records.from_url(settings.database_url)
    ids = {s.title: s.id for s in records.list_submissions("2022")}
    selected = {sid for r in runs for sid in (records.get_run(r["run_id"]) or {}).get("params", {}).get("selected", [])}
    assert selected == {ids[in_window]}
    # The export was rewritten with the new verdicts.
    with open_store(settings).open_local(export_key("2022", "eligibility.csv")) as path:
        exported = {r["作品名称 title"]: r for r in csv.DictReader(path.open(encoding="utf-8-sig"))}
    assert exported[in_window]["结论 verdict"] == "pass" and exported[after]["结论 verdict"] == "fail"
