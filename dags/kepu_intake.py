"""
### 作品接收与资格审查 · Intake and eligibility

登记收件箱中的每个报送包（文件夹、压缩包或单个视频），为每个作品分配固定编号，把文件存入对象存储
（记录 sha256 与大小），用 ffprobe 检查视频（容器、时长、大小、画幅、分辨率、音视频流），
记录问题代码，并导出资格审查表（CSV 与 XLSX）。

Registers every package in the inbox (folder, zip archive or lone video) under a stable submission id,
copies its files into the object store with their sha256 and size, probes the video with ffprobe
(container, duration, size, aspect, resolution, streams), records the findings of RULES.md and writes
the eligibility export (CSV and XLSX).

**参数 Params**
- `inbox`：收件箱文件夹，留空则用 `KEPU_INBOX` · inbox folder, empty for `KEPU_INBOX`
- `only`：只处理这些编号或文件夹名 · only these submission ids or package names
- `force`：未变化的作品也重新检查 · re-check packages that did not change

一个报送包出问题不会使整个运行失败；重跑不会产生重复记录或对象。
One broken package never fails the run; a rerun never duplicates a row or an object.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import Param, dag, get_current_context, task

DEFAULT_ARGS: dict[str, Any] = {
    "owner": "kepu",
    "retries": 2,
    "retry_delay": timedelta(seconds=20),
    "retry_exponential_backoff": True,
}


def _max_map_length() -> int:
    from airflow.configuration import conf

    return conf.getint("core", "max_map_length", fallback=1024)


def _label_map_index(batch: list[str]) -> None:
    """Name a mapped task instance in the grid after its first submission."""
    label = f"{batch[0]} (+{len(batch) - 1})" if len(batch) > 1 else batch[0]
    get_current_context()["batch_label"] = label  # type: ignore[typeddict-unknown-key]


@dag(
    dag_id="kepu_intake",
    schedule=None,
    start_date=datetime(2022, 9, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["kepu", "intake"],
    doc_md=__doc__,
    params={
        "inbox": Param(
            "",
            type="string",
            title="收件箱 Inbox",
            description="报送包所在文件夹；留空使用 KEPU_INBOX。Folder holding the packages; empty for KEPU_INBOX.",
        ),
        "only": Param(
            [],
            type="array",
            items={"type": "string"},
            title="只处理 Only",
            description="作品编号或报送包名称；留空处理全部。Submission ids or package names; empty for all.",
        ),
        "force": Param(
            False,
            type="boolean",
            title="强制重新检查 Force",
            description="未变化的报送包也重新检查。Re-check packages whose files did not change.",
        ),
    },
)
def kepu_intake() -> None:
    @task
    def register_submissions(
        params: dict[str, Any] | None = None, run_id: str | None = None
    ) -> list[list[str]]:
        from pathlib import Path

        from kepu import pipeline

        assert params is not None and run_id is not None
        ctx = pipeline.open_context(migrate=True)
        ids = pipeline.register_submissions(
            ctx,
            run_id=run_id,
            dag_id="kepu_intake",
            inbox=Path(params["inbox"]) if params.get("inbox") else None,
            only=list(params.get("only") or []) or None,
            force=bool(params.get("force")),
        )
        return pipeline.plan_batches(ids, _max_map_length())

    @task(map_index_template="{{ batch_label }}")
    def fetch_materials(batch: list[str], run_id: str | None = None) -> list[str]:
        from kepu import pipeline

        _label_map_index(batch)
        return pipeline.fetch_materials(pipeline.open_context(), batch, run_id=str(run_id))

    @task(map_index_template="{{ batch_label }}")
    def probe_videos(batch: list[str], run_id: str | None = None) -> list[str]:
        from kepu import pipeline

        _label_map_index(batch)
        return pipeline.check_submissions(pipeline.open_context(), batch, run_id=str(run_id))

    @task(trigger_rule="all_done")
    def export_eligibility(run_id: str | None = None) -> dict[str, Any]:
        from kepu import pipeline

        return pipeline.export_eligibility(pipeline.open_context(), run_id=str(run_id))

    @task(trigger_rule="all_done")
    def finish_run(summary: dict[str, Any] | None, run_id: str | None = None) -> None:
        from kepu import pipeline

        pipeline.finish_run(pipeline.open_context(), run_id=str(run_id), summary=summary)

    batches = register_submissions()
    checked = probe_videos.expand(batch=fetch_materials.expand(batch=batches))
    summary = export_eligibility()
    checked >> summary
    finish_run(summary)


kepu_intake()
