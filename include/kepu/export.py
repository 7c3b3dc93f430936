"""The eligibility export: one row per submission with its verdict and finding codes.

Headers are Chinese with English beside them (operators read it); rows are sorted by the name the
package arrived under, so the same records always give the same file.
"""

from __future__ import annotations

import csv
import logging
from collections import defaultdict
from pathlib import Path
from typing import Any

from kepu.campaign import Campaign
from kepu.db.repository import Records
from kepu.findings import SEVERITY_ORDER
from kepu.storage import ObjectStore, export_key

log = logging.getLogger(__name__)

VERDICT_ZH = {"pass": "通过", "review": "待人工复核", "fail": "不合格", None: "未完成"}

#: (key, header) in file order.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("source_name", "报送文件夹或压缩包 source"),
    ("submission_id", "编号 submission id"),
    ("kind", "类型 kind"),
    ("province", "省份 province"),
    ("unit", "报送单位 unit"),
    ("title", "作品名称 title"),
    ("verdict", "结论 verdict"),
    ("verdict_zh", "结论（中文）"),
    ("codes", "问题代码 finding codes"),
    ("errors", "错误数 errors"),
    ("warnings", "警告数 warnings"),
    ("messages", "问题说明 findings"),
)


def eligibility_rows(records: Records, campaign: Campaign) -> list[dict[str, Any]]:
    by_sub: dict[str, list[Any]] = defaultdict(list)
    for f in records.list_findings(campaign_id=campaign.id):
        by_sub[str(f.submission_id)].append(f)
    rows = []
    for sub in sorted(records.list_submissions(campaign.id), key=lambda s: (s.source_name, s.id)):
        fs = sorted(by_sub.get(sub.id, []), key=lambda f: (SEVERITY_ORDER[f.severity], f.code))
        rows.append(
            {
                "source_name": sub.source_name,
                "submission_id": sub.id,
                "kind": sub.kind,
                "province": sub.province or "",
                "unit": sub.unit or "",
                "title": sub.title or "",
                "verdict": sub.verdict or "",
                "verdict_zh": VERDICT_ZH.get(sub.verdict, ""),
                "codes": ";".join(sorted({f.code for f in fs})),
                "errors": sum(f.severity == "error" for f in fs),
                "warnings": sum(f.severity == "warning" for f in fs),
                "messages": "\n".join(f"[{f.code}] {f.message_zh} / {f.message_en}" for f in fs),
            }
        )
    return rows


def write_eligibility(
    rows: list[dict[str, Any]], store: ObjectStore, campaign: Campaign, *, scratch: Path
) -> dict[str, str]:
    """Write CSV (UTF-8 with BOM, so Excel shows Chinese) and XLSX; return their URIs."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    scratch.mkdir(parents=True, exist_ok=True)
    csv_path = scratch / "eligibility.csv"
    with open(csv_path, "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([h for _, h in COLUMNS])
        for row in rows:
            writer.writerow([row[k] for k, _ in COLUMNS])

    wb = Workbook()
    ws = wb.active
    ws.title = "资格审查 eligibility"
    ws.append([h for _, h in COLUMNS])
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for row in rows:
        ws.append([row[k] for k, _ in COLUMNS])
    widths = {"source_name": 48, "title": 30, "unit": 24, "messages": 80, "codes": 30}
    for i, (key, _) in enumerate(COLUMNS, start=1):
        ws.column_dimensions[ws.cell(row=1, column=i).column_letter].width = widths.get(key, 14)
    for cells in ws.iter_rows(min_row=2):
        cells[-1].alignment = Alignment(wrap_text=True, vertical="top")
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = ws.dimensions
    xlsx_path = scratch / "eligibility.xlsx"
    wb.save(xlsx_path)

    uris = {}
    for path, ctype in (
        (csv_path, "text/csv; charset=utf-8"),
        (xlsx_path, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ):
        stored = store.put_file(export_key(campaign.id, path.name), path, content_type=ctype)
        uris[path.suffix.lstrip(".")] = stored.uri
    return uris
