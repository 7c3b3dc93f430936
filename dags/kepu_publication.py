"""
### 作品发布与平台推送 · Publication to partner platforms

评审结果发布后自动运行（资产 `x-kepu://results/released`）：对每部获奖作品（优秀科普微视频，含十佳作品），只要作者承诺已有记录
（申报表中已签署，或操作员依据纸质承诺书记录），就在对象存储的发布目录 `campaigns/{活动}/publication/` 下生成作品包（发布版本视频、
封面、中文字幕、元数据——不含任何电话和邮箱），写出 `catalog.json` 和可直接从存储桶访问的静态展示页（`index.html`），并推送到活动文件
所列的每个合作平台（科普中国、科创筑梦、微信、抖音；Airflow HTTP 连接 `kepu_platform_<平台>`）。没有作者承诺的作品不发布，并在报告中列出。

Runs when results are released (asset `x-kepu://results/released`): every awarded micro-video whose author's pledge is on
record (signed in the form, or recorded by an operator from the signed paper) gets a package under
`campaigns/{campaign}/publication/` (publication copy, cover, Chinese subtitles, metadata — never a phone number or an
e-mail address); then `catalog.json` and a static gallery (`index.html`) that can be served straight from the bucket;
then a push to each partner platform of the campaign file (Airflow HTTP connection `kepu_platform_<key>`). Works
without a pledge are not published and are reported.

本 DAG 创建时即为启用状态（暂停的 DAG 收不到发布事件）。The DAG is active from creation (a paused DAG would miss the
release event).

**推送 Pushes**
- 每部作品带幂等键（请求头 `Idempotency-Key`）；同一作品包不会推送两次。Each work carries an idempotency key; the same
  package is never pushed twice.
- 平台返回 5xx 或超时：指数退避后重试；返回 4xx：不重试，记入报告。5xx and timeouts are retried with exponential
  backoff; 4xx answers are final and reported.
- 未配置连接的平台不推送，报告中注明。A platform without a connection is not pushed to, and the report says so.
- 报告：`campaigns/{活动}/exports/publication-<平台>.xlsx` 与 `.json`。Reports per platform under the exports.

**参数 Params**
- `dry_run`：试运行——生成作品包、目录、展示页和报告，但不推送 · write everything, push nothing
- `platforms`：只推送这些平台（留空为全部）· only these platforms (empty: all)
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import Param, dag, task

from kepu.orchestration.assets import RESULTS_RELEASED, release_event
from kepu.orchestration.dagkit import (
    AWARD_FAN_OUT,
    campaign_choices,
    default_args,
    failure_watcher,
    label_map_index,
    map_cap,
    mapped_task,
    operator_errors,
)

CHOICES = campaign_choices()
#: Partner platforms an operator can choose in the trigger form: the campaign file's ``publication.platforms``.
PLATFORMS = CHOICES.platforms


@dag(
    dag_id="kepu_publication",
    schedule=[RESULTS_RELEASED],
    # Active from the start: an asset event reaches only DAGs that are not paused, and nobody triggers this one.
    is_paused_upon_creation=False,
    start_date=pendulum.datetime(2022, 11, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    # Partner platforms that fail get a longer first wait before the next try.
    default_args=default_args(retry_delay=timedelta(minutes=2)),
    tags=["kepu", "publication"],
    doc_md=__doc__,
    params={
        "dry_run": Param(
            False,
            type="boolean",
            title="试运行 Dry run",
            description="生成作品包、目录、展示页和报告，但不向任何平台推送。Write packages, catalog, gallery and reports; "
            "push nothing.",
        ),
        "platforms": Param(
            None,
            type=["null", "array"],
            items={"type": "string", **({"enum": list(PLATFORMS)} if PLATFORMS else {})},
            examples=list(PLATFORMS),
            values_display=PLATFORMS,
            title="平台 Platforms",
            description="只推送这些平台（活动文件中的平台键）；留空推送全部。Only these platforms (keys of the campaign "
            "file); empty for all." + CHOICES.problem,
        ),
    },
)
def kepu_publication() -> None:
    @task
    def plan_publication(triggering_asset_events: Any = None) -> list[list[str]]:
        from kepu.context import open_context
        from kepu.publication import steps

        with operator_errors():
            plan = steps.plan_publication(
                open_context(migrate=True),
                event=release_event(triggering_asset_events),
                max_tasks=map_cap(AWARD_FAN_OUT),
            )
        batches: list[list[str]] = plan["batches"]
        return batches

    @mapped_task(queue="media", pool="kepu_media")
    def build_packages(batch: list[str]) -> list[str]:
        from kepu.context import open_context
        from kepu.publication import steps

        label_map_index(batch)
        return steps.build_packages(open_context(), batch)

    @task(trigger_rule="none_failed")
    def write_catalog() -> dict[str, Any]:
        from kepu.context import open_context
        from kepu.publication import steps

        return dict(steps.write_catalog(open_context()))

    @task
    def plan_pushes(params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        from kepu.context import open_context
        from kepu.publication import steps

        params = params or {}
        with operator_errors():
            planned = steps.plan_pushes(
                open_context(),
                dry_run=bool(params.get("dry_run")),
                platforms=list(params.get("platforms") or []) or None,
                max_tasks=map_cap(AWARD_FAN_OUT),
            )
            return [dict(item) for item in planned]

    @mapped_task()
    def push_works(item: dict[str, Any]) -> dict[str, Any]:
        from kepu.context import open_context
        from kepu.publication import steps

        label_map_index(item["batch"], prefix=item["platform"])
        return dict(steps.push_works(open_context(), item["platform"], item["batch"]))

    @task(trigger_rule="all_done")
    def write_reports(params: dict[str, Any] | None = None) -> dict[str, Any]:
        from kepu.context import open_context
        from kepu.publication import steps

        params = params or {}
        with operator_errors():
            return steps.write_reports(
                open_context(),
                dry_run=bool(params.get("dry_run")),
                platforms=list(params.get("platforms") or []) or None,
            )

    batches = plan_publication()
    built = build_packages.expand(batch=batches)
    catalog = write_catalog()
    pushes = plan_pushes()
    pushed = push_works.expand(item=pushes)
    reports = write_reports()
    built >> catalog >> pushes
    pushed >> reports
    failure_watcher()


kepu_publication()
