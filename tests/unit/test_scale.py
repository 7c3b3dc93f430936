"""The plan of the scale campaign (kepu.devtools.scale): who sends what, and what each entry must get."""

from __future__ import annotations

import unicodedata
from collections import Counter

import pytest

from kepu.campaign import load_campaign
from kepu.config import DEFAULT_CAMPAIGN_FILE
from kepu.devtools.scale import plan_scale_campaign
from kepu.intake.packages import parse_folder_name

pytestmark = pytest.mark.unit

CAMPAIGN = load_campaign(DEFAULT_CAMPAIGN_FILE)


def test_a_thousand_entries_like_a_national_call() -> None:
    entries = plan_scale_campaign(1000)
    assert [e.index for e in entries] == list(range(1000))
    assert len({e.folder for e in entries}) == 1000
    assert len({e.title for e in entries}) == 1000  # sheet rows match packages by title
    for e in entries[:50]:
        parsed = parse_folder_name(e.folder, CAMPAIGN)
        assert (parsed.province, parsed.title) == (e.province, e.title)
        assert parsed.unit == unicodedata.normalize("NFKC", e.unit)  # （个人） is read as (个人)
    assert len({e.province for e in entries}) >= 30
    assert set(Counter(e.channel for e in entries)) == {ch.label_zh for ch in CAMPAIGN.channels.values()}
    kinds = Counter(e.kind for e in entries)
    assert 50 <= kinds["account"] <= 200
    codes = Counter(code for e in entries for code in e.codes)
    assert set(codes) == {
        "Q-QUOTA",
        "D-LATE",
        "M-UNREADABLE",
        "M-VIDEO-MISSING",
        "M-COVER-MISSING",
        "V-NO-AUDIO",
        "K-FANS",
        "K-WORKS",
        # brought along: an empty folder has no synopsis or form either; unreadable videos made alike
        "M-SUMMARY-MISSING",
        "M-FORM-MISSING",
        "O-DUPLICATE-FILE",
    }
    empty = next(e for e in entries if e.expected == "M-VIDEO-MISSING")
    assert {"M-COVER-MISSING", "M-SUMMARY-MISSING", "M-FORM-MISSING"} <= empty.codes
    failing = sum(1 for e in entries if e.verdict == "fail")
    assert 0.05 * len(entries) < failing < 0.35 * len(entries)


def test_quota_marks_follow_the_campaign() -> None:
    """Per unit, channel and kind, the earliest received up to the quota are kept, the rest marked."""
    entries = plan_scale_campaign(600)
    groups: dict[tuple[str, str, str], list[bool]] = {}
    for e in sorted(entries, key=lambda e: (e.received_at, e.index)):
        groups.setdefault((e.unit, e.channel, e.kind), []).append(e.over_quota)
    quota = {ch.label_zh: ch.quota for ch in CAMPAIGN.channels.values()}
    for (_, channel, kind), marks in groups.items():
        q = quota[channel].for_kind(kind)  # type: ignore[arg-type]
        assert marks == [False] * min(q, len(marks)) + [True] * max(0, len(marks) - q)
    assert sum(e.over_quota for e in entries) > 5


def test_a_smaller_campaign_is_the_start_of_a_larger_one() -> None:
    small, large = plan_scale_campaign(40), plan_scale_campaign(400)
    assert [(e.folder, e.expected) for e in small] == [(e.folder, e.expected) for e in large[:40]]
    assert plan_scale_campaign(0) == []
