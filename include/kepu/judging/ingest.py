"""Returned score sheets: validated with Great Expectations, kept as received, recorded.

The new returned workbooks of an ingest run are read into one pandas frame per kind of entry (a ``sheet``
column tells them apart) and checked by suites built from the campaign's rubric and the round's
assignment, in the style of :mod:`kepu.intake.quality`: every expectation's ``meta`` names the check it stands
for, and every unexpected row becomes a precise reason in Chinese and English (sheet, row, entry,
criterion, value). One validation per kind, whatever the number of sheets. A sheet is accepted only when
nothing is wrong with it:

- the judge it names is on the round's panel, under the roster's name, and the sheet code is the one
  issued to that judge for this round (so a sheet is from who it says it is, and from this round);
- it lists only entries assigned to that judge, each once, and all of them;
- every criterion of every entry is filled in, is a number, and lies inside the rubric's range.

A rejected sheet is recorded with its reasons and blocks nothing else. A sheet already seen (same
checksum) changes nothing. An accepted sheet from a judge who had one replaces the earlier scores; the
earlier sheet and its scores stay in the records, and the change is audited. Every sheet is also copied
unchanged to ``received/{sha256}.xlsx``, so a later upload under the same name loses nothing.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from kepu.campaign import Campaign, Criterion, Stage
from kepu.db.judging_records import JudgeRecord, ScoreRow
from kepu.intake.quality import QualityRunError, ephemeral_context, failed_expectations, import_gx
from kepu.judging.aggregate import weighted_score
from kepu.judging.sheets import UNCALCULATED, ParsedSheet, ParsedTable, as_number, problem
from kepu.judging.sheets import shown as shown_cell

if TYPE_CHECKING:
    from great_expectations import ExpectationSuite

log = logging.getLogger(__name__)

#: Stands in for an empty set: GX wants a non-empty value set.
NOTHING = "\x00none"
RESULT_FORMAT: dict[str, Any] = {
    "result_format": "COMPLETE",
    "unexpected_index_column_names": ["sheet", "row", "submission_id"],
}
COVERAGE_FORMAT: dict[str, Any] = {
    "result_format": "COMPLETE",
    "unexpected_index_column_names": ["sheet", "submission_id"],
}
_HEADER_CHECKS = ("judge", "judge_name", "code", "stage")


@dataclass(frozen=True)
class RoundFacts:
    """What a returned sheet is checked against."""

    campaign: Campaign
    stage: Stage
    panel: Mapping[str, JudgeRecord]
    #: judge id → kind → assigned entry ids
    assigned: Mapping[str, Mapping[str, frozenset[str]]]
    #: judge id → the sheet code issued to them
    codes: Mapping[str, str]


@dataclass
class Checked:
    judge_id: str | None
    rows: list[ScoreRow] | None
    problems: list[dict[str, Any]] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return self.rows is not None and not self.problems


def _problem_column(c: str) -> str:
    return f"{c}__problem"


#: Marks a blank score cell in a ``…__problem`` column (any other value there is text that is not a number).
BLANK = "\x00blank"


def build_suites(facts: RoundFacts) -> dict[str, ExpectationSuite]:
    """The expectations on every returned sheet of a round, in one batch per kind plus one for coverage.

    Per kind, over the rows of every new sheet: the judge is on the panel, under the roster's name, with
    the sheet code issued to them for this round; each (judge, entry) pair is an assignment; an entry is
    listed once per sheet; each criterion is filled in, a number and inside the rubric's range. Coverage:
    every (sheet, assigned entry) pair is listed.
    """
    gx = import_gx()
    exp = gx.expectations
    c = facts.campaign
    panel = sorted(facts.panel)
    names = sorted((j.id, j.name) for j in facts.panel.values())
    codes = sorted((j, code) for j, code in facts.codes.items())
    suites: dict[str, ExpectationSuite] = {}
    for kind in facts.stage.kinds:
        pairs = sorted((j, sid) for j, kinds in facts.assigned.items() for sid in kinds.get(kind, ()))
        criteria: list[Criterion] = c.judging.criteria[kind]
        expectations: list[Any] = [
            exp.ExpectColumnValuesToBeInSet(column="judge_id", value_set=panel or [NOTHING], meta={"check": "judge"}),
            exp.ExpectColumnPairValuesToBeInSet(
                column_A="judge_id",
                column_B="judge_name",
                value_pairs_set=names or [(NOTHING, NOTHING)],
                meta={"check": "judge_name"},
            ),
            exp.ExpectColumnPairValuesToBeInSet(
                column_A="judge_id",
                column_B="code",
                value_pairs_set=codes or [(NOTHING, NOTHING)],
                meta={"check": "code"},
            ),
            exp.ExpectColumnValuesToBeInSet(column="stage", value_set=[facts.stage.key], meta={"check": "stage"}),
            exp.ExpectColumnPairValuesToBeInSet(
                column_A="judge_id",
                column_B="submission_id",
                value_pairs_set=pairs or [(NOTHING, NOTHING)],
                meta={"check": "unassigned"},
            ),
            exp.ExpectCompoundColumnsToBeUnique(column_list=["sheet", "submission_id"], meta={"check": "duplicate"}),
        ]
        for crit in criteria:
            expectations += [
                exp.ExpectColumnValuesToBeNull(
                    column=_problem_column(crit.key), meta={"check": "cell", "criterion": crit.key}
                ),
                exp.ExpectColumnValuesToBeBetween(
                    column=crit.key,
                    min_value=crit.min,
                    max_value=crit.max,
                    meta={"check": "range", "criterion": crit.key},
                ),
            ]
        suites[kind] = gx.ExpectationSuite(
            name=f"kepu.{c.id}.{facts.stage.key}.sheets.{kind}", expectations=expectations
        )
    suites["coverage"] = gx.ExpectationSuite(
        name=f"kepu.{c.id}.{facts.stage.key}.sheets.coverage",
        expectations=[
            exp.ExpectColumnValuesToBeInSet(column="listed", value_set=[True], meta={"check": "missing_entries"})
        ],
    )
    return suites


ROW_COLUMNS = ("sheet", "row", "submission_id", "judge_id", "judge_name", "code", "stage")


def table_frame(sheet: int, table: ParsedTable, criteria: Sequence[Criterion]) -> pd.DataFrame:
    """One row per listed entry: the sheet, who the page says it is from, each criterion as a number and,
    when it is blank or not a number, what is wrong with it."""
    records = []
    for row, sid, raw, _comment in table.rows:
        rec: dict[str, Any] = {
            "sheet": sheet,
            "row": row,
            "submission_id": sid,
            "judge_id": table.judge_id or "",
            "judge_name": table.judge_name or "",
            "code": table.code or "",
            "stage": table.stage or "",
        }
        for c in criteria:
            number, bad = as_number(raw.get(c.key))
            rec[c.key] = number
            rec[_problem_column(c.key)] = bad if bad is not None else (BLANK if number is None else None)
        records.append(rec)
    columns = [*ROW_COLUMNS, *(col for c in criteria for col in (c.key, _problem_column(c.key)))]
    frame = pd.DataFrame(records, columns=columns)
    for c in criteria:
        frame[c.key] = frame[c.key].astype(float)
        frame[_problem_column(c.key)] = frame[_problem_column(c.key)].astype(object)
    return frame


@dataclass
class _Sheet:
    parsed: ParsedSheet
    judge_id: str | None = None
    problems: list[dict[str, Any]] = field(default_factory=list)
    #: Set when the sheet cannot be looked at row by row (unreadable, no judge on it, a column gone).
    fatal: bool = False


class SheetValidator:
    """Every new sheet of an ingest run in one Great Expectations run per kind (plus one for coverage), in
    an ephemeral context: the cost does not grow with the number of sheets."""

    def __init__(self, facts: RoundFacts) -> None:
        self.facts = facts

    def check(self, parsed: ParsedSheet) -> Checked:
        """One sheet (see :meth:`check_all`)."""
        return self.check_all({"sheet": parsed})["sheet"]

    def check_all(self, sheets: Mapping[str, ParsedSheet]) -> dict[str, Checked]:
        """Check each sheet (by any name, e.g. its object key); a bad sheet never affects another."""
        facts = self.facts
        states = {name: self._precheck(p) for name, p in sheets.items()}
        index = {name: i for i, name in enumerate(sorted(sheets))}
        frames: dict[str, list[pd.DataFrame]] = defaultdict(list)
        coverage: list[dict[str, Any]] = []
        for name, st in sorted(states.items()):
            if st.fatal:
                continue
            mine = facts.assigned.get(st.judge_id or "", {})
            for table in st.parsed.tables:
                if table.kind not in facts.stage.kinds:
                    continue
                criteria: list[Criterion] = facts.campaign.judging.criteria[table.kind]
                frames[table.kind].append(table_frame(index[name], table, criteria))
                listed = {sid for _, sid, _, _ in table.rows}
                coverage += [
                    {"sheet": index[name], "submission_id": sid, "listed": sid in listed}
                    for sid in sorted(mine.get(table.kind, ()))
                ]
        batches: dict[str, pd.DataFrame] = {k: pd.concat(v, ignore_index=True) for k, v in frames.items()}
        if coverage:
            batches["coverage"] = pd.DataFrame(coverage, columns=["sheet", "submission_id", "listed"])
        if batches:
            by_index = {i: name for name, i in index.items()}
            for key, result in self._run(batches).items():
                for i, found in self._problems(key, result, batches[key]).items():
                    states[by_index[i]].problems += found
        out: dict[str, Checked] = {}
        for name, st in states.items():
            problems = st.problems
            if any(p["check"] == "judge" for p in problems):
                # A sheet of nobody on the panel: its rows cannot be checked against an assignment.
                problems = [
                    p
                    for p in problems
                    if p["check"] in (*_HEADER_CHECKS, "unreadable", "macro", "too_large", "too_many_rows")
                ]
            if problems:
                out[name] = Checked(st.judge_id, None, _ordered(problems))
            else:
                out[name] = Checked(st.judge_id, self._rows(st), [])
        return out

    def _precheck(self, parsed: ParsedSheet) -> _Sheet:
        st = _Sheet(parsed, problems=list(parsed.problems))
        if st.problems:
            st.fatal = True
            return st
        named = sorted({t.judge_id or "" for t in parsed.tables})
        st.judge_id = named[0] or None
        if len(named) > 1:
            shown = "、".join(j or "—" for j in named)
            st.problems.append(
                problem(
                    "judge",
                    zh=f"各评分页署名的评委不一致：{shown}",
                    en=f"the scoring pages name different judges: {shown.replace('、', ', ')}",
                )
            )
            st.fatal = True
            return st
        facts = self.facts
        mine = facts.assigned.get(st.judge_id or "", {})
        kinds = {t.kind for t in parsed.tables}
        for kind in sorted(k for k, ids in mine.items() if ids and k not in kinds):
            label = facts.campaign.kinds[kind].label_zh if kind in facts.campaign.kinds else kind
            st.problems.append(
                problem("missing_page", zh=f"缺少“{label}”评分页", en=f"the {kind} scoring page is missing")
            )
        for table in parsed.tables:
            if table.kind not in facts.stage.kinds:
                st.problems.append(
                    problem(
                        "unknown_page",
                        zh=f"本轮不评“{table.kind}”类作品",
                        en=f"this round does not judge {table.kind} entries",
                    )
                )
                continue
            criteria: list[Criterion] = facts.campaign.judging.criteria[table.kind]
            absent = [c for c in criteria if c.key not in table.keys]
            if absent:
                st.problems.append(
                    problem(
                        "missing_column",
                        zh=f"评分页缺少评分项列：{'、'.join(c.zh for c in absent)}",
                        en=f"the scoring page lacks criterion column(s): {', '.join(c.en for c in absent)}",
                    )
                )
                st.fatal = True
        if not any(t.rows for t in parsed.tables):
            st.problems.append(problem("empty", zh="评分表中没有任何作品", en="the sheet lists no entry"))
            st.fatal = True
        if st.fatal and st.judge_id and st.judge_id not in facts.panel:
            st.problems.append(self._header_problem("judge", parsed.tables[0]))
        return st

    def _run(self, batches: Mapping[str, pd.DataFrame]) -> dict[str, dict[str, Any]]:
        gx = import_gx()
        facts = self.facts
        context = ephemeral_context(gx)
        source = context.data_sources.add_pandas(name=f"kepu-{facts.campaign.id}-{facts.stage.key}-sheets")
        suites = build_suites(facts)
        out: dict[str, dict[str, Any]] = {}
        for key, frame in sorted(batches.items()):
            batch = source.add_dataframe_asset(name=f"sheets-{key}").add_batch_definition_whole_dataframe(
                name=f"sheets-{key}-whole"
            )
            definition = context.validation_definitions.add(
                gx.ValidationDefinition(name=f"{suites[key].name}", data=batch, suite=context.suites.add(suites[key]))
            )
            fmt = COVERAGE_FORMAT if key == "coverage" else RESULT_FORMAT
            result = definition.run(batch_parameters={"dataframe": frame}, result_format=fmt)
            out[key] = result.to_json_dict()
        return out

    def _problems(self, key: str, result: Mapping[str, Any], frame: pd.DataFrame) -> dict[int, list[dict[str, Any]]]:
        by_key: dict[str, Criterion] = (
            {} if key == "coverage" else {c.key: c for c in self.facts.campaign.judging.criteria[key]}  # type: ignore[index]
        )
        out: dict[int, list[dict[str, Any]]] = defaultdict(list)
        header_done: set[tuple[int, str]] = set()
        missing: dict[int, list[str]] = defaultdict(list)
        for _config, meta, unexpected in failed_expectations(
            result, lambda _config, meta: f"score sheet check {meta.get('check')}"
        ):
            check = str(meta.get("check"))
            crit = by_key.get(str(meta.get("criterion")))
            for item in unexpected:
                sheet, sid = int(item["sheet"]), str(item["submission_id"])
                if check == "missing_entries":
                    missing[sheet].append(sid)
                    continue
                row = int(item["row"])
                if check in _HEADER_CHECKS:
                    if (sheet, check) not in header_done:
                        header_done.add((sheet, check))
                        line = frame[(frame["sheet"] == sheet) & (frame["row"] == row)].iloc[0]
                        out[sheet].append(self._header_problem(check, line))
                elif check == "unassigned":
                    out[sheet].append(
                        problem(
                            check,
                            row=row,
                            submission_id=sid,
                            zh=f"第 {row} 行：作品 {sid} 未分配给该评委",
                            en=f"row {row}: entry {sid} is not assigned to this judge",
                        )
                    )
                elif check == "duplicate":
                    out[sheet].append(
                        problem(
                            check,
                            row=row,
                            submission_id=sid,
                            zh=f"第 {row} 行：作品 {sid} 重复出现",
                            en=f"row {row}: entry {sid} is listed more than once",
                        )
                    )
                elif crit is not None and check == "cell":
                    value = item.get(_problem_column(crit.key))
                    if value is None:
                        value = frame.loc[
                            (frame["sheet"] == sheet) & (frame["row"] == row), _problem_column(crit.key)
                        ].iloc[0]
                    if value == BLANK:
                        out[sheet].append(
                            problem(
                                "blank",
                                row=row,
                                submission_id=sid,
                                criterion=crit.key,
                                zh=f"第 {row} 行 {sid}：“{crit.zh}”未评分",
                                en=f"row {row} {sid}: no score for “{crit.en}”",
                            )
                        )
                    elif str(value).startswith(UNCALCULATED):
                        formula = shown_cell(str(value)[len(UNCALCULATED) :])
                        out[sheet].append(
                            problem(
                                "formula_no_value",
                                row=row,
                                submission_id=sid,
                                criterion=crit.key,
                                value=formula,
                                zh=f"第 {row} 行 {sid}：“{crit.zh}”是公式“{formula}”，文件中没有保存计算结果；"
                                "请在 Excel 中打开、计算并保存后交回",
                                en=f"row {row} {sid}: “{crit.en}” is a formula “{formula}” with no stored "
                                "result; open the sheet in Excel, let it calculate, save and return it",
                            )
                        )
                    else:
                        text = shown_cell(value)
                        out[sheet].append(
                            problem(
                                "not_a_number",
                                row=row,
                                submission_id=sid,
                                criterion=crit.key,
                                value=text,
                                zh=f"第 {row} 行 {sid}：“{crit.zh}”的值“{text}”不是有效数字（须为有限数值）",
                                en=f"row {row} {sid}: “{crit.en}” value “{text}” is not a finite number",
                            )
                        )
                elif crit is not None and check == "range":
                    value = item.get(crit.key)
                    if value is None:
                        value = frame.loc[(frame["sheet"] == sheet) & (frame["row"] == row), crit.key].iloc[0]
                    shown = f"{float(value):g}"
                    out[sheet].append(
                        problem(
                            check,
                            row=row,
                            submission_id=sid,
                            criterion=crit.key,
                            value=shown,
                            zh=f"第 {row} 行 {sid}：“{crit.zh}” {shown} 超出 {crit.min:g}–{crit.max:g}",
                            en=f"row {row} {sid}: “{crit.en}” {shown} is outside {crit.min:g}–{crit.max:g}",
                        )
                    )
                else:
                    raise QualityRunError(f"no message for score sheet check {check!r}")
        for sheet, sids in missing.items():
            ids = sorted(sids)
            out[sheet].append(
                problem(
                    "missing_entries",
                    value=";".join(ids),
                    zh=f"缺少已分配作品的评分：{'、'.join(ids)}",
                    en=f"no row for assigned entries: {', '.join(ids)}",
                )
            )
        return out

    def _header_problem(self, check: str, line: Any) -> dict[str, Any]:
        """Why the judge, name, code or stage a sheet shows is wrong; ``line`` is one of its rows or pages."""
        jid = str(getattr(line, "judge_id", None) or "—")
        name = getattr(line, "judge_name", None)
        code = getattr(line, "code", None)
        stage_shown = getattr(line, "stage", None)
        stage = self.facts.stage
        judge = self.facts.panel.get(jid)
        if check == "judge":
            return problem(
                check,
                value=jid,
                zh=f"评分表署名的评委编号 {jid} 不是{stage.zh}的评委",
                en=f"the sheet names judge {jid}, who is not on the {stage.en} panel",
            )
        if check == "judge_name":
            return problem(
                check,
                value=name,
                zh=f"评委姓名“{name or '—'}”与名单中 {jid} 的姓名“{judge.name if judge else '—'}”不符",
                en=f"judge name “{name or '—'}” is not the roster's name of {jid}",
            )
        if check == "code":
            return problem(
                check,
                value=code,
                zh=f"校验码与发给评委 {jid} 的{stage.zh}评分表不符（他人或其他轮次的评分表？）",
                en=f"the sheet code is not the one issued to judge {jid} for the {stage.en} (another "
                "judge's or another round's sheet?)",
            )
        return problem(
            check,
            value=stage_shown,
            zh=f"评分表属于“{stage_shown or '—'}”，不是{stage.zh}（{stage.key}）",
            en=f"the sheet is for “{stage_shown or '—'}”, not {stage.key}",
        )

    def _rows(self, st: _Sheet) -> list[ScoreRow]:
        rows = []
        for table in st.parsed.tables:
            criteria: list[Criterion] = self.facts.campaign.judging.criteria[table.kind]  # type: ignore[index]
            for _row, sid, raw, comment in table.rows:
                values = {c.key: float(as_number(raw.get(c.key))[0]) for c in criteria}  # type: ignore[arg-type]
                if not all(math.isfinite(v) for v in values.values()):  # never reaches the records
                    raise QualityRunError(
                        f"sheet row {_row} {sid}: a score that is not a finite number passed the checks"
                    )
                rows.append(ScoreRow(st.judge_id or "", sid, values, weighted_score(criteria, values), comment))
        return sorted(rows, key=lambda r: r.submission_id)


def _ordered(problems: list[dict[str, Any]]) -> list[dict[str, Any]]:
    first = {
        "unreadable": 0,
        "not_a_score_sheet": 0,
        "macro": 0,
        "too_large": 0,
        "too_many_rows": 0,
        "judge": 1,
        "judge_name": 2,
        "code": 3,
        "stage": 4,
    }
    return sorted(problems, key=lambda p: (first.get(p["check"], 5), p["row"] or 0, p["criterion"] or ""))


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
