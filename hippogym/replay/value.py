"""Episodic value estimates: what the memory says a state is worth, from the returns it stored.

Every stored transition carries its discounted return-to-go (see :mod:`hippogym.returns`). For a
batch of query keys, :func:`episodic_values` finds the ``k`` stored transitions whose keys are most
similar (cosine, exact search) and reduces their returns to one estimate per query:

* ``"max"``: the best return among the neighbours. A return the agent has actually collected from
  a state is a lower bound of that state's optimal value, so the best one is the tightest bound
  (the Episodic Memory DQN / self-imitation view).
* ``"mean"``: the plain average of the neighbours' returns (model-free episodic control).
* ``"kernel"``: an inverse-distance weighted average, ``w_i ∝ 1 / (|q - h_i|^2 + delta)`` over
  unit-norm keys (the neural episodic control kernel).

With ``actions`` and ``query_actions`` given, only transitions that took the query's action are
neighbours, which turns the estimate into one of ``Q(s, a)`` rather than ``V(s)``. A query with no
eligible neighbour gets ``nan`` and ``count == 0``; callers decide what that means (the episodic
term of :class:`~hippogym.integrations.sb3.HippoDQN` skips it).

The search runs in chunks of the stored keys, so memory stays ``O(B * (chunk + k))`` however large
the store is.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from hippogym.errors import DimensionMismatchError, ValidationError, describe
from hippogym.memory.rows import keys_as_float32
from hippogym.returns import discounted_returns

__all__ = ["EPISODIC_VALUE_MODES", "EpisodicValues", "episodic_values", "memory_episodic_values"]

#: The reductions :func:`episodic_values` knows.
EPISODIC_VALUE_MODES = ("max", "mean", "kernel")


class EpisodicValues(NamedTuple):
    """What :func:`episodic_values` returns for ``B`` queries.

    Attributes:
        values: ``[B]`` float32 estimates; ``nan`` where a query found no neighbour.
        rows: ``[B, k]`` int64 positions (into ``keys``) of the neighbours, best first; ``-1`` pads.
        similarities: ``[B, k]`` float32 cosine similarities of those neighbours; ``-inf`` pads.
        count: ``[B]`` int64 number of real neighbours per query (``<= k``).
    """

    values: Tensor
    rows: Tensor
    similarities: Tensor
    count: Tensor


def _check_2d(name: str, value: Tensor) -> Tensor:
    if not isinstance(value, Tensor):
        raise ValidationError(name, "a torch.Tensor", describe(value))
    if value.dim() != 2:
        raise DimensionMismatchError(name, "a 2-D tensor [n, embed_dim]", str(tuple(value.shape)))
    if not value.is_floating_point():
        raise ValidationError(name, "a floating-point tensor", str(value.dtype))
    return value


def episodic_values(
    queries: Tensor,
    keys: Tensor,
    returns: Tensor,
    k: int = 8,
    *,
    mode: str = "max",
    actions: Tensor | None = None,
    query_actions: Tensor | None = None,
    delta: float = 1e-3,
    chunk: int = 65_536,
) -> EpisodicValues:
    """Episodic value of each query from the returns of its ``k`` most similar stored transitions.

    Args:
        queries: ``[B, D]`` query keys (normalised here).
        keys: ``[N, D]`` stored transition keys (assumed unit norm, as the memory keeps them).
        returns: ``[N]`` stored returns-to-go, aligned with ``keys``.
        k: Neighbours per query (``>= 1``; fewer when fewer are eligible).
        mode: ``"max"``, ``"mean"`` or ``"kernel"`` (see the module docstring).
        actions: Optional ``[N]`` integer actions of the stored transitions.
        query_actions: Optional ``[B]`` integer actions of the queries; with ``actions``, only
            transitions that took the same action are neighbours.
        delta: The kernel's smoothing constant (``mode="kernel"``).
        chunk: Stored keys scored per step of the search.

    Returns:
        An :class:`EpisodicValues`.

    Raises:
        ValidationError: Bad ``k``, ``mode``, ``delta`` or ``chunk``, non-finite returns, or only
            one of ``actions`` / ``query_actions``.
        DimensionMismatchError: Shapes that do not line up.

    Example:
        >>> import torch
        >>> keys = torch.eye(3)
        >>> returns = torch.tensor([1.0, 5.0, 2.0])
        >>> q = torch.tensor([[0.9, 0.1, 0.0]])
        >>> episodic_values(q, keys, returns, k=2, mode="max").values
        tensor([5.])
    """
    queries, keys = _check_2d("queries", queries), _check_2d("keys", keys)
    if queries.shape[1] != keys.shape[1]:
        raise DimensionMismatchError("queries", f"embed_dim {keys.shape[1]} (the keys' width)", str(queries.shape[1]))
    n = keys.shape[0]
    if not isinstance(returns, Tensor) or returns.dim() != 1 or returns.shape[0] != n:
        raise DimensionMismatchError("returns", f"a 1-D tensor of {n} returns (one per key)", describe(returns))
    if returns.numel() and not bool(torch.isfinite(returns).all()):
        raise ValidationError("returns", "finite returns-to-go", "nan or inf")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValidationError("k", "an int >= 1", describe(k))
    if mode not in EPISODIC_VALUE_MODES:
        raise ValidationError("mode", f"one of {list(EPISODIC_VALUE_MODES)}", repr(mode))
    if not (isinstance(delta, (int, float)) and delta > 0):
        raise ValidationError("delta", "a float > 0", describe(delta))
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValidationError("chunk", "an int >= 1", describe(chunk))
    if (actions is None) != (query_actions is None):
        raise ValidationError("actions", "both `actions` and `query_actions`, or neither", "only one of them")
    b = queries.shape[0]
    if actions is not None:
        actions = torch.as_tensor(actions).reshape(-1)
        query_actions = torch.as_tensor(query_actions).reshape(-1)
        if actions.shape[0] != n:
            raise DimensionMismatchError("actions", f"{n} actions (one per key)", str(actions.shape[0]))
        if query_actions.shape[0] != b:
            raise DimensionMismatchError("query_actions", f"{b} actions (one per query)", str(query_actions.shape[0]))

    q = torch.nn.functional.normalize(queries.float(), dim=1)
    width = min(k, max(n, 1))
    best_sim = torch.full((b, width), -torch.inf)
    best_row = torch.full((b, width), -1, dtype=torch.int64)
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        sim = q @ keys[lo:hi].float().T
        if actions is not None:
            sim = sim.masked_fill(actions[lo:hi].unsqueeze(0) != query_actions.unsqueeze(1), -torch.inf)
        top = min(width, hi - lo)
        s, r = sim.topk(top, dim=1)
        merged_sim = torch.cat([best_sim, s], dim=1)
        merged_row = torch.cat([best_row, r + lo], dim=1)
        best_sim, pick = merged_sim.topk(width, dim=1)
        best_row = merged_row.gather(1, pick)
    valid = torch.isfinite(best_sim)
    best_row = best_row.masked_fill(~valid, -1)
    count = valid.sum(1)
    ret = returns.float()[best_row.clamp(min=0)] if n else torch.zeros(b, width)
    if mode == "max":
        values = ret.masked_fill(~valid, -torch.inf).amax(1)
    elif mode == "mean":
        values = (ret * valid).sum(1) / count.clamp(min=1)
    else:
        dist2 = (2.0 - 2.0 * best_sim).clamp(min=0.0)
        w = torch.where(valid, 1.0 / (dist2 + float(delta)), torch.zeros_like(dist2))
        values = (w * ret).sum(1) / w.sum(1).clamp(min=1e-30)
    values = torch.where(count > 0, values, torch.full_like(values, torch.nan))
    return EpisodicValues(values=values, rows=best_row, similarities=best_sim, count=count)


def memory_episodic_values(
    store: Any, query_keys: Tensor, gamma: float, k: int = 8, *, mode: str = "max",
    query_actions: Tensor | None = None, returns: np.ndarray | None = None,
) -> EpisodicValues:
    """:func:`episodic_values` over everything a memory holds: its live rows' keys and returns-to-go.

    Args:
        store: The :class:`~hippogym.MemoryStore`.
        query_keys: ``[B, embed_dim]`` embedded queries.
        gamma: Discount of the returns-to-go.
        k: Neighbours per query.
        mode: ``"max"``, ``"mean"`` or ``"kernel"``.
        query_actions: ``[B]`` integer actions: only transitions that took them are neighbours
            (an estimate of ``Q(s, a)``); needs integer (discrete) stored actions.
        returns: Returns-to-go of every row of the store (e.g. a value-target table), computed
            here when ``None``.

    Returns:
        The estimates; ``rows`` index the store's physical rows.
    """
    slots = store.live_slots()
    rows = store.rows_of(slots)[0]
    if returns is None:
        returns = discounted_returns(
            store.rewards.numpy(), store.unit_start[slots].numpy(), store.unit_length[slots].numpy(), gamma
        )
    rtg = torch.from_numpy(np.asarray(returns, dtype=np.float32)[rows.numpy()])
    actions = None
    if query_actions is not None:
        stored = store.actions[rows]
        if stored.is_floating_point() or stored[0].numel() != 1:
            raise ValidationError("query_actions", "given only for a memory of discrete actions", describe(stored))
        actions = stored.reshape(-1).long()
    out = episodic_values(query_keys, keys_as_float32(store.keys[rows]), rtg, k, mode=mode, actions=actions,
                          query_actions=query_actions)
    return out._replace(rows=torch.where(out.rows >= 0, rows[out.rows.clamp(min=0)], out.rows))
