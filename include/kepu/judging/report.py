"""The ranking workbook and the judging report an operator reads (Chinese, English beside).

The workbook (``judging-ranking.xlsx``) holds the awards, each round's ranking per kind, the entries near
each cut-off, the judges' severity, the agreement, every score sheet with its status and reasons, and the
checksums of everything it was made from. It carries no time stamp: the same sheets always give the same
bytes.

The HTML report (``judging-report.html``) shows, per round, each judge's score distribution before and
after normalisation, the agreement, the judges' severity and the scores around each cut-off as inline SVG
charts (no script, no network: it opens anywhere, also straight from the bucket), then the rejected sheets
with their reasons and the rankings. Every text that came from a submission or a judge is escaped.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kepu.campaign import Campaign, Stage
from kepu.db.judging_records import AwardRow, JudgeRecord, RankingRow, SheetRecord
from kepu.judging.review import Entry
from kepu.judging.select import AWARD_LABELS

STATUS_LABELS = {
    "ranked": "已排名 ranked",
    "insufficient": "评分不足 too few scores",
    "withdrawn": "已不符合参评条件 no longer eligible",
    "accepted": "已采用 accepted",
    "rejected": "退回 rejected",
    "superseded": "已被更正 superseded",
}
SHEET_AWARDS = "获奖名单 Awards"
SHEET_BANDS = "临界复核 Cut-off band"
SHEET_JUDGES = "评委 Judges"
SHEET_AGREEMENT = "一致性 Agreement"
SHEET_SHEETS = "评分表 Score sheets"
SHEET_ABOUT = "说明 About"


@dataclass(frozen=True)
class StageReport:
    stage: Stage
    ranking: list[RankingRow]
    aggregate: Mapping[str, Any]
    sheets: list[SheetRecord]
    missing_judges: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class JudgingReport:
    campaign: Campaign
    stages: list[StageReport]
    entries: Mapping[str, Entry]
    judges: Mapping[str, JudgeRecord]
    awards: list[AwardRow]
    notes: list[str]
    complete: bool
    ranking_sha256: str
    inputs: Mapping[str, Any]
    release: Mapping[str, Any] | None = None


def _r(x: Any, digits: int = 4) -> Any:
    """A number rounded for a cell; None as an empty cell."""
    if x is None:
        return ""
    return round(float(x), digits) if isinstance(x, int | float) else x


def _kind_label(campaign: Campaign, kind: str) -> str:
    info = campaign.kinds.get(kind)  # type: ignore[call-overload]
    return f"{info.label_zh} {kind}" if info else kind


def _award_label(award: str) -> str:
    zh, en = AWARD_LABELS.get(award, (award, award))
    return f"{zh} {en}"


# --- workbook -------------------------------------------------------------------------------------------


def ranking_workbook(report: JudgingReport) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import PatternFill

    from kepu.judging.xlsx import workbook_bytes, write_table

    c = report.campaign
    e = report.entries
    wb = Workbook()
    ws = wb.active
    ws.title = SHEET_AWARDS
    write_table(
        ws,
        [
            "奖项 award",
            "名次 rank",
            "编号 submission id",
            "作品名称 title",
            "单位 unit",
            "省份 province",
            "类型 kind",
            "得分 score",
            "评审阶段 stage",
        ],
        (
            [
                _award_label(a.award),
                a.rank,
                a.submission_id,
                _title(e, a.submission_id),
                _get(e, a.submission_id, "unit"),
                _get(e, a.submission_id, "province"),
                _kind_label(c, _get(e, a.submission_id, "kind")),
                _r(a.score),
                a.stage,
            ]
            for a in report.awards
        ),
        [30, 8, 26, 30, 26, 14, 16, 10, 14],
    )
    near = {(b["submission_id"], s.stage.key) for s in report.stages for b in s.aggregate.get("bands", [])}
    amber = PatternFill("solid", fgColor="FFF3CD")
    for s in report.stages:
        for kind in s.stage.kinds:
            rows = [r for r in s.ranking if r.kind == kind]
            if not rows:
                continue
            title = f"{s.stage.zh}·{c.kinds[kind].label_zh} {s.stage.key}"[:31]
            sheet = wb.create_sheet(title)
            tied = set(s.aggregate.get("tied", []))
            write_table(
                sheet,
                [
                    "名次 rank",
                    "编号 submission id",
                    "作品名称 title",
                    "单位 unit",
                    "省份 province",
                    "得分（规范化）score (normalised)",
                    "原始均分 raw mean",
                    "中位数 median",
                    "评分数 scores",
                    "状态 status",
                    "并列 tied",
                    "临界 near a cut-off",
                ],
                (
                    [
                        r.rank if r.rank is not None else "",
                        r.submission_id,
                        _title(e, r.submission_id),
                        _get(e, r.submission_id, "unit"),
                        _get(e, r.submission_id, "province"),
                        _r(r.score),
                        _r(r.raw_mean),
                        _r(r.median),
                        r.n_scores,
                        STATUS_LABELS.get(r.status, r.status),
                        "是 yes" if r.submission_id in tied else "",
                        "是 yes" if (r.submission_id, s.stage.key) in near else "",
                    ]
                    for r in rows
                ),
                [8, 26, 30, 26, 14, 14, 12, 10, 8, 16, 8, 10],
            )
            for row in sheet.iter_rows(min_row=2):
                if row[11].value:
                    for cell in row:
                        cell.fill = amber
    write_table(
        wb.create_sheet(SHEET_BANDS),
        [
            "阶段 stage",
            "奖项 award",
            "名额线 cut-off rank",
            "名次 rank",
            "编号 submission id",
            "作品名称 title",
            "得分 score",
            "与名额线之差 gap",
            "线内 inside",
        ],
        (
            [
                s.stage.zh,
                _award_label(b["award"]),
                b["cutoff"],
                b["rank"],
                b["submission_id"],
                _title(e, b["submission_id"]),
                _r(b["score"]),
                _r(b["gap"]),
                "是 yes" if b["inside"] else "否 no",
            ]
            for s in report.stages
            for b in s.aggregate.get("bands", [])
        ),
        [10, 30, 12, 8, 26, 30, 10, 14, 10],
    )
    write_table(
        wb.create_sheet(SHEET_JUDGES),
        [
            "阶段 stage",
            "类型 kind",
            "评委编号 judge id",
            "评委 judge",
            "单位 unit",
            "评分数 scores",
            "原始均分 raw mean",
            "原始标准差 raw SD",
            "宽严度 severity (+ lenient / − harsh)",
            "偏离度 deviation (RMS)",
            "与他人一致 correlation",
        ],
        (
            [
                s.stage.zh,
                _kind_label(c, j["kind"]),
                j["judge_id"],
                _judge(report.judges, j["judge_id"]).name,
                _judge(report.judges, j["judge_id"]).unit,
                j["n"],
                _r(j["raw_mean"]),
                _r(j["raw_sd"]),
                _r(j["severity"]),
                _r(j["deviation"]),
                _r(j["correlation"]),
            ]
            for s in report.stages
            for j in s.aggregate.get("judges", [])
        ),
        [10, 16, 14, 12, 26, 8, 12, 12, 18, 14, 14],
    )
    write_table(
        wb.create_sheet(SHEET_AGREEMENT),
        [
            "阶段 stage",
            "类型 kind",
            "α 原始分 alpha (raw)",
            "α 规范化后 alpha (normalised)",
            "评委 judges",
            "作品 entries",
            "可配对作品 pairable entries",
            "评分数 scores",
        ],
        (
            [
                s.stage.zh,
                _kind_label(c, kind),
                _r(a["alpha_raw"]),
                _r(a["alpha_normalised"]),
                a["judges"],
                a["entries"],
                a["pairable_entries"],
                a["scores"],
            ]
            for s in report.stages
            for kind, a in sorted(s.aggregate.get("agreement", {}).items())
        ),
        [10, 16, 16, 20, 10, 10, 16, 10],
    )
    write_table(
        wb.create_sheet(SHEET_SHEETS),
        ["阶段 stage", "评委编号 judge id", "文件 object", "SHA-256", "状态 status", "原因 reasons", "Reasons"],
        (
            [
                s.stage.zh,
                sh.judge_id or "",
                sh.object_key,
                sh.sha256,
                STATUS_LABELS.get(sh.status, sh.status),
                "\n".join(p["zh"] for p in sh.problems[:50]),
                "\n".join(p["en"] for p in sh.problems[:50]),
            ]
            for s in report.stages
            for sh in s.sheets
        ),
        [10, 14, 50, 20, 14, 60, 60],
    )
    about: list[list[Any]] = [
        ["活动 campaign", f"{c.campaign.name_zh} ({c.id})"],
        ["排名校验和 ranking checksum (SHA-256)", report.ranking_sha256],
        ["结果完整 complete", "是 yes" if report.complete else "否 no"],
        *(["提示 note", n] for n in report.notes),
        ["活动文件 campaign file (SHA-256)", report.inputs.get("campaign_sha256", "")],
        ["评委名单 roster (SHA-256)", report.inputs.get("roster_sha256", "")],
    ]
    for stage, info in sorted((report.inputs.get("rounds") or {}).items()):
        about.append([f"{stage} 种子 seed", info.get("seed")])
        about.append([f"{stage} 分配 assignment (SHA-256)", info.get("assignment_sha256")])
        for judge, sha in sorted((info.get("sheets") or {}).items()):
            about.append([f"{stage} 评分表 sheet {judge}", sha])
    write_table(wb.create_sheet(SHEET_ABOUT), ["项目 item", "值 value"], about, [44, 80])
    return workbook_bytes(wb, c.deadline.at)


def _get(entries: Mapping[str, Entry], sid: str, attr: str) -> str:
    entry = entries.get(sid)
    return str(getattr(entry, attr) or "") if entry is not None else ""


def _title(entries: Mapping[str, Entry], sid: str) -> str:
    entry = entries.get(sid)
    return (entry.title or entry.source_name) if entry is not None else ""


def _judge(judges: Mapping[str, JudgeRecord], jid: str) -> JudgeRecord:
    return judges.get(jid) or JudgeRecord(jid, jid, "", "")


# --- HTML ------------------------------------------------------------------------------------------------

_PALETTE = ("#3b6ea5", "#c0392b")


def _box_chart(
    title: str, boxes: Sequence[tuple[str, Sequence[float] | None, Sequence[float] | None]], lo: float, hi: float
) -> str:
    """Per judge, two box plots (raw above, normalised below) on the rubric's scale."""
    if not boxes:
        return ""
    width, label_w, row_h = 720, 150, 34
    plot_w = width - label_w - 20
    height = len(boxes) * row_h + 40

    def x(v: float) -> float:
        return label_w + (v - lo) / ((hi - lo) or 1) * plot_w

    parts = []
    for i, (label, raw, norm) in enumerate(boxes):
        y = 10 + i * row_h
        parts.append(f'<text x="{label_w - 8}" y="{y + 17}" text-anchor="end">{html.escape(label)}</text>')
        for k, (stats, colour) in enumerate(((raw, _PALETTE[0]), (norm, _PALETTE[1]))):
            if not stats:
                continue
            mn, q1, med, q3, mx = (float(v) for v in stats)
            cy = y + 6 + k * 12
            parts.append(
                f'<line x1="{x(mn):.1f}" x2="{x(mx):.1f}" y1="{cy + 4}" y2="{cy + 4}" stroke="{colour}"/>'
                f'<rect x="{x(q1):.1f}" y="{cy}" width="{max(1.0, x(q3) - x(q1)):.1f}" height="8" fill="{colour}" '
                f'fill-opacity="0.35" stroke="{colour}"/>'
                f'<line x1="{x(med):.1f}" x2="{x(med):.1f}" y1="{cy}" y2="{cy + 8}" stroke="{colour}" stroke-width="2"/>'
            )
    axis_y = 10 + len(boxes) * row_h
    ticks = "".join(
        f'<line x1="{x(v):.1f}" x2="{x(v):.1f}" y1="10" y2="{axis_y}" stroke="#ddd"/>'
        f'<text x="{x(v):.1f}" y="{axis_y + 14}" text-anchor="middle">{v:g}</text>'
        for v in _ticks(lo, hi)
    )
    legend = (
        f'<span style="color:{_PALETTE[0]}">■ 原始分 raw</span> '
        f'<span style="color:{_PALETTE[1]}">■ 规范化后 normalised</span>'
    )
    return (
        f"<section><h3>{html.escape(title)}</h3><p class=meta>{legend}</p>"
        f'<svg role="img" aria-label="{html.escape(title)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-size="12">{ticks}{"".join(parts)}</svg></section>'
    )


def _ticks(lo: float, hi: float) -> list[float]:
    step = (hi - lo) / 5 or 1
    return [round(lo + i * step, 2) for i in range(6)]


def _bars(title: str, rows: Sequence[tuple[str, float | None]], *, lo: float, hi: float, fmt: str = "{:.3f}") -> str:
    """Horizontal bars from zero (negative to the left), for alpha and severity."""
    shown = [(label, v) for label, v in rows if v is not None]
    if not shown:
        return f"<section><h3>{html.escape(title)}</h3><p>（无 none）</p></section>"
    width, label_w, bar_h = 720, 200, 20
    plot_w = width - label_w - 60
    height = len(shown) * (bar_h + 6) + 24

    def x(v: float) -> float:
        return label_w + (min(max(v, lo), hi) - lo) / ((hi - lo) or 1) * plot_w

    zero = x(0.0)
    parts = [f'<line x1="{zero:.1f}" x2="{zero:.1f}" y1="0" y2="{height - 20}" stroke="#888"/>']
    for i, (label, v) in enumerate(shown):
        assert v is not None
        y = i * (bar_h + 6)
        left, right = sorted((zero, x(v)))
        colour = _PALETTE[1] if v < 0 else _PALETTE[0]
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end">{html.escape(label)}</text>'
            f'<rect x="{left:.1f}" y="{y}" width="{max(1.0, right - left):.1f}" height="{bar_h}" fill="{colour}"/>'
            f'<text x="{max(x(v), zero) + 4:.1f}" y="{y + 15}">{fmt.format(v)}</text>'
        )
    return (
        f"<section><h3>{html.escape(title)}</h3>"
        f'<svg role="img" aria-label="{html.escape(title)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-size="12">{"".join(parts)}</svg></section>'
    )


def _band_chart(title: str, points: Sequence[Mapping[str, Any]], cutoff: int) -> str:
    """Scores by rank around a cut-off: inside the award in blue, outside in red, the line between."""
    if not points:
        return ""
    width, height, pad = 720, 220, 40
    ranks = [int(p["rank"]) for p in points]
    scores = [float(p["score"]) for p in points]
    r0, r1 = min(ranks), max(ranks)
    s0, s1 = min(scores), max(scores)
    s0, s1 = (s0 - 0.05, s1 + 0.05) if s1 - s0 < 1e-9 else (s0, s1)

    def x(r: float) -> float:
        return pad + (r - r0) / ((r1 - r0) or 1) * (width - 2 * pad)

    def y(s: float) -> float:
        return height - pad - (s - s0) / (s1 - s0) * (height - 2 * pad)

    line_x = x(cutoff + 0.5)
    dots = "".join(
        f'<circle cx="{x(int(p["rank"])):.1f}" cy="{y(float(p["score"])):.1f}" r="5" '
        f'fill="{_PALETTE[0] if p["inside"] else _PALETTE[1]}"><title>{html.escape(str(p["submission_id"]))} '
        f"#{int(p['rank'])} {float(p['score']):.3f}</title></circle>"
        f'<text x="{x(int(p["rank"])):.1f}" y="{height - pad + 16}" text-anchor="middle">{int(p["rank"])}</text>'
        for p in points
    )
    return (
        f"<section><h3>{html.escape(title)}</h3>"
        f'<svg role="img" aria-label="{html.escape(title)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-size="12">'
        f'<line x1="{line_x:.1f}" x2="{line_x:.1f}" y1="{pad - 10}" y2="{height - pad}" stroke="#555" '
        f'stroke-dasharray="4 3"/><text x="{line_x + 4:.1f}" y="{pad - 14}">名额线 cut-off {cutoff}</text>'
        f'<text x="4" y="{y(s1) + 4:.1f}">{s1:.2f}</text><text x="4" y="{y(s0) + 4:.1f}">{s0:.2f}</text>'
        f"{dots}</svg></section>"
    )


def render_html(report: JudgingReport) -> str:
    c = report.campaign
    esc = html.escape
    e = report.entries
    body: list[str] = []
    banner_class = "ok" if report.complete else "warn"
    banner = (
        "结果完整，可以发布 · the results are complete and can be released"
        if report.complete
        else "结果尚不完整，不能发布 · the results are incomplete and cannot be released yet"
    )
    body.append(f'<p class="{banner_class}">{esc(banner)}</p>')
    if report.notes:
        body.append("<ul>" + "".join(f"<li>{esc(n)}</li>" for n in report.notes) + "</ul>")
    if report.release:
        rel = report.release
        body.append(
            f'<p class="meta">已发布 released: 第 {rel["id"]} 次 release #{rel["id"]} · {esc(str(rel["released_at"]))} · '
            f"{esc(rel['actor'])} · 排名校验和 {esc(rel['ranking_sha256'][:16])}…"
            f"{'（与当前排名一致 matches the current ranking）' if rel['ranking_sha256'] == report.ranking_sha256 else '（当前排名已变化 the ranking has changed since）'}</p>"
        )
    rows = "".join(
        f"<tr><td>{esc(_award_label(a.award))}</td><td>{a.rank}</td><td>{esc(a.submission_id)}</td>"
        f"<td>{esc(_title(e, a.submission_id))}</td><td>{esc(_get(e, a.submission_id, 'unit'))}</td>"
        f"<td>{esc(_get(e, a.submission_id, 'province'))}</td><td>{a.score:.3f}</td></tr>"
        for a in report.awards
    )
    body.append(
        f"<section><h2>获奖名单 Awards（{len(report.awards)}）</h2><table><thead><tr><th>奖项 award</th><th>名次 rank</th>"
        "<th>编号 id</th><th>作品名称 title</th><th>单位 unit</th><th>省份 province</th><th>得分 score</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></section>"
    )
    for s in report.stages:
        body.append(_stage_html(report, s))
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>{esc(c.campaign.name_zh)} · 评审报告 Judging report</title>
<style>
body {{ font-family: "Noto Sans CJK SC", "Microsoft YaHei", sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; width: 100%; font-size: 13px; }}
td, th {{ border: 1px solid #ccc; padding: 4px 6px; text-align: left; vertical-align: top; }}
th {{ background: #f0f0f0; }} section {{ margin: 1.5em 0; }} .meta {{ color: #666; }}
.ok {{ background: #d1e7dd; padding: 6px; }} .warn {{ background: #fff3cd; padding: 6px; }}
.rejected {{ background: #f8d7da; }} .near {{ background: #fff3cd; }}
</style></head><body>
<h1>{esc(c.campaign.name_zh)} · 评审报告</h1>
<p class="meta">{esc(c.campaign.name_en)} — judging report · {esc(c.campaign.notice)} ·
排名校验和 ranking checksum {esc(report.ranking_sha256)}</p>
{"".join(body)}
</body></html>
"""


def _stage_html(report: JudgingReport, s: StageReport) -> str:
    c = report.campaign
    esc = html.escape
    agg = s.aggregate
    out = [f"<h2>{esc(s.stage.zh)} {esc(s.stage.en)}</h2>"]
    for note in agg.get("notes", []):
        out.append(f'<p class="warn">{esc(note)}</p>')
    ranges = agg.get("ranges", {})
    for kind in s.stage.kinds:
        boxes = [
            (f"{j['judge_id']} {_judge(report.judges, j['judge_id']).name}", j.get("box_raw"), j.get("box_normalised"))
            for j in agg.get("judges", [])
            if j["kind"] == kind
        ]
        lo, hi = ranges.get(kind, (0, 10))
        out.append(
            _box_chart(
                f"{c.kinds[kind].label_zh}：各评委得分分布（规范化前后）· score distribution per judge, "
                f"before and after normalisation",
                boxes,
                lo,
                hi,
            )
        )
        sev = [
            (f"{j['judge_id']} {_judge(report.judges, j['judge_id']).name}", j.get("severity"))
            for j in agg.get("judges", [])
            if j["kind"] == kind
        ]
        span = max([abs(v) for _, v in sev if v is not None] + [0.5])
        out.append(
            _bars(
                f"{c.kinds[kind].label_zh}：评委宽严度（正为偏宽、负为偏严）· judges' severity (+ lenient, − harsh)",
                sev,
                lo=-span,
                hi=span,
                fmt="{:+.2f}",
            )
        )
    alphas: list[tuple[str, float | None]] = []
    for kind, a in sorted(agg.get("agreement", {}).items()):
        alphas.append((f"{_kind_label(c, kind)} 原始 raw", a.get("alpha_raw")))
        alphas.append((f"{_kind_label(c, kind)} 规范化 normalised", a.get("alpha_normalised")))
    out.append(
        _bars(
            "评分一致性（Krippendorff α，区间尺度）· agreement (Krippendorff's alpha, interval)",
            alphas,
            lo=min([0.0] + [v for _, v in alphas if v is not None]),
            hi=1.0,
        )
    )
    bands = agg.get("bands", [])
    for award in sorted({b["award"] for b in bands}):
        mine = [b for b in bands if b["award"] == award]
        out.append(
            _band_chart(
                f"{_award_label(award)}：名额线附近的得分 · scores around the cut-off", mine, int(mine[0]["cutoff"])
            )
        )
    if bands:
        rows = "".join(
            f'<tr class="near"><td>{esc(_award_label(b["award"]))}</td><td>{b["cutoff"]}</td><td>{b["rank"]}</td>'
            f"<td>{esc(b['submission_id'])}</td><td>{esc(_title(report.entries, b['submission_id']))}</td>"
            f"<td>{b['score']:.3f}</td><td>{b['gap']:+.3f}</td></tr>"
            for b in bands
        )
        out.append(
            "<section><h3>临界复核 Second look near each cut-off</h3><table><thead><tr><th>奖项 award</th>"
            "<th>名额线 cut-off</th><th>名次 rank</th><th>编号 id</th><th>作品名称 title</th><th>得分 score</th>"
            f"<th>差距 gap</th></tr></thead><tbody>{rows}</tbody></table></section>"
        )
    bad = [sh for sh in s.sheets if sh.status == "rejected"]
    if bad:
        items = "".join(
            f'<li class="rejected">{esc(sh.object_key)}（{esc(sh.judge_id or "—")}）<ul>'
            + "".join(f"<li>{esc(p['zh'])} · {esc(p['en'])}</li>" for p in sh.problems[:30])
            + (f"<li>… 共 {len(sh.problems)} 项 {len(sh.problems)} in all</li>" if len(sh.problems) > 30 else "")
            + "</ul></li>"
            for sh in bad
        )
        out.append(f"<section><h3>退回的评分表 Rejected sheets（{len(bad)}）</h3><ul>{items}</ul></section>")
    if s.missing_judges:
        names = "、".join(f"{j} {_judge(report.judges, j).name}" for j in s.missing_judges)
        out.append(f'<p class="warn">尚未交回有效评分表的评委 judges without an accepted sheet: {esc(names)}</p>')
    for kind in s.stage.kinds:
        rows_k = [r for r in s.ranking if r.kind == kind]
        if not rows_k:
            continue
        body = "".join(
            f"<tr><td>{r.rank if r.rank is not None else '—'}</td><td>{esc(r.submission_id)}</td>"
            f"<td>{esc(_title(report.entries, r.submission_id))}</td>"
            f"<td>{esc(_get(report.entries, r.submission_id, 'province'))}</td>"
            f"<td>{'' if r.score is None else f'{r.score:.3f}'}</td><td>{'' if r.raw_mean is None else f'{r.raw_mean:.3f}'}</td>"
            f"<td>{r.n_scores}</td><td>{esc(STATUS_LABELS.get(r.status, r.status))}</td></tr>"
            for r in rows_k
        )
        out.append(
            f"<section><h3>{esc(c.kinds[kind].label_zh)}排名 {esc(kind)} ranking</h3><table><thead><tr>"
            "<th>名次 rank</th><th>编号 id</th><th>作品名称 title</th><th>省份 province</th><th>得分 score</th>"
            "<th>原始均分 raw mean</th><th>评分数 scores</th><th>状态 status</th></tr></thead>"
            f"<tbody>{body}</tbody></table></section>"
        )
    return "\n".join(out)
