"""Quality figures of a memory's key space: is it organised by outcome, is it collapsing, how stale?"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from hippogym.memory.rows import keys_as_float32

if TYPE_CHECKING:  # pragma: no cover
    from hippogym.memory.store import MemoryStore

__all__ = ["key_staleness", "memory_quality"]


def _pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double() - a.double().mean(), b.double() - b.double().mean()
    denom = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    return float((a * b).sum()) / denom if denom > 0 else 0.0


def memory_quality(
    store: "MemoryStore", encoder_version: int, k: int = 5, max_rows: int = 1024, seed: int = 0,
    temperature: float = 0.1,
) -> dict[str, float]:
    """Measure the key space on a fixed sample of stored transitions.

    The sample is drawn with a fixed seed so figures taken before and after consolidation compare
    the same transitions.

    Args:
        store: The memory.
        encoder_version: Current encoder version (to measure key staleness).
        k: Neighbours per transition (neighbours from the same unit are excluded).
        max_rows: Transitions sampled.
        seed: Seed of the sample.
        temperature: Softmax temperature of ``retrieval_sharpness`` (the buffer's default
            retrieval temperature).

    Returns:
        ``reward_alignment``: Pearson correlation between a transition's unit return and the mean
        return of its ``k`` nearest neighbours (other units); 1 = neighbours share its outcome.
        ``success_precision``: for transitions of successful units (success flag, or the top 10% of
        returns when flags are unknown), the share of neighbours that are successes too;
        ``success_base_rate`` is the chance level. ``effective_rank``: entropy-based rank of the
        keys divided by its maximum (near 0 = collapse); ``collapse_score`` is ``1 -
        effective_rank``. ``mean_cosine``: mean pairwise cosine (near 1 = collapse), and
        ``key_dispersion``, the mean distance of the keys from their centroid.
        ``retrieval_sharpness``: ``1 -`` the normalised entropy of the softmax, at ``temperature``,
        over each transition's ``k`` neighbour scores (0 = retrieval cannot tell its top ``k``
        apart, 1 = one neighbour takes all the weight). ``staleness_mean``/``staleness_max``/``stale_fraction``: encoder updates
        since each key was computed, over all stored transitions.
    """
    gen = torch.Generator().manual_seed(seed)
    n = min(max_rows, store.num_transitions)
    rows = torch.unique(store.sample_rows(n, generator=gen))
    keys = keys_as_float32(store.keys[rows])
    slots = store.row_slot[rows]
    returns = store.unit_return[slots]
    sim = keys @ keys.T
    same = slots.unsqueeze(0) == slots.unsqueeze(1)
    sim.masked_fill_(same, -math.inf)
    out: dict[str, float] = {}
    valid = (~same).sum(1) >= 1
    kk = max(1, min(k, int((~same).sum(1).min()) if rows.numel() > 1 else 1))
    if rows.numel() > 1 and bool(valid.all()):
        nn = torch.topk(sim, kk, dim=1).indices
        out["reward_alignment"] = _pearson(returns, returns[nn].mean(1))
        success = store.unit_success[slots]
        if bool((success >= 0).any()) and bool((success == 1).any()):
            group = success == 1
        else:
            threshold = torch.quantile(returns.double(), 0.9)
            group = (returns.double() >= threshold) & (returns.double() > returns.double().min())
        if bool(group.any()):
            out["success_precision"] = float(group[nn][group].float().mean())
            out["success_base_rate"] = float(group.float().mean())
        if kk > 1:
            top = torch.topk(sim, kk, dim=1).values.double() / float(temperature)
            probs = torch.softmax(top, dim=1)
            entropy = -(probs * probs.clamp_min(1e-300).log()).sum(1) / math.log(kk)
            out["retrieval_sharpness"] = float((1.0 - entropy).mean())
    centered = keys - keys.mean(0, keepdim=True)
    sv = torch.linalg.svdvals(centered.double())
    p = sv**2 / max(float((sv**2).sum()), 1e-300)
    p = p[p > 0]
    erank = math.exp(float(-(p * p.log()).sum())) if p.numel() else 0.0
    out["effective_rank"] = erank / min(keys.shape[0], keys.shape[1])
    out["collapse_score"] = 1.0 - out["effective_rank"]
    out["key_dispersion"] = float(centered.norm(dim=1).mean())
    m = keys.shape[0]
    if m > 1:
        total = keys.sum(0)
        out["mean_cosine"] = float((total @ total - (keys * keys).sum()) / (m * (m - 1)))
    out.update(key_staleness(store, encoder_version))
    return out


def key_staleness(store: "MemoryStore", encoder_version: int) -> dict[str, float]:
    """How many encoder updates ago each stored key was written, over every stored transition.

    Returns:
        ``staleness_mean``, ``staleness_max`` and ``stale_fraction`` (the share of keys an older
        encoder version wrote); zeros for an empty memory.
    """
    high = int(store.high_water)
    live = store.row_slot[:high] >= 0 if high else None
    if live is None or not bool(live.any()):
        return {"staleness_mean": 0.0, "staleness_max": 0.0, "stale_fraction": 0.0}
    stale = encoder_version - store.key_version[:high][live]
    return {
        "staleness_mean": float(stale.double().mean()),
        "staleness_max": float(stale.max()),
        "stale_fraction": float((stale > 0).double().mean()),
    }
