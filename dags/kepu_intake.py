"""
### 作品接收与资格审查 · Intake and eligibility

登记收件箱中的每个报送包（文件夹、压缩包或单个视频），为每个作品分配固定编号，把文件存入对象存储
（记录 sha256 与大小），读取申报表与简介，用 ffprobe 检查视频，再在全部作品上运行资格规则
（必填项、简介字数、联系方式、名称一致、科普号作品数与粉丝数、各渠道名额、截止时间与延期、重复作品），
为仍可参评的作品制作发布版本（符合要求时直接封装，不重新编码），最后导出资格审查表（CSV、XLSX 工作簿）和 HTML 报告。

Registers every package in the inbox (folder, zip archive or lone video) under a stable submission id,
copies its files into the object store with their sha256 and size, reads the application form and
synopsis, probes the video with ffprobe, then runs the campaign-wide rules with Great Expectations
(required fields, synopsis length, contacts, titles, accounts' works and followers, quotas per channel,
deadline and extensions, duplicates), makes the publication copy of every entry that can still be judged
(a remux when the source already fits, never a needless re-encode) and writes the eligibility export
(CSV, XLSX workbook, HTML report).

**运行方式 How it runs**
- 每晚 02:00（北京时间）处理新到或有变化的报送包。Nightly at 02:00 Beijing time: what is new or changed.
- 手动触发：在表单中选择参数。Manual: choose the Params in the trigger form.
- 补跑（backfill）：截止日期延期后，在活动文件中加入延期，再对延期窗口补跑；窗口内收到的作品重新评估。
  Backfill: after adding a deadline extension to the campaign file, backfill the extension window; entries
  received in it are evaluated again.

**参数 Params**
- `inbox`：收件箱文件夹，留空则用 `KEPU_INBOX` · inbox folder, empty for `KEPU_INBOX`
- `sheet`：汇总表（XLSX/CSV），留空则用收件箱中的“汇总表” · units' summary sheet, empty for the inbox's own
- `only`：只处理这些编号或报送包名称 · only these submission ids or package names
- `province`：只处理该省份（下拉选择，留空为全部省份）· only this province (a dropdown; empty for all)
- `force`：未变化的作品也重新检查 · re-check packages that did not change
- `dry_run`：只列出将处理的作品，不写入任何内容 · list what would be processed, write nothing

一个报送包出问题不会使整个运行失败；重跑不会产生重复记录或对象。
One broken package never fails the run; a rerun never duplicates a row or an object.

**查看结果 Results**
- 导航栏“科普征集 Kepu”（`/kepu/`）：概览、作品清单、每个作品的问题（含在视频中的时间）、播放器和人工复核清单。
  The navigation entry 科普征集 Kepu (`/kepu/`): overview, submissions, each entry's findings (with their time
  in the video), player and review checklist.
- 资格审查表与报告：对象存储 `campaigns/{活动}/exports/`。The eligibility export and report:
  `campaigns/{campaign}/exports/` in the object store.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import Param, dag, get_current_context, task
from airflow.timetables.interval import CronDataIntervalTimetable

from kepu.orchestration.dagkit import (
    default_args,
    failure_watcher,
    label_map_index,
    map_cap,
    mapped_task,
    operator_errors,
)
from kepu.provinces import PROVINCES

#: The province dropdown of the trigger form: every province-level division, by its full name.
PROVINCE_NAMES = [full for full, _ in PROVINCES]


@dag(
    dag_id="kepu_intake",
    schedule=CronDataIntervalTimetable("0 2 * * *", timezone="Asia/Shanghai"),
    start_date=pendulum.datetime(2022, 9, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=["kepu", "intake"],
    doc_md=__doc__,
    params={
        "inbox": Param(
            None,
            type=["null", "string"],
            title="收件箱 Inbox",
            description="报送包所在的文件夹；留空使用 KEPU_INBOX（文件夹或 s3://桶/前缀）。"
            "Folder holding the packages; empty for KEPU_INBOX (a folder or s3://bucket/prefix).",
            section="收件 Where the packages are",
        ),
        "sheet": Param(
            None,
            type=["null", "string"],
            title="汇总表 Summary sheet",
            description="各单位汇总表（XLSX/CSV）路径；留空则使用收件箱中名为“汇总表”的文件。"
            "Path of the units' summary sheet; empty for the file named 汇总表 in the inbox.",
            section="收件 Where the packages are",
        ),
        "only": Param(
            None,
            type=["null", "array"],
            items={"type": "string"},
            title="只处理 Only",
            description="作品编号或报送包名称，每行一个；留空处理全部。"
            "Submission ids or package names, one a line; empty for all.",
            section="范围 Which packages",
        ),
        "province": Param(
            None,
            type=["null", "string"],
            enum=[None, *PROVINCE_NAMES],
            values_display={"null": "全部省份 All provinces", **{name: name for name in PROVINCE_NAMES}},
            title="省份 Province",
            description="只处理该省份的报送包；留空（全部省份）处理全部。Only this province's packages; empty (all "
            "provinces) for all.",
            section="范围 Which packages",
        ),
        "force": Param(
            False,
            type="boolean",
            title="强制重新检查 Force",
            description="未变化的报送包也重新检查，并重新制作发布版本。"
            "Re-check packages whose files did not change, and make their publication copies again.",
            section="运行方式 How to run",
        ),
        "dry_run": Param(
            False,
            type="boolean",
            title="试运行 Dry run",
            description="只列出将处理的报送包，不写入记录和对象存储。List what would be processed; write nothing.",
            section="运行方式 How to run",
        ),
    },
)
def kepu_intake() -> None:
    @task
    def register_submissions(params: dict[str, Any] | None = None, run_id: str | None = None) -> list[list[str]]:
        from kepu.batches import plan_batches
        from kepu.context import open_context
        from kepu.intake import steps

        assert params is not None and run_id is not None
        with operator_errors():  # an invalid campaign file or setting: retrying changes nothing
            ctx = open_context(migrate=not params.get("dry_run"))
            ids = steps.register_submissions(
                ctx, run_id=run_id, dag_id="kepu_intake", **steps.run_options(params, get_current_context())
            )
        return plan_batches(ids, map_cap(ctx.settings.max_tasks_per_step), batch_size=ctx.settings.batch_size)

    @mapped_task()
    def fetch_materials(batch: list[str], run_id: str | None = None) -> list[str]:
        from kepu.context import open_context
        from kepu.intake import steps

        label_map_index(batch)
        return steps.fetch_materials(open_context(), batch, run_id=str(run_id))

    @mapped_task(queue="media", pool="kepu_media")
    def probe_videos(batch: list[str], run_id: str | None = None) -> list[str]:
        from kepu.context import open_context
        from kepu.intake import steps

        label_map_index(batch)
        return steps.check_submissions(open_context(), batch, run_id=str(run_id))

    @task(trigger_rule="all_done")
    def validate_campaign(params: dict[str, Any] | None = None, run_id: str | None = None) -> dict[str, Any]:
        from kepu.context import open_context
        from kepu.intake import steps

        if params and params.get("dry_run"):
            return {"dry_run": True}
        return dict(steps.validate_campaign(open_context(), run_id=str(run_id)))

    @task
    def plan_renditions(params: dict[str, Any] | None = None) -> list[list[str]]:
        from kepu.context import open_context
        from kepu.intake import steps

        if params and params.get("dry_run"):
            return []
        ctx = open_context()
        return steps.plan_renditions(
            ctx,
            max_tasks=map_cap(ctx.settings.max_tasks_per_step),
            force=bool(params and params.get("force")),
        )

    @mapped_task(queue="media", pool="kepu_media")
    def make_renditions(batch: list[str], run_id: str | None = None) -> list[str]:
        from kepu.context import open_context
        from kepu.intake import steps

        label_map_index(batch)
        return steps.make_renditions(open_context(), batch, run_id=str(run_id))

    @task(trigger_rule="all_done")
    def export_eligibility(params: dict[str, Any] | None = None, run_id: str | None = None) -> dict[str, Any]:
        from kepu.context import open_context
        from kepu.intake import steps

        if params and params.get("dry_run"):
            return {"dry_run": True}
        return dict(steps.export_eligibility(open_context(), run_id=str(run_id)))

    @task(trigger_rule="all_done")
    def finish_run(
        summary: dict[str, Any] | None, params: dict[str, Any] | None = None, run_id: str | None = None
    ) -> None:
        from kepu.context import open_context
        from kepu.intake import steps

        if params and params.get("dry_run"):
            return
        steps.finish_run(open_context(), run_id=str(run_id), summary=summary)

    batches = register_submissions()
    fetched = fetch_materials.expand(batch=batches)
    checked = probe_videos.expand(batch=fetched)
    validated = validate_campaign()
    to_render = plan_renditions()
    rendered = make_renditions.expand(batch=to_render)
    summary = export_eligibility()
    checked >> validated >> to_render
    rendered >> summary
    finish_run(summary)  # type: ignore[arg-type]  # an XComArg, resolved when the task runs
    # Steps after a failure still run (the export covers what did finish); the watcher marks the run failed.
    failure_watcher()


kepu_intake()
