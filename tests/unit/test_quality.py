from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pandas as pd
import pytest

from kepu.campaign import Campaign, load_campaign, parse_campaign
from kepu.config import DEFAULT_CAMPAIGN_FILE
from kepu.findings import Finding
from kepu.intake.quality import (
    SUBMISSION_COLUMNS,
    SUITE_SCOPES,
    FrameError,
    QualityResult,
    QualityRunError,
    build_frame,
    build_suites,
    check_frame,
    failed_expectations,
    normalise_title,
    validate,
)
from kepu.rules import CODES

pytestmark = pytest.mark.unit

TEXT = DEFAULT_CAMPAIGN_FILE.read_text(encoding="utf-8")
SHA_A = "a" * 64
SHA_B = "b" * 64


@pytest.fixture(scope="module")
def campaign() -> Campaign:
    return load_campaign(DEFAULT_CAMPAIGN_FILE)


def video_row(campaign: Campaign, sid: str, **over: Any) -> dict[str, Any]:
    fields = {name: f"{name}内容" for name in campaign.package.video_form_fields}
    fields.update({"联系电话": "13912345678", "电子邮箱": "kepu@example.org", "是否为会员": "否"})
    row: dict[str, Any] = {
        "submission_id": sid,
        "kind": "video",
        "channel": "provincial",
        "entity": "北京市青少年科技中心",
        "province": "北京",
        "title_folder": "星空的秘密",
        "title_form": "《星空的秘密》",
        "title_file": "星空的秘密",
        "synopsis": "介绍星空。",
        "phone": "13912345678",
        "email": "kepu@example.org",
        "received_at": "2022-10-20T10:00:00+08:00",
        "video_sha256": None,
        "form_fields": fields,
    }
    row.update(over)
    return row


def account_row(campaign: Campaign, sid: str, **over: Any) -> dict[str, Any]:
    fields = {name: f"{name}内容" for name in campaign.package.account_form_fields}
    fields.update({"联系电话": "010-62345678", "邮箱": "acct@example.cn", "粉丝量": "1000"})
    row: dict[str, Any] = {
        "submission_id": sid,
        "kind": "account",
        "channel": "other",
        "entity": "张三",
        "province": "广东省",
        "title_form": "科学小站",
        "phone": "010-62345678",
        "email": "acct@example.cn",
        "received_at": "2022-10-21T09:00:00+08:00",
        "works": 50,
        "followers": 1000,
        "form_fields": fields,
    }
    row.update(over)
    return row


def codes(result: QualityResult, sid: str) -> list[str]:
    return [f.code for f in result.findings.get(sid, [])]


def only(result: QualityResult, sid: str, code: str) -> Finding:
    found = [f for f in result.findings.get(sid, []) if f.code == code]
    assert len(found) == 1, result.findings.get(sid)
    return found[0]


@pytest.fixture(scope="module")
def result(campaign: Campaign) -> QualityResult:
    """One run over rows built each to trigger one rule, plus clean rows that trigger none."""
    rows = [
        video_row(campaign, "clean-video", synopsis="字" * 300 + " \n\t 　"),
        account_row(campaign, "clean-account"),
        video_row(campaign, "synopsis-300", synopsis="字" * 150 + "\n\n" + "字" * 150),
        video_row(campaign, "synopsis-301", synopsis="字" * 301),
        video_row(campaign, "phone-letters", phone="139abc45678"),
        video_row(campaign, "phone-fullwidth", phone="＋86 139-1234-5678"),
        video_row(campaign, "phone-landline", phone="(010)62345678转123 / 13912345678"),
        video_row(campaign, "email-bad", email="kepu@example"),
        video_row(campaign, "field-empty", form_fields={"微视频名称": "星空的秘密", "联系电话": "   "}),
        video_row(campaign, "no-form", form_fields=None),
        account_row(campaign, "account-field-empty", form_fields={"科普号名称": "科学小站"}),
        account_row(campaign, "account-form-blank", form_fields={}),
        account_row(campaign, "works-49", works=49),
        account_row(campaign, "fans-999", followers=999),
        account_row(campaign, "counts-unknown", works=None, followers=None),
        video_row(campaign, "title-mismatch", title_form="月亮的秘密"),
        video_row(campaign, "title-punct", title_folder="星空 的秘密！", title_file="《星空的秘密》", title_form=None),
        video_row(campaign, "dup-1", video_sha256=SHA_A),
        video_row(campaign, "dup-2", video_sha256=SHA_A.upper()),
        video_row(campaign, "dup-3", video_sha256=SHA_A),
        video_row(campaign, "unique-sha", video_sha256=SHA_B),
    ]
    return validate(campaign, build_frame(rows))


def test_clean_rows_trigger_nothing(result: QualityResult) -> None:
    for sid in ("clean-video", "clean-account", "phone-fullwidth", "phone-landline", "unique-sha", "title-punct"):
        assert sid not in result.findings, result.findings.get(sid)


def test_synopsis_of_300_passes_and_301_fails(result: QualityResult) -> None:
    assert "synopsis-300" not in result.findings
    f = only(result, "synopsis-301", "M-SUMMARY-LENGTH")
    assert (f.severity, f.value, f.limit, f.stage) == ("error", "301", "300", "quality")
    assert "301" in f.message_zh and "简介" in f.message_zh
    assert "301 characters" in f.message_en


def test_phone_with_letters_and_bad_email_are_contact_warnings(result: QualityResult) -> None:
    f = only(result, "phone-letters", "M-FORM-CONTACT")
    assert (f.severity, f.value) == ("warning", "139abc45678")
    assert "联系电话" in f.message_zh and "phone" in f.message_en
    g = only(result, "email-bad", "M-FORM-CONTACT")
    assert g.value == "kepu@example" and "e-mail" in g.message_en
    assert codes(result, "phone-letters") == ["M-FORM-CONTACT"]


def test_required_form_fields_one_finding_per_empty_field(result: QualityResult, campaign: Campaign) -> None:
    # Signature and seal blocks are signed on paper: never a field finding.
    signed = {"作者承诺", "推荐单位", "负责人签名", "推荐单位意见"}
    video = [f for f in result.findings["field-empty"] if f.code == "M-FORM-FIELD"]
    expected = set(campaign.package.video_form_fields) - {"微视频名称"} - signed
    assert {f.value for f in video} == expected
    assert all(f.severity == "error" for f in video)
    assert any("“联系电话”未填写" in f.message_zh for f in video)
    account = [f for f in result.findings["account-field-empty"] if f.code == "K-FORM-FIELD"]
    assert {f.value for f in account} == set(campaign.package.account_form_fields) - {"科普号名称"} - signed
    assert "no-form" not in result.findings
    blank = [f.value for f in result.findings["account-form-blank"]]
    # In the order of the form.
    assert blank == [n for n in campaign.package.account_form_fields if n not in signed]


def test_account_activity_thresholds(result: QualityResult) -> None:
    works = only(result, "works-49", "K-WORKS")
    assert (works.severity, works.value, works.limit) == ("error", "49", "50")
    fans = only(result, "fans-999", "K-FANS")
    assert (fans.value, fans.limit) == ("999", "1000")
    assert codes(result, "works-49") == ["K-WORKS"]
    assert codes(result, "fans-999") == ["K-FANS"]
    assert "counts-unknown" not in result.findings


def test_title_mismatch_names_the_titles(result: QualityResult) -> None:
    f = only(result, "title-mismatch", "M-TITLE-MISMATCH")
    assert f.severity == "warning"
    assert "月亮的秘密" in f.message_zh and "星空的秘密" in f.message_zh
    assert "form “月亮的秘密”" in f.message_en


def test_byte_duplicates_name_each_other(result: QualityResult) -> None:
    assert only(result, "dup-1", "O-DUPLICATE-FILE").value == "dup-2, dup-3"
    assert only(result, "dup-2", "O-DUPLICATE-FILE").value == "dup-1, dup-3"
    f = only(result, "dup-3", "O-DUPLICATE-FILE")
    assert f.value == "dup-1, dup-2" and f.severity == "error"
    assert "dup-1" in f.message_zh and "byte-identical" in f.message_en


def test_raw_results_are_json_and_summary_counts(result: QualityResult) -> None:
    text = json.dumps(result.raw, ensure_ascii=False)
    back = json.loads(text)
    assert set(back) == set(SUITE_SCOPES)
    assert back["video"]["success"] is False
    failed = [r for r in back["video"]["results"] if not r["success"]]
    assert {r["expectation_config"]["meta"]["code"] for r in failed} >= {"M-SUMMARY-LENGTH", "M-FORM-CONTACT"}
    summary = result.summary
    assert summary["rows"] == 21
    assert summary["rows_by_kind"] == {"video": 15, "account": 6}
    assert summary["suites"]["video.form"]["rows"] == 14  # no-form is left out
    assert summary["findings_by_code"]["O-DUPLICATE-FILE"] == 3
    assert set(summary["timings_s"]) == {"import", "setup", "validation", "mapping"}
    json.dumps(summary)


def test_failed_expectations_are_walked_in_order_and_a_broken_one_stops_the_run(result: QualityResult) -> None:
    video = result.raw["video"]
    failed = list(failed_expectations(video, lambda config, meta: "unused"))
    expected = [r for r in video["results"] if not r["success"]]
    assert [f.config for f in failed] == [r["expectation_config"] for r in expected]
    assert [f.meta["code"] for f in failed] == [r["expectation_config"]["meta"]["code"] for r in expected]
    assert [f.unexpected for f in failed] == [r["result"]["unexpected_index_list"] for r in expected]
    assert failed and all(f.unexpected for f in failed)

    broken = {
        "results": [
            {"success": False, "expectation_config": {"type": "expect_x", "meta": {"check": "phone"}}},
            {
                "success": False,
                "expectation_config": {"type": "expect_y", "meta": {"check": "email"}},
                "exception_info": {"raised_exception": True, "exception_message": "boom"},
            },
        ]
    }
    walk = failed_expectations(broken, lambda config, meta: f"{config['type']} {meta['check']}")
    first = next(walk)
    assert first.meta == {"check": "phone"} and first.unexpected == []
    with pytest.raises(QualityRunError, match=r"^expect_y email: boom$"):
        next(walk)


def test_suites_come_from_the_campaign_file() -> None:
    edits = ("synopsis_max_chars: 300", "min_works: 50", "    - 推荐单位意见\n", "M-FORM-CONTACT: {severity: warning")
    assert all(e in TEXT for e in edits)
    text = (
        TEXT.replace("synopsis_max_chars: 300", "synopsis_max_chars: 120")
        .replace("min_works: 50", "min_works: 7")
        .replace("    - 推荐单位意见\n", "")
        .replace("M-FORM-CONTACT: {severity: warning", "M-FORM-CONTACT: {severity: error")
    )
    c = parse_campaign(text)
    suites = build_suites(c)
    assert set(suites) == set(SUITE_SCOPES)
    metas = {key: [e.meta or {} for e in suite.expectations] for key, suite in suites.items()}
    assert all(m["code"] in CODES and m["check"] for ms in metas.values() for m in ms)
    video = {(e.meta or {})["check"]: e.configuration.kwargs for e in suites["video"].expectations}
    assert video["synopsis_length"]["max_value"] == 120
    account = {(e.meta or {})["check"]: e.configuration.kwargs for e in suites["account"].expectations}
    assert account["works"]["min_value"] == 7
    fields = [m["field"] for m in metas["account.form"]]
    assert fields == [n for n in c.package.account_form_fields if n != "负责人签名"] and "推荐单位意见" not in fields

    res = validate(
        c,
        build_frame(
            [
                video_row(c, "v", synopsis="字" * 121, phone="12"),
                account_row(c, "a", works=7, form_fields={n: "x" for n in c.package.account_form_fields}),
            ]
        ),
    )
    assert only(res, "v", "M-SUMMARY-LENGTH").limit == "120"
    assert only(res, "v", "M-FORM-CONTACT").severity == "error"
    assert "a" not in res.findings


def test_empty_frame_validates_to_nothing(campaign: Campaign) -> None:
    res = validate(campaign, build_frame([]))
    assert res.findings == {}
    assert all(s["rows"] == 0 for s in res.summary["suites"].values())


def test_build_frame_columns_and_normalisation(campaign: Campaign) -> None:
    df = build_frame(
        [
            video_row(
                campaign,
                "v",
                entity=" 北京市  青少年 科技中心 ",
                province="广东",
                synopsis="一 二\n三",
                channel="  ",
                video_sha256=SHA_A.upper(),
            ),
            account_row(campaign, "a", followers="1,200", works=55.0),
        ]
    )
    assert list(df.columns[: len(SUBMISSION_COLUMNS)]) == list(SUBMISSION_COLUMNS)
    v = df.set_index("submission_id").loc["v"]
    assert v["entity"] == "北京市青少年科技中心"
    assert v["province"] == "广东省"
    assert v["synopsis_chars"] == 3
    assert v["channel"] is None
    assert v["video_sha256"] == SHA_A
    assert v["field__联系电话"] == "13912345678"
    a = df.set_index("submission_id").loc["a"]
    assert (a["followers"], a["works"]) == (1200, 55)
    assert str(df["received_at"].dtype) == "datetime64[ns, UTC]"
    assert df["received_at"].iloc[0] == pd.Timestamp("2022-10-20T02:00:00Z")
    assert normalise_title("《星空 的秘密》！") == normalise_title("星空的秘密")


@pytest.mark.parametrize(
    ("over", "needle"),
    [
        ({"received_at": "2022-10-31T23:00:00"}, "no time zone"),
        ({"received_at": None}, "missing received_at"),
        ({"kind": "podcast"}, "kind must be one of"),
        ({"video_sha256": "xyz"}, "not a SHA-256"),
        ({"works": "many"}, "whole number"),
        ({"followers": True}, "whole number"),
        ({"title": "typo"}, "unknown key"),
        ({"synopsis_chars": 99}, "disagrees"),
    ],
)
def test_build_frame_rejects_bad_rows(campaign: Campaign, over: dict[str, Any], needle: str) -> None:
    with pytest.raises(FrameError, match=needle):
        build_frame([video_row(campaign, "v", **over)])


def test_build_frame_rejects_duplicate_ids_and_check_frame_rejects_naive_times(campaign: Campaign) -> None:
    with pytest.raises(FrameError, match="already on row 0"):
        build_frame([video_row(campaign, "v"), video_row(campaign, "v")])
    df = build_frame([video_row(campaign, "v")])
    naive = df.assign(received_at=df["received_at"].dt.tz_localize(None))
    with pytest.raises(FrameError, match="naive"):
        check_frame(naive)
    with pytest.raises(FrameError, match="lacks column"):
        validate(campaign, df.drop(columns=["email"]))


def test_importing_the_modules_does_not_import_great_expectations() -> None:
    code = (
        "import sys, kepu.intake.quality, kepu.intake.eligibility_rules; "
        "print(any(m.split('.')[0] == 'great_expectations' for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
