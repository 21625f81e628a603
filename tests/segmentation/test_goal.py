"""GoalAchievementSegmenter: cuts after goal steps (goal_fn on the next observation, or an info flag)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from segment_streams import run  # noqa: E402  (tests/segmentation on sys.path)

from hippogym import Episode, GoalAchievementSegmenter
from hippogym.errors import ValidationError


def test_goal_fn_on_the_next_observation_cuts_after_the_reaching_step():
    # obs = [episode, step]; the goal is reaching step 3 or step 6 (next_obs[1] in {3, 6})
    seg = GoalAchievementSegmenter(lambda s: bool(s[1] in (3.0, 6.0)))
    eps = run(seg, [8, 2])
    assert [(e.episode_id, e.start_step, len(e)) for e in eps] == [(0, 0, 3), (0, 3, 3), (0, 6, 2), (1, 0, 2)]
    assert [bool(e.terminated[-1]) for e in eps] == [False, False, True, True]
    assert eps[0].next_states[-1].tolist() == [0.0, 3.0]


def test_min_length_suppresses_early_goals_and_info_flag_is_the_default_rule():
    seg = GoalAchievementSegmenter(min_length=3)
    eps = run(seg, [7], infos=lambda e, t, last: {"is_success": t in (0, 3, 4)})
    # goal at t=0 is too early (length 1); t=3 cuts (length 4); t=4 too early (length 1)
    assert [(e.start_step, len(e)) for e in eps] == [(0, 4), (4, 3)]
    assert eps[-1].success is False  # the last step's is_success
    with pytest.raises(ValidationError, match="goal_fn"):
        GoalAchievementSegmenter("not callable")
    with pytest.raises(ValidationError, match="min_length"):
        GoalAchievementSegmenter(min_length=0)


def test_dict_observations_reach_goal_fn_as_dicts_and_offline_matches_streaming():
    seen = []

    def goal(obs):
        seen.append(sorted(obs))
        return bool(obs["pos"][0] >= 2)

    seg = GoalAchievementSegmenter(goal)
    pos = np.array([[0.0], [1.0], [2.0], [0.0], [2.0], [1.0]], np.float32)
    ep = Episode(states={"pos": pos, "v": np.zeros((6, 2), np.float32)}, actions=np.zeros(5), rewards=np.zeros(5))
    pieces = seg.segment(ep)
    assert [(p.start_step, len(p)) for p in pieces] == [(0, 2), (2, 2), (4, 1)]
    assert seen[0] == ["pos", "v"]
    assert seg.num_streams == 0  # offline segmentation leaves the segmenter's streams alone
    assert torch.equal(pieces[1].states["pos"][:, 0], torch.tensor([2.0, 0.0]))
