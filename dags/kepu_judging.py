"""
### 评审一轮 · Judging a round

对一个评分阶段（初评 `first_round` 或终评 `final_round`）：确定参评作品（初评：通过形式审查和内容合规审查的作品；
终评：初评排名靠前的作品），在回避同单位、同省份评委的前提下均衡、可复现地分配评委（含全体评委共评的“校准作品”），
为每位评委生成评分表（XLSX），等待评委交回评分表（可延期等待，不占用工作进程），用 Great Expectations 校验并导入交回的评分表
（有误的评分表被退回并说明原因，不影响其他评分表），按评委规范化后汇总排名、计算评分一致性，评出奖项，写出排名工作簿和 HTML 报告。

For one scoring stage (`first_round` or `final_round`): decide the entrants (first round: entries that passed the
formal review and the compliance decision; final round: the best entries of the first round), assign them to judges
— balanced, reproducible from a seed, never to a judge of the same unit or province, with a linking set every judge
scores — write one score sheet (XLSX) per judge, wait for the returned sheets (deferred: no worker slot is held),
validate and record them with Great Expectations (a bad sheet is rejected with its reasons and blocks nothing),
normalise per judge, rank, measure agreement, choose the awards, and write the ranking workbook and the HTML report.

**运行方式 How it runs**
- 手动触发，每轮一次；评分表交回后可再次触发（不等待）以导入新交回或更正的评分表。同样的输入不会改变任何结果。
  Triggered by hand, once per round; trigger it again (wait off) to take in sheets returned or corrected later. The
  same inputs change nothing.
- 评分表位置：`campaigns/{活动}/judging/{阶段}/sheets/`；交回的评分表放入 `campaigns/{活动}/judging/{阶段}/returned/`。
  Sheets are written to `…/judging/{stage}/sheets/`; put the returned sheets under `…/judging/{stage}/returned/`.
- 结果：`campaigns/{活动}/exports/judging-ranking.xlsx` 与 `judging-report.html`。发布结果请运行 `kepu_release_results`。
  Results go to the campaign's exports; releasing them is a separate, explicit step: `kepu_release_results`.

**参数 Params**
- `stage`：活动文件中的评分阶段（下拉选择）· a scoring stage of the campaign file (a dropdown)
- `seed`：分配随机种子，留空沿用本轮已有的种子或活动文件中的种子 · assignment seed; empty keeps the round's or the campaign's
- `roster`：评委名单（XLSX/CSV）路径或对象存储键，留空沿用已导入的名单 · judges' roster file; empty keeps the loaded one
- `deadline`：评分表交回截止时间（如 2022-12-20T18:00+08:00），到时不再等待 · return deadline; waiting ends then
- `wait`：等待评分表交回 · wait for the returned sheets
- `reassign`：尚无评分时，允许用新的种子或名单重新分配 · allow a new assignment while no score is in
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import Param, chain, dag, task

from kepu.orchestration.dagkit import campaign_choices, default_args, enum_schema, failure_watcher, operator_errors
from kepu.orchestration.sensors import ReturnedSheetsSensor

CHOICES = campaign_choices()
#: The scoring stages of the campaign file, in their order: the first is the form's default.
STAGES = CHOICES.scoring_stages


@dag(
    dag_id="kepu_judging",
    schedule=None,
    start_date=pendulum.datetime(2022, 11, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=["kepu", "judging"],
    doc_md=__doc__,
    params={
        "stage": Param(
            next(iter(STAGES), None),
            type="string",
            **enum_schema(STAGES),
            title="评分阶段 Stage",
            description="活动文件中的评分阶段，按顺序排列。A scoring stage of the campaign file, in their order."
            + CHOICES.problem,
        ),
        "seed": Param(
            None,
            type=["null", "integer"],
            title="随机种子 Seed",
            description="分配评委的随机种子；留空沿用本轮已有的或活动文件中的种子。Assignment seed; empty keeps the "
            "round's seed or the campaign's.",
        ),
        "roster": Param(
            None,
            type=["null", "string"],
            title="评委名单 Roster",
            description="评委名单 XLSX/CSV 的路径或对象存储键（姓名、单位、省份、专业领域）；留空沿用已导入的名单。"
            "Path or object key of the judges' roster; empty keeps the loaded roster.",
        ),
        "deadline": Param(
            None,
            type=["null", "string"],
            title="交回截止 Deadline",
            description="评分表交回截止时间，如 2022-12-20T18:00+08:00；到时不再等待。Return deadline (ISO); waiting "
            "ends then. Empty: wait until every judge's sheet is back.",
        ),
        "wait": Param(
            True,
            type="boolean",
            title="等待交回 Wait",
            description="等待评分表交回；关闭则立即导入已交回的评分表。Wait for the returned sheets; off imports what "
            "is there now.",
        ),
        "reassign": Param(
            False,
            type="boolean",
            title="重新分配 Reassign",
            description="尚无评分时，允许用新的种子或名单重新分配。Allow a new assignment while no score is in.",
        ),
    },
)
def kepu_judging() -> None:
    @task
    def assign_judges(params: dict[str, Any] | None = None) -> dict[str, Any]:
        from kepu.context import open_context
        from kepu.judging import steps

        assert params is not None
        with operator_errors():
            ctx = open_context(migrate=True)
            return dict(
                steps.prepare_round(
                    ctx,
                    params["stage"],
                    seed=params.get("seed"),
                    roster=params.get("roster") or None,
                    reassign=bool(params.get("reassign")),
                )
            )

    @task
    def write_sheets(params: dict[str, Any] | None = None) -> dict[str, Any]:
        from kepu.context import open_context
        from kepu.judging import steps

        assert params is not None
        with operator_errors():
            ctx = open_context()
            return dict(
                steps.write_sheets(ctx, params["stage"], deadline=steps.parse_deadline(ctx, params.get("deadline")))
            )

    wait_for_sheets = ReturnedSheetsSensor(
        task_id="wait_for_sheets",
        stage="{{ params.stage }}",
        deadline="{{ params.deadline or '' }}",  # an empty form field is null, not the text "None"
        wait="{{ params.wait }}",
    )

    @task
    def ingest_sheets(params: dict[str, Any] | None = None) -> dict[str, Any]:
        from kepu.context import open_context
        from kepu.judging import steps

        assert params is not None
        with operator_errors():
            return dict(steps.ingest_sheets(open_context(), params["stage"]))

    @task
    def aggregate_scores(params: dict[str, Any] | None = None) -> dict[str, Any]:
        from kepu.context import open_context
        from kepu.judging import steps

        assert params is not None
        with operator_errors():
            return dict(steps.aggregate_round(open_context(), params["stage"]))

    @task
    def select_awards() -> dict[str, Any]:
        from kepu.context import open_context
        from kepu.judging import steps

        with operator_errors():
            return dict(steps.select_awards(open_context()))

    @task
    def write_report() -> dict[str, Any]:
        from kepu.context import open_context
        from kepu.judging import steps

        with operator_errors():
            return dict(steps.write_report(open_context()))

    chain(
        assign_judges(),
        write_sheets(),
        wait_for_sheets,
        ingest_sheets(),
        aggregate_scores(),
        select_awards(),
        write_report(),
    )
    failure_watcher()


kepu_judging()
