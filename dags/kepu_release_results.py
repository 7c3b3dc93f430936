"""
### 发布评审结果 · Release the results

由操作员明确发布评审结果：记录发布（发布人、时间、理由与排名校验和），并发出资产事件 `x-kepu://results/released`，
由它启动证书制作与作品发布。须在 `confirm` 中输入活动编号（如 2022）以确认。

An operator's explicit release of the judging results: the release is recorded (who, when, why, and the ranking's
checksum) and the asset event `x-kepu://results/released` is emitted, which starts certificates and publication. Type
the campaign id (e.g. 2022) in `confirm` to go ahead.

**不会重复发布 Never issued twice**
- 同一排名再次发布不做任何事，也不发出资产事件，并说明已于何时发布。Releasing the same ranking again does nothing,
  emits no asset event, and says when it was released.
- 发布后排名如有变化（如更正了评分表），须勾选 `re_release` 并说明理由才会重新发布；变化（新增与撤销的奖项）记入审计日志。
  A ranking that changed after a release is released only with `re_release` and a reason; the change (awards added
  and withdrawn) goes to the audit log.
- 结果不完整（某轮未汇总、有作品评分不足）时不能发布。Incomplete results (a round not aggregated, entries short of
  scores) cannot be released.

**参数 Params**
- `confirm`（必填）：输入活动编号以确认 · required: type the campaign id to confirm
- `released_by`（必填）：发布人 · required: who releases
- `reason`：理由（首次发布可留空，重新发布时必填）· why (optional, but required with `re_release`)
- `re_release`：排名变化后重新发布 · release a ranking that changed after the last release
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import Param, dag, task

from kepu.orchestration.assets import RESULTS_RELEASED
from kepu.orchestration.dagkit import default_args, failure_watcher, operator_errors


@dag(
    dag_id="kepu_release_results",
    schedule=None,
    start_date=pendulum.datetime(2022, 11, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=["kepu", "judging", "release"],
    doc_md=__doc__,
    params={
        # Required: no default, so the form's Trigger stays disabled until both are typed.
        "confirm": Param(
            type="string",
            minLength=1,
            title="确认 Confirm",
            description="必填：输入活动编号（如 2022）以确认发布。Required: type the campaign id (e.g. 2022) to confirm "
            "the release.",
        ),
        "released_by": Param(
            type="string",
            minLength=1,
            title="发布人 Released by",
            description="必填：发布人姓名，记入发布记录。Required: who releases; recorded with the release.",
        ),
        "reason": Param(
            None,
            type=["null", "string"],
            title="理由 Reason",
            description="发布说明，记入发布记录；首次发布可留空，重新发布（re_release）时必填。Why; recorded with the "
            "release. Optional for the first release, required with re_release.",
        ),
        "re_release": Param(
            False,
            type="boolean",
            title="重新发布 Re-release",
            description="发布后排名有变化时，确认重新发布（须填写理由）。Release a ranking that changed after the last "
            "release (give a reason).",
        ),
    },
)
def kepu_release_results() -> None:
    @task
    def release_results(params: dict[str, Any] | None = None) -> dict[str, Any]:
        from kepu.errors import JudgingError

        assert params is not None
        reason = str(params.get("reason") or "").strip()
        with operator_errors():
            # Refused before the records are opened: nothing is released.
            if params.get("re_release") and not reason:
                raise JudgingError(
                    "重新发布须在“理由 reason”中说明理由，未做任何发布 · a re-release needs a reason (the reason field); "
                    "nothing was released"
                )

            from kepu.context import open_context
            from kepu.judging import steps

            return dict(
                steps.release_results(
                    open_context(migrate=True),
                    confirm=str(params.get("confirm") or ""),
                    actor=str(params.get("released_by") or ""),
                    reason=reason,
                    re_release=bool(params.get("re_release")),
                )
            )

    @task(outlets=[RESULTS_RELEASED])
    def announce_release(outcome: dict[str, Any], outlet_events: Any = None) -> dict[str, Any]:
        """Emits the asset event, only for a release that was just recorded."""
        from airflow.sdk.exceptions import AirflowSkipException

        if not outcome["released"]:
            raise AirflowSkipException(outcome["message"])
        outlet_events[RESULTS_RELEASED].extra = {
            "campaign": outcome["campaign"],
            "release_id": outcome["release_id"],
            "ranking_sha256": outcome["ranking_sha256"],
        }
        return outcome

    announce_release(release_results())  # type: ignore[arg-type]  # an XComArg, resolved when the task runs
    failure_watcher()


kepu_release_results()
