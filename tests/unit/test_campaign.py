from __future__ import annotations

from pathlib import Path

import pytest

from kepu.campaign import load_campaign, parse_campaign
from kepu.cli import main
from kepu.config import DEFAULT_CAMPAIGN_FILE
from kepu.errors import CampaignError
from kepu.rules import CODES

pytestmark = pytest.mark.unit

TEXT = DEFAULT_CAMPAIGN_FILE.read_text(encoding="utf-8")


def test_2022_file_carries_the_rules_of_the_notice() -> None:
    c = load_campaign(DEFAULT_CAMPAIGN_FILE)
    assert c.id == "2022"
    assert c.deadline.at.isoformat() == "2022-10-31T23:59:59+08:00"
    assert {k: (v.quota.account, v.quota.video) for k, v in c.channels.items()} == {
        "provincial": (5, 10),
        "unit_member": (2, 3),
        "individual_member": (1, 1),
        "other": (1, 1),
    }
    assert (c.accounts.min_works, c.accounts.min_followers) == (50, 1000)
    assert (c.video.duration_s.min, c.video.duration_s.max) == (180, 480)
    assert (c.video.min_width, c.video.min_height, c.video.aspect_ratio) == (1920, 1080, (16, 9))
    assert c.video.size_bytes.error_max == 300 * 2**20
    assert c.package.synopsis_max_chars == 300
    assert (
        c.judging.awards.excellent_videos,
        c.judging.awards.excellent_accounts,
        c.judging.awards.best_videos,
    ) == (
        200,
        20,
        10,
    )
    assert [k.zh for k in c.judging.criteria["video"]][:5] == [
        "科学性",
        "知识性",
        "通俗性",
        "艺术性",
        "趣味性",
    ]
    assert set(c.findings) == set(CODES)
    assert c.finding("V-SIZE").soft_severity == "warning"


def _problems(text: str) -> list[str]:
    with pytest.raises(CampaignError) as info:
        parse_campaign(text, "bad.yaml")
    return info.value.problems


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), start=1) if needle in line)


def test_misspelt_key_is_named_with_its_line() -> None:
    bad = TEXT.replace("  min_followers: 1000", "  min_follower: 1000")
    problems = _problems(bad)
    line = _line_of(bad, "min_follower: 1000")
    assert any(f"line {line}: unknown key 'min_follower'" in p for p in problems), problems
    assert any("missing key accounts.min_followers" in p for p in problems)


def test_duplicate_key_is_an_error() -> None:
    bad = TEXT.replace("  min_works: 50", "  min_works: 50\n  min_works: 60")
    assert any("duplicate key 'min_works'" in p for p in _problems(bad))


def test_wrong_type_and_inconsistent_numbers() -> None:
    assert any("accounts.min_works" in p for p in _problems(TEXT.replace("min_works: 50", "min_works: many")))
    bad = TEXT.replace("error_min: 100000000", "error_min: 200000000")
    assert any("error_min <= warn_min" in p for p in _problems(bad))
    bad = TEXT.replace("weight: 0.25", "weight: 0.35")
    assert any("add up to 1.1" in p for p in _problems(bad))


def test_deadline_needs_an_offset_and_extensions_known_channels() -> None:
    assert any("timezone" in p for p in _problems(TEXT.replace('"2022-10-31T23:59:59+08:00"', '"2022-10-31T23:59:59"')))
    bad = TEXT.replace(
        "  extensions: []",
        '  extensions:\n    - {until: "2022-11-15T23:59:59+08:00", channels: [provinical]}',
    )
    assert any("unknown channel(s) provinical" in p for p in _problems(bad))


def test_finding_code_catalogue_must_be_complete() -> None:
    bad = "\n".join(line for line in TEXT.splitlines() if not line.strip().startswith("A-SYNC:"))
    assert any("lacks code(s) A-SYNC" in p for p in _problems(bad))


def test_not_yaml() -> None:
    assert _problems("a: [1, 2")[0].startswith("line")
    assert _problems("- just\n- a list\n") == ["the file is not a YAML mapping"]


def test_cli_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["campaign", "validate", str(DEFAULT_CAMPAIGN_FILE)]) == 0
    assert "valid" in capsys.readouterr().out
    bad = tmp_path / "2023.yaml"
    bad.write_text(TEXT.replace("  min_works: 50", "  min_wroks: 50"), encoding="utf-8")
    assert main(["campaign", "validate", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "min_wroks" in err and "line" in err
    assert main(["campaign", "validate", str(tmp_path / "missing.yaml")]) == 1
    assert "cannot read" in capsys.readouterr().err
