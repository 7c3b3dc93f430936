"""The operator's path through the Airflow UI, in headless Chromium, from the first package to the result e-mails.

The embedded Airflow (kepu.localairflow: api-server, scheduler, dag-processor, triggerer) runs as ``make airflow``
starts it (the scheduler creates scheduled and asset-triggered runs), with new DAGs paused as compose runs them
(``AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION``). The browser is an operator's in Beijing
(``zh-CN``, ``Asia/Shanghai``). Acting as the operator, the test:

1. logs in through Airflow's login form;
2. opens ``kepu_intake``, presses Trigger on the form as it opens (no field touched; "unpause on trigger" is ticked
   by the form), and waits for the run in the grid;
3. records the formal review and compliance decisions the operator guide's way (``kepu judging decisions-sheet``,
   fill in the workbook, ``kepu judging decisions``) and loads the judges' roster (``kepu judging roster``);
4. triggers ``kepu_judging`` from its form with the defaults; while the round waits (deferred) for the sheets,
   returns the judges' filled sheets the operator guide's way (``kepu judging ingest``);
5. releases from the ``kepu_release_results`` form: Trigger stays disabled until ``confirm`` and ``released_by``
   are typed, ``reason`` may stay empty;
6. sees ``kepu_certificates`` and ``kepu_publication`` runs appear by themselves (asset-triggered, through the
   scheduler; nobody unpaused them) and succeed;
7. finds the result e-mails in the local mail sink, ``$KEPU_HOME/outbox/*.eml``, certificates attached.

Nothing is done through the CLI of Airflow or its REST API: a step that would need one fails the test. The
metadata database is only read, to wait. Screenshots go to ``test-output/operator/``. Heavy: run it alone.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from test_dashboard_browser import chromium  # noqa: F401 - the fixture: Debian's Chromium

from conftest import service_unavailable
from judging_factory import fill_sheet, make_judges, truthful, write_roster
from kepu.config import Settings, load_settings
from kepu.localairflow import LocalAirflow

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "test-output" / "operator"
BEIJING = ZoneInfo("Asia/Shanghai")
LOCALE = "zh-CN"
#: Provinces of no sample package: a judge never gets an entry of their own province.
JUDGE_PROVINCES = ("西藏自治区", "青海省", "甘肃省", "宁夏回族自治区", "海南省", "吉林省")


def _ui_texts() -> dict[str, Any]:
    """The installed UI's own words in the operator's language (so that the test follows Airflow's translation)."""
    import airflow

    folder = Path(airflow.__file__).parent / "ui" / "dist" / "i18n" / "locales" / LOCALE
    return {
        name: json.loads((folder / f"{name}.json").read_text(encoding="utf-8")) for name in ("common", "components")
    }


def _campaign(dest: Path) -> Path:
    """The 2022 campaign scaled to the small sample videos and to a panel of six judges, one round: three
    excellent videos of the first round (no account awards, no best videos, so no final round)."""
    from kepu.campaign import load_campaign
    from kepu.devtools.sample import PROFILES
    from kepu.devtools.scale import write_scaled_campaign

    small = PROFILES["small"]
    write_scaled_campaign(dest, duration_s=small.duration_limits_s, size=small.size_limits)
    data = yaml.safe_load(dest.read_text(encoding="utf-8"))
    judging = data["judging"]
    first = next(s for s in judging["stages"] if s["key"] == "first_round")
    first.update(min_judges_per_entry=3, linking_set=2, min_scores=2)
    judging["awards"] = {"excellent_videos": 3, "excellent_accounts": 0, "best_videos": 0}
    judging["cutoff_band"] = 1
    dest.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    load_campaign(dest)
    return dest


@dataclass
class World:
    settings: Settings
    airflow: LocalAirflow
    roster: Path
    scratch: Path

    @property
    def url(self) -> str:
        return self.airflow.url

    def kepu(self, *args: str) -> str:
        """The kepu command line, as the operator runs it next to the embedded Airflow."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("KEPU_")} | self.settings.as_env()
        proc = subprocess.run(
            [sys.executable, "-m", "kepu.cli", *args], env=env, capture_output=True, text=True, timeout=600, check=False
        )
        assert proc.returncode == 0, f"kepu {' '.join(args)}: {proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
        return proc.stdout


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    if not __import__("shutil").which("ffmpeg"):
        service_unavailable("ffmpeg makes the sample packages (make setup installs it)")
    from kepu.devtools.sample import generate_inbox

    root = tmp_path_factory.mktemp("operator")
    inbox = root / "inbox"
    # The four conformant packages, and one too short (it fails intake and is never judged).
    generate_inbox(inbox, profile="small", only=["conformant", "V-DURATION"])
    settings = load_settings(
        {
            "KEPU_HOME": str(root / "kepu"),
            "KEPU_INBOX": str(inbox),
            "KEPU_CAMPAIGN_FILE": str(_campaign(root / "campaign.yaml")),
        }
    )
    roster = write_roster(root / "评委名单.csv", make_judges(6, provinces=JUDGE_PROVINCES))
    # As `make airflow` starts it (schedules=True): the scheduler creates scheduled and asset-triggered runs.
    airflow = LocalAirflow(
        root / "airflow",
        # The round's wait looks at the store every 10 s rather than every 5 minutes: the sheets are back at once.
        extra_env={
            **settings.as_env(),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "KEPU_SHEETS_POLL_S": "10",
        },
        schedules=True,
    )
    airflow.start()
    try:
        for dag_id in ("kepu_intake", "kepu_judging", "kepu_release_results", "kepu_certificates", "kepu_publication"):
            airflow.wait_for_dag(dag_id)
        yield World(settings, airflow, roster, root / "scratch")
    finally:
        airflow.stop()
        from kepu.db import dispose_engine

        dispose_engine(settings.database_url)


# --- waiting (the metadata database is read, never written) -------------------------------------------------


def _runs(world: World, dag_id: str) -> list[dict[str, Any]]:
    return world.airflow.runs(dag_id)


def _new_run(
    world: World, dag_id: str, before: set[str], *, run_type: str = "manual", timeout: float = 120
) -> dict[str, Any]:
    """The new run of ``run_type`` (the nightly schedule may add a run of its own once the form unpaused the DAG)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = [r for r in _runs(world, dag_id) if r["run_id"] not in before and r["run_type"] == run_type]
        if new:
            return new[-1]
        time.sleep(2)
    raise AssertionError(f"no new run of {dag_id} within {timeout:.0f} s")


def _wait_finished(world: World, dag_id: str, run_id: str, *, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        state = world.airflow.run_state(dag_id, run_id)
        if state in ("success", "failed"):
            return state
        dead = [str(p.args) for p in world.airflow.procs if p.poll() is not None]
        assert not dead, f"Airflow components exited: {dead}; logs in {world.airflow.home}"
        time.sleep(5)
    raise AssertionError(f"{dag_id} {run_id} still {state} after {timeout:.0f} s; logs in {world.airflow.home}")


def _task_states(world: World, dag_id: str, run_id: str) -> dict[str, str]:
    return {str(t["task_id"]): str(t["state"]) for t in world.airflow.task_instances(dag_id, run_id)}


def _wait_task(world: World, dag_id: str, run_id: str, task_id: str, state: str, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = _task_states(world, dag_id, run_id)
        if states.get(task_id) == state:
            return
        assert world.airflow.run_state(dag_id, run_id) not in ("success", "failed"), states
        time.sleep(3)
    raise AssertionError(
        f"{dag_id}.{task_id} not {state} within {timeout:.0f} s: {_task_states(world, dag_id, run_id)}"
    )


def _is_paused(world: World, dag_id: str) -> bool:
    rows = world.airflow._query("SELECT is_paused FROM dag WHERE dag_id = :dag_id", dag_id=dag_id)
    assert rows, dag_id
    return bool(rows[0]["is_paused"])


# --- the browser ------------------------------------------------------------------------------------------


def _trigger_dialog(page: Any, world: World, dag_id: str, texts: dict[str, Any]) -> Any:
    page.goto(f"{world.url}/dags/{dag_id}")
    button = texts["components"]["triggerDag"]["button"]
    page.get_by_role("button", name=button).first.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text(texts["components"]["triggerDag"]["title"]).first.wait_for(timeout=60_000)
    return dialog


def _submit(dialog: Any, texts: dict[str, Any]) -> Any:
    return dialog.get_by_role("button", name=texts["components"]["triggerDag"]["button"]).last


def _trigger_with_defaults(page: Any, world: World, dag_id: str, texts: dict[str, Any], shot: str) -> dict[str, Any]:
    from playwright.sync_api import expect

    before = {r["run_id"] for r in _runs(world, dag_id)}
    dialog = _trigger_dialog(page, world, dag_id, texts)
    submit = _submit(dialog, texts)
    expect(submit).to_be_enabled(timeout=30_000)  # the form accepts its own defaults
    page.screenshot(path=str(SHOTS / f"{shot}-form.png"), full_page=True)
    submit.click()
    expect(dialog).to_be_hidden(timeout=60_000)
    return _new_run(world, dag_id, before)


def _see_run(page: Any, world: World, dag_id: str, run: dict[str, Any], texts: dict[str, Any], shot: str) -> None:
    """The run in the UI's list of runs, finished with success, its start in Beijing time."""
    from playwright.sync_api import expect

    page.goto(f"{world.url}/dags/{dag_id}/runs")
    row = page.locator("tr", has_text=str(run["run_id"]))
    expect(row.first).to_contain_text(texts["common"]["states"]["success"], timeout=60_000)
    page.goto(f"{world.url}/dags/{dag_id}")  # the grid
    page.wait_for_timeout(2_000)
    page.screenshot(path=str(SHOTS / f"{shot}-grid.png"), full_page=True)


def _login(page: Any, world: World) -> None:
    page.goto(world.url + "/")
    page.wait_for_url("**/auth/login**", timeout=60_000)
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", world.airflow.admin_password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/auth/login" not in url, timeout=60_000)


# --- the operator's steps outside the UI, as docs/operator-guide.md tells them -----------------------------


def _record_decisions(world: World) -> int:
    """`kepu judging decisions-sheet`, every row filled in 通过 with reviewer and reason, `kepu judging decisions`;
    again until nothing waits (compliance follows the formal review)."""
    from openpyxl import load_workbook

    recorded = 0
    for attempt in range(3):
        sheet = world.scratch / f"待决定-{attempt}.xlsx"
        world.kepu("judging", "decisions-sheet", str(sheet))
        wb = load_workbook(sheet)
        ws = wb.active
        header = [str(c.value or "") for c in ws[1]]
        col = {
            name: header.index(next(h for h in header if h.startswith(name))) + 1 for name in ("决定", "复核人", "理由")
        }
        rows = [r for r in range(2, ws.max_row + 1) if ws.cell(r, 1).value]
        if not rows:
            return recorded
        for r in rows:
            ws.cell(r, col["决定"], "通过")
            ws.cell(r, col["复核人"], "张审核")
            ws.cell(r, col["理由"], "已复核，符合要求")
        wb.save(sheet)
        world.kepu("judging", "decisions", str(sheet))
        recorded += len(rows)
    raise AssertionError("decisions still pending after three sheets")


def _return_sheets(world: World, stage: str) -> list[Path]:
    """Each judge's sheet filled in (scores near a known quality), handed in with `kepu judging ingest`."""
    from kepu.context import open_context
    from kepu.judging import keys

    ctx = open_context(world.settings)
    entries = sorted(s.id for s in ctx.records.list_submissions(ctx.campaign.id))
    truth = {sid: 4.0 + (n * 3 % 5) for n, sid in enumerate(entries)}
    scorer = truthful(truth)
    prefix = keys.round_prefix(ctx.campaign.id, stage) + "sheets/"
    sheets = sorted(ctx.store.list_keys(prefix))
    assert len(sheets) == 6, sheets
    returned = world.scratch / "returned"
    returned.mkdir(parents=True, exist_ok=True)
    files = []
    for key in sheets:
        with ctx.store.open_local(key) as path:
            data = fill_sheet(path.read_bytes(), scorer)
        dest = returned / key.rsplit("/", 1)[-1]
        dest.write_bytes(data)
        files.append(dest)
    world.kepu("judging", "ingest", "--stage", stage, *map(str, files))
    return files


# --- the test -----------------------------------------------------------------------------------------------


@pytest.mark.timeout(3600)
@pytest.mark.long(500)
def test_operator_from_first_package_to_result_emails(world: World, chromium: str) -> None:  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=60_000)  # a busy machine renders the UI slowly
    texts = _ui_texts()
    SHOTS.mkdir(parents=True, exist_ok=True)
    for old in SHOTS.glob("*.png"):
        old.unlink()
    # Nobody has touched the DAGs: the ones an operator triggers are paused, the ones the release starts are not.
    assert _is_paused(world, "kepu_intake") and _is_paused(world, "kepu_release_results")
    assert not _is_paused(world, "kepu_certificates") and not _is_paused(world, "kepu_publication")

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            context = browser.new_context(
                viewport={"width": 1400, "height": 1000}, locale=LOCALE, timezone_id="Asia/Shanghai"
            )
            page = context.new_page()
            page.set_default_timeout(60_000)
            _login(page, world)

            # 1. Intake: the form as it opens. Every section holds only valid defaults; the province is a dropdown
            #    that starts on "all provinces".
            dialog = _trigger_dialog(page, world, "kepu_intake", texts)
            dialog.get_by_text("范围 Which packages").click()
            expect(dialog.locator("#element_province")).to_contain_text("全部省份 All provinces")
            dialog.get_by_text("收件 Where the packages are").click()
            expect(dialog.locator("#element_inbox")).to_have_value("")
            page.keyboard.press("Escape")
            expect(dialog).to_be_hidden()
            run = _trigger_with_defaults(page, world, "kepu_intake", texts, "1-intake")
            assert run["run_type"] == "manual"
            assert _wait_finished(world, "kepu_intake", run["run_id"], timeout=1500) == "success", _task_states(
                world, "kepu_intake", run["run_id"]
            )
            _see_run(page, world, "kepu_intake", run, texts, "1-intake")
            assert not _is_paused(world, "kepu_intake")  # the form's "unpause on trigger"

            # The UI speaks Beijing time: the time-zone button says +08:00 and the run's start shows in it.
            finished = next(r for r in _runs(world, "kepu_intake") if r["run_id"] == run["run_id"])
            started = _as_utc(finished["start_date"])
            page.goto(f"{world.url}/dags/kepu_intake/runs")
            expect(page.get_by_role("button", name="+08:00").first).to_be_visible()
            expect(page.locator("body")).to_contain_text(started.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M"))
            page.screenshot(path=str(SHOTS / "1-intake-runs.png"), full_page=True)

            # 2. Formal review and compliance, then the roster: the operator guide's commands.
            assert _record_decisions(world) >= 4
            world.kepu("judging", "roster", str(world.roster))

            # 3. The first round from its form with the defaults; it waits (deferred) for the sheets.
            run = _trigger_with_defaults(page, world, "kepu_judging", texts, "2-judging")
            _wait_task(world, "kepu_judging", run["run_id"], "wait_for_sheets", "deferred", timeout=900)
            page.goto(f"{world.url}/dags/kepu_judging")
            page.wait_for_timeout(2_000)
            page.screenshot(path=str(SHOTS / "2-judging-waiting.png"), full_page=True)
            _return_sheets(world, "first_round")
            # The triggerer sees the returned sheets at its next look (KEPU_SHEETS_POLL_S) and the round goes on.
            assert _wait_finished(world, "kepu_judging", run["run_id"], timeout=1200) == "success", _task_states(
                world, "kepu_judging", run["run_id"]
            )
            _see_run(page, world, "kepu_judging", run, texts, "2-judging")

            # 4. Release: Trigger is held back until confirm and released_by are typed; reason may stay empty.
            before = {r["run_id"] for r in _runs(world, "kepu_release_results")}
            dialog = _trigger_dialog(page, world, "kepu_release_results", texts)
            submit = _submit(dialog, texts)
            expect(submit).to_be_disabled()
            confirm = dialog.locator("#element_confirm")
            if not confirm.is_visible():  # a form with one section opens it; open it if it is not
                dialog.get_by_text("Run Parameters").click()
            confirm.fill(_campaign_id(world))
            expect(submit).to_be_disabled()
            dialog.locator("#element_released_by").fill("李主任")
            expect(submit).to_be_enabled()
            page.screenshot(path=str(SHOTS / "3-release-form.png"), full_page=True)
            submit.click()
            expect(dialog).to_be_hidden()
            run = _new_run(world, "kepu_release_results", before)
            assert _wait_finished(world, "kepu_release_results", run["run_id"], timeout=900) == "success", _task_states(
                world, "kepu_release_results", run["run_id"]
            )
            assert _task_states(world, "kepu_release_results", run["run_id"])["announce_release"] == "success"
            _see_run(page, world, "kepu_release_results", run, texts, "3-release")

            # 5. Certificates and publication start by themselves from the release event, and succeed.
            for dag_id in ("kepu_certificates", "kepu_publication"):
                started_run = _new_run(world, dag_id, set(), run_type="asset_triggered", timeout=600)
                assert _wait_finished(world, dag_id, started_run["run_id"], timeout=1500) == "success", _task_states(
                    world, dag_id, started_run["run_id"]
                )
                page.goto(f"{world.url}/dags/{dag_id}/runs")
                row = page.locator("tr", has_text=str(started_run["run_id"])).first
                expect(row).to_contain_text(texts["common"]["runTypes"]["asset_triggered"])
                expect(row).to_contain_text(texts["common"]["states"]["success"])
                page.screenshot(path=str(SHOTS / f"4-{dag_id}-runs.png"), full_page=True)
                assert len(_runs(world, dag_id)) == 1, _runs(world, dag_id)  # nothing else started it
        finally:
            browser.close()

    # 6. The result e-mails in the mail sink: every awardee's, with their certificate attached.
    _check_outbox(world)
    for name in (
        "1-intake-form",
        "1-intake-grid",
        "2-judging-form",
        "2-judging-waiting",
        "3-release-form",
        "4-kepu_certificates-runs",
        "4-kepu_publication-runs",
    ):
        assert (SHOTS / f"{name}.png").stat().st_size > 5_000, name


def _campaign_id(world: World) -> str:
    from kepu.campaign import load_campaign

    return load_campaign(world.settings.campaign_file).id


def _as_utc(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime), value
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _check_outbox(world: World) -> None:
    from kepu.context import open_context

    ctx = open_context(world.settings)
    cid = ctx.campaign.id
    awards = ctx.records.list_awards(cid)
    certificates = [c for c in ctx.records.find_certificates(cid) if c.valid]
    assert len(awards) == 3 and len(certificates) == 3, (awards, certificates)
    outbox = world.settings.home / "outbox"
    messages = [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in outbox.glob("*.eml")]
    assert messages, f"no e-mail in {outbox}"
    attached: dict[str, list[str]] = {}
    for msg in messages:
        names = [part.get_filename() or "" for part in msg.iter_attachments()]
        pdfs = [n for n in names if n.lower().endswith(".pdf")]
        if pdfs:
            attached[str(msg["X-Kepu-Envelope-To"] or msg["To"])] = pdfs
        assert any("\u4e00" <= ch <= "\u9fff" for ch in str(msg["Subject"])), msg["Subject"]
    numbers = {c.number for c in certificates}
    found = {n for pdfs in attached.values() for n in numbers if any(n in name for name in pdfs)}
    assert found == numbers, (numbers, attached)
    assert len(attached) == len({c.submission_id for c in certificates})
