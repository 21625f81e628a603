"""Principal-component views of a memory's keys, for plots and for checking what consolidation did.

:func:`pca_keys` projects a fixed sample of stored keys on their leading principal axes and returns
them with each row's unit, return and outcome, so that a plot coloured by return shows whether the
key space is organised by outcome::

    from hippogym.memory.projection import pca_keys

    view = pca_keys(buffer.memory, n_components=2)
    plt.scatter(view.coords[:, 0], view.coords[:, 1], c=view.returns)

Keys written by :func:`hippogym.integrations.tensorboard.write_key_projector` go to TensorBoard's
own projector instead (PCA, t-SNE and UMAP in the browser).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor

from hippogym.errors import EmptyMemoryError, ValidationError, describe

__all__ = ["KeyProjection", "pca_keys"]


class KeyProjection(NamedTuple):
    """Keys projected on their principal axes, with what each projected row belongs to.

    Attributes:
        coords: ``[n, n_components]`` coordinates (float32), centred on the sample's mean key.
        explained_variance: ``[n_components]`` share of the sample's key variance on each axis.
        components: ``[n_components, embed_dim]`` principal axes (unit vectors); project new
            keys with ``(keys - mean) @ components.T``.
        mean: ``[embed_dim]`` mean key of the sample.
        rows: ``[n]`` physical rows of the projected transitions (sorted).
        unit_ids: ``[n]`` unit id of each row.
        returns: ``[n]`` return of each row's unit.
        success: ``[n]`` outcome of each row's unit (``1``, ``0``, ``-1`` unknown).
    """

    coords: Tensor
    explained_variance: Tensor
    components: Tensor
    mean: Tensor
    rows: Tensor
    unit_ids: Tensor
    returns: Tensor
    success: Tensor


def pca_keys(store: Any, n_components: int = 2, max_rows: int = 5000, seed: int = 0) -> KeyProjection:
    """Project stored keys on their ``n_components`` leading principal axes.

    The rows are a uniform sample of stored transitions drawn with ``seed`` (all of them when the
    memory holds at most ``max_rows``), so projections taken before and after consolidation show
    the same transitions. The axes come from an exact SVD of the centred sample.

    Args:
        store: The memory (a :class:`~hippogym.MemoryStore`).
        n_components: Axes kept (at most ``min(rows, embed_dim)``).
        max_rows: Largest sample projected.
        seed: Seed of the sample.

    Returns:
        A :class:`KeyProjection`.

    Raises:
        EmptyMemoryError: The memory holds fewer than 2 transitions.
        ValidationError: ``n_components`` or ``max_rows`` is not a positive int.
    """
    for name, value, low in (("n_components", n_components, 1), ("max_rows", max_rows, 2)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValidationError(name, f"an int >= {low}", describe(value))
    if store.num_transitions < 2:
        raise EmptyMemoryError("Cannot project the keys of a memory with fewer than 2 transitions: add episodes first.")
    live, _ = store.rows_of(store.live_slots())
    if live.numel() > max_rows:
        pick = torch.randperm(live.numel(), generator=torch.Generator().manual_seed(seed))[:max_rows]
        live = live[pick]
    rows = torch.sort(live).values
    keys = store.keys[rows].double()
    mean = keys.mean(0)
    centred = keys - mean
    _, sv, vh = torch.linalg.svd(centred, full_matrices=False)
    k = min(n_components, vh.shape[0])
    total = float((sv**2).sum())
    explained = (sv[:k] ** 2) / total if total > 0 else torch.zeros(k, dtype=torch.float64)
    components = vh[:k]
    # A deterministic sign per axis: its largest loading is positive.
    signs = torch.sign(components.gather(1, components.abs().argmax(1, keepdim=True))).squeeze(1)
    components = components * torch.where(signs == 0, torch.ones_like(signs), signs).unsqueeze(1)
    slots = store.row_slot[rows]
    return KeyProjection(
        coords=(centred @ components.T).float(),
        explained_variance=explained.float(),
        components=components.float(),
        mean=mean.float(),
        rows=rows,
        unit_ids=store.unit_id[slots].clone(),
        returns=store.unit_return[slots].clone(),
        success=store.unit_success[slots].clone(),
    )
