"""hippogym/episode_checks.py: the field checks behind ``Episode(...)`` and ``Episode.from_validated``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hippogym.episode_checks import check_episode_fields, trusted_episode_fields
from hippogym.errors import ValidationError


def _fields(**overrides):
    base = dict(
        states=torch.arange(4.0)[:, None],
        next_states=None,
        actions=torch.zeros(3),
        rewards=torch.ones(3),
        terminated=None,
        truncated=None,
        dones=None,
        infos=None,
        episode_id=None,
        start_step=0,
        success=None,
        returns=None,
        advantages=None,
    )
    base.update(overrides)
    return check_episode_fields(**base)


def test_t_plus_one_observations_split_into_states_and_next_states():
    fields = _fields()
    assert fields["states"][:, 0].tolist() == [0.0, 1.0, 2.0]
    assert fields["next_states"][:, 0].tolist() == [1.0, 2.0, 3.0]
    assert fields["final_next_state_known"] is True
    assert fields["terminated"].dtype == torch.bool and not fields["terminated"].any()
    assert fields["rewards"].dtype == torch.float32
    assert set(fields) == {
        "states",
        "next_states",
        "actions",
        "rewards",
        "terminated",
        "truncated",
        "infos",
        "returns",
        "advantages",
        "episode_id",
        "start_step",
        "success",
        "final_next_state_known",
    }


def test_short_form_repeats_the_last_observation_and_marks_it_unknown():
    fields = _fields(states=torch.arange(3.0)[:, None])
    assert fields["next_states"][:, 0].tolist() == [1.0, 2.0, 2.0]
    assert fields["final_next_state_known"] is False


def test_dones_info_rows_and_scalars_are_normalised():
    fields = _fields(
        dones=[False, False, True],
        infos=[{"a": 1}, {}, {"a": 3}],
        episode_id=np.int64(7),
        success=1,
        rewards=[[1], [2], [3]],
        actions=np.array([True, False, True]),
        returns=[3.0, 2.0, 1.0],
    )
    assert fields["terminated"].tolist() == [False, False, True]
    assert fields["infos"]["a"].tolist() == [1, 0, 3]
    assert fields["episode_id"] == 7 and type(fields["episode_id"]) is int
    assert fields["success"] is True
    assert fields["rewards"].tolist() == [1.0, 2.0, 3.0]
    assert fields["actions"].dtype == torch.int64
    assert fields["returns"].tolist() == [3.0, 2.0, 1.0] and fields["advantages"] is None


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"rewards": torch.ones(2)}, "rewards"),
        ({"states": torch.zeros(6, 1)}, "observations"),
        ({"dones": [0, 0, 1], "terminated": [0, 0, 1]}, "dones"),
        ({"truncated": [True, False, False]}, "truncated"),
        ({"rewards": torch.tensor([1.0, float("nan"), 0.0])}, "rewards"),
        ({"start_step": -1}, "start_step"),
        ({"advantages": torch.zeros(2)}, "advantages"),
    ],
)
def test_bad_fields_name_the_field(overrides, field):
    with pytest.raises(ValidationError) as info:
        _fields(**overrides)
    assert info.value.field == field


def test_error_messages_use_the_callers_keyword():
    with pytest.raises(ValidationError) as info:
        _fields(states=torch.zeros(6, 1), obs_name="states")
    assert info.value.field == "states"


def test_trusted_fields_share_memory_and_flag_the_last_step():
    states, next_states = np.zeros((3, 2), np.float32), np.ones((3, 2), np.float32)
    fields = trusted_episode_fields(
        states, next_states, np.array([0, 1, 2]), np.ones(3), False, True, {"k": np.arange(3)}, 4, 2, None
    )
    assert fields["truncated"].tolist() == [False, False, True] and not fields["terminated"].any()
    assert fields["states"].data_ptr() == torch.from_numpy(states).data_ptr()
    assert fields["rewards"].dtype == torch.float32
    assert fields["infos"]["k"].tolist() == [0, 1, 2]
    assert (fields["episode_id"], fields["start_step"], fields["success"]) == (4, 2, None)
    assert fields["metadata"] == {} and fields["returns"] is None and fields["advantages"] is None
    assert list(fields)[:3] == ["states", "next_states", "actions"]


def test_trusted_fields_still_reject_nan():
    states = np.zeros((2, 1), np.float32)
    states[1, 0] = np.nan
    with pytest.raises(ValidationError):
        trusted_episode_fields(
            states, np.zeros((2, 1), np.float32), np.zeros(2), np.ones(2), True, False, None, None, 0, None
        )
