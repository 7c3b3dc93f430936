"""``kepu judging …``: the judging steps on the command line (the DAGs call the same functions).

kepu judging roster FILE                      load the judges' roster (XLSX/CSV)
kepu judging decisions-sheet DEST.xlsx        the decisions still to take (formal review, compliance)
kepu judging decisions FILE                   record a filled decisions sheet
kepu judging decide ID --stage S --decision pass|fail --by WHO --reason WHY
kepu judging assign --stage S [--seed N]      assign judges and write the score sheets
kepu judging ingest --stage S [FILE …]        put returned sheets in the store and take them in
kepu judging aggregate --stage S              rank, choose the awards, write the ranking and the report
kepu judging status [--json]                  gates, rounds, sheets, selection and release at a glance
kepu judging links --stage S [--judge ID …] [--revoke | --reopen] [--mail]
                                              the judges' portal links; revoke, reopen, mail them

Releasing the results is not here on purpose: it is the ``kepu_release_results`` DAG, the one place that
starts certificates and publication.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import unicodedata
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypedDict

from kepu.clock import beijing_text


def _ctx() -> Any:
    from kepu.context import open_context

    return open_context(migrate=True)


def _print(summary: Mapping[str, Any]) -> None:
    print(json.dumps(summary, ensure_ascii=False, indent=2, default=str))


def cmd_roster(args: argparse.Namespace) -> int:
    from kepu.judging import steps

    _print(steps.load_roster(_ctx(), args.file))
    return 0


def cmd_decisions_sheet(args: argparse.Namespace) -> int:
    from kepu.judging.review import decision_sheet, pending_items

    ctx = _ctx()
    dest = Path(args.dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(decision_sheet(ctx.records, ctx.campaign))
    print(f"已写入 written: {dest}（{len(pending_items(ctx.records, ctx.campaign))} 项待决定 decisions to take）")
    return 0


def cmd_decisions(args: argparse.Namespace) -> int:
    from kepu.judging.review import import_decisions

    ctx = _ctx()
    result = import_decisions(ctx.records, ctx.campaign, Path(args.file))
    print(
        f"已记录 recorded: 新 new {result.recorded['new']}，更改 changed {result.recorded['changed']}，"
        f"未变 unchanged {result.recorded['unchanged']}；未填写 blank {result.skipped_blank}"
    )
    return 0


def cmd_decide(args: argparse.Namespace) -> int:
    from kepu.judging.review import decide

    ctx = _ctx()
    sid = args.submission
    if ctx.records.get_submission(sid) is None:
        matches = [s.id for s in ctx.records.list_submissions(ctx.campaign.id) if s.source_name == sid]
        sid = matches[0] if len(matches) == 1 else sid
    result = decide(ctx.records, ctx.campaign, sid, args.stage, args.decision, args.by, args.reason)
    print(f"{sid} {args.stage}: {args.decision}（{args.by}：{args.reason}）— {result}")
    return 0


def cmd_assign(args: argparse.Namespace) -> int:
    from kepu.judging import steps

    ctx = _ctx()
    summary = steps.prepare_round(ctx, args.stage, seed=args.seed, roster=args.roster, reassign=args.reassign)
    sheets = steps.write_sheets(ctx, args.stage, deadline=steps.parse_deadline(ctx, args.deadline))
    _print(
        {
            "assignment": summary,
            "sheets": {j: s["key"] for j, s in sheets["sheets"].items()},
            "returned_prefix": sheets["returned_prefix"],
        }
    )
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from kepu.judging import keys, steps
    from kepu.storage import safe_filename

    ctx = _ctx()
    stage = steps.scoring_stage(ctx, args.stage)
    prefix = keys.returned_prefix(ctx.campaign.id, stage.key)
    for name in args.files:
        path = Path(name)
        stored = ctx.store.put_file(prefix + safe_filename(path.name), path, content_type=steps.XLSX)
        print(f"已上传 uploaded: {stored.uri}")
    summary = steps.ingest_sheets(ctx, stage.key)
    _print(summary)
    for sheet in ctx.records.list_sheets(ctx.campaign.id, stage.key):
        if sheet.status == "rejected" and any(r["key"] == sheet.object_key for r in summary["rejected"]):
            print(f"\n退回 rejected: {sheet.object_key}")
            for p in sheet.problems[:30]:
                print(f"  - {p['zh']} · {p['en']}")
    return 0


def cmd_aggregate(args: argparse.Namespace) -> int:
    from kepu.judging import steps

    ctx = _ctx()
    _print(
        {
            "aggregate": steps.aggregate_round(ctx, args.stage),
            "select": steps.select_awards(ctx),
            "report": steps.write_report(ctx),
        }
    )
    return 0


class RoundStatus(TypedDict):
    """One round of :func:`judging_status`: its seed, judges and entries, its sheets by status, aggregated or not."""

    seed: int
    judges: int | None
    entries: int | None
    sheets: dict[str, int]
    aggregated: bool


class SelectionStatus(TypedDict):
    """The current selection in :func:`judging_status`."""

    ranking_sha256: str
    complete: bool
    notes: list[str]


class ReleaseStatus(TypedDict):
    """One release in :func:`judging_status`."""

    id: int
    ranking_sha256: str
    actor: str
    released_at: dt.datetime


class JudgingStatus(TypedDict):
    """What :func:`judging_status` finds (``kepu judging status``): entries by gate and state, the number of
    judges, each round begun, the current selection and every release."""

    gates: dict[str, dict[str, int]]
    judges: int
    rounds: dict[str, RoundStatus]
    selection: SelectionStatus | None
    releases: list[ReleaseStatus]


def judging_status(ctx: Any) -> JudgingStatus:
    """Gates, rounds, sheets, selection and releases of the campaign, as data."""
    from kepu.judging.review import gate_statuses

    c = ctx.campaign
    gates: dict[str, Counter[str]] = {}
    for status in gate_statuses(ctx.records, c):
        for key, state in status.states.items():
            gates.setdefault(key, Counter())[state] += 1
    rounds: dict[str, RoundStatus] = {}
    for stage in c.judging.scoring_stages:
        found = ctx.records.get_round(c.id, stage.key)
        if found is None:
            continue
        sheets = Counter(s.status for s in ctx.records.list_sheets(c.id, stage.key))
        rounds[stage.key] = {
            "seed": found["seed"],
            "judges": found["summary"].get("judges"),
            "entries": found["summary"].get("entries"),
            "sheets": dict(sheets),
            "aggregated": found.get("aggregate") is not None,
        }
    selection = ctx.records.current_selection(c.id)
    current: SelectionStatus | None = None
    if selection is not None:
        current = {
            "ranking_sha256": selection["ranking_sha256"],
            "complete": selection["complete"],
            "notes": selection["notes"],
        }
    releases = ctx.records.list_releases(c.id)
    return {
        "gates": {k: dict(v) for k, v in gates.items()},
        "judges": len(ctx.records.list_judges(c.id)),
        "rounds": rounds,
        "selection": current,
        "releases": [
            {"id": r["id"], "ranking_sha256": r["ranking_sha256"], "actor": r["actor"], "released_at": r["released_at"]}
            for r in releases
        ],
    }


def _width(text: str) -> int:
    """Columns ``text`` takes in a terminal: CJK and full-width characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """A plain-text table whose columns line up with Chinese text in them."""
    cells = [[str(h) for h in headers], *[["—" if v is None else str(v) for v in r] for r in rows]]
    widths = [max(_width(r[i]) for r in cells) for i in range(len(headers))]

    def line(r: list[str]) -> str:
        return "  ".join(v + " " * (w - _width(v)) for v, w in zip(r, widths, strict=True)).rstrip()

    return "\n".join([line(cells[0]), "  ".join("-" * w for w in widths), *(line(r) for r in cells[1:])])


_SHEETS = {"accepted": "已接收 accepted", "rejected": "已退回 rejected", "superseded": "已被替换 superseded"}


def _when(value: Any) -> str:
    """A release time as the operator reads it: Beijing time, whether the status came as data or as JSON."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    return beijing_text(value) if isinstance(value, dt.datetime) else str(value or "")


def format_status(ctx: Any, status: JudgingStatus) -> str:
    """The status as readable tables, in Chinese with English beside it."""
    c = ctx.campaign
    stages = {s.key: f"{s.zh} {s.key}" for s in c.judging.scoring_stages}
    out = [f"{c.campaign.name_zh} · 评审状态 Judging status", ""]
    out += ["审查关口 Gates"]
    from kepu.judging.review import GATE_LABELS

    gate_rows = [
        [gate, GATE_LABELS.get(state, state), n]
        for gate, states in sorted(status["gates"].items())
        for state, n in sorted(states.items())
    ]
    out += [table(["关口 gate", "状态 state", "作品数 entries"], gate_rows) if gate_rows else "（无 none）", ""]
    out += [f"评委 Judges: {status['judges']}", "", "评审轮次 Rounds"]
    round_rows = [
        [
            stages.get(key, key),
            r["seed"],
            r["judges"],
            r["entries"],
            "，".join(f"{_SHEETS.get(k, k)} {n}" for k, n in sorted(r["sheets"].items())) or "—",
            "是 yes" if r["aggregated"] else "否 no",
        ]
        for key, r in status["rounds"].items()
    ]
    out += [
        table(
            ["轮次 round", "随机种子 seed", "评委 judges", "作品 entries", "评分表 sheets", "已汇总 aggregated"],
            round_rows,
        )
        if round_rows
        else "（尚未开始 not started）",
        "",
    ]
    sel = status["selection"]
    if sel is None:
        out.append("评选结果 Selection: 尚无 none yet")
    else:
        complete = "完整 complete" if sel["complete"] else "不完整 incomplete"
        out.append(f"评选结果 Selection: {complete}，排名校验值 ranking sha256 {str(sel['ranking_sha256'])[:12]}")
        out += [f"  - {n}" for n in sel.get("notes") or []]
    out += ["", "发布 Releases"]
    rel_rows = [
        [r["id"], r["actor"], _when(r["released_at"]), str(r["ranking_sha256"])[:12]] for r in status["releases"]
    ]
    out.append(
        table(["编号 id", "发布人 by", "时间（北京）at (Beijing)", "排名 ranking"], rel_rows)
        if rel_rows
        else "（尚未发布 none）"
    )
    return "\n".join(out)


def cmd_status(args: argparse.Namespace) -> int:
    ctx = _ctx()
    status = judging_status(ctx)
    if getattr(args, "json", False):
        _print(status)
    else:
        print(format_status(ctx, status))
    return 0


def format_links(ctx: Any, stage_key: str, judge_ids: list[str] | None = None) -> str:
    """The judges' links as a table: judge, e-mail, link, expiry in Beijing time, opened, submitted, mailed."""
    from kepu.judging.portal import issue_links, local_time, portal_status

    links = {link.judge_id: link for link in issue_links(ctx, stage_key, judge_ids=judge_ids)}
    stage = ctx.campaign.judging.stage(stage_key)
    rows = []
    for st in portal_status(ctx, stage_key):
        link = links.get(st.judge_id)
        if link is None:
            continue
        submitted = "—"
        if st.submitted_at:
            submitted = local_time(ctx, st.submitted_at) + (" 已锁定 locked" if st.locked else " 已重开 reopened")
        rows.append(
            [
                f"{st.judge_id} {st.judge_name}",
                st.email or "—",
                link.url,
                local_time(ctx, link.expires_at),
                local_time(ctx, st.opened_at) if st.opened_at else "—",
                f"{st.scored}/{st.total}",
                submitted,
                "是 yes" if st.mailed else "否 no",
            ]
        )
    head = f"{stage.zh} {stage.key} · 评委在线评审链接 judges' portal links（时间为北京时间 times in Beijing time）"
    return (
        head
        + "\n\n"
        + table(
            [
                "评委 judge",
                "邮箱 e-mail",
                "链接 link",
                "有效期至 expires",
                "首次打开 opened",
                "已评 scored",
                "已提交 submitted",
                "已发邮件 mailed",
            ],
            rows,
        )
    )


def cmd_links(args: argparse.Namespace) -> int:
    import getpass

    from kepu.errors import JudgingError
    from kepu.judging import portal
    from kepu.judging.steps import scoring_stage

    ctx = _ctx()
    stage = scoring_stage(ctx, args.stage)
    judges: list[str] | None = args.judge or None
    actor = (args.by or getpass.getuser()).strip()
    if (args.revoke or args.reopen) and not judges:
        raise JudgingError("撤销或重新开放须指定评委：--judge ID · name the judge(s) to revoke or reopen: --judge ID")
    for jid in judges or []:
        if args.revoke:
            portal.revoke(ctx, ctx.campaign.id, stage.key, jid, actor=actor)
            print(
                f"已作废 revoked: {jid}（新链接见下表，评分表须重新生成 · the new link is below; write the sheets again）"
            )
        if args.reopen:
            portal.reopen(ctx, ctx.campaign.id, stage.key, jid, actor=actor)
            print(f"已重新开放 reopened: {jid}")
    if args.mail:
        with portal.link_mailer(ctx) as mailer:
            sent = portal.mail_links(
                ctx, stage.key, mailer, judge_ids=judges, domain=getattr(mailer, "domain", "kepu.invalid")
            )
        print(
            f"邮件 mail: 已发送 sent {len(sent['sent'])} {' '.join(sent['sent'])}；已发过 already sent "
            f"{len(sent['skipped'])}；无邮箱 no address {len(sent['no_address'])} {' '.join(sent['no_address'])}；"
            f"失败 failed {len(sent['failed'])} {' '.join(sent['failed'])}"
        )
    print(format_links(ctx, stage.key, judges))
    return 0


def register(sub: Any) -> None:
    """Add ``kepu judging …`` to the ``kepu`` command's subparsers."""
    judging = sub.add_parser("judging", help="judging rounds: roster, decisions, assignment, sheets, ranking")
    j = judging.add_subparsers(dest="action", required=True)

    p = j.add_parser("roster", help="load the judges' roster (XLSX/CSV: name, unit, province, expertise)")
    p.add_argument("file", help="a local file or an object key in the store")
    p.set_defaults(func=cmd_roster)

    p = j.add_parser("decisions-sheet", help="write the decisions still to take as a workbook to fill in")
    p.add_argument("dest")
    p.set_defaults(func=cmd_decisions_sheet)

    p = j.add_parser("decisions", help="record the decisions of a filled decisions sheet")
    p.add_argument("file")
    p.set_defaults(func=cmd_decisions)

    p = j.add_parser("decide", help="record one decision at a gate (who, when, why)")
    p.add_argument("submission", help="submission id or package name")
    p.add_argument("--stage", required=True, help="formal_review, compliance, … (the campaign's gates)")
    p.add_argument("--decision", required=True, help="pass/通过 or fail/不通过")
    p.add_argument("--by", required=True, help="who decides")
    p.add_argument("--reason", required=True, help="why")
    p.set_defaults(func=cmd_decide)

    p = j.add_parser("assign", help="assign judges to a scoring round and write the score sheets")
    p.add_argument("--stage", required=True)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--roster", default=None, help="load this roster first")
    p.add_argument("--deadline", default=None, help="return deadline printed on the sheets (ISO date-time)")
    p.add_argument("--reassign", action="store_true", help="replace an assignment no score has used yet")
    p.set_defaults(func=cmd_assign)

    p = j.add_parser("ingest", help="upload returned sheets (if given) and take in every new one")
    p.add_argument("--stage", required=True)
    p.add_argument("files", nargs="*")
    p.set_defaults(func=cmd_ingest)

    p = j.add_parser("aggregate", help="rank a round, choose the awards, write the ranking workbook and report")
    p.add_argument("--stage", required=True)
    p.set_defaults(func=cmd_aggregate)

    p = j.add_parser("links", help="the judges' portal links of a round: list, revoke, reopen, mail")
    p.add_argument("--stage", required=True)
    p.add_argument("--judge", action="append", default=[], help="only this judge (repeat for more)")
    p.add_argument("--revoke", action="store_true", help="stop the judge's link now and issue a new one")
    p.add_argument("--reopen", action="store_true", help="let the judge change submitted scores again")
    p.add_argument("--mail", action="store_true", help="mail each judge their link (once per link)")
    p.add_argument("--by", default=None, help="who revokes or reopens (default: the login name)")
    p.set_defaults(func=cmd_links)

    p = j.add_parser("status", help="gates, rounds, sheets, selection and releases")
    p.add_argument("--json", action="store_true", help="print the status as JSON instead of tables")
    p.set_defaults(func=cmd_status)
