"""The sum tree behind prioritised sampling (hippogym/memory/sumtree.py)."""

from __future__ import annotations

import numpy as np
import pytest

from hippogym.memory.sumtree import FANOUT, SumTree


def assert_consistent(tree: SumTree) -> None:
    """Every parent holds exactly the sum of its children; padding leaves stay empty."""
    assert not tree.levels[0][tree.capacity :].any()
    for child, parent in zip(tree.levels[:-1], tree.levels[1:]):
        sums = child.reshape(-1, FANOUT).sum(1)
        np.testing.assert_array_equal(parent[: sums.size], sums)
        assert not parent[sums.size :].any()


@pytest.mark.parametrize("capacity", [1, 15, 16, 17, 300, 5000])
def test_shape_covers_capacity_with_at_most_fanout_roots(capacity):
    tree = SumTree(capacity)
    assert tree.size >= capacity and tree.size % FANOUT == 0
    assert tree.levels[-1].size <= FANOUT
    assert tree.total == 0.0
    tree.set(np.array([capacity - 1]), np.array([2.5]))
    assert tree.total == 2.5
    assert tree.find(np.array([0.0, 2.4])).tolist() == [capacity - 1] * 2
    assert_consistent(tree)


def test_set_overwrites_updates_total_and_keeps_parents_exact():
    tree = SumTree(5000)  # 4 levels: updates climb through every one
    tree.set(np.array([0, 17, 4999]), np.array([1.0, 2.0, 3.0]))
    assert tree.total == 6.0
    tree.set(np.array([17]), np.array([0.5]))  # an update replaces, it does not add
    assert tree.total == 4.5
    np.testing.assert_array_equal(tree.get(np.array([0, 17, 4999, 18])), [1.0, 0.5, 3.0, 0.0])
    tree.set(np.array([3, 3]), np.array([7.0, 9.0]))  # repeats: the last value wins
    assert tree.get(np.array([3]))[0] == 9.0 and tree.total == 13.5
    assert_consistent(tree)


def test_small_and_large_batched_updates_build_the_same_tree():
    rng = np.random.default_rng(0)
    idx = rng.permutation(1000)
    values = rng.integers(0, 5, 1000).astype(np.float64)
    small, large = SumTree(1000), SumTree(1000)
    for chunk in np.array_split(np.arange(1000), 100):  # 10 at a time: the per-ancestor path
        small.set(idx[chunk], values[chunk])
    large.set(idx, values)  # everything at once: the recompute-all-levels path
    for a, b in zip(small.levels, large.levels):
        np.testing.assert_array_equal(a, b)
    assert small.total == values.sum()
    assert_consistent(small)


def test_set_range_and_clear_touch_only_their_leaves():
    tree = SumTree(300)
    tree.set_range(10, np.arange(1.0, 41.0))  # leaves 10..49 = 1..40, across block boundaries
    assert tree.total == 820.0
    np.testing.assert_array_equal(tree.get(np.array([9, 10, 49, 50])), [0.0, 1.0, 40.0, 0.0])
    tree.clear(20, 10)  # leaves 20..29 held 11..20
    assert tree.total == 820.0 - sum(range(11, 21))
    assert not tree.get(np.arange(20, 30)).any() and tree.get(np.array([30]))[0] == 21.0
    tree.set_range(5, np.array([]))  # empty: a no-op
    assert_consistent(tree)


def test_find_is_the_prefix_sum_inverse():
    rng = np.random.default_rng(1)
    leaves = rng.integers(0, 4, 4000).astype(np.float64)  # integers: sums are exact, zeros included
    tree = SumTree(4000)
    tree.set(np.arange(4000), leaves)
    cum = np.cumsum(leaves)
    mass = rng.uniform(0, tree.total, 20_000)
    mass = np.concatenate([mass, cum[leaves > 0][:-1], [0.0]])  # and every boundary between leaves
    expected = np.searchsorted(cum, mass, side="right")  # leaf i holds [cum[i-1], cum[i])
    np.testing.assert_array_equal(tree.find(mass), expected)
    assert (tree.get(tree.find(mass)) > 0).all()  # never an empty leaf


def test_prefix_sum_sampling_matches_the_probabilities():
    probs = np.zeros(1000)
    probs[[0, 7, 16, 255, 256, 999]] = [1.0, 2.0, 3.0, 4.0, 5.0, 5.0]
    tree = SumTree(1000)
    tree.set(np.arange(1000), probs)
    rng = np.random.default_rng(2)
    rows = tree.find(rng.uniform(0, tree.total, 100_000))
    freq = np.bincount(rows, minlength=1000) / rows.size
    np.testing.assert_allclose(freq, probs / probs.sum(), atol=0.005)
    assert set(np.flatnonzero(freq)) == {0, 7, 16, 255, 256, 999}


def test_find_lands_only_on_non_empty_leaves_up_to_the_total():
    tree = SumTree(64)
    tree.set(np.array([5, 40]), np.array([1.0, 1.0]))
    mass = np.array([0.0, 0.999, 1.0, 1.5, 2.0 * (1 - 1e-12)])  # the sampler's largest mass is the last
    assert tree.find(mass).tolist() == [5, 5, 40, 40, 40]


@pytest.mark.parametrize("capacity", [1, 7, 16, 17, 300, 5_000, 70_000])
def test_prefix_sums_equal_a_cumulative_sum(capacity):
    rng = np.random.default_rng(capacity)
    values = rng.random(capacity) * (rng.random(capacity) > 0.3)
    tree = SumTree(capacity)
    tree.set(np.arange(capacity), values)
    idx = np.concatenate(([0, capacity], rng.integers(0, capacity + 1, 100)))
    assert tree.prefix(idx) == pytest.approx(np.concatenate(([0.0], np.cumsum(values)))[idx])
