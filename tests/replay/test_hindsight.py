"""Goal rows for hindsight relabelling stay inside the sampled row's unit."""

from __future__ import annotations

import numpy as np
import pytest

from hippogym.errors import ValidationError
from hippogym.replay.hindsight import GoalSelectionStrategy, goal_rows, her_ratio, parse_strategy


def _units():
    starts = np.array([0, 0, 0, 5, 5])
    ends = np.array([5, 5, 5, 8, 8])
    rows = np.array([0, 2, 4, 5, 7])
    return rows, starts, ends


def test_final_is_the_last_row_of_the_unit():
    rows, starts, ends = _units()
    assert goal_rows(rows, starts, ends, "final", np.random.default_rng(0)).tolist() == [4, 4, 4, 7, 7]


@pytest.mark.parametrize("strategy", ["future", "episode"])
def test_future_and_episode_bounds_and_coverage(strategy):
    rows, starts, ends = _units()
    rng = np.random.default_rng(1)
    seen = np.stack([goal_rows(rows, starts, ends, strategy, rng) for _ in range(400)])
    low = rows if strategy == "future" else starts
    assert (seen >= low).all() and (seen < ends).all()
    # Every admissible row is drawn (uniform over the range), e.g. row 1 for 'episode' from row 2.
    for j in range(len(rows)):
        assert set(np.unique(seen[:, j])) == set(range(low[j], ends[j]))


def test_ratio_and_parsing():
    assert her_ratio(4) == pytest.approx(0.8) and her_ratio(0) == 0.0
    assert parse_strategy("FUTURE") is GoalSelectionStrategy.FUTURE
    sb3_her = pytest.importorskip("stable_baselines3.her.goal_selection_strategy")
    assert parse_strategy(sb3_her.GoalSelectionStrategy.FINAL) is GoalSelectionStrategy.FINAL
    with pytest.raises(ValidationError, match="goal_selection_strategy"):
        parse_strategy("sometimes")
    with pytest.raises(ValidationError, match="n_sampled_goal"):
        her_ratio(-1)
