"""The eligibility workbook and the HTML report an operator reads after each intake run.

Workbook sheets: the eligibility list, the quota table per unit, the findings per submission and the
review checklist. The HTML report shows entries by province and channel, verdicts and the most
frequent finding codes as inline SVG charts, so it opens anywhere (also straight from the bucket)
without scripts or network. Every text that came from a submission is escaped.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from kepu.campaign import Campaign
from kepu.cells import clean_text, neutralise_workbook, safe_row
from kepu.clock import beijing_text

SHEET_ELIGIBILITY = "资格审查 Eligibility"
SHEET_QUOTAS = "名额 Quotas"
SHEET_FINDINGS = "问题明细 Findings"
SHEET_REVIEW = "人工复核 Review checklist"
SHEET_RUN = "运行问题 Run findings"
SHEETS = (SHEET_ELIGIBILITY, SHEET_QUOTAS, SHEET_FINDINGS, SHEET_REVIEW)
REVIEW_NOTE = (
    "打印核对清单，本表不会被读回：复核决定请填写“人工决定 Decisions”表（kepu judging decisions-sheet 生成，"
    "kepu judging decisions 读回）。 Printed checklist, never read back: record decisions in the Decisions "
    "sheet (made by `kepu judging decisions-sheet`, read back by `kepu judging decisions`)."
)

VERDICT_LABELS = {"pass": "通过 pass", "review": "待复核 review", "fail": "不合格 fail", "": "未完成 pending"}


@dataclass(frozen=True)
class ReportData:
    """What the reports show, gathered from the records by the caller."""

    campaign: Campaign
    eligibility: list[dict[str, Any]]  # rows of kepu.intake.export.eligibility_rows
    columns: Sequence[tuple[str, str]]  # (key, header) of the eligibility list
    findings: list[dict[str, Any]]  # source_name, submission_id, code, severity, message_zh, message_en, ...
    quota_rows: list[dict[str, Any]]  # entity, channel, kind, quota, received, kept, excess
    pending: list[dict[str, Any]]  # awaiting download: title, unit, url, extraction_code, reason
    generated_at: datetime
    #: Findings about the run as a whole: code, severity, subject, message_zh, message_en.
    run_findings: list[dict[str, Any]] = field(default_factory=list)


def quota_table(campaign: Campaign, rows: Iterable[Mapping[str, Any]], excess_ids: set[str]) -> list[dict[str, Any]]:
    """One row per (entity, channel, kind): the quota, what was received and what was kept."""
    groups: dict[tuple[str, str, str], list[str]] = {}
    for r in rows:
        key = (r.get("entity") or r.get("unit") or "", r.get("channel") or "", r.get("kind") or "video")
        groups.setdefault(key, []).append(str(r["submission_id"] if "submission_id" in r else r["id"]))
    out = []
    for (entity, channel, kind), ids in sorted(groups.items()):
        spec = campaign.channels.get(channel)
        quota = spec.quota.for_kind(kind) if spec and kind in ("video", "account") else None  # type: ignore[arg-type]
        excess = sum(1 for i in ids if i in excess_ids)
        out.append(
            {
                "entity": entity or "（未识别 unknown）",
                "channel": f"{spec.label_zh} {channel}" if spec else (channel or "（未知 unknown）"),
                "kind": campaign.kinds[kind].label_zh if kind in campaign.kinds else kind,
                "quota": quota if quota is not None else "",
                "received": len(ids),
                "kept": len(ids) - excess,
                "excess": excess,
            }
        )
    return out


def write_workbook(data: ReportData, path: Path) -> Path:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.worksheet.worksheet import Worksheet

    bold = Font(bold=True)
    fills = {
        "fail": PatternFill("solid", fgColor="F8D7DA"),
        "review": PatternFill("solid", fgColor="FFF3CD"),
        "pass": PatternFill("solid", fgColor="D1E7DD"),
    }

    def table(ws: Worksheet, headers: Sequence[str], rows: Iterable[Sequence[Any]], widths: Sequence[int]) -> None:
        ws.append(list(headers))
        for cell in ws[1]:
            cell.font = bold
        for row in rows:
            ws.append(safe_row(row))
        for i, w in enumerate(widths, start=1):
            ws.column_dimensions[ws.cell(row=1, column=i).column_letter].width = w
        ws.freeze_panes = "A2"
        if ws.max_row > 1:
            ws.auto_filter.ref = ws.dimensions
        for cells in ws.iter_rows(min_row=2):
            for c in cells:
                c.alignment = Alignment(wrap_text=True, vertical="top")

    wb = Workbook()
    ws = wb.active
    ws.title = SHEET_ELIGIBILITY
    keys = [k for k, _ in data.columns]
    widths = {"source_name": 44, "title": 28, "unit": 24, "messages": 70, "codes": 28}
    table(
        ws,
        [h for _, h in data.columns],
        ([r[k] for k in keys] for r in data.eligibility),
        [widths.get(k, 14) for k in keys],
    )
    verdict_col = keys.index("verdict") + 1
    for row in ws.iter_rows(min_row=2):
        fill = fills.get(str(row[verdict_col - 1].value))
        if fill:
            row[verdict_col - 1].fill = fill

    table(
        wb.create_sheet(SHEET_QUOTAS),
        ["报送主体 entity", "渠道 channel", "类型 kind", "名额 quota", "收到 received", "保留 kept", "超额 excess"],
        (
            [q["entity"], q["channel"], q["kind"], q["quota"], q["received"], q["kept"], q["excess"]]
            for q in data.quota_rows
        ),
        [36, 24, 12, 10, 12, 10, 10],
    )
    table(
        wb.create_sheet(SHEET_FINDINGS),
        [
            "报送包 source",
            "编号 submission id",
            "代码 code",
            "级别 severity",
            "说明 message",
            "Message",
            "测量值 value",
            "限值 limit",
            "位置（秒） at (s)",
        ],
        (
            [
                f["source_name"],
                f["submission_id"],
                f["code"],
                f["severity"],
                f["message_zh"],
                f["message_en"],
                f.get("value") or "",
                f.get("limit_value") or "",
                f.get("at_seconds") if f.get("at_seconds") is not None else "",
            ]
            for f in data.findings
        ),
        [40, 24, 18, 10, 50, 50, 14, 16, 10],
    )
    # A printed checklist only: nothing reads this sheet back. Decisions are recorded through the
    # decisions sheet (kepu judging decisions-sheet / decisions), which is read back.
    review_rows: list[list[Any]] = []
    for f in data.findings:
        if f["severity"] == "warning":
            review_rows.append([f["source_name"], f["submission_id"], f"{f['code']}：{f['message_zh']}", "□"])
    for r in data.eligibility:
        if r["verdict"] == "fail":
            continue
        for item in data.campaign.human_checklist:
            review_rows.append([r["source_name"], r["submission_id"], f"{item.zh}（{item.en}）", "□"])
    ws_review = wb.create_sheet(SHEET_REVIEW)
    table(
        ws_review, ["报送包 source", "编号 submission id", "复核事项 item", "已看 seen"], review_rows, [40, 24, 70, 10]
    )
    ws_review.insert_rows(1)
    ws_review["A1"] = REVIEW_NOTE
    ws_review["A1"].font = bold
    ws_review["A1"].alignment = Alignment(wrap_text=True, vertical="top")
    ws_review.row_dimensions[1].height = 48
    ws_review.merge_cells("A1:D1")
    ws_review.freeze_panes = "A3"
    ws_review.auto_filter.ref = f"A2:D{ws_review.max_row}" if review_rows else None
    if data.pending:
        table(
            wb.create_sheet("待下载 Awaiting download"),
            ["作品 title", "单位 unit", "链接 link", "提取码 code", "原因 reason"],
            (
                [
                    p.get("title", ""),
                    p.get("unit", ""),
                    p.get("url", ""),
                    p.get("extraction_code", ""),
                    p.get("reason", ""),
                ]
                for p in data.pending
            ),
            [30, 24, 50, 10, 30],
        )
    if data.run_findings:
        table(
            wb.create_sheet(SHEET_RUN),
            ["代码 code", "级别 severity", "对象 subject", "说明 message", "Message"],
            (
                [
                    f.get("code", ""),
                    f.get("severity", ""),
                    f.get("subject", ""),
                    f.get("message_zh", ""),
                    f.get("message_en", ""),
                ]
                for f in data.run_findings
            ),
            [16, 10, 30, 60, 60],
        )
    neutralise_workbook(wb)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


# --- HTML ------------------------------------------------------------------------------------------


#: Bar colours of the verdicts, the same as their table cells but strong enough for a bar: fail red, review
#: amber, pass green, pending grey.
VERDICT_COLOURS = {"fail": "#c0392b", "review": "#d4a017", "pass": "#2e7d32", "": "#9e9e9e", "pending": "#9e9e9e"}


def verdict_chart(counts: Sequence[tuple[str | None, int]], labels: Mapping[str, str]) -> str:
    """The verdicts chart: ``counts`` by verdict key (pass/review/fail/None), each bar in its verdict's colour."""
    keys = [v or "" for v, _ in counts]
    return bar_chart(
        "结论 Verdicts",
        [(labels.get(k, k), n) for k, (_, n) in zip(keys, counts, strict=True)],
        colours=[VERDICT_COLOURS.get(k, "#3b6ea5") for k in keys],
    )


def bar_chart(
    title: str, counts: Sequence[tuple[str, int]], colour: str = "#3b6ea5", *, colours: Sequence[str] | None = None
) -> str:
    if not counts:
        return f"<section><h2>{html.escape(title)}</h2><p>（无 none）</p></section>"
    width, bar_h, label_w = 640, 22, 220
    top = max(n for _, n in counts) or 1
    rows = []
    for i, (label, n) in enumerate(counts):
        y = i * (bar_h + 6)
        w = max(2, int((width - label_w - 60) * n / top))
        rows.append(
            f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end">{html.escape(clean_text(label))}</text>'
            f'<rect x="{label_w}" y="{y}" width="{w}" height="{bar_h}" fill="{colours[i] if colours else colour}"></rect>'
            f'<text x="{label_w + w + 6}" y="{y + 16}">{n}</text>'
        )
    height = len(counts) * (bar_h + 6)
    return (
        f"<section><h2>{html.escape(title)}</h2>"
        f'<svg role="img" aria-label="{html.escape(title)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-size="13">{"".join(rows)}</svg></section>'
    )


def render_html(data: ReportData) -> str:
    c = data.campaign
    rows = data.eligibility
    by_province = Counter(r["province"] or "（未识别）" for r in rows).most_common()
    channel_labels = {k: f"{v.label_zh} {k}" for k, v in c.channels.items()}
    by_channel = Counter(channel_labels.get(r.get("channel") or "", "（未知 unknown）") for r in rows).most_common()
    verdicts = Counter(r["verdict"] or "" for r in rows).most_common()
    codes = Counter(f["code"] for f in data.findings).most_common(15)

    def esc(value: Any) -> str:
        return html.escape(clean_text(str(value)))

    body_rows = "".join(
        "<tr>"
        f"<td>{esc(r['source_name'])}</td><td>{esc(r['province'])}</td><td>{esc(r['unit'])}</td>"
        f'<td>{esc(r["title"])}</td><td class="v-{esc(r["verdict"] or "pending")}">'
        f"{esc(VERDICT_LABELS.get(r['verdict'] or '', r['verdict']))}</td><td>{esc(r['codes'])}</td>"
        "</tr>"
        for r in rows
    )
    pending = ""
    if data.pending:
        items = "".join(
            f"<li>{esc(p.get('title', ''))} — {esc(p.get('unit', ''))}：{esc(p.get('url', ''))}"
            f"（提取码 {esc(p.get('extraction_code') or '—')}）</li>"
            for p in data.pending
        )
        pending = f"<section><h2>待下载 Awaiting download（{len(data.pending)}）</h2><ul>{items}</ul></section>"
    run_problems = ""
    if data.run_findings:
        items = "".join(
            f'<li class="run-{esc(f.get("severity", ""))}">[{esc(f.get("code", ""))}] {esc(f.get("message_zh", ""))}'
            f"<br>{esc(f.get('message_en', ''))}</li>"
            for f in data.run_findings
        )
        run_problems = f"<section><h2>运行问题 Run findings（{len(data.run_findings)}）</h2><ul>{items}</ul></section>"
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>{esc(c.campaign.name_zh)} · 资格审查报告 Eligibility report</title>
<style>
body {{ font-family: "Noto Sans CJK SC", "Microsoft YaHei", sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; width: 100%; font-size: 13px; }}
td, th {{ border: 1px solid #ccc; padding: 4px 6px; text-align: left; vertical-align: top; }}
th {{ background: #f0f0f0; }} .v-fail {{ background: #f8d7da; }} .v-review {{ background: #fff3cd; }}
.v-pass {{ background: #d1e7dd; }} section {{ margin: 1.5em 0; }} .meta {{ color: #666; }}
</style></head><body>
<h1>{esc(c.campaign.name_zh)} · 资格审查报告</h1>
<p class="meta">{esc(c.campaign.name_en)} — eligibility report · {esc(c.campaign.notice)} ·
生成于 generated {beijing_text(data.generated_at)} 北京时间 Beijing time · 共 {len(rows)} 件 submissions</p>
{run_problems}
{verdict_chart(verdicts, VERDICT_LABELS)}
{bar_chart("按省份 By province", by_province)}
{bar_chart("按渠道 By channel", by_channel, "#8a5fb0")}
{bar_chart("常见问题代码 Top finding codes", codes, "#c0392b")}
{pending}
<section><h2>作品清单 Submissions</h2>
<table><thead><tr><th>报送包 source</th><th>省份 province</th><th>单位 unit</th><th>作品名称 title</th>
<th>结论 verdict</th><th>问题代码 codes</th></tr></thead><tbody>{body_rows}</tbody></table></section>
</body></html>
"""


def write_html(data: ReportData, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(data), encoding="utf-8")
    return path
