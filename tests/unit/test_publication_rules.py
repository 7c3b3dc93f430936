"""Publication rules without services: contact data cut out, pushes tried again on 5xx and timeouts only,
idempotency keys, and the campaign file's certificate/publication/notification sections."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from kepu.campaign import PushPolicy, load_campaign, parse_campaign
from kepu.config import DEFAULT_CAMPAIGN_FILE
from kepu.errors import CampaignError
from kepu.publication.package import decode_text, file_contains, srt_to_vtt
from kepu.publication.platforms import IDEMPOTENCY_HEADER, TransientError, idempotency_key, push
from kepu.publication.privacy import REDACTED, ContactDataFound, check_clean, needles, scrub
from kepu.publication.report import STATES
from kepu.publication.steps import PlatformReported

pytestmark = pytest.mark.unit

POLICY = PushPolicy(attempts=4, backoff_s=2, max_backoff_s=5, timeout_s=3)


def test_contact_data_is_cut_out_of_texts() -> None:
    text = (
        "主创：张老师（电话：138-0013-8000，邮箱 zhang@example.cn），李同学 010-68518719；首播 2022-10-31，粉丝 12000"
    )
    clean = scrub(text, known=["13800138000"])
    assert "zhang@example.cn" not in clean and "138-0013-8000" not in clean and "68518719" not in clean
    assert "张老师" in clean and "李同学" in clean and "2022-10-31" in clean and "12000" in clean
    assert REDACTED in clean and "电话" not in clean
    # The submitter's own number is cut out whatever its shape; full-width @ too.
    assert scrub("微信号 wx-13800138000-号 欢迎关注", ["wx-13800138000-号"]) == f"微信号 {REDACTED} 欢迎关注"
    assert "example" not in scrub("邮件 a.b＠example.org")
    assert scrub(None) == "" and scrub("  ") == ""


def test_files_are_checked_for_the_submitters_contacts(tmp_path: Path) -> None:
    pats = needles(["138 0013 8000", "a@example.cn", None])
    assert b"13800138000" in pats and "a@example.cn".encode("utf-16-le") in pats
    check_clean(b"nothing here", pats, "x")
    with pytest.raises(ContactDataFound):
        check_clean("联系 a@example.cn".encode("utf-16-le"), pats, "x")
    big = tmp_path / "big.bin"
    big.write_bytes(b"\0" * (8 << 20) + b"1380013" + b"8000" + b"\0" * 100)  # across the chunk boundary
    assert file_contains(big, pats)
    assert not file_contains(big, needles(["a@example.cn"]))


def test_subtitles_decode_and_convert() -> None:
    assert decode_text("字幕".encode("gb18030")) == "字幕"
    assert decode_text("\ufeff字幕".encode()) == "字幕"
    vtt = srt_to_vtt("1\r\n00:00:01,500 --> 00:00:02,000\r\n你好\r\n")
    assert vtt.startswith("WEBVTT\n\n1\n00:00:01.500 --> 00:00:02.000")


class FakePlatform:
    def __init__(self, answers: list[Any]) -> None:
        self.answers = list(answers)
        self.calls: list[dict[str, Any]] = []

    def post(self, endpoint: str, payload: dict[str, Any], headers: dict[str, str], timeout: float) -> tuple[int, str]:
        self.calls.append({"endpoint": endpoint, "headers": dict(headers), "timeout": timeout})
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_5xx_and_timeouts_are_tried_again_with_growing_waits() -> None:
    waits: list[float] = []
    platform = FakePlatform([(500, "busy"), TransientError("timed out"), (503, ""), (201, '{"id": "kp-77"}')])
    result = push(platform, "works", {"a": 1}, "key-1", POLICY, sleep=waits.append)
    assert (result.status, result.attempts, result.http_status, result.remote_id) == ("accepted", 4, 201, "kp-77")
    assert waits == [2, 4, 5]  # doubled, capped at max_backoff_s
    assert {c["headers"][IDEMPOTENCY_HEADER] for c in platform.calls} == {"key-1"}
    assert platform.calls[0]["timeout"] == 3 and platform.calls[0]["endpoint"] == "works"


def test_4xx_is_final_and_exhaustion_is_a_failure() -> None:
    waits: list[float] = []
    refused = push(FakePlatform([(422, "synopsis too long")]), "works", {}, "k", POLICY, sleep=waits.append)
    assert (refused.status, refused.attempts, refused.detail, waits) == ("rejected", 1, "synopsis too long", [])
    down = push(FakePlatform([(502, "")] * 4), "works", {}, "k", POLICY, sleep=waits.append)
    assert (down.status, down.attempts, down.http_status) == ("failed", 4, 502)


def test_each_report_state_is_a_key_of_the_reports_result() -> None:
    # write_reports counts the works of each state under the state's name, next to "connected".
    assert set(PlatformReported.__annotations__) == {"connected", *STATES}


def test_idempotency_keys_follow_the_package() -> None:
    a = idempotency_key("2022", "douyin", "s1", "a" * 64)
    assert a == idempotency_key("2022", "douyin", "s1", "a" * 64)
    assert a != idempotency_key("2022", "douyin", "s1", "b" * 64)
    assert a != idempotency_key("2022", "wechat", "s1", "a" * 64)


def _campaign_text(edit: Any) -> str:
    data = yaml.safe_load(DEFAULT_CAMPAIGN_FILE.read_text(encoding="utf-8"))
    edit(data)
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def test_the_campaign_file_holds_the_certificates_and_their_texts() -> None:
    c = load_campaign(DEFAULT_CAMPAIGN_FILE)
    assert [t.key for t in c.certificates.types] == ["residency", "excellent_video", "creation_star"]
    assert c.certificates.type("creation_star").issue_on == "recorded"
    assert c.publication.awards == ["excellent_video"] and [p.key for p in c.publication.platforms] == [
        "kepu_china",
        "kechuang_zhumeng",
        "wechat",
        "douyin",
    ]
    assert c.notifications.smtp_conn_ids == ["kepu_smtp", "smtp_default"]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["certificates"]["types"][0].update(body_zh="{holder}{phone}"), "unknown placeholder"),
        (lambda d: d["certificates"]["types"][2].pop("record"), "record"),
        (lambda d: d["certificates"].update(number_prefix="kp-2022"), "number_prefix"),
        (lambda d: d["publication"]["platforms"].append(dict(d["publication"]["platforms"][0])), "repeat"),
        (lambda d: d["publication"]["push"].update(attempts=0), "attempts"),
        (lambda d: d["notifications"].update(subject_zh="{oops"), "subject_zh"),
        (lambda d: d["certificates"].update(colour="red"), "colour"),
    ],
)
def test_bad_sections_are_errors_naming_the_key(edit: Any, message: str) -> None:
    with pytest.raises(CampaignError, match=message):
        parse_campaign(_campaign_text(edit), "bad.yaml")
