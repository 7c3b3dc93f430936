"""The eligibility export: one row per submission with its verdict and finding codes.

Headers are Chinese with English beside them (operators read it); rows are sorted by the name the
package arrived under, so the same records always give the same file.
"""

from __future__ import annotations

import csv
import logging
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from kepu.campaign import Campaign
from kepu.cells import safe_row
from kepu.db.repository import Records
from kepu.findings import SEVERITY_ORDER
from kepu.storage import ObjectStore, export_key

log = logging.getLogger(__name__)

BEIJING = ZoneInfo("Asia/Shanghai")
VERDICT_ZH = {"pass": "通过", "review": "待人工复核", "fail": "不合格", None: "未完成"}

#: (key, header) in file order.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("source_name", "报送文件夹或压缩包 source"),
    ("submission_id", "编号 submission id"),
    ("kind", "类型 kind"),
    ("channel", "渠道 channel"),
    ("received_at", "接收时间 received (北京时间)"),
    ("province", "省份 province"),
    ("unit", "报送单位 unit"),
    ("title", "作品名称 title"),
    ("verdict", "结论 verdict"),
    ("verdict_zh", "结论（中文）"),
    ("codes", "问题代码 finding codes"),
    ("errors", "错误数 errors"),
    ("warnings", "警告数 warnings"),
    ("messages", "问题说明 findings"),
    ("publication", "发布版本 publication copy"),
)


def eligibility_rows(records: Records, campaign: Campaign) -> list[dict[str, Any]]:
    by_sub: dict[str, list[Any]] = defaultdict(list)
    for f in records.list_findings(campaign_id=campaign.id):
        by_sub[str(f.submission_id)].append(f)
    details = {r["id"]: r.get("details") or {} for r in records.campaign_rows(campaign.id)}
    rows = []
    for sub in sorted(records.list_submissions(campaign.id), key=lambda s: (s.source_name, s.id)):
        fs = sorted(by_sub.get(sub.id, []), key=lambda f: (SEVERITY_ORDER[f.severity], f.code))
        rows.append(
            {
                "source_name": sub.source_name,
                "submission_id": sub.id,
                "kind": sub.kind,
                "channel": sub.channel or "",
                "received_at": sub.received_at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")
                if sub.received_at
                else "",
                "province": sub.province or "",
                "unit": sub.unit or "",
                "title": sub.title or "",
                "verdict": sub.verdict or "",
                "verdict_zh": VERDICT_ZH.get(sub.verdict, ""),
                "codes": ";".join(sorted({f.code for f in fs})),
                "errors": sum(f.severity == "error" for f in fs),
                "warnings": sum(f.severity == "warning" for f in fs),
                "messages": "\n".join(f"[{f.code}] {f.message_zh} / {f.message_en}" for f in fs),
                "publication": publication_status(sub.kind, sub.verdict, details.get(sub.id, {}).get("rendition")),
            }
        )
    return rows


def publication_status(kind: str, verdict: str | None, rendition: dict[str, Any] | None) -> str:
    """What became of the entry's publication copy, in words an operator reads."""
    if kind != "video":
        return ""
    if verdict == "fail":
        return "未制作：作品不合格 none: the entry fails"
    if not rendition:
        return "尚未制作 not made yet"
    failed = rendition.get("failed")
    if isinstance(failed, dict):
        return f"{failed.get('zh', '制作失败')} / {failed.get('en', 'failed')}"
    if rendition.get("mode") == "remux":
        return "直接封装，未重新编码 remuxed, not re-encoded"
    reasons = "; ".join(rendition.get("reasons") or [])
    return f"重新编码 re-encoded ({reasons})"


def write_eligibility(
    rows: list[dict[str, Any]], store: ObjectStore, campaign: Campaign, *, scratch: Path, records: Records
) -> dict[str, str]:
    """Write the CSV (UTF-8 with BOM, so Excel shows Chinese), the workbook and the HTML report;
    return their URIs. Text from submissions is neutralised (:mod:`kepu.cells`): no live formula, no
    control character. Findings about the run as a whole (an unreadable summary sheet) are in the
    workbook and the report."""
    import json

    from kepu.intake.report import ReportData, quota_table, write_html, write_workbook

    scratch.mkdir(parents=True, exist_ok=True)
    csv_path = scratch / "eligibility.csv"
    with open(csv_path, "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([h for _, h in COLUMNS])
        for row in rows:
            writer.writerow(safe_row(row[k] for k, _ in COLUMNS))

    source_of = {r["submission_id"]: r["source_name"] for r in rows}
    findings = sorted(
        (
            {**f.__dict__, "source_name": source_of.get(str(f.submission_id), "")}
            for f in records.list_findings(campaign_id=campaign.id)
        ),
        key=lambda f: (f["source_name"], SEVERITY_ORDER[f["severity"]], f["code"], f.get("at_seconds") or 0),
    )
    excess = {f["submission_id"] for f in findings if f["code"] == "Q-QUOTA"}
    campaign_rows = [{**r, "submission_id": r["id"]} for r in records.campaign_rows(campaign.id)]
    pending_key = export_key(campaign.id, "pending-downloads.json")
    pending: list[dict[str, Any]] = []
    if store.exists(pending_key):
        with store.open_local(pending_key) as path:
            pending = [
                {**p, "reason": f"{p.get('reason_zh', '')} {p.get('reason_en', '')}".strip()}
                for p in json.loads(path.read_text(encoding="utf-8"))
            ]
    run_findings: list[dict[str, Any]] = []
    run_key = export_key(campaign.id, "run-findings.json")
    if store.exists(run_key):
        with store.open_local(run_key) as path:
            run_findings = list(json.loads(path.read_text(encoding="utf-8")).get("findings") or [])
    data = ReportData(
        campaign=campaign,
        eligibility=rows,
        columns=COLUMNS,
        findings=findings,
        quota_rows=quota_table(campaign, campaign_rows, excess),
        pending=pending,
        generated_at=datetime.now(UTC),
        run_findings=run_findings,
    )
    xlsx_path = write_workbook(data, scratch / "eligibility.xlsx")
    html_path = write_html(data, scratch / "eligibility-report.html")

    uris = {}
    for path, ctype in (
        (csv_path, "text/csv; charset=utf-8"),
        (xlsx_path, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (html_path, "text/html; charset=utf-8"),
    ):
        stored = store.put_file(export_key(campaign.id, path.name), path, content_type=ctype)
        uris["html" if path.suffix == ".html" else path.suffix.lstrip(".")] = stored.uri
    return uris
