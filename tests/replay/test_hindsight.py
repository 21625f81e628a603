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


# ---------------------------------------------------------------- the relabeler over a real store
def _goal_store(units: int = 3, length: int = 6):
    import torch

    from hippogym import Episode, MemoryStore

    store = MemoryStore(embed_dim=4, capacity=256, eviction="fifo")
    for u in range(units):
        pos = torch.arange(length + 1, dtype=torch.float32).reshape(-1, 1) + 100 * u
        obs = {"observation": pos, "achieved_goal": pos.clone(), "desired_goal": torch.full((length + 1, 1), -1.0)}
        ep = Episode(
            observations=obs,
            actions=torch.zeros(length, 1),
            rewards=-torch.ones(length),
            truncated=[0] * (length - 1) + [1],
        )
        store.add(ep, torch.nn.functional.normalize(torch.ones(length, 4), dim=1))
    return store


def _reward(achieved, desired, infos):
    assert len(infos) == len(achieved)
    return -(np.abs(np.asarray(achieved) - np.asarray(desired)).sum(axis=-1) > 0).astype(np.float32)


def test_relabeler_future_goals_and_rewards():
    from hippogym.replay.hindsight import HindsightRelabeler

    store = _goal_store()
    rows = np.arange(store.num_transitions).repeat(4)
    fields = store.gather_np(rows)
    relabeler = HindsightRelabeler(_reward, n_sampled_goal=4, goal_selection_strategy="future", seed=0)
    mask, obs, nxt, rewards = relabeler.relabel(
        store, rows, fields["observations"], fields["next_observations"], fields["rewards"]
    )
    assert mask.sum() == int(0.8 * rows.size)
    # Untouched rows keep their goal and reward; the gathered arrays themselves are not modified.
    assert (obs["desired_goal"][~mask] == -1).all() and (fields["observations"]["desired_goal"] == -1).all()
    assert (rewards[~mask] == -1).all()
    goal = obs["desired_goal"][mask, 0]
    here = fields["observations"]["observation"][mask, 0]
    # future: a goal reached at or after this step, inside the same unit (same hundred).
    assert (goal >= here + 1).all() and (goal // 100 == here // 100).all()
    assert (nxt["desired_goal"][mask] == obs["desired_goal"][mask]).all()
    want = _reward(
        fields["next_observations"]["achieved_goal"][mask], obs["desired_goal"][mask], [{}] * int(mask.sum())
    )
    np.testing.assert_array_equal(rewards[mask], want)
    assert (rewards[mask] == 0).any() and (rewards[mask] == -1).any()


def test_relabeler_final_and_nstep_window():
    from hippogym.replay.hindsight import HindsightRelabeler

    store = _goal_store(units=1, length=6)
    rows = np.zeros(10, dtype=np.int64)
    fields = store.gather_np(rows)
    relabeler = HindsightRelabeler(_reward, n_sampled_goal=9, goal_selection_strategy="final", seed=1)
    steps = np.full(10, 3)
    mask, obs, _, rewards = relabeler.relabel(
        store, rows, fields["observations"], fields["next_observations"], fields["rewards"], window=(steps, 0.5)
    )
    assert mask.sum() == 9
    assert (obs["desired_goal"][mask] == 6).all()  # the unit's last next achieved goal
    # Window rows 0, 1, 2 reach 1, 2, 3, never 6: three rewards of -1 summed with gamma 0.5.
    assert rewards[mask] == pytest.approx([-1.75] * 9)


def test_relabeler_refuses_flat_observations():
    from hippogym.replay.hindsight import HindsightRelabeler

    with pytest.raises(ValidationError, match="observation_space"):
        HindsightRelabeler(_reward).check_observations(np.zeros((3, 2)))
    with pytest.raises(ValidationError, match="compute_reward"):
        HindsightRelabeler(None)
