"""The ``kepu`` command.

kepu campaign validate FILE...   check campaign files (every problem with its line)
kepu db upgrade                  migrate the app records to the latest schema
kepu sample inbox DEST           generate the sample inbox of the demo
kepu intake run                  run the intake steps in this process (no Airflow)
kepu judging …                   judging rounds: roster, decisions, assignment, sheets, ranking
kepu certificates …              certificates: issue, list, verify, revoke, reissue, 创作之星
kepu publication …               pledges on paper, packages, catalog, pushes to partner platforms
kepu demo                        the main job through the real Airflow scheduler
kepu airflow                     start Airflow (UI, scheduler …) on the embedded default
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kepu.certificates.commands import register as register_certificates
from kepu.errors import CampaignError, KepuError
from kepu.judging.commands import register as register_judging
from kepu.texttable import format_table

log = logging.getLogger("kepu")


# --- commands --------------------------------------------------------------------------------------


def cmd_campaign_validate(args: argparse.Namespace) -> int:
    from kepu.campaign import load_campaign

    status = 0
    for path in args.files:
        try:
            c = load_campaign(path)
        except CampaignError as exc:
            status = 1
            print(f"{path}: 无效 invalid", file=sys.stderr)
            for problem in exc.problems:
                print(f"  - {problem}", file=sys.stderr)
        else:
            print(f"{path}: 有效 valid — campaign {c.id}, {len(c.findings)} finding codes, deadline {c.deadline.at}")
    return status


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from kepu.config import load_settings
    from kepu.db import current_revision, upgrade

    settings = load_settings()
    upgrade(settings.database_url)
    print(f"app records at revision {current_revision(settings.database_url)}")
    return 0


def cmd_sample_inbox(args: argparse.Namespace) -> int:
    from kepu.devtools.sample import generate_inbox, write_bad_packages

    started = time.monotonic()
    packages = generate_inbox(Path(args.dest), profile=args.profile)
    if args.bad:
        packages += write_bad_packages(Path(args.dest))
    rows = [(p.folder, getattr(p, "expected", None) or "—") for p in packages]
    print(format_table(["报送包 package", "预期问题 expected"], rows))
    print(f"{len(packages)} package(s) in {args.dest} ({time.monotonic() - started:.1f} s)")
    return 0


def cmd_intake_run(args: argparse.Namespace) -> int:
    from kepu.context import open_context
    from kepu.intake.steps import run_intake

    ctx = open_context(migrate=True)
    run_id = f"cli__{datetime.now(UTC):%Y%m%dT%H%M%S}"
    summary = run_intake(ctx, run_id=run_id, inbox=Path(args.inbox) if args.inbox else None, force=args.force)
    print_summary(ctx)
    print(f"\n导出 export: {summary['exports']}")
    return 0


def print_summary(ctx: object) -> None:
    from kepu.intake.export import eligibility_rows

    rows = eligibility_rows(ctx.records, ctx.campaign)  # type: ignore[attr-defined]
    table = [(r["source_name"], r["verdict_zh"] + " " + r["verdict"], r["codes"] or "—") for r in rows]
    print(format_table(["报送包 package", "结论 verdict", "问题代码 codes"], table, max_width=60))


def cmd_demo(args: argparse.Namespace) -> int:
    from kepu.config import load_settings
    from kepu.context import open_context
    from kepu.db import upgrade
    from kepu.devtools.sample import generate_inbox
    from kepu.localairflow import LocalAirflow

    started = time.monotonic()
    settings = load_settings()
    print(f"工作目录 working folder: {settings.home}")
    print("生成示例收件箱 generating the sample inbox …", flush=True)
    packages = generate_inbox(settings.inbox, profile=args.profile)
    print(f"  {len(packages)} package(s) in {settings.inbox} ({time.monotonic() - started:.0f} s)")
    upgrade(settings.database_url)
    ctx = open_context(settings)
    before = ctx.records.table_counts()
    prefix = f"campaigns/{ctx.campaign.id}/"
    objects_before = sum(1 for _ in ctx.store.list_keys(prefix))
    airflow = LocalAirflow(settings.home / "airflow", extra_env=settings.as_env())
    run_id = f"demo__{datetime.now(UTC):%Y%m%dT%H%M%S}"
    print("启动 Airflow starting Airflow (api-server, scheduler, dag-processor, triggerer) …", flush=True)
    with airflow:
        airflow.wait_for_dag("kepu_intake")
        airflow.trigger("kepu_intake", run_id, {})
        print(f"已触发 triggered kepu_intake run {run_id}; waiting …", flush=True)
        state = wait_with_progress(
            airflow, "kepu_intake", run_id, stall_timeout=args.stall_timeout, timeout=args.timeout
        )
        tasks = airflow.task_instances("kepu_intake", run_id)
    failed = [t for t in tasks if t.get("state") not in ("success", "skipped")]
    print(f"\n运行结果 run {run_id}: {state}; {len(tasks)} task instance(s), {len(failed)} not successful")
    print_summary(ctx)
    after = ctx.records.table_counts()
    print("\n记录条数 rows:", ", ".join(f"{k} {before.get(k, 0)}→{v}" for k, v in sorted(after.items())))
    objects = sum(1 for _ in ctx.store.list_keys(prefix))
    print(f"对象 objects under {prefix}: {objects_before}→{objects}")
    from kepu.storage import export_key

    print(f"资格审查表 eligibility export: {ctx.store.uri(export_key(ctx.campaign.id, 'eligibility.xlsx'))}")
    print(f"                              {ctx.store.uri(export_key(ctx.campaign.id, 'eligibility.csv'))}")
    print(f"资格审查报告 HTML report:       {ctx.store.uri(export_key(ctx.campaign.id, 'eligibility-report.html'))}")
    print(f"Airflow logs: {airflow.home}/logs   ({time.monotonic() - started:.0f} s in all)")
    return 0 if state == "success" else 1


def _progress_line(progress: dict[str, Any], elapsed: float) -> str:
    running = ", ".join(f"{t} ×{n}" if n > 1 else t for t, n in sorted(progress["running"].items()))
    waiting = sum(progress["waiting"].values())
    parts = [f"[{elapsed / 60:4.1f} min] 任务 tasks {progress['done']}/{progress['total']} 完成 done"]
    parts.append(f"进行中 running: {running}" if running else "进行中 running: —")
    if waiting:
        parts.append(f"等待 waiting {waiting}")
    failed = progress["by_state"].get("failed", 0) + progress["by_state"].get("upstream_failed", 0)
    if failed:
        parts.append(f"失败 failed {failed}")
    return " · ".join(parts)


def wait_with_progress(
    airflow: Any,
    dag_id: str,
    run_id: str,
    *,
    stall_timeout: float = 300,
    timeout: float = 0,
    poll: float = 5,
    quiet_every: float = 60,
) -> str:
    """Wait for a run, printing its progress (tasks done of total, the steps running) when it changes and
    at least every ``quiet_every`` seconds. Give up (:class:`KepuError`, saying what is stuck) when nothing
    moved for ``stall_timeout`` seconds: no task changed state and no running task's heartbeat advanced;
    at once when an Airflow component died; after ``timeout`` seconds in all when ``timeout`` is set."""
    from sqlalchemy import exc as sa_exc

    started = last_move = last_print = time.monotonic()
    last: tuple[Any, ...] | None = None
    last_beat: Any = None
    while True:
        try:
            progress = airflow.run_progress(dag_id, run_id)
        except sa_exc.DBAPIError as exc:  # the metadata database busy for a moment: look again
            log.info("run progress not readable now: %s", exc)
            time.sleep(poll)
            continue
        state = progress["state"]
        now = time.monotonic()
        if state in ("success", "failed"):
            print(_progress_line(progress, now - started), flush=True)
            return str(state)
        dead = airflow.dead_components()
        if dead:
            raise KepuError(f"Airflow 组件已退出 component(s) exited: {', '.join(dead)}; see {airflow.home}/*.log")
        seen = (state, tuple(sorted(progress["by_state"].items())), tuple(sorted(progress["running"].items())))
        if seen != last or progress["beat"] != last_beat:
            last_move = now
        if seen != last or now - last_print >= quiet_every:
            print(_progress_line(progress, now - started), flush=True)
            last_print = now
        last = seen
        last_beat = progress["beat"]
        stuck = now - last_move
        if stuck >= stall_timeout or (timeout and now - started >= timeout):
            waiting = ", ".join(f"{t} ×{n}" for t, n in sorted(progress["waiting"].items())) or "—"
            running = ", ".join(f"{t} ×{n}" for t, n in sorted(progress["running"].items())) or "—"
            why = (
                f"nothing moved for {stuck:.0f} s (停滞)"
                if stuck >= stall_timeout
                else f"--timeout {timeout:.0f} s reached (超时)"
            )
            raise KepuError(
                f"run {run_id} of {dag_id} is {state}: {why}; tasks {progress['done']}/{progress['total']} done; "
                f"running: {running}; waiting: {waiting}. Logs: {airflow.home}/logs and {airflow.home}/*.log"
            )
        time.sleep(poll)


def _progress_bar(step: int, total: int, what: str) -> None:
    """A progress bar on stderr, so that --json output stays clean on stdout."""
    width = 24
    done = int(width * step / total)
    bar = f"[{'#' * done}{'-' * (width - done)}] {step}/{total} {what}"
    if sys.stderr.isatty():
        sys.stderr.write(f"\r{bar}\033[K" + ("\n" if step >= total else ""))
    else:
        sys.stderr.write(bar + "\n")
    sys.stderr.flush()


#: Exit status of ``kepu check`` when the check itself broke (1: --strict and the verdict is fail; 2: bad arguments).
CHECK_BROKE = 3


def cmd_check(args: argparse.Namespace) -> int:
    import json

    from kepu.campaign import load_campaign
    from kepu.config import load_settings
    from kepu.findings import sort_findings
    from kepu.intake.checker import CAMPAIGN_ONLY, CHANNEL_ONLY, CheckFailed, check_path

    campaign = load_campaign(args.campaign or load_settings().campaign_file)
    try:
        report = check_path(Path(args.path), campaign, progress=_progress_bar, channel=args.channel)
    except (FileNotFoundError, ValueError) as exc:
        print(f"kepu: {exc}", file=sys.stderr)
        return 2
    except CheckFailed as exc:
        log.debug("kepu check %s broke", args.path, exc_info=exc.__cause__)
        if args.json:
            error = {"file": str(exc.file), "message_zh": exc.message_zh, "message_en": exc.message_en}
            print(json.dumps({"path": args.path, "verdict": None, "error": error}, ensure_ascii=False, indent=2))
        print(
            f"\nkepu: 错误 error: {exc.message_zh}\n  {exc.message_en}\n"
            "  请将此信息告知组织方；加 -v 可查看详细信息 please tell the organisers; add -v (kepu -v check …) for the details",
            file=sys.stderr,
        )
        return CHECK_BROKE
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        labels = {"pass": "通过 pass", "review": "待人工复核 review", "fail": "不合格 fail"}
        print(f"\n{report.path}\n结论 verdict: {labels[report.verdict]}")
        rows = [
            (f.code, f.severity, f.message_zh, f"{f.at_seconds:.1f}" if f.at_seconds is not None else "")
            for f in sort_findings(report.findings)
        ]
        if rows:
            print(format_table(["代码 code", "级别 severity", "说明 message", "位置 at (s)"], rows, max_width=70))
        for note in report.notes:
            print(f"注 note: {note}")
        print(f"未检查（需全部作品）not checked here (campaign-wide): {', '.join(CAMPAIGN_ONLY)}")
        if report.channel is None:
            print(f"未检查（需报送渠道，用 --channel）not checked without --channel: {', '.join(CHANNEL_ONLY)}")
    return {"pass": 0, "review": 0, "fail": 1}[report.verdict] if args.strict else 0


def cmd_rules(args: argparse.Namespace) -> int:
    from kepu.rules import markdown_table, with_table

    if not args.update:
        print(markdown_table(), end="")
        return 0
    for name in args.update:
        path = Path(name)
        try:
            text = path.read_text(encoding="utf-8")
            path.write_text(with_table(text), encoding="utf-8")
        except (OSError, ValueError) as exc:
            print(f"kepu: {name}: {exc}", file=sys.stderr)
            return 2
        print(f"{name}: 已更新 updated")
    return 0


def cmd_forms_template(args: argparse.Namespace) -> int:
    from kepu.intake.form_templates import write_templates

    for path in write_templates(Path(args.dest)):
        print(f"已写入 written: {path}")
    return 0


def cmd_quota_override(args: argparse.Namespace) -> int:
    from kepu.context import open_context

    ctx = open_context(migrate=True)
    sub = ctx.records.get_submission(args.submission)
    if sub is None:
        matches = [s for s in ctx.records.list_submissions(ctx.campaign.id) if s.source_name == args.submission]
        if len(matches) != 1:
            print(f"kepu: 找不到作品 no submission {args.submission!r}", file=sys.stderr)
            return 2
        sub = matches[0]
    ctx.records.upsert_quota_override(ctx.campaign.id, sub.id, args.decision, args.by, args.reason)
    print(f"已记录 recorded: {sub.source_name} → {args.decision}（{args.by}：{args.reason}）")
    print("下次运行资格审查时生效 takes effect at the next intake run (or trigger kepu_intake now).")
    return 0


def cmd_airflow(args: argparse.Namespace) -> int:
    from kepu.config import load_settings
    from kepu.db import upgrade
    from kepu.localairflow import LocalAirflow

    settings = load_settings()
    upgrade(settings.database_url)
    airflow = LocalAirflow(
        settings.home / "airflow", port=args.port, host=args.host, extra_env=settings.as_env(), schedules=True
    )
    print("启动 Airflow starting Airflow (api-server, scheduler, dag-processor, triggerer) …", flush=True)
    with airflow:
        print(f"Airflow UI: {airflow.url}   登录 login: admin / {airflow.admin_password}", flush=True)
        if args.host != "127.0.0.1":
            print(f"监听 listening on {args.host}:{airflow.port}", flush=True)
        print(f"看板 dashboard: {airflow.url}/kepu/   外发邮件 outbox: {airflow.url}/kepu/outbox ({airflow.outbox})")
        print("Ctrl-C 停止 stops it.", flush=True)
        while not (dead := airflow.dead_components()):
            time.sleep(2)
        print(
            f"kepu: Airflow 组件已退出 component(s) exited: {', '.join(dead)}; see {airflow.home}/*.log",
            file=sys.stderr,
        )
    return 1


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP end the command as Ctrl-C (SIGINT) does, so that what it started is stopped on the
    way out (``with airflow:``). A second signal while stopping is ignored rather than cutting the clean-up short.
    """
    received: list[int] = []

    def handler(signum: int, frame: object) -> None:
        if received:
            print("\n正在停止，请稍候 stopping, please wait …", file=sys.stderr, flush=True)
            return
        received.append(signum)
        raise KeyboardInterrupt(signal.Signals(signum).name)

    wanted = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]
    previous = {sig: signal.signal(sig, handler) for sig in wanted}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kepu", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    sub = parser.add_subparsers(dest="command", required=True)

    camp = sub.add_parser("campaign", help="campaign files").add_subparsers(dest="action", required=True)
    v = camp.add_parser("validate", help="check campaign files")
    v.add_argument("files", nargs="+")
    v.set_defaults(func=cmd_campaign_validate)

    db = sub.add_parser("db", help="app records").add_subparsers(dest="action", required=True)
    db.add_parser("upgrade", help="migrate to the latest schema").set_defaults(func=cmd_db_upgrade)

    sample = sub.add_parser("sample", help="sample data").add_subparsers(dest="action", required=True)
    s = sample.add_parser("inbox", help="generate the sample inbox")
    s.add_argument("dest")
    s.add_argument("--profile", choices=["full", "small"], default="full")
    s.add_argument("--bad", action="store_true", help="add a zero-byte video, a text file named .mp4, an empty folder")
    s.set_defaults(func=cmd_sample_inbox)

    intake = sub.add_parser("intake", help="intake steps").add_subparsers(dest="action", required=True)
    r = intake.add_parser("run", help="run the intake steps in this process")
    r.add_argument("--inbox")
    r.add_argument("--force", action="store_true")
    r.set_defaults(func=cmd_intake_run)

    ck = sub.add_parser("check", help="check one package folder, zip or video against the campaign's rules")
    ck.add_argument("path")
    ck.add_argument("--json", action="store_true", help="print one JSON object (verdict, findings)")
    ck.add_argument("--campaign", help="campaign file (default: KEPU_CAMPAIGN_FILE or the 2022 call)")
    ck.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 when the verdict is fail (2: bad arguments; 3: the check broke on a file, said on stderr)",
    )
    ck.add_argument(
        "--channel",
        help="the entry's channel as the summary sheet gives it (e.g. 省级推荐): also checks what the channel asks "
        "of the package, such as the recommending unit's seal",
    )
    ck.set_defaults(func=cmd_check)

    ru = sub.add_parser("rules", help="the finding codes (kepu/rules.py) as a Markdown table")
    ru.add_argument("--update", nargs="+", metavar="FILE", help="rewrite the generated table block in these files")
    ru.set_defaults(func=cmd_rules)

    forms = sub.add_parser("forms", help="application forms").add_subparsers(dest="action", required=True)
    ft = forms.add_parser("template", help="write blank 附件1/附件2 .docx templates for units to fill")
    ft.add_argument("dest")
    ft.set_defaults(func=cmd_forms_template)

    quota = sub.add_parser("quota", help="quota decisions").add_subparsers(dest="action", required=True)
    qo = quota.add_parser("override", help="keep or exclude one entry against its quota (recorded: who, when, why)")
    qo.add_argument("submission", help="submission id or package name")
    qo.add_argument("--decision", choices=["keep", "exclude"], required=True)
    qo.add_argument("--by", required=True, help="who decides")
    qo.add_argument("--reason", required=True, help="why")
    qo.set_defaults(func=cmd_quota_override)

    register_judging(sub)
    register_certificates(sub)

    d = sub.add_parser("demo", help="the main job through the real Airflow scheduler")
    d.add_argument("--profile", choices=["full", "small"], default="full")
    d.add_argument(
        "--stall-timeout",
        type=float,
        default=300,
        help="give up when nothing has moved for this many seconds (default 300)",
    )
    d.add_argument("--timeout", type=float, default=0, help="give up after this many seconds in all (default: never)")
    d.set_defaults(func=cmd_demo)

    a = sub.add_parser("airflow", help="start Airflow's UI on the embedded default")
    a.add_argument("--port", type=int, default=int(os.environ.get("AIRFLOW_PORT") or "8080"))
    a.add_argument(
        "--host",
        default=os.environ.get("AIRFLOW_HOST") or "127.0.0.1",
        help="address to listen on (default 127.0.0.1, this machine only; 0.0.0.0: every address)",
    )
    a.set_defaults(func=cmd_airflow)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        with stop_on_signals():
            return int(args.func(args))
    except KepuError as exc:
        print(f"kepu: 错误 error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        name = str(exc) or "SIGINT"
        print(f"\nkepu: 已停止 stopped ({name}); every process it started has ended", file=sys.stderr)
        return 128 + int(getattr(signal.Signals, name, signal.SIGINT))


if __name__ == "__main__":
    raise SystemExit(main())
