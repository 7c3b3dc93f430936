"""The judges' roster: XLSX or CSV, headers in Chinese or English, every bad row named."""

from __future__ import annotations

import io

import pytest
from openpyxl import Workbook

from kepu.campaign import Conflicts
from kepu.db.judging_records import JudgeRecord
from kepu.errors import JudgingError
from kepu.judging.roster import conflict_of, judge_id, parse_roster

pytestmark = pytest.mark.unit


def xlsx(rows: list[list[object]]) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.title = "评委名单"
    for row in rows:
        ws.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def test_xlsx_with_a_title_row_and_bilingual_headers() -> None:
    data = xlsx(
        [
            ["2022年评审专家名单"],
            ["序号", "姓名 Name", "工作单位 Unit", "省份 Province", "专业领域 Expertise", "邮箱"],
            [1, "王 明", "北京 师范大学", "北京", "物理、天文", "wang@example.org"],
            [2, "李华", "四川科技馆", "四川省", "生物，化学", None],
            [None, None, None, None, None, None],
        ]
    )
    roster = parse_roster("2022", "评委名单.xlsx", data)
    by_name = {j.name: j for j in roster.judges}
    wang = by_name["王 明"]
    assert (wang.province, wang.expertise, wang.email) == ("北京市", ("物理", "天文"), "wang@example.org")
    assert by_name["李华"].expertise == ("生物", "化学") and by_name["李华"].email is None
    # Ids are stable: the same judge typed with other spacing keeps theirs.
    assert wang.id == judge_id("2022", "王明", "北京师范大学") and wang.id.startswith("J")
    assert len(roster.sha256) == 64


def test_every_bad_row_is_named() -> None:
    data = "编号,姓名,单位,省份,专业领域\n,张三,某大学,火星,物理\n,李四,,广东,化学\nJ9,王五,某馆,广东,\nJ9,赵六,某院,广东,\nx y,钱七,某所,湖北,\n"
    with pytest.raises(JudgingError) as info:
        parse_roster("2022", "r.csv", data.encode("utf-8-sig"))
    problems = "\n".join(info.value.problems)
    assert "row 2: unknown province '火星'" in problems
    assert "row 3 lacks 单位 unit" in problems
    assert "row 5 repeats row 4 (J9)" in problems
    assert "row 6: id 'x y'" in problems
    assert len(info.value.problems) == 4


def test_gbk_csv_and_files_that_are_no_roster() -> None:
    data = "姓名,单位,省份\n张三,某大学,广东\n".encode("gbk")
    assert parse_roster("2022", "r.csv", data).judges[0].province == "广东省"
    with pytest.raises(JudgingError, match="no header row"):
        parse_roster("2022", "r.csv", b"a,b,c\n1,2,3\n")
    with pytest.raises(JudgingError, match=r"must be an \.xlsx or \.csv"):
        parse_roster("2022", "r.pdf", b"%PDF")
    with pytest.raises(JudgingError, match="cannot read the roster workbook"):
        parse_roster("2022", "r.xlsx", b"not a zip")


def test_conflicts_follow_the_campaign_switches() -> None:
    judge = JudgeRecord("J1", "甲", "广州市少年宫", "广东省")
    both = Conflicts(same_unit=True, same_province=True)
    assert conflict_of(judge, "广州市 少年宫", "北京市", both) == "same_unit"
    assert conflict_of(judge, "深圳市科技馆", "广东", both) == "same_province"
    assert conflict_of(judge, "深圳市科技馆", "广东", Conflicts(same_unit=True, same_province=False)) is None
    assert conflict_of(judge, "北京科技馆", "北京市", both) is None
