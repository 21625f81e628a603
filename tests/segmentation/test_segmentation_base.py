"""The Segmenter contract (hippogym.segmentation.base): streams, flush/reset, infos, fast path, validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from segment_streams import run, steps_of_flat  # noqa: E402  (tests/segmentation on sys.path)

from hippogym import (
    ChangePointSegmenter,
    Episode,
    FixedWindowSegmenter,
    RewardEventSegmenter,
    Segmenter,
    TerminalSegmenter,
)
from hippogym.errors import ValidationError


def test_flush_continues_the_environment_episode():
    seg = TerminalSegmenter()
    for t in range(3):
        seg.add(np.array([0.0, t]), 0, 0.0, False, False, np.array([0.0, t + 1]))
    (first,) = seg.flush()
    assert len(first) == 3 and not bool(first.terminated.any() or first.truncated.any())
    assert torch.equal(first.next_states[-1], torch.tensor([0.0, 3.0]))
    (rest,) = seg.add(np.array([0.0, 3]), 0, 0.0, True, False, np.array([0.0, 4]))
    assert rest.episode_id == first.episode_id and rest.start_step == 3 and len(rest) == 1


def test_reset_drops_data_and_starts_a_new_episode():
    seg = TerminalSegmenter()
    seg.add(np.zeros(2), 0, 0.0, False, False, np.ones(2))
    seg.reset(0)
    assert seg.pending() == 0 and seg.flush() == []
    (ep,) = seg.add(np.zeros(2), 0, 0.0, True, False, np.ones(2))
    assert ep.episode_id == 1 and len(ep) == 1
    seg.reset(7)  # unknown stream: no-op
    seg.reset()


def test_multiple_streams_are_independent():
    seg = FixedWindowSegmenter(3)
    out = []
    # Interleave two streams with different episode lengths.
    for t in range(5):
        out += seg.add(np.array([0.0, t]), 0, 0.0, t == 4, False, np.array([0.0, t + 1]), stream=0)
        if t < 2:
            out += seg.add(np.array([1.0, t]), 1, 0.0, False, t == 1, np.array([1.0, t + 1]), stream=3)
    by_stream = {}
    for e in out:
        by_stream.setdefault(int(e.states[0, 0]), []).append((e.episode_id, e.start_step, len(e)))
    assert by_stream[0] == [(0, 0, 3), (0, 3, 2)]
    assert by_stream[1] == [(1, 0, 2)]
    assert seg.num_streams >= 4


def test_add_batch_matches_per_step_adds():
    seg_a, seg_b = FixedWindowSegmenter(2), FixedWindowSegmenter(2)
    out_a, out_b = [], []
    rng = np.random.default_rng(0)
    for t in range(5):
        obs = rng.normal(size=(3, 4)).astype(np.float32)
        nxt = rng.normal(size=(3, 4)).astype(np.float32)
        term = np.array([t == 2, False, t == 4])
        out_a += seg_a.add_batch(obs, np.arange(3), np.ones(3), term, np.zeros(3, bool), nxt, streams=[2, 0, 1])
        for row, s in enumerate([2, 0, 1]):
            out_b += seg_b.add(obs[row], row, 1.0, bool(term[row]), False, nxt[row], stream=s)
    assert len(out_a) == len(out_b)
    for a, b in zip(out_a, out_b):
        assert torch.equal(a.states, b.states) and torch.equal(a.next_states, b.next_states)
        assert (a.episode_id, a.start_step) == (b.episode_id, b.start_step)


def test_info_keys_and_success_flag():
    seg = FixedWindowSegmenter(2, info_keys=("x", "flag"))

    def infos(e, t, last):
        info = {"x": np.array([t, 10 * t]), "other": "ignored"}
        if t != 1:
            info["flag"] = True
        if last:
            info["is_success"] = e == 0
        return info

    eps = run(seg, [3, 1], infos=infos)
    assert [len(e) for e in eps] == [2, 1, 1]
    assert eps[0].infos["x"].tolist() == [[0, 0], [1, 10]]
    assert eps[0].infos["flag"].tolist() == [True, False]  # missing at t=1: recorded as 0
    assert eps[0].success is None  # emitted before the episode's outcome was known
    assert eps[1].success is True and eps[2].success is False
    assert "is_success" not in eps[1].infos


def test_vector_style_infos_in_add_batch():
    seg = TerminalSegmenter(info_keys=("t",))
    infos = {
        "t": np.array([5, 6]),
        "_t": np.array([True, False]),
        "is_success": np.array([True, False]),
        "_is_success": np.array([True, False]),
    }
    eps = seg.add_batch(
        np.zeros((2, 1)), np.zeros(2, np.int64), np.zeros(2), [True, True], [False, False], np.ones((2, 1)), infos=infos
    )
    assert [e.infos["t"].tolist() for e in eps] == [[5], [0]]
    assert [e.success for e in eps] == [True, None]


def test_dict_and_image_observations():
    seg = TerminalSegmenter()
    img = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    obs = {"img": img, "nest": {"a": np.float32(1.5), "b": np.array([1, 2])}}
    seg.add(obs, np.array([0.1, 0.2], np.float32), 1.0, False, False, obs)
    (ep,) = seg.add(obs, np.array([0.3, 0.4], np.float32), 1.0, False, True, obs)
    assert sorted(ep.states) == ["img", "nest.a", "nest.b"]
    assert ep.states["img"].dtype == torch.uint8 and ep.states["img"].shape == (2, 2, 2, 3)
    assert ep.actions.dtype == torch.float32 and ep.actions.shape == (2, 2)
    assert torch.is_tensor(ep.next_states["nest.b"])


@pytest.mark.parametrize(
    "call",
    [
        lambda: FixedWindowSegmenter(0),
        lambda: FixedWindowSegmenter(3, overlap=3),
        lambda: RewardEventSegmenter(threshold=-1.0),
        lambda: RewardEventSegmenter(min_length=0),
        lambda: TerminalSegmenter(info_keys="abc"),
        lambda: TerminalSegmenter().add(np.zeros(2), 0, 0.0, False, False, np.zeros(2), stream=-1),
        lambda: TerminalSegmenter().add(np.array(["a"]), 0, 0.0, False, False, np.array(["a"])),
        lambda: TerminalSegmenter().add_batch(
            np.zeros((2, 1)), np.zeros(2), np.zeros(2), [0, 0], [0, 0], np.zeros((2, 1)), streams=[1, 1]
        ),
    ],
)
def test_bad_input_raises_validation_error(call):
    with pytest.raises(ValidationError):
        call()


def test_shape_change_between_steps_is_rejected():
    seg = TerminalSegmenter()
    seg.add(np.zeros(2), 0, 0.0, False, False, np.zeros(2))
    with pytest.raises(ValidationError, match="per-step shape"):
        seg.add(np.zeros(3), 0, 0.0, False, False, np.zeros(3))
    with pytest.raises(ValidationError, match="structure"):
        seg.add({"a": np.zeros(2)}, 0, 0.0, False, False, {"a": np.zeros(2)})
    with pytest.raises(ValidationError, match="dtype"):
        seg.add(np.zeros(2), 0.5, 0.0, False, False, np.zeros(2))  # float action into int storage


# ---------------------------------------------------------------------- fast path equivalence
def _episodes_equal(a: Episode, b: Episode) -> bool:
    def same(x, y):
        if isinstance(x, dict):
            return x.keys() == y.keys() and all(same(x[k], y[k]) for k in x)
        return x.dtype == y.dtype and torch.equal(x, y)

    return (
        same(a.states, b.states)
        and same(a.next_states, b.next_states)
        and same(a.actions, b.actions)
        and same(a.rewards, b.rewards)
        and same(a.terminated, b.terminated)
        and same(a.truncated, b.truncated)
        and (a.infos is None) == (b.infos is None)
        and (a.infos is None or same(a.infos, b.infos))
        and (a.episode_id, a.start_step, a.success, a.final_next_state_known)
        == (b.episode_id, b.start_step, b.success, b.final_next_state_known)
    )


class _EveryThird(Segmenter):
    def should_cut(self, length, reward, terminated, truncated, info):
        return length >= 3


class _BatchOnly(FixedWindowSegmenter):
    """Overrides only the vectorised hook: the per-step fast path must call it, not should_cut."""

    def should_cut_batch(self, lengths, rewards, terminated, truncated, infos):
        return rewards > 0.5


@pytest.mark.parametrize(
    "make",
    [
        TerminalSegmenter,
        lambda: FixedWindowSegmenter(4, overlap=2),
        lambda: FixedWindowSegmenter(3, info_keys=("x",)),
        lambda: RewardEventSegmenter(threshold=0.5, min_length=2),
        _EveryThird,
        lambda: _BatchOnly(100),
    ],
)
def test_fast_path_matches_the_general_path(make):
    """Arrays in the stored layout (fast path) and lists (general path) give identical segments."""
    rng = np.random.default_rng(0)
    fast, general = make(), make()
    fast_steps = []
    original = fast.add_trusted
    fast.add_trusted = lambda *args: fast_steps.append(1) or original(*args)
    out_fast, out_general = [], []
    for t in range(60):
        obs = rng.normal(size=3).astype(np.float32)
        nxt = rng.normal(size=3).astype(np.float32)
        action, reward = int(rng.integers(3)), float(rng.random())
        term, trunc = bool(rng.random() < 0.08), bool(rng.random() < 0.04)
        info = {"x": np.array([t, -t]), "is_success": t % 2 == 0} if rng.random() < 0.7 else {"other": "y"}
        stream = int(rng.integers(2))
        out_fast += fast.add(obs, action, reward, term, trunc, nxt, info, stream=stream)
        out_general += general.add(  # tensors and a numpy scalar: never the fast path
            torch.from_numpy(obs), np.int64(action), reward, term, trunc, torch.from_numpy(nxt), info, stream=stream
        )
    out_fast += fast.flush()
    out_general += general.flush()
    assert len(out_fast) == len(out_general) >= 5
    assert all(_episodes_equal(a, b) for a, b in zip(out_fast, out_general))
    assert fast.pending() == general.pending() == 0
    assert len(fast_steps) >= 55  # all steps but the first of each stream took the fast path


def test_fast_path_keeps_validation_and_falls_back():
    seg = TerminalSegmenter()
    seg.add(np.zeros(2, np.float32), 0, 0.0, False, False, np.zeros(2, np.float32))
    # Another dtype of the same kind still works (general path), with the stored dtype.
    seg.add(np.ones(2), np.int32(1), 1.0, False, False, np.ones(2))
    with pytest.raises(ValidationError, match="per-step shape"):
        seg.add(np.zeros(3, np.float32), 0, 0.0, False, False, np.zeros(3, np.float32))
    with pytest.raises(ValidationError, match="dtype"):
        seg.add(np.zeros(2, np.float32), np.array(0.5), 0.0, False, False, np.zeros(2, np.float32))
    with pytest.raises(ValidationError, match="info"):
        seg.add(np.zeros(2, np.float32), 0, 0.0, False, False, np.zeros(2, np.float32), info=[1])
    with pytest.raises(ValidationError):  # an int beyond int64: the general path rejects it
        seg.add(np.zeros(2, np.float32), 2**70, 0.0, False, False, np.zeros(2, np.float32))
    assert seg.pending() == 2  # rejected steps left nothing behind
    (ep,) = seg.add(np.zeros(2, np.float32), 2, 0.0, True, False, np.zeros(2, np.float32))
    assert ep.states.dtype == torch.float32 and ep.actions.tolist() == [0, 1, 2] and len(ep) == 3


def test_non_finite_values_are_rejected_when_a_segment_is_emitted():
    seg = TerminalSegmenter()
    seg.add(np.zeros(2, np.float32), 0, 0.0, False, False, np.array([0.0, np.nan], np.float32))
    with pytest.raises(ValidationError, match="finite") as info:
        seg.add(np.zeros(2, np.float32), 0, 0.0, True, False, np.zeros(2, np.float32))
    assert info.value.field == "next_states"
    seg = TerminalSegmenter()
    with pytest.raises(ValidationError, match="finite"):
        seg.add(np.zeros(2, np.float32), 0, 1e300, True, False, np.zeros(2, np.float32))  # inf as float32


def test_bad_dict_keys_are_rejected_in_add_batch():
    seg = TerminalSegmenter()
    with pytest.raises(ValidationError, match="keys"):
        seg.add_batch({"a/b": np.zeros((1, 2))}, np.zeros(1), np.zeros(1), [True], [False], {"a/b": np.zeros((1, 2))})


def test_custom_add_batch_override_is_honoured_by_add():
    calls = []

    class Counting(TerminalSegmenter):
        def add_batch(self, *args, **kwargs):
            calls.append(1)
            return super().add_batch(*args, **kwargs)

    seg = Counting()
    for t in range(4):
        seg.add(np.zeros(2, np.float32), 0, 0.0, t == 3, False, np.zeros(2, np.float32))
    assert len(calls) == 4


def test_a_used_segmenter_survives_deepcopy_and_pickle():
    import copy
    import pickle

    seg = FixedWindowSegmenter(3, overlap=1)
    for t in range(4):
        seg.add(np.full(2, t, np.float32), 0, 0.0, False, False, np.full(2, t + 1, np.float32))
    for clone in (copy.deepcopy(seg), pickle.loads(pickle.dumps(seg))):
        out = []
        for t in range(4, 8):
            out += clone.add(np.full(2, t, np.float32), 0, 0.0, t == 7, False, np.full(2, t + 1, np.float32))
        assert [(e.start_step, steps_of_flat(e)) for e in out] == [(2, [2, 3, 4]), (4, [4, 5, 6]), (6, [6, 7])]


def test_trusted_layout_says_yes_for_good_no_for_good_or_not_yet():
    seg = TerminalSegmenter()
    layout = ((2,), np.float32, (), np.int64)
    assert seg.trusted_layout(*layout) is None  # nothing stored yet
    seg.add(np.zeros(2, np.float32), 0, 0.0, False, False, np.zeros(2, np.float32))
    assert seg.trusted_layout(*layout) is True
    assert seg.trusted_layout(*layout, streams=2) is None  # stream 1 has not been recorded yet
    assert seg.trusted_layout((2,), np.float64, (), np.int64) is False  # another dtype
    assert seg.trusted_layout((3,), np.float32, (), np.int64) is False  # another shape
    assert seg.trusted_layout((2,), np.float32, (1,), np.int64) is False  # another action shape
    seg.add(np.zeros(2, np.float32), 0, 0.0, False, False, np.zeros(2, np.float32), stream=1)
    assert seg.trusted_layout(*layout, streams=2) is True


def test_trusted_layout_is_never_given_to_dicts_or_to_subclasses_that_see_every_step():
    dicts = TerminalSegmenter()
    dicts.add({"a": np.zeros(2, np.float32)}, 0, 0.0, False, False, {"a": np.zeros(2, np.float32)})
    assert dicts.trusted_layout((2,), np.float32, (), np.int64) is False
    own_add_batch = ChangePointSegmenter()  # overrides add_batch: every step must go through it
    assert own_add_batch.trusted_layout((2,), np.float32, (), np.int64) is False
    own_add_batch.add(np.zeros(2, np.float32), 0, 0.0, False, False, np.zeros(2, np.float32))
    assert own_add_batch.trusted_layout((2,), np.float32, (), np.int64) is False

    class OwnAdd(TerminalSegmenter):
        def add(self, *args, **kwargs):
            return super().add(*args, **kwargs)

    own_add = OwnAdd()
    own_add.add(np.zeros(2, np.float32), 0, 0.0, False, False, np.zeros(2, np.float32))
    assert own_add.trusted_layout((2,), np.float32, (), np.int64) is False
