"""``kepu certificates …`` and ``kepu publication …``: the operator's commands (the DAGs call the same steps).

kepu certificates issue [--notify]             issue, render and print what the latest release calls for
kepu certificates list [--json]                every certificate, valid or revoked
kepu certificates verify NUMBER                what the public verification page says
kepu certificates revoke NUMBER --by WHO --reason WHY
kepu certificates reissue NUMBER --by WHO --reason WHY    revoke and issue again under a new number
kepu certificates star ID --by WHO --reason WHY [--withdraw]   record 科普中国's 创作之星 title for a best work
kepu publication pledge ID --by WHO --reason WHY [--withdraw]   record a pledge signed on paper
kepu publication run [--dry-run] [--platform KEY …]             packages, catalog, gallery, pushes, reports
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def _ctx() -> Any:
    from kepu.context import open_context

    return open_context(migrate=True)


def _print(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def _submission(ctx: Any, text: str) -> str:
    from kepu.errors import AwardError

    if ctx.records.get_submission(text) is not None:
        return text
    matches = [str(s.id) for s in ctx.records.list_submissions(ctx.campaign.id) if s.source_name == text]
    if len(matches) != 1:
        raise AwardError(f"找不到作品 · no submission {text!r}")
    return matches[0]


def cmd_issue(args: argparse.Namespace) -> int:
    from kepu.certificates import steps

    ctx = _ctx()
    plan = steps.plan_certificates(ctx)
    steps.render_certificates(ctx, plan["to_render"])
    units = steps.write_unit_files(ctx)
    out: dict[str, Any] = {"issued": plan["issued"], "revoked": plan["revoked"], "valid": plan["valid"], **units}
    if args.notify:
        from kepu.publication import notify

        out["notifications"] = [notify.notify_batch(ctx, b) for b in notify.plan_notification_batches(ctx)]
    _print(out)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from kepu.texttable import format_table

    ctx = _ctx()
    rows = ctx.records.list_certificates(ctx.campaign.id)
    if args.json:
        _print(rows)
        return 0
    table = [
        (r["number"], r["award"], r["holder"], r["title"], "有效 valid" if r["status"] == "valid" else "已撤销 revoked")
        for r in rows
    ]
    print(format_table(["证书编号 number", "奖项 award", "获奖者 holder", "名称 title", "状态 status"], table))
    print(f"{len(rows)} 张证书 certificate(s)")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from kepu.certificates.numbers import normalise_number
    from kepu.certificates.verify import public_status, verification_url

    ctx = _ctx()
    number = normalise_number(args.number)
    status = public_status(ctx.records.engine, number)
    _print(
        {
            "number": number,
            "state": status.state,
            "award": status.award,
            "title": status.title,
            "holder": status.holder,
            "issued_at": status.issued_at,
            "revoked_at": status.revoked_at,
            "url": verification_url(ctx.settings.public_base_url, number),
        }
    )
    return 0 if status.state == "valid" else 1


def cmd_revoke(args: argparse.Namespace) -> int:
    from kepu.certificates import steps

    cert = steps.revoke(_ctx(), args.number, actor=args.by, reason=args.reason)
    print(f"已撤销 revoked: {cert.number}（{cert.revoked_by}：{cert.revoke_reason}）")
    return 0


def cmd_reissue(args: argparse.Namespace) -> int:
    from kepu.certificates import steps

    new = steps.reissue(_ctx(), args.number, actor=args.by, reason=args.reason)
    print(f"已补发 reissued: {args.number} → {new.number}（{new.award}，{new.holder}）")
    return 0


def cmd_star(args: argparse.Namespace) -> int:
    from kepu.certificates import steps

    ctx = _ctx()
    sid = _submission(ctx, args.submission)
    result = steps.record_star(ctx, sid, actor=args.by, reason=args.reason, value=not args.withdraw)
    print(f"已记录 recorded ({result}): {sid} 创作之星 Creation Star = {not args.withdraw}")
    print(
        "请运行 kepu certificates issue（或手动触发 kepu_certificates）颁发证书 · run `kepu certificates issue` or trigger "
        "kepu_certificates to issue the certificate"
    )
    return 0


def cmd_pledge(args: argparse.Namespace) -> int:
    ctx = _ctx()
    sid = _submission(ctx, args.submission)
    result = ctx.records.record_attestation(
        ctx.campaign.id, sid, "pledge", value=not args.withdraw, actor=args.by, reason=args.reason
    )
    print(f"已记录 recorded ({result}): {sid} 作者承诺 pledge = {not args.withdraw}")
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from kepu.publication import steps

    ctx = _ctx()
    plan = steps.plan_publication(ctx)
    for batch in plan["batches"]:
        steps.build_packages(ctx, batch)
    out: dict[str, Any] = {"catalog": steps.write_catalog(ctx), "pushes": []}
    failed = False
    for item in steps.plan_pushes(ctx, dry_run=args.dry_run, platforms=args.platform or None):
        try:
            out["pushes"].append(steps.push_works(ctx, item["platform"], item["batch"]))
        except Exception as exc:  # reported with the others, then the exit status says so
            failed = True
            print(f"kepu: {exc}", file=sys.stderr)
    out["reports"] = steps.write_reports(ctx, dry_run=args.dry_run, platforms=args.platform or None)
    _print(out)
    return 1 if failed else 0


def register(sub: Any) -> None:
    """Add ``kepu certificates …`` and ``kepu publication …`` to the ``kepu`` command's subparsers."""
    certs = sub.add_parser("certificates", help="certificates: issue, list, verify, revoke, reissue, 创作之星")
    c = certs.add_subparsers(dest="action", required=True)
    p = c.add_parser("issue", help="issue, render and print what the latest release calls for")
    p.add_argument("--notify", action="store_true", help="also e-mail the submitters their results")
    p.set_defaults(func=cmd_issue)
    p = c.add_parser("list", help="every certificate, valid or revoked")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)
    p = c.add_parser("verify", help="what the public verification page says of a number (exit 1 unless valid)")
    p.add_argument("number")
    p.set_defaults(func=cmd_verify)
    for name, func, text in (
        ("revoke", cmd_revoke, "revoke a certificate (the verification page says revoked)"),
        ("reissue", cmd_reissue, "revoke a certificate and issue it again under a new number"),
    ):
        p = c.add_parser(name, help=text)
        p.add_argument("number")
        p.add_argument("--by", required=True, help="who")
        p.add_argument("--reason", required=True, help="why")
        p.set_defaults(func=func)
    p = c.add_parser("star", help="record that 科普中国 gave a best work the 创作之星 title")
    p.add_argument("submission", help="submission id or package name")
    p.add_argument("--by", required=True)
    p.add_argument("--reason", required=True)
    p.add_argument("--withdraw", action="store_true", help="record that the title was not given / withdrawn")
    p.set_defaults(func=cmd_star)

    pub = sub.add_parser("publication", help="publication: pledges on paper, packages, catalog, platform pushes")
    q = pub.add_subparsers(dest="action", required=True)
    p = q.add_parser("pledge", help="record an author's pledge signed on paper (作者承诺)")
    p.add_argument("submission", help="submission id or package name")
    p.add_argument("--by", required=True)
    p.add_argument("--reason", required=True)
    p.add_argument("--withdraw", action="store_true", help="record that there is no valid pledge")
    p.set_defaults(func=cmd_pledge)
    p = q.add_parser("run", help="packages, catalog, gallery, pushes and reports, in this process")
    p.add_argument("--dry-run", action="store_true", help="write everything, push nothing")
    p.add_argument("--platform", action="append", help="only this platform key (repeatable)")
    p.set_defaults(func=cmd_publish)
