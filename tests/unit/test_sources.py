"""Summary sheets, link classification and pairing sheet rows with received packages."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from kepu.campaign import load_campaign
from kepu.config import DEFAULT_CAMPAIGN_FILE
from kepu.intake.packages import parse_folder_name
from kepu.intake.sources import (
    SheetError,
    SheetRow,
    classify_link,
    match_rows_to_packages,
    parse_channel,
    parse_received_at,
    plan_downloads,
    read_summary_sheet,
    split_link_cell,
)

pytestmark = pytest.mark.unit
C = load_campaign(DEFAULT_CAMPAIGN_FILE)
BEIJING = timezone(timedelta(hours=8))


def write_xlsx(path: Path, rows: list[list[Any]], merges: tuple[str, ...] = ()) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    for row in rows:
        ws.append(row)
    for rng in merges:
        ws.merge_cells(rng)
    wb.save(path)
    return path


def write_csv(path: Path, lines: list[str], encoding: str) -> Path:
    path.write_bytes("\r\n".join(lines).encode(encoding) + b"\r\n")
    return path


def by_title(rows: list[SheetRow]) -> dict[str, SheetRow]:
    return {r.title: r for r in rows}


# --- the sheet -------------------------------------------------------------------------------------


def test_xlsx_with_title_row_merged_cells_and_untidy_headers(tmp_path: Path) -> None:
    header = [
        "序号",
        "省 份",
        "报送单位\n（或个人）",
        "类型",
        "推荐渠道",
        "作品名称",
        "网盘链接",
        "提取码",
        "接收时间",
        "联系方式",
        None,
        None,
        "备注",
    ]
    rows: list[list[Any]] = [
        ["2022年青少年科技教育活动微视频征集汇总表", *[None] * 12],
        header,
        [None, None, None, None, None, None, None, None, None, "联系人", "联系电话", "邮箱", None],
        [
            1,
            "北京",
            "北京市青少年科技中心",
            "微视频",
            "省级推荐",
            "月亮为什么有阴晴圆缺",
            "https://pan.baidu.com/s/1abcDEF",
            "x7k2",
            datetime(2022, 10, 31, 18, 20),
            "张老师",
            13800138000,
            "zhang@example.cn",
            "请优先审核",
        ],
        [
            2,
            None,
            None,
            "科普号",
            "省级协会",
            "少年科学家",
            "链接: https://pan.baidu.com/s/1xyz 提取码: ab12",
            None,
            "2022年10月30日 9时05分",
            "李老师",
            "010-12345678",
            "li@example.cn",
            None,
        ],
        [None] * 13,
        [
            3,
            "广东省",
            "广州市少年宫",
            "视频",
            "单位会员",
            "会飞的种子",
            "https://files.example.cn/seed.zip",
            None,
            "2022/10/29",
            None,
            None,
            None,
            None,
        ],
    ]
    # The title row spans the sheet; 联系方式 spans its three sub-headers; the province and unit of
    # Beijing are merged down over its two entries.
    path = write_xlsx(tmp_path / "汇总表.xlsx", rows, merges=("A1:M1", "J2:L2", "B4:B5", "C4:C5"))
    result = read_summary_sheet(path, C)

    assert result.header_row == 3
    assert [r.row_number for r in result.rows] == [4, 5, 7]
    got = by_title(result.rows)
    moon = got["月亮为什么有阴晴圆缺"]
    assert (moon.kind, moon.channel, moon.unit, moon.province) == (
        "video",
        "provincial",
        "北京市青少年科技中心",
        "北京市",
    )
    assert moon.link == "https://pan.baidu.com/s/1abcDEF"
    assert moon.extraction_code == "x7k2"
    assert moon.received_at == datetime(2022, 10, 31, 18, 20, tzinfo=BEIJING)
    assert (moon.contact, moon.phone, moon.email) == ("张老师", "13800138000", "zhang@example.cn")
    assert moon.extra == {"备注": "请优先审核"}

    account = got["少年科学家"]
    assert (account.kind, account.channel, account.province) == ("account", "provincial", "北京市")
    assert account.unit == "北京市青少年科技中心"
    assert (account.link, account.extraction_code) == ("https://pan.baidu.com/s/1xyz", "ab12")
    assert account.received_at == datetime(2022, 10, 30, 9, 5, tzinfo=BEIJING)

    seed = got["会飞的种子"]
    assert (seed.kind, seed.channel, seed.province) == ("video", "unit_member", "广东省")
    assert seed.received_at == datetime(2022, 10, 29, tzinfo=BEIJING)
    assert result.problems == []


def test_gb18030_csv_from_chinese_excel(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "汇总表.csv",
        [
            "省份,单位名称,作品名称,链接地址,报送时间",
            "四川,成都市科技馆,熊猫的一天,https://dl.example.cn/panda.zip,2022-10-31 18:20",
            "新疆兵团,兵团科协,沙漠里的绿洲,https://dl.example.cn/oasis.zip,2022年10月31日 23时59分",
        ],
        "gb18030",
    )
    result = read_summary_sheet(path, C)
    got = by_title(result.rows)
    assert set(got) == {"熊猫的一天", "沙漠里的绿洲"}
    assert got["熊猫的一天"].province == "四川省"
    assert got["熊猫的一天"].unit == "成都市科技馆"
    assert got["熊猫的一天"].received_at == datetime(2022, 10, 31, 18, 20, tzinfo=BEIJING)
    assert got["沙漠里的绿洲"].province == "新疆生产建设兵团"
    assert got["沙漠里的绿洲"].received_at == datetime(2022, 10, 31, 23, 59, tzinfo=BEIJING)
    # No channel column: the channel is unknown unless the operator says whose sheet it is.
    assert got["熊猫的一天"].channel is None
    provincial = read_summary_sheet(path, C, default_channel="provincial")
    assert {r.channel for r in provincial.rows} == {"provincial"}


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig"])
def test_utf8_csv_with_and_without_bom(tmp_path: Path, encoding: str) -> None:
    path = write_csv(
        tmp_path / "sheet.csv",
        ["推荐单位,科普号名称,渠道", "杭州市青少年活动中心,科学小达人,个人会员"],
        encoding,
    )
    (row,) = read_summary_sheet(path, C).rows
    assert (row.unit, row.title, row.kind, row.channel) == (
        "杭州市青少年活动中心",
        "科学小达人",
        "account",
        "individual_member",
    )
    # No province column, and the unit's name does not start with one.
    assert row.province is None


def test_unknown_channel_is_none_with_a_problem(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "s.xlsx",
        [["报送单位", "作品名称", "推荐渠道"], ["某中学", "水的旅行", "朋友推荐"], ["某小学", "光的秘密", "自荐"]],
    )
    result = read_summary_sheet(path, C)
    got = by_title(result.rows)
    assert got["水的旅行"].channel is None
    assert got["光的秘密"].channel == "other"
    (problem,) = result.problems
    assert (problem.row_number, problem.column) == (2, "推荐渠道")
    assert "朋友推荐" in problem.message_zh and "朋友推荐" in problem.message_en


def test_missing_title_column_is_a_sheet_error(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "s.xlsx", [["省份", "报送单位", "网盘链接"], ["北京", "某单位", "https://x.cn/a"]])
    with pytest.raises(SheetError) as err:
        read_summary_sheet(path, C)
    assert err.value.missing == ["title"]
    assert "作品名称" in err.value.message_zh
    assert "title" in err.value.message_en


def test_missing_title_and_unit_columns_are_both_named(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "s.csv", ["省份,网盘链接,联系人", "北京,https://x.cn/a,张三"], "utf-8")
    with pytest.raises(SheetError) as err:
        read_summary_sheet(path, C)
    assert err.value.missing == ["title", "unit"]
    assert "报送单位" in err.value.message_zh


def test_old_excel_format_is_refused_with_advice(tmp_path: Path) -> None:
    path = tmp_path / "s.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(SheetError) as err:
        read_summary_sheet(path, C)
    assert ".xlsx" in err.value.message_zh


def test_unknown_columns_are_kept_in_extra(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "s.xlsx",
        [["报送单位", "作品名称", "类别（专业领域）", "主创人员"], ["某中学", "水的旅行", "地理", "王五"]],
    )
    (row,) = read_summary_sheet(path, C).rows
    assert row.extra == {"类别（专业领域）": "地理", "主创人员": "王五"}
    assert row.kind == "video"


def test_repeated_row_is_flagged(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "s.xlsx",
        [
            ["报送单位", "作品名称"],
            ["某中学", "水的旅行"],
            ["某小学", "光的秘密"],
            ["某中学 ", "水 的旅行"],
        ],
    )
    result = read_summary_sheet(path, C)
    assert [(r.row_number, r.duplicate_of) for r in result.rows] == [(2, None), (3, None), (4, 2)]
    (problem,) = result.problems
    assert problem.row_number == 4
    assert "第 2 行" in problem.message_zh and "row 2" in problem.message_en
    # A repeated row is not planned for download a second time.
    assert len(plan_downloads(result.rows).pending) == 2


def test_kind_inferred_from_the_filled_title_column(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "s.xlsx",
        [["单位名称", "微视频名称", "科普号名称"], ["甲单位", "水的旅行", None], ["乙单位", None, "科学小达人"]],
    )
    result = read_summary_sheet(path, C)
    assert [(r.title, r.kind) for r in result.rows] == [("水的旅行", "video"), ("科学小达人", "account")]
    assert result.problems == []


def test_bad_date_and_untitled_row_are_problems(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "s.xlsx",
        [["报送单位", "作品名称", "接收时间"], ["甲单位", "水的旅行", "十月底"], ["合计", None, None]],
    )
    result = read_summary_sheet(path, C)
    assert [r.title for r in result.rows] == ["水的旅行"]
    assert result.rows[0].received_at is None
    assert [(p.row_number, p.column) for p in result.problems] == [(2, "接收时间"), (3, None)]


def test_hyperlink_behind_cell_text_is_used(tmp_path: Path) -> None:
    path = tmp_path / "s.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["报送单位", "作品名称", "下载地址"])
    ws.append(["甲单位", "水的旅行", "点击下载"])
    ws["C2"].hyperlink = "https://dl.example.cn/water.zip"
    wb.save(path)
    (row,) = read_summary_sheet(path, C).rows
    assert row.link == "https://dl.example.cn/water.zip"


# --- cell values -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2022-10-31 18:20", datetime(2022, 10, 31, 18, 20, tzinfo=BEIJING)),
        ("2022/10/31", datetime(2022, 10, 31, tzinfo=BEIJING)),
        ("2022年10月31日 18时20分", datetime(2022, 10, 31, 18, 20, tzinfo=BEIJING)),
        ("2022年10月31日下午6:20", datetime(2022, 10, 31, 18, 20, tzinfo=BEIJING)),
        ("２０２２－１０－３１　１８：２０", datetime(2022, 10, 31, 18, 20, tzinfo=BEIJING)),
        ("2022-10-31T10:20:00Z", datetime(2022, 10, 31, 18, 20, tzinfo=BEIJING)),
        (datetime(2022, 10, 31, 18, 20), datetime(2022, 10, 31, 18, 20, tzinfo=BEIJING)),
        (date(2022, 10, 31), datetime(2022, 10, 31, tzinfo=BEIJING)),
        (44865.5, datetime(2022, 10, 31, 12, 0, tzinfo=BEIJING)),
        ("", None),
        (None, None),
    ],
)
def test_received_at_values(value: object, expected: datetime | None) -> None:
    got = parse_received_at(value, BEIJING)
    assert got == expected
    if got is not None:
        assert got.tzinfo is not None


@pytest.mark.parametrize("value", ["十月底", "2022-13-01", "12345", "2022年"])
def test_received_at_rejects_non_dates(value: str) -> None:
    with pytest.raises(ValueError):
        parse_received_at(value, BEIJING)


@pytest.mark.parametrize(
    ("label", "key"),
    [
        ("省级推荐", "provincial"),
        ("省级协会", "provincial"),
        ("单位会员", "unit_member"),
        ("个人会员", "individual_member"),
        ("其他", "other"),
        ("自荐", "other"),
        ("社会征集", "other"),
        ("其他机构和个人自荐", "other"),
        ("非会员单位", "other"),
        ("provincial", "provincial"),
        ("朋友推荐", None),
        ("", None),
    ],
)
def test_channel_labels(label: str, key: str | None) -> None:
    assert parse_channel(label, C) == key


# --- links -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("https://pan.baidu.com/s/1abcDEF?pwd=x7k2", "share"),
        ("pan.baidu.com/s/1abc", "share"),
        ("https://share.weiyun.com/abc", "share"),
        ("https://www.aliyundrive.com/s/abc", "share"),
        ("https://www.alipan.com/s/abc", "share"),
        ("https://pan.quark.cn/s/abc", "share"),
        ("https://www.123pan.com/s/abc", "share"),
        ("https://wwi.lanzoui.com/iabc", "share"),
        ("https://xyz.lanzn.com/iabc", "share"),
        ("https://cloud.189.cn/t/abc", "share"),
        ("https://dl.example.cn/files/video.mp4", "http"),
        ("http://127.0.0.1:8000/a.zip", "http"),
        ("ftp://example.cn/a.zip", "invalid"),
        ("file:///etc/passwd", "invalid"),
        ("见邮件附件", "invalid"),
        ("https://exa mple.cn/a", "invalid"),
        ("", "invalid"),
    ],
)
def test_classify_link(url: str, kind: str) -> None:
    assert classify_link(url) == kind


@pytest.mark.parametrize(
    ("cell", "url", "code"),
    [
        ("链接: https://pan.baidu.com/s/1abc 提取码: x7k2", "https://pan.baidu.com/s/1abc", "x7k2"),
        (
            "链接：https://pan.baidu.com/s/1abc?pwd=x7k2 \n提取码：x7k2 --来自百度网盘超级会员V5的分享",
            "https://pan.baidu.com/s/1abc?pwd=x7k2",
            "x7k2",
        ),
        ("https://pan.baidu.com/s/1abc?pwd=q9w8", "https://pan.baidu.com/s/1abc?pwd=q9w8", "q9w8"),
        ("https://pan.baidu.com/s/1abc提取码：k3j5复制这段内容", "https://pan.baidu.com/s/1abc", "k3j5"),
        ("pan.baidu.com/s/1abc 密码 zz11", "https://pan.baidu.com/s/1abc", "zz11"),
        ("https://dl.example.cn/a.zip", "https://dl.example.cn/a.zip", None),
        ("见邮件", None, None),
    ],
)
def test_split_link_cell(cell: str, url: str | None, code: str | None) -> None:
    got_url, got_code, _ = split_link_cell(cell)
    assert (got_url, got_code) == (url, code)


def test_conflicting_extraction_codes_prefer_the_column(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "s.xlsx",
        [
            ["报送单位", "作品名称", "网盘链接", "提取码"],
            ["甲", "水的旅行", "https://pan.baidu.com/s/1a 提取码: aaaa", "bbbb"],
        ],
    )
    result = read_summary_sheet(path, C)
    assert result.rows[0].extraction_code == "bbbb"
    assert [p.column for p in result.problems] == ["提取码"]


def test_plan_downloads_lists_every_row_that_is_not_fetched(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "s.xlsx",
        [
            ["报送单位", "作品名称", "网盘链接"],
            ["甲", "直链作品", "https://dl.example.cn/a.zip"],
            ["乙", "网盘作品", "链接: https://pan.baidu.com/s/1abc 提取码: x7k2"],
            ["丙", "无链接作品", None],
            ["丁", "坏链接作品", "见附件"],
        ],
    )
    plan = plan_downloads(read_summary_sheet(path, C).rows)
    assert [r.title for r in plan.direct] == ["直链作品"]
    pending = {p.title: p for p in plan.pending}
    assert set(pending) == {"网盘作品", "无链接作品", "坏链接作品"}
    share = pending["网盘作品"]
    assert (share.url, share.extraction_code, share.unit) == ("https://pan.baidu.com/s/1abc", "x7k2", "乙")
    assert (share.reason_zh, share.reason_en) == ("需登录网盘手动下载", "cloud share needs a manual download")
    assert pending["无链接作品"].reason_en == "no link in the summary sheet"
    assert pending["坏链接作品"].reason_en.startswith("invalid link")


# --- pairing rows and packages ---------------------------------------------------------------------


def row(n: int, title: str, unit: str | None, province: str | None = None) -> SheetRow:
    return SheetRow(row_number=n, kind="video", channel=None, unit=unit, province=province, title=title)


def test_rows_match_folders_by_normalised_title() -> None:
    names = [
        "北京市+北京市青少年科技中心+月亮为什么有阴晴圆缺",
        "广东＋广州市少年宫＋《会飞的种子》",
        "四川+成都市科技馆+熊猫的一天.zip",
        "无法解析的文件夹",
    ]
    packages = [(n, parse_folder_name(n, C)) for n in names]
    rows = [
        row(2, "月亮为什么有 阴晴圆缺", "北京市青少年科技中心"),
        row(3, "会飞的种子！", "广州市少年宫"),
        row(4, "熊猫的一天", "成都市科技馆"),
        row(5, "没有到达的作品", "某单位"),
    ]
    matches = match_rows_to_packages(rows, packages)
    assert {n: r.row_number for n, r in matches.items()} == {names[0]: 2, names[1]: 3, names[2]: 4}
    assert [r.row_number for r in matches.unmatched_rows] == [5]
    assert matches.unmatched_packages == ["无法解析的文件夹"]


def test_colliding_titles_are_told_apart_by_unit_then_province() -> None:
    names = [
        "北京+北京市少年宫+水的旅行",
        "上海+上海市少年宫+水的旅行",
        "江苏+南京市科技馆+光的秘密",
        "浙江+南京路小学+光的秘密",
    ]
    packages = [(n, parse_folder_name(n, C)) for n in names]
    rows = [
        row(2, "水的旅行", "上海市少年宫", "上海市"),
        row(3, "水的旅行", "北京市少年宫", "北京市"),
        # The units do not settle it (南京 is in both), the province does.
        row(4, "光的秘密", "南京", "浙江省"),
        row(5, "光的秘密", "南京", "江苏省"),
    ]
    matches = match_rows_to_packages(rows, packages)
    assert {n: r.row_number for n, r in matches.items()} == {names[0]: 3, names[1]: 2, names[2]: 5, names[3]: 4}
    assert matches.unmatched_rows == [] and matches.unmatched_packages == []


def test_ambiguous_pairs_are_left_unmatched() -> None:
    names = ["北京+少年宫+水的旅行", "北京+少年宫+水的旅行（终版）"]
    packages = [(n, parse_folder_name(n, C)) for n in names]
    rows = [row(2, "水的旅行", "少年宫", "北京市"), row(3, "水的旅行", "少年宫", "北京市")]
    matches = match_rows_to_packages(rows, packages)
    # Two identical rows and two folders both containing the title: no pair is unique.
    assert dict(matches) == {}
    assert [r.row_number for r in matches.unmatched_rows] == [2, 3]
    assert matches.unmatched_packages == names


def test_unparsed_folder_name_matched_by_containment() -> None:
    names = ["作品：会飞的种子（广州市少年宫报送）"]
    packages = [(n, parse_folder_name(n, C)) for n in names]
    matches = match_rows_to_packages([row(2, "会飞的种子", "广州市少年宫")], packages)
    assert matches[names[0]].row_number == 2
