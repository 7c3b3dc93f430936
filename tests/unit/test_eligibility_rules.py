from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pandas as pd
import pytest

from kepu.campaign import Campaign, load_campaign, parse_campaign
from kepu.config import DEFAULT_CAMPAIGN_FILE
from kepu.intake.eligibility_rules import (
    QuotaOverride,
    applicable_deadline,
    apply_quotas,
    channel_findings,
    deadline_findings,
    quota_rule,
)
from kepu.intake.quality import FrameError, build_frame

pytestmark = pytest.mark.unit

TEXT = DEFAULT_CAMPAIGN_FILE.read_text(encoding="utf-8")
BJ = timezone(timedelta(hours=8))
BASE = datetime(2022, 10, 1, 9, 0, tzinfo=BJ)
OP_AT = datetime(2022, 11, 2, 10, 0, tzinfo=BJ)


@pytest.fixture(scope="module")
def campaign() -> Campaign:
    return load_campaign(DEFAULT_CAMPAIGN_FILE)


@pytest.fixture(scope="module")
def extended() -> Campaign:
    """2022 with one extension for 广东 only and one for the unit_member channel only."""
    ext = (
        "  extensions:\n"
        '    - {until: "2022-11-15T23:59:59+08:00", provinces: [广东], reason: 疫情延期}\n'
        '    - {until: "2022-11-05T23:59:59+08:00", channels: [unit_member], reason: 会员单位补报}\n'
    )
    assert "  extensions: []\n" in TEXT
    return parse_campaign(TEXT.replace("  extensions: []\n", ext))


def row(sid: str, received: datetime | str, **over: Any) -> dict[str, Any]:
    r: dict[str, Any] = {
        "submission_id": sid,
        "kind": "video",
        "channel": "provincial",
        "entity": "广东省青少年科技教育协会",
        "province": "广东省",
        "received_at": received,
    }
    r.update(over)
    return r


def unit_entries(n: int, prefix: str = "p", start: datetime = BASE, **over: Any) -> list[dict[str, Any]]:
    return [row(f"{prefix}{i:02d}", start + timedelta(hours=i), **over) for i in range(1, n + 1)]


# --- quotas ----------------------------------------------------------------------------------------


def test_quota_rule_in_words(campaign: Campaign) -> None:
    assert quota_rule(campaign, "provincial", "video") == (
        "省级推荐每单位作品不超过10部",
        "provincial: at most 10 works per unit",
    )
    assert quota_rule(campaign, "unit_member", "account")[1] == "unit_member: at most 2 accounts per unit"
    assert quota_rule(campaign, "other", "video") == (
        "其他机构和个人自荐每单位作品不超过1部",
        "other: at most 1 work per unit",
    )


def test_earliest_entries_kept_up_to_quota(campaign: Campaign) -> None:
    df = build_frame(unit_entries(12))
    out = apply_quotas(campaign, df)
    assert sorted(out) == ["p11", "p12"]
    f = out["p12"]
    assert (f.code, f.severity, f.value, f.limit, f.stage) == ("Q-QUOTA", "error", "12", "10", "eligibility")
    assert "省级推荐每单位作品不超过10部" in f.message_zh and "第 12 件（共 12 件" in f.message_zh
    assert "provincial: at most 10 works per unit" in f.message_en and "entry 12 of 12" in f.message_en


def test_within_quota_and_other_groups_trigger_nothing(campaign: Campaign) -> None:
    rows = [
        *unit_entries(10),
        *unit_entries(5, prefix="acc", kind="account"),  # same unit, other kind: own quota of 5
        *unit_entries(1, prefix="oth", channel="other"),  # same unit, other channel
        *unit_entries(10, prefix="x", start=BASE + timedelta(days=1), entity=" 广东省 青少年科技教育协会"),
    ]
    out = apply_quotas(campaign, build_frame(rows))
    # The last group is the same unit written with stray spaces: 20 entries, 10 over.
    assert sorted(out) == [f"x{i:02d}" for i in range(1, 11)]


def test_ties_broken_by_submission_id(campaign: Campaign) -> None:
    same = BASE
    rows = [
        row("b", same, channel="individual_member", entity="李四"),
        row("a", same, channel="individual_member", entity="李四"),
        row("c", same, channel="individual_member", entity="李四"),
    ]
    out = apply_quotas(campaign, build_frame(rows))
    assert sorted(out) == ["b", "c"]
    assert out["b"].value == "2" and out["c"].value == "3"


def test_order_is_absolute_time_not_wall_clock(campaign: Campaign) -> None:
    rows = [
        # 02:00 UTC is 10:00 in Beijing: received before the 11:00+08:00 entry despite the smaller clock.
        row("late-wall", "2022-10-01T11:00:00+08:00", channel="other", entity="王五"),
        row("early-utc", "2022-10-01T02:00:00+00:00", channel="other", entity="王五"),
    ]
    assert sorted(apply_quotas(campaign, build_frame(rows))) == ["late-wall"]


def test_unknown_channel_or_entity_is_not_counted(campaign: Campaign) -> None:
    rows = [row("u1", BASE, channel="mystery"), row("u2", BASE, channel=None), row("u3", BASE, entity=None)]
    assert apply_quotas(campaign, build_frame(rows)) == {}


def test_exclude_override_frees_a_place_and_is_recorded(campaign: Campaign) -> None:
    df = build_frame(unit_entries(12))
    ov = QuotaOverride("p03", "exclude", by="刘审核", at=OP_AT, reason="单位撤回该作品")
    out = apply_quotas(campaign, df, [ov])
    assert sorted(out) == ["p03", "p12"]
    f = out["p03"]
    assert f.code == "Q-QUOTA" and f.value == "3" and f.limit == "10"
    assert "刘审核" in f.message_zh and "单位撤回该作品" in f.message_zh and "2022-11-02T10:00:00+08:00" in f.message_zh
    assert "excluded by operator 刘审核" in f.message_en
    # p12 is now 11th of the 11 entries still counted.
    assert out["p12"].value == "11" and "entry 11 of 11" in out["p12"].message_en


def test_keep_override_is_additional(campaign: Campaign) -> None:
    df = build_frame(unit_entries(12))
    keep_late = QuotaOverride("p12", "keep", by="刘审核", at=OP_AT, reason="组委会同意补报")
    assert sorted(apply_quotas(campaign, df, [keep_late])) == ["p11"]
    # A keep on an entry inside the quota changes nothing for the others.
    keep_early = QuotaOverride("p01", "keep", by="刘审核", at=OP_AT, reason="确认")
    assert sorted(apply_quotas(campaign, df, [keep_early])) == ["p11", "p12"]


def test_overrides_survive_a_re_evaluation(campaign: Campaign) -> None:
    overrides = [
        QuotaOverride("p12", "keep", by="刘审核", at=OP_AT, reason="组委会同意补报"),
        QuotaOverride("p02", "exclude", by="刘审核", at=OP_AT, reason="重复报送"),
    ]
    first = apply_quotas(campaign, build_frame(unit_entries(12)), overrides)
    assert sorted(first) == ["p02"]  # p02 frees a place for p11; p12 is kept by the operator
    # Two more entries arrive; the same overrides are applied to the grown frame.
    second = apply_quotas(campaign, build_frame(unit_entries(14)), overrides)
    assert sorted(second) == ["p02", "p13", "p14"]
    assert "p12" not in second
    assert second["p14"].value == "13"  # counted: 14 entries less the excluded one


def test_latest_override_wins_and_unknown_ids_are_logged(campaign: Campaign, caplog: pytest.LogCaptureFixture) -> None:
    df = build_frame(unit_entries(11))
    overrides = [
        QuotaOverride("p11", "keep", by="甲", at=OP_AT, reason="先同意"),
        QuotaOverride("p11", "exclude", by="乙", at=OP_AT + timedelta(hours=1), reason="后撤销"),
        QuotaOverride("gone", "exclude", by="乙", at=OP_AT, reason="已删除"),
    ]
    with caplog.at_level(logging.WARNING, logger="kepu.intake.eligibility_rules"):
        out = apply_quotas(campaign, df, overrides)
    assert sorted(out) == ["p11"] and "后撤销" in out["p11"].message_zh
    assert any("gone" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"decision": "maybe"}, "decision"),
        ({"by": " "}, "operator"),
        ({"reason": ""}, "reason"),
        ({"at": datetime(2022, 11, 2, 10, 0)}, "time zone"),
    ],
)
def test_override_requires_who_when_why(kw: dict[str, Any], needle: str) -> None:
    args: dict[str, Any] = {"submission_id": "p01", "decision": "keep", "by": "甲", "at": OP_AT, "reason": "理由"}
    args.update(kw)
    with pytest.raises(ValueError, match=needle):
        QuotaOverride(**args)


# --- channels --------------------------------------------------------------------------------------


def test_channel_missing_or_unknown(campaign: Campaign) -> None:
    df = build_frame([row("none", BASE, channel=None), row("odd", BASE, channel="vip"), row("ok", BASE)])
    out = channel_findings(campaign, df)
    assert sorted(out) == ["none", "odd"]
    assert out["none"].code == "Q-CHANNEL" and out["none"].severity == "warning"
    assert "未注明报送渠道" in out["none"].message_zh
    assert out["odd"].value == "vip" and "unknown channel" in out["odd"].message_en


def test_membership_judged_only_with_a_roster(campaign: Campaign) -> None:
    df = build_frame(
        [
            row("member", BASE, channel="unit_member", entity="深圳 市科技馆"),
            row("stranger", BASE, channel="unit_member", entity="某公司"),
            row("person", BASE, channel="individual_member", entity="赵六"),
            row("open", BASE, channel="other", entity="某公司"),
        ]
    )
    assert channel_findings(campaign, df) == {}
    out = channel_findings(campaign, df, roster={"深圳市科技馆", "钱七"})
    assert sorted(out) == ["person", "stranger"]
    assert "不在会员名录中" in out["stranger"].message_zh and "member roster" in out["stranger"].message_en


# --- deadline --------------------------------------------------------------------------------------


def test_deadline_second_exact(campaign: Campaign) -> None:
    df = build_frame(
        [
            row("at", "2022-10-31T23:59:59+08:00"),
            row("fraction", "2022-10-31T23:59:59.600+08:00"),
            row("next", "2022-11-01T00:00:00+08:00"),
        ]
    )
    out = deadline_findings(campaign, df)
    assert sorted(out) == ["next"]
    f = out["next"]
    assert (f.code, f.severity) == ("D-LATE", "error")
    assert (f.value, f.limit) == ("2022-11-01T00:00:00+08:00", "2022-10-31T23:59:59+08:00")
    assert "截止时间" in f.message_zh and "deadline" in f.message_en


def test_deadline_compares_absolute_time(campaign: Campaign) -> None:
    df = build_frame(
        [
            # 10:00 UTC on the 31st is 18:00 the same day in Beijing: on time.
            row("utc-same-day", datetime(2022, 10, 31, 10, 0, tzinfo=UTC)),
            # 15:59:59 UTC is 23:59:59 in Beijing: the last on-time second.
            row("utc-last-second", "2022-10-31T15:59:59Z"),
            # 16:00 UTC on the 31st is already 1 November in Beijing.
            row("utc-next-day", "2022-10-31T16:00:00+00:00"),
        ]
    )
    out = deadline_findings(campaign, df)
    assert sorted(out) == ["utc-next-day"]
    assert out["utc-next-day"].value == "2022-11-01T00:00:00+08:00"


def test_province_extension(extended: Campaign) -> None:
    late = "2022-11-10T12:00:00+08:00"
    df = build_frame(
        [
            row("gd", late, province="广东"),
            row("bj", late, province="北京市", entity="北京市科协"),
            row("gd-too-late", "2022-11-16T00:00:00+08:00", province="广东省"),
            row("gd-on-time", "2022-10-30T12:00:00+08:00"),
        ]
    )
    out = deadline_findings(extended, df)
    assert sorted(out) == ["bj", "gd", "gd-too-late"]
    gd = out["gd"]
    assert (gd.code, gd.severity, gd.limit) == ("D-EXTENDED", "info", "2022-11-15T23:59:59+08:00")
    assert "疫情延期" in gd.message_zh and "inside the extension" in gd.message_en
    assert out["bj"].code == "D-LATE" and out["bj"].limit == "2022-10-31T23:59:59+08:00"
    too_late = out["gd-too-late"]
    assert too_late.code == "D-LATE" and "含延期" in too_late.message_zh


def test_channel_extension(extended: Campaign) -> None:
    df = build_frame(
        [
            row("member", "2022-11-03T08:00:00+08:00", channel="unit_member", province="北京市"),
            row("provincial", "2022-11-03T08:00:00+08:00", channel="provincial", province="北京市"),
        ]
    )
    out = deadline_findings(extended, df)
    assert (out["member"].code, out["provincial"].code) == ("D-EXTENDED", "D-LATE")
    assert "会员单位补报" in out["member"].message_zh


def test_applicable_deadline(extended: Campaign, campaign: Campaign) -> None:
    assert applicable_deadline(campaign, "provincial", "广东省") == campaign.deadline.at
    assert applicable_deadline(extended, "provincial", "北京市").isoformat() == "2022-10-31T23:59:59+08:00"
    assert applicable_deadline(extended, "other", "广东").isoformat() == "2022-11-15T23:59:59+08:00"
    assert applicable_deadline(extended, "unit_member", "北京").isoformat() == "2022-11-05T23:59:59+08:00"
    # Both apply: the later end wins.
    assert applicable_deadline(extended, "unit_member", "广东省").isoformat() == "2022-11-15T23:59:59+08:00"
    assert applicable_deadline(extended, None, None) == extended.deadline.at


def test_naive_times_are_refused(campaign: Campaign) -> None:
    with pytest.raises(FrameError, match="no time zone"):
        build_frame([row("n", "2022-10-31T23:00:00")])
    df = build_frame([row("n", "2022-10-31T23:00:00+08:00")])
    naive = df.assign(received_at=pd.to_datetime(["2022-10-31T23:00:00"]))
    for check in (deadline_findings, apply_quotas, channel_findings):
        with pytest.raises(FrameError, match="naive"):
            check(campaign, naive)
