"""benchmarks/rl/common.py::evaluate: a recurrent policy keeps its state within an episode."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from benchmarks.rl.common import evaluate


class CountingPolicy:
    """Acts like sb3-contrib's recurrent policies: ``predict`` takes and returns a hidden state.

    Its "memory" is the step count since the last episode start; it walks right for as long as the
    count says the episode is young, so it only reaches the corridor's end if the state is carried.
    """

    def __init__(self) -> None:
        self.starts: list[bool] = []

    def predict(self, obs, state=None, episode_start=None, deterministic=False):
        self.starts.append(bool(episode_start[0]))
        count = 0 if state is None or episode_start[0] else int(state[0])
        return np.array(1 if count < 10 else 0), np.array([count + 1])


def test_a_recurrent_policy_keeps_its_state_through_the_episode_and_resets_at_the_next():
    import hippogym  # noqa: F401 - registers the corridor

    env = gym.make("hippogym/SparseCorridor-v0", length=6)
    policy = CountingPolicy()
    out = evaluate(policy, env, episodes=3, seed=0)
    assert out["eval_success"] == 1.0 and out["eval_length"] == 5.0  # walked right all the way, each time
    # episode_start is True exactly at the first step of every episode.
    assert policy.starts == [True, False, False, False, False] * 3


def test_epsilon_steps_still_show_the_observation_to_the_policy():
    import hippogym  # noqa: F401

    env = gym.make("hippogym/SparseCorridor-v0", length=6)
    policy = CountingPolicy()
    out = evaluate(policy, env, episodes=2, seed=0, epsilon=0.5)
    assert len(policy.starts) == 2 * out["eval_length"]  # one predict call per step, random or not
