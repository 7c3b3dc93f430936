"""Batches of ids for mapped tasks (kepu.batches)."""

from __future__ import annotations

import pytest

from kepu.batches import plan_batches

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("n", "limit", "batch_size", "sizes"),
    [
        (0, 1024, 1, []),
        (3, 1024, 1, [1, 1, 1]),
        (2500, 1024, 1, [3] * 452 + [2] * 572),
        # A campaign of 1,000 under the default cap of 256 tasks a step: four entries a task.
        (1000, 256, 1, [4] * 232 + [3] * 24),
        # Short entries grouped by KEPU_BATCH_SIZE, never more than it in one task.
        (10, 256, 4, [4, 3, 3]),
        (8, 256, 4, [4, 4]),
        (3, 256, 4, [3]),
        # The cap wins over the batch size.
        (100, 5, 4, [20] * 5),
        # Nonsense limits still give every id one task.
        (2, 0, 0, [2]),
    ],
)
def test_plan_batches(n: int, limit: int, batch_size: int, sizes: list[int]) -> None:
    ids = [f"s{i}" for i in range(n)]
    batches = plan_batches(ids, limit, batch_size=batch_size)
    assert [i for b in batches for i in b] == ids
    assert [len(b) for b in batches] == sizes
    assert len(batches) <= max(1, limit)


def test_plan_batches_default_is_one_each() -> None:
    assert plan_batches(["a", "b"], 1024) == [["a"], ["b"]]
