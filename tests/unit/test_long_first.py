"""The suite's order under pytest-xdist (tests/conftest.py): each worker's run starts with its share of the long tests."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from conftest import long_first

pytestmark = pytest.mark.unit


@dataclass(eq=False)
class Case:
    module: str
    name: str
    seconds: float = 0.0


def runs(order: list[Case], workers: int) -> list[list[Case]]:
    """The consecutive runs pytest-xdist's worksteal hands out first: the rest divided by the workers left."""
    out, left, at = [], len(order), 0
    for w in range(workers):
        size = left // (workers - w)
        out.append(order[at : at + size])
        at, left = at + size, left - size
    return out


def order(tests: list[Case], workers: int) -> list[Case]:
    return long_first(tests, workers, lambda t: t.seconds, lambda t: t.module)


def test_each_worker_starts_with_long_tests_and_a_module_stays_together() -> None:
    short = [Case(f"unit_{i // 10}", f"t{i}") for i in range(60)]
    long = [
        Case("operator", "browser", 500),
        Case("celery", "intake", 180),
        Case("celery", "killed", 160),
        Case("cleanup", "sigint", 110),
        Case("cleanup", "sigterm", 110),
        Case("backfill", "window", 140),
        Case("dags", "judging", 60),
    ]
    tests = short[:20] + long[:3] + short[20:45] + long[3:] + short[45:]
    got = order(tests, 3)
    assert sorted(map(id, got)) == sorted(map(id, tests))  # every test once
    first = runs(got, 3)
    assert [len(r) for r in first] == [22, 22, 23]
    heads = [[t for t in run if t.seconds] for run in first]
    # Longest first to the least loaded: operator 500 | celery 340 | cleanup 220, then backfill 140 to the third
    # (360) and judging 60 to the second (400).
    assert [[t.name for t in h] for h in heads] == [
        ["browser"],
        ["intake", "killed", "judging"],
        ["sigint", "sigterm", "window"],
    ]
    for run, head in zip(first, heads, strict=True):
        assert run[: len(head)] == head  # at the front of the run
    # The short tests keep their order.
    assert [t for t in got if not t.seconds] == short


def test_without_workers_or_long_tests_the_order_is_kept() -> None:
    tests = [Case("a", "x", 100), Case("b", "y"), Case("c", "z", 50)]
    assert order(tests, 0) == order(tests, 1) == tests
    plain = [Case("a", str(i)) for i in range(5)]
    assert order(plain, 3) == plain
