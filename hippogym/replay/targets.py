"""Learning targets for sampled rows: n-step rewards and returns-to-go, from the stored units.

A replay buffer draws rows; :class:`ValueTargets` turns them into what a value learner bootstraps
from, using only the store's public tables (unit starts and lengths, rewards, flags):

* **n-step** (``n_steps > 1``): the discounted sum of up to ``n`` rewards inside the row's unit, the
  row whose next observation ends the window, its flags, and ``discounts = gamma^m`` — the
  semantics of Stable-Baselines3's ``NStepReplayBuffer`` (:func:`~hippogym.replay.nstep.nstep_targets`).
* **returns-to-go** (``returns=True``): the discounted return the agent collected from the row to
  the end of its unit (:class:`~hippogym.replay.returns_table.ReturnTable`), the discount of the
  missing tail (0 when the unit terminated) and the row whose next observation starts that tail.

It is a part of the replay layer, composed by the buffer facade and by the SB3 adapter; the facade
only gathers observations at the rows named here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch

from hippogym.errors import ValidationError, describe
from hippogym.replay.nstep import nstep_targets
from hippogym.replay.returns_table import ReturnTable

if TYPE_CHECKING:  # pragma: no cover
    from hippogym.memory.store import MemoryStore
    from hippogym.replay.batch import ReplayBatch
    from hippogym.replay.hindsight import HindsightRelabeler

__all__ = ["TargetFields", "ValueTargets"]


def _numpy(obs):
    if obs is None:
        return None
    if isinstance(obs, dict):
        return {k: _numpy(v) for k, v in obs.items()}
    return obs.numpy() if isinstance(obs, torch.Tensor) else np.asarray(obs)


def _tensor(obs):
    if isinstance(obs, dict):
        return {k: _tensor(v) for k, v in obs.items()}
    return obs if isinstance(obs, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(obs))


class TargetFields(NamedTuple):
    """Targets of ``B`` sampled rows (numpy, all ``[B]``).

    Attributes:
        rewards: float32 n-step reward sums (the one-step reward when ``n_steps == 1``).
        next_rows: int64 rows whose ``next_observations`` the TD target bootstraps from.
        terminated: bool, the window ended in a terminal state (no bootstrap).
        truncated: bool, the window ended its unit without termination.
        discounts: float32 ``gamma^m`` (``m`` rewards summed).
        returns: float32 returns-to-go, or ``None`` when not kept.
        return_discounts: float32 ``gamma^(L - t)`` of the missing tail (0 if terminated), or ``None``.
        tail_rows: int64 rows whose ``next_observations`` start the tail, or ``None``.
        steps: int64 rewards summed per row (``m``), or ``None`` for one-step targets.
    """

    rewards: np.ndarray
    next_rows: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    discounts: np.ndarray
    returns: np.ndarray | None
    return_discounts: np.ndarray | None
    tail_rows: np.ndarray | None
    steps: np.ndarray | None = None


class ValueTargets:
    """n-step and return-to-go targets over a store.

    Args:
        store: The memory the rows come from.
        gamma: Discount in ``[0, 1]``.
        n_steps: Rewards summed per TD target (``1`` = the stored one-step transition).
        returns: Keep per-row returns-to-go (a :class:`ReturnTable` listening to the store).
        relabeler: Hindsight relabelling of goal-conditioned rows applied by :meth:`apply`.
    """

    def __init__(
        self,
        store: MemoryStore,
        gamma: float = 0.99,
        n_steps: int = 1,
        returns: bool = True,
        relabeler: HindsightRelabeler | None = None,
    ) -> None:
        if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
            raise ValidationError("n_steps", "an int >= 1", describe(n_steps))
        if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or not 0.0 <= float(gamma) <= 1.0:
            raise ValidationError("gamma", "a float in [0, 1]", describe(gamma))
        self.store, self.gamma, self.n_steps = store, float(gamma), int(n_steps)
        self.table = ReturnTable(store, self.gamma) if returns else None
        self.relabeler = relabeler

    def compute(self, rows: np.ndarray) -> TargetFields:
        """Targets of stored ``rows``."""
        store = self.store
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        rewards, terminated = store.rewards.numpy(), store.terminated.numpy()
        truncated = store.truncated.numpy()
        if self.n_steps == 1:
            slots = store.row_slot.numpy().take(rows)
            last = store.unit_start.numpy().take(slots) + store.unit_length.numpy().take(slots) - 1
            term = terminated.take(rows)
            trunc = ~term & (truncated.take(rows) | (rows == last))
            fields = (
                rewards.take(rows).astype(np.float32),
                rows,
                term,
                trunc,
                np.full(rows.size, self.gamma, dtype=np.float32),
            )
        else:
            slots = store.row_slot.numpy().take(rows)
            ends = store.unit_start.numpy().take(slots) + store.unit_length.numpy().take(slots)
            nt = nstep_targets(rows, ends, rewards, terminated, truncated, self.n_steps, self.gamma)
            fields = (nt.rewards, nt.last_rows, nt.terminated, nt.truncated, nt.discounts)
        steps = None if self.n_steps == 1 else nt.steps
        if self.table is None:
            return TargetFields(*fields, None, None, None, steps)
        tails = self.table.tails(rows)
        return TargetFields(*fields, self.table.returns(rows), tails.discounts, tails.rows, steps)

    def apply(self, batch: ReplayBatch) -> ReplayBatch:
        """The batch with its rows' targets in place of the one-step fields.

        ``rewards``, ``next_observations``, ``terminated`` and ``truncated`` become the n-step
        ones, and ``discounts``, ``returns``, ``return_discounts`` and ``tail_observations`` are
        filled. With a :attr:`relabeler`, a share of the rows gets a hindsight goal first: their
        n-step rewards and returns-to-go are recomputed with it (``relabelled`` marks them).

        Args:
            batch: A CPU batch as the buffer drew it (its ``indices`` are store rows).
        """
        store = self.store
        rows = batch.indices.numpy().astype(np.int64, copy=False)
        fields = self.compute(rows)
        next_obs = batch.next_observations
        if self.n_steps > 1:
            next_obs = store.gather_np(fields.next_rows)["next_observations"]
        rewards, returns = fields.rewards, fields.returns
        tails = None if fields.tail_rows is None else store.gather_np(fields.tail_rows)["next_observations"]
        obs, relabelled = batch.observations, None
        if self.relabeler is not None:
            window = None if fields.steps is None else (fields.steps, self.gamma)
            mask, obs, next_obs, rewards = self.relabeler.relabel(
                store, rows, _numpy(obs), _numpy(next_obs), rewards, window=window
            )
            relabelled = torch.from_numpy(mask)
            if returns is not None and mask.any():
                returns = np.array(returns, copy=True)
                returns[mask] = self._relabelled_returns(rows[mask], obs["desired_goal"][mask])
                tails = {k: np.array(v, copy=True) for k, v in _numpy(tails).items()}
                tails["desired_goal"][mask] = obs["desired_goal"][mask]
        return batch._replace(
            observations=_tensor(obs),
            rewards=torch.from_numpy(np.ascontiguousarray(rewards, dtype=np.float32)),
            next_observations=_tensor(next_obs),
            terminated=torch.from_numpy(np.ascontiguousarray(fields.terminated)),
            truncated=torch.from_numpy(np.ascontiguousarray(fields.truncated)),
            discounts=torch.from_numpy(np.ascontiguousarray(fields.discounts, dtype=np.float32)),
            returns=None if returns is None else torch.from_numpy(np.ascontiguousarray(returns, dtype=np.float32)),
            return_discounts=None if fields.return_discounts is None else torch.from_numpy(
                np.ascontiguousarray(fields.return_discounts, dtype=np.float32)
            ),
            tail_observations=None if tails is None else _tensor(tails),
            relabelled=relabelled,
        )

    def _relabelled_returns(self, rows: np.ndarray, goals: np.ndarray) -> np.ndarray:
        """Returns-to-go of ``rows`` to the end of their units with the rewards of new ``goals``."""
        store = self.store
        slots = store.row_slot.numpy().take(rows)
        ends = store.unit_start.numpy().take(slots) + store.unit_length.numpy().take(slots)
        widths = ends - rows
        width = int(widths.max())
        offsets = np.arange(width, dtype=np.int64)[None, :]
        inside = offsets < widths[:, None]
        idx = np.where(inside, rows[:, None] + offsets, rows[:, None])
        achieved = np.asarray(store.gather_np(idx.reshape(-1))["next_observations"]["achieved_goal"])
        flat = self.relabeler.compute_reward(achieved, np.repeat(goals, width, axis=0), [{}] * idx.size)
        flat = np.asarray(flat, dtype=np.float64).reshape(idx.shape)
        powers = self.gamma ** offsets.astype(np.float64)
        return (flat * powers * inside).sum(axis=1).astype(np.float32)

    def detach(self) -> None:
        """Stop listening to the store (when the targets are replaced)."""
        if self.table is not None and self.table in self.store.listeners:
            self.store.listeners.remove(self.table)
