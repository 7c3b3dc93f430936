"""Assignment: never a conflict, balanced loads, a linking set, reproducible from the seed, clear errors."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import pytest

from kepu.campaign import Conflicts
from kepu.db.judging_records import JudgeRecord
from kepu.errors import JudgingError
from kepu.judging.assign import Plan, expertise_match, plan_assignment
from kepu.judging.review import Entry
from kepu.judging.roster import conflict_of

pytestmark = pytest.mark.unit

PROVINCES = ("北京市", "上海市", "广东省", "四川省", "湖北省", "浙江省", "江苏省", "陕西省", "河南省", "山东省")
BOTH = Conflicts(same_unit=True, same_province=True)


def entries(n: int = 120, *, kinds: tuple[str, ...] = ("video", "video", "video", "account")) -> list[Entry]:
    return [
        Entry(
            id=f"S{i:04d}",
            kind=kinds[i % len(kinds)],
            title=f"作品{i}",
            unit=f"{PROVINCES[i % len(PROVINCES)]}少年宫{i % 4}",
            province=PROVINCES[i % len(PROVINCES)],
            category=("物理", "生物", "天文")[i % 3],
            received_at=None,
            source_name=f"包{i}",
        )
        for i in range(n)
    ]


def judges(n: int = 15) -> list[JudgeRecord]:
    return [
        JudgeRecord(
            f"J{j:02d}",
            f"评委{j}",
            f"{PROVINCES[j % len(PROVINCES)]}大学",
            PROVINCES[j % len(PROVINCES)],
            (("物理", "生物", "天文", "科普号")[j % 4],),
        )
        for j in range(n)
    ]


def plan(
    seed: int = 11, *, es: list[Entry] | None = None, js: list[JudgeRecord] | None = None, **kw: Any
) -> tuple[Plan, list[Entry], list[JudgeRecord]]:
    es = es if es is not None else entries()
    js = js if js is not None else judges()
    args: dict[str, Any] = {"per_entry": 5, "min_cover": 3, "linking_set": 4, "seed": seed, "conflicts": BOTH, **kw}
    return plan_assignment(es, js, **args), es, js


def test_no_conflicted_pair_is_ever_assigned() -> None:
    p, es, js = plan()
    by_e = {e.id: e for e in es}
    by_j = {j.id: j for j in js}
    assert p.conflicts_avoided > 0  # the data does have conflicts to avoid
    for r in p.rows:
        e, j = by_e[r.submission_id], by_j[r.judge_id]
        assert conflict_of(j, e.unit, e.province, BOTH) is None, (r, e.province, j.province)
        assert e.province != j.province


def test_loads_are_balanced_and_every_entry_is_covered() -> None:
    p, es, js = plan()
    loads = Counter(r.judge_id for r in p.rows)
    assert set(loads) == {j.id for j in js}
    assert max(loads.values()) - min(loads.values()) <= 1, loads
    per_entry = Counter(r.submission_id for r in p.rows)
    assert all(per_entry[e.id] >= 5 for e in es)
    # One judge never gets the same entry twice.
    assert len({(r.judge_id, r.submission_id) for r in p.rows}) == len(p.rows)


def test_the_linking_set_is_scored_by_every_judge_without_a_conflict() -> None:
    p, es, js = plan()
    assert set(p.linking) == {"video", "account"} and all(len(v) == 4 for v in p.linking.values())
    by_e = {e.id: e for e in es}
    scored_by: dict[str, set[str]] = defaultdict(set)
    for r in p.rows:
        scored_by[r.submission_id].add(r.judge_id)
        assert r.linking == (r.submission_id in p.linking[by_e[r.submission_id].kind])
    for ids in p.linking.values():
        for sid in ids:
            allowed = {j.id for j in js if conflict_of(j, by_e[sid].unit, by_e[sid].province, BOTH) is None}
            assert scored_by[sid] == allowed


def test_same_seed_same_assignment_other_seed_another() -> None:
    a, _, _ = plan(seed=5)
    b, _, _ = plan(seed=5)
    c, _, _ = plan(seed=6)
    assert a.rows == b.rows and a.sha256 == b.sha256
    assert a.sha256 != c.sha256
    # Input order does not matter: the plan sorts what it is given.
    d, _, _ = plan(seed=5, es=list(reversed(entries())), js=list(reversed(judges())))
    assert d.sha256 == a.sha256


def test_positions_are_a_permutation_per_judge() -> None:
    p, _, _ = plan()
    by_judge: dict[str, list[int]] = defaultdict(list)
    for r in p.rows:
        by_judge[r.judge_id].append(r.position)
    assert all(sorted(v) == list(range(1, len(v) + 1)) for v in by_judge.values())


def test_expertise_is_preferred_when_balance_allows() -> None:
    with_pref, es, js = plan(prefer_expertise=True)
    without, _, _ = plan(prefer_expertise=False)
    assert with_pref.expertise_matches > without.expertise_matches
    by_e = {e.id: e for e in es}
    by_j = {j.id: j for j in js}
    # An account expert (科普号) matches accounts through their kind.
    assert expertise_match(by_j["J03"], next(e for e in es if e.kind == "account"))
    assert not expertise_match(by_j["J03"], by_e["S0000"])


def test_uncoverable_entries_are_named() -> None:
    # Three judges, all from 北京市: the 北京 entries have no judge without a conflict.
    js = [JudgeRecord(f"J{j}", f"评委{j}", f"北京大学{j}", "北京市") for j in range(3)]
    es = entries(20)
    with pytest.raises(JudgingError) as info:
        plan_assignment(es, js, per_entry=2, min_cover=2, linking_set=0, seed=1, conflicts=BOTH)
    beijing = sorted(e.id for e in es if e.province == "北京市")
    assert "cannot be covered" in str(info.value) and "没有足够的无回避评委" in str(info.value)
    assert sorted(p.split()[0] for p in info.value.problems) == beijing


def test_whole_panel_round_gives_every_entry_to_every_judge_without_a_conflict() -> None:
    es = entries(12, kinds=("video",))
    js = judges(6)
    p = plan_assignment(es, js, per_entry=None, min_cover=3, linking_set=0, seed=1, conflicts=BOTH)
    for e in es:
        allowed = {j.id for j in js if j.province != e.province}
        assert {r.judge_id for r in p.rows if r.submission_id == e.id} == allowed


def test_unbalanceable_loads_are_an_error_naming_the_judges() -> None:
    # J2 may only score the two 上海 entries; the others could take many more.
    es = [
        Entry(f"S{i}", "video", None, f"单位{i}", "北京市" if i < 10 else "上海市", None, None, f"包{i}")
        for i in range(12)
    ]
    js = [
        JudgeRecord("J0", "甲", "某大学", "广东省"),
        JudgeRecord("J1", "乙", "某学院", "四川省"),
        JudgeRecord("J2", "丙", "北京某馆", "北京市"),
    ]
    with pytest.raises(JudgingError) as info:
        plan_assignment(es, js, per_entry=2, min_cover=2, linking_set=0, seed=1, conflicts=BOTH)
    assert "balanced loads" in str(info.value)
    assert [p.split()[0] for p in info.value.problems] == ["J2"]


def test_a_larger_call_is_assigned_quickly_and_balanced() -> None:
    import time

    es, js = entries(2000), judges(40)
    started = time.perf_counter()
    p = plan_assignment(es, js, per_entry=5, min_cover=3, linking_set=6, seed=2022, conflicts=BOTH)
    elapsed = time.perf_counter() - started
    loads = Counter(r.judge_id for r in p.rows)
    assert max(loads.values()) - min(loads.values()) <= 1
    assert elapsed < 20, elapsed
