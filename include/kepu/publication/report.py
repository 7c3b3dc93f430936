"""Per-platform publication report, in Chinese with English beside: what each platform accepted, what it
refused and why, what is still to push, and which works were not published (no pledge, no publication copy,
contact data in a file, an unreadable cover). Written as XLSX for operators and JSON for scripts, under the campaign's exports.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

from kepu.storage import export_key

STATES: dict[str, tuple[str, str]] = {
    "accepted": ("已接收", "accepted"),
    "rejected": ("被拒绝", "rejected"),
    "failed": ("推送失败（可重试）", "failed, will be tried again"),
    "pending": ("推送中断（请核对）", "interrupted, check with the platform"),
    "to_push": ("待推送", "not pushed yet"),
    "dry_run": ("试运行：将推送", "dry run: would be pushed"),
    "no_connection": ("未配置平台连接", "no connection for this platform"),
    "no_pledge": ("未发布：无作者承诺", "not published: no author's pledge"),
    "no_rendition": ("未发布：无发布版本", "not published: no publication copy"),
    "contact_data": ("未发布：文件含联系方式", "not published: a file holds contact data"),
    "unreadable_cover": (
        "未发布：封面无法读取（M-UNREADABLE）",
        "not published: the cover cannot be read (M-UNREADABLE)",
    ),
}
COLUMNS: tuple[tuple[str, str], ...] = (
    ("submission_id", "作品编号 submission"),
    ("title", "作品名称 title"),
    ("unit", "单位 unit"),
    ("province", "省份 province"),
    ("state_zh", "状态 state"),
    ("state_en", "state (English)"),
    ("http_status", "HTTP 状态 status"),
    ("remote_id", "平台编号 platform id"),
    ("attempts", "尝试次数 tries"),
    ("updated_at", "时间 time (UTC)"),
    ("idempotency_key", "幂等键 idempotency key"),
    ("detail", "说明 detail"),
)


@dataclass(frozen=True)
class ReportRow:
    submission_id: str
    title: str
    unit: str | None
    province: str | None
    state: str
    http_status: int | None = None
    remote_id: str | None = None
    attempts: int = 0
    updated_at: str = ""
    idempotency_key: str = ""
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        zh, en = STATES[self.state]
        return {
            "submission_id": self.submission_id,
            "title": self.title,
            "unit": self.unit or "",
            "province": self.province or "",
            "state": self.state,
            "state_zh": zh,
            "state_en": en,
            "http_status": self.http_status,
            "remote_id": self.remote_id or "",
            "attempts": self.attempts,
            "updated_at": self.updated_at,
            "idempotency_key": self.idempotency_key,
            "detail": self.detail,
        }


def report_keys(campaign_id: str, platform_key: str) -> tuple[str, str]:
    return (
        export_key(campaign_id, f"publication-{platform_key}.xlsx"),
        export_key(campaign_id, f"publication-{platform_key}.json"),
    )


def summary(rows: list[ReportRow]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows:
        out[r.state] = out.get(r.state, 0) + 1
    return dict(sorted(out.items()))


def report_json(platform: dict[str, str], release_id: int, dry_run: bool, rows: list[ReportRow]) -> bytes:
    data = {
        "platform": platform,
        "release": release_id,
        "dry_run": dry_run,
        "summary": summary(rows),
        "summary_zh": {STATES[k][0]: v for k, v in summary(rows).items()},
        "works": [r.as_dict() for r in rows],
    }
    return (json.dumps(data, ensure_ascii=False, indent=2) + "\n").encode()


def report_xlsx(platform: dict[str, str], release_id: int, dry_run: bool, rows: list[ReportRow]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill

    from kepu.cells import neutralise_workbook, safe_row

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "推送 Pushes"
    title = f"{platform['zh']}（{platform['en']}）推送报告 · publication report — 第 {release_id} 次发布 release #{release_id}"
    ws.append([title + ("（试运行 dry run：未推送任何作品）" if dry_run else "")])
    ws["A1"].font = Font(bold=True, size=13)
    ws.append([f"{STATES[k][0]} {STATES[k][1]}: {v}" for k, v in summary(rows).items()])
    ws.append([])
    ws.append([header for _, header in COLUMNS])
    for cell in ws[4]:
        cell.font = Font(bold=True)
    refused = PatternFill("solid", fgColor="F8D7DA")
    for r in rows:
        d = r.as_dict()
        ws.append(safe_row(d[k] for k, _ in COLUMNS))
        if r.state not in ("accepted", "dry_run", "to_push"):
            for cell in ws[ws.max_row]:
                cell.fill = refused
    for col, width in zip("ABCDEFGHIJKL", (24, 30, 24, 10, 20, 24, 10, 18, 8, 22, 40, 50), strict=True):
        ws.column_dimensions[col].width = width
    ws.freeze_panes = "A5"
    buf = io.BytesIO()
    neutralise_workbook(wb)
    wb.save(buf)
    return buf.getvalue()
