"""
### 证书与结果通知 · Certificates and result e-mails

评审结果发布后自动运行（资产 `x-kepu://results/released`）：为最新发布中的每个奖项颁发证书——20 个优秀科普号的入驻证书、
200 部优秀科普微视频的荣誉证书；十佳作品获科普中国“创作之星”称号并经操作员记录后，颁发“科普中国·中国青少年科技教育工作者协会
创作之星”荣誉证书。每张证书为 PDF（内嵌中文字体），印有不可猜测的证书编号和查验二维码（`{KEPU_PUBLIC_BASE_URL}/kepu/verify/{编号}`）。
再按单位合并为打印文件，写出证书清单，并给每位报送者发送结果通知邮件（获奖者附证书）。

Runs when results are released (asset `x-kepu://results/released`): one certificate per award of the latest release —
the residency certificate (入驻证书) of the 20 excellent accounts, the certificate of the 200 excellent micro-videos, and,
once an operator records that 科普中国 gave a best work the Creation Star title, that honour certificate. Each is a PDF
(embedded CJK font) with an unguessable number and a QR code of its verification page. Then one print file per unit,
the register (证书清单), and an e-mail to every submitter with their result (certificates attached for awardees).

**运行方式 How it runs**
- 由发布结果自动触发（本 DAG 创建时即为启用状态，无需手动取消暂停）；记录“创作之星”后（`kepu certificates star`）请手动触发一次。
  Triggered by the release (the DAG is active from creation: nobody needs to unpause it); trigger it by hand after
  recording a Creation Star title (`kepu certificates star`).
- 重跑不会重复颁发证书，也不会重复发送邮件（发送记录表）。A rerun issues no certificate and sends no e-mail twice.
- 撤销与补发：`kepu certificates revoke 编号 --by 姓名 --reason 理由`、`kepu certificates reissue 编号 …`；
  查验页随即显示“已撤销”。Revoke and reissue on the command line; the verification page says revoked at once.
- 邮件经 Airflow SMTP 连接 `kepu_smtp`（或 `smtp_default`）发送。E-mails go through the SMTP connection `kepu_smtp`
  (else `smtp_default`).

**参数 Params**
- `notify`：发送结果通知邮件 · send the result e-mails

**结果 Results**：`campaigns/{活动}/certificates/`（每张证书与按单位合并的打印文件）、`campaigns/{活动}/exports/certificates.xlsx`。
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import Param, dag, task

from kepu.orchestration.assets import RESULTS_RELEASED, release_event
from kepu.orchestration.dagkit import (
    AWARD_FAN_OUT,
    default_args,
    failure_watcher,
    label_map_index,
    map_cap,
    mapped_task,
    operator_errors,
)


@dag(
    dag_id="kepu_certificates",
    schedule=[RESULTS_RELEASED],
    # Active from the start: an asset event reaches only DAGs that are not paused, and nobody triggers this one.
    is_paused_upon_creation=False,
    start_date=pendulum.datetime(2022, 11, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    # The e-mails go through an SMTP server: a longer first wait gives one that refused a connection time.
    default_args=default_args(retry_delay=timedelta(seconds=30)),
    tags=["kepu", "certificates", "notifications"],
    doc_md=__doc__,
    params={
        "notify": Param(
            True,
            type="boolean",
            title="发送通知邮件 Notify",
            description="给报送者发送结果通知邮件（每个结果只发一次）。Send each submitter their result (once per result).",
        ),
    },
)
def kepu_certificates() -> None:
    @task
    def plan_certificates(triggering_asset_events: Any = None) -> list[list[str]]:
        from kepu.batches import plan_batches
        from kepu.certificates import steps
        from kepu.context import open_context

        with operator_errors():
            plan = steps.plan_certificates(open_context(migrate=True), event=release_event(triggering_asset_events))
        return plan_batches(plan["to_render"], map_cap(AWARD_FAN_OUT))

    @mapped_task()
    def render_certificates(batch: list[str]) -> list[str]:
        from kepu.certificates import steps
        from kepu.context import open_context

        label_map_index(batch)
        return steps.render_certificates(open_context(), batch)

    # none_failed: a rerun with nothing to render maps no task (skipped), and the steps after it still run.
    @task(trigger_rule="none_failed")
    def write_unit_files() -> dict[str, Any]:
        from kepu.certificates import steps
        from kepu.context import open_context

        return dict(steps.write_unit_files(open_context()))

    @task(trigger_rule="none_failed")
    def plan_notifications(
        params: dict[str, Any] | None = None, triggering_asset_events: Any = None
    ) -> list[list[str]]:
        from kepu.context import open_context
        from kepu.publication import notify

        if params is not None and not params.get("notify", True):
            return []
        with operator_errors():
            return notify.plan_notification_batches(
                open_context(), event=release_event(triggering_asset_events), max_tasks=map_cap(AWARD_FAN_OUT)
            )

    @mapped_task()
    def send_notifications(batch: list[str]) -> dict[str, Any]:
        from kepu.context import open_context
        from kepu.publication import notify

        label_map_index(batch)
        return dict(notify.notify_batch(open_context(), batch))

    batches = plan_certificates()
    rendered = render_certificates.expand(batch=batches)
    units = write_unit_files()
    to_mail = plan_notifications()
    send_notifications.expand(batch=to_mail)
    rendered >> units >> to_mail
    failure_watcher()


kepu_certificates()
