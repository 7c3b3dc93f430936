"""The DAG kit's pure parts: default args, operator messages, map labels and caps, the forms' choices."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException

from kepu.campaign import load_campaign
from kepu.config import DEFAULT_CAMPAIGN_FILE
from kepu.errors import AwardError, CampaignError, ConfigError, JudgingError, MediaToolError, StorageError
from kepu.orchestration.dagkit import (
    NOT_RETRIED,
    campaign_choices,
    default_args,
    enum_schema,
    map_cap,
    map_label,
    operator_errors,
    operator_message,
)

pytestmark = pytest.mark.unit


def test_default_args_are_shared_and_a_fresh_dict_each_time() -> None:
    one, two = default_args(), default_args(retry_delay=timedelta(minutes=2))
    assert one == {
        "owner": "kepu",
        "retries": 2,
        "retry_delay": timedelta(seconds=20),
        "retry_exponential_backoff": True,
    }
    assert two == {**one, "retry_delay": timedelta(minutes=2)}
    one["retries"] = 9
    assert default_args()["retries"] == 2


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (JudgingError("没有评委名单 · no roster", ["第 3 行 row 3"]), "没有评委名单 · no roster:\n  - 第 3 行 row 3"),
        (AwardError("结果尚未发布 · results not released"), "结果尚未发布 · results not released"),
        (
            CampaignError("/c/2022.yaml", ["line 4: unknown key 'x'", "line 9: missing key y"]),
            "活动文件 · campaign file /c/2022.yaml:\n  - line 4: unknown key 'x'\n  - line 9: missing key y",
        ),
        (
            CampaignError("<campaign>", ["没有评审阶段 'x' · no judging stage 'x'"]),
            "活动文件 · campaign file:\n  - 没有",
        ),
        (ConfigError("KEPU_BATCH_SIZE must be at least 1, got 0"), "设置有误 · a setting is wrong: KEPU_BATCH_SIZE"),
    ],
)
def test_an_operator_error_fails_the_task_without_retries_and_says_so_in_both_languages(
    error: Exception, expected: str
) -> None:
    with pytest.raises(AirflowFailException) as raised, operator_errors():
        raise error
    message = str(raised.value)
    assert message.startswith(expected) and message.endswith(NOT_RETRIED), message
    assert raised.value.__cause__ is error
    assert message == operator_message(error)  # type: ignore[arg-type]


@pytest.mark.parametrize("error", [StorageError("store down"), MediaToolError(["ffmpeg"], "crashed"), OSError("x")])
def test_other_errors_pass_through_to_be_retried(error: Exception) -> None:
    with pytest.raises(type(error)), operator_errors():
        raise error


def test_map_labels_name_the_first_item_and_count_the_rest() -> None:
    assert map_label(["s0001"]) == "s0001"
    assert map_label(["s0001", "s0002", "s0003"]) == "s0001 (+2)"
    assert map_label(["s0004", "s0005"], prefix="wechat") == "wechat: s0004 (+1)"


def test_map_cap_never_exceeds_max_map_length(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW__CORE__MAX_MAP_LENGTH", raising=False)
    assert map_cap(256) == 256 and map_cap(5000) == 1024
    monkeypatch.setenv("AIRFLOW__CORE__MAX_MAP_LENGTH", "16")
    assert map_cap(32) == 16 and map_cap(8) == 8


def test_form_choices_come_from_the_campaign_file(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [k for k in os.environ if k.startswith("KEPU_")]:
        monkeypatch.delenv(name)
    campaign = load_campaign(DEFAULT_CAMPAIGN_FILE)
    choices = campaign_choices()
    assert list(choices.scoring_stages) == [s.key for s in campaign.judging.scoring_stages]
    assert list(choices.platforms) == [p.key for p in campaign.publication.platforms]
    assert choices.scoring_stages["first_round"] == "初评 first_round" and not choices.problem
    assert enum_schema(choices.platforms)["enum"] == list(choices.platforms)


def test_an_unreadable_campaign_file_leaves_the_forms_without_choices(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    broken = tmp_path / "2022.yaml"
    broken.write_text("campaign: [unclosed\n", encoding="utf-8")
    monkeypatch.setenv("KEPU_CAMPAIGN_FILE", str(broken))
    choices = campaign_choices()
    assert choices.scoring_stages == {} and choices.platforms == {}
    assert "活动文件无法读取" in choices.problem and str(broken) in choices.problem
    assert enum_schema(choices.scoring_stages) == {}
