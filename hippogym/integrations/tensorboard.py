"""TensorBoard views of a memory: health scalars and the key projector.

:func:`health_scalars` measures the key space (see
:func:`hippogym.consolidation.quality.memory_quality`: outcome alignment, retrieval sharpness,
collapse through the effective rank, dispersion and mean cosine, key staleness; and
:func:`key_drift`, how far the stored keys are from what the encoder writes now) together with the memory's size and
outcomes. :func:`write_health` writes them as ``hippo/health/*`` scalars, and
:func:`write_key_projector` writes a sample of stored keys, labelled by unit, return and outcome,
to TensorBoard's embedding projector. :class:`~hippogym.integrations.sb3.HippoCallback` calls both
during SB3 training (``health_every``, ``projector_every``)::

    from torch.utils.tensorboard import SummaryWriter
    from hippogym.integrations.tensorboard import write_health, write_key_projector

    writer = SummaryWriter("runs/memory")
    write_health(writer, buffer, step=0)
    write_key_projector(writer, buffer, n=2000)
"""

from __future__ import annotations

from typing import Any

import torch

from hippogym.consolidation.quality import memory_quality
from hippogym.errors import EmptyMemoryError, ValidationError, describe
from hippogym.replay.buffer import HippocampalReplayBuffer

__all__ = ["health_scalars", "key_drift", "write_health", "write_key_projector"]


def _hippo(buffer: Any) -> HippocampalReplayBuffer:
    """The memory buffer of a :class:`HippocampalReplayBuffer` or of an SB3 ``HippoReplayBuffer``."""
    inner = getattr(buffer, "hippo", buffer)
    if not isinstance(inner, HippocampalReplayBuffer):
        raise ValidationError("buffer", "a HippocampalReplayBuffer or an SB3 HippoReplayBuffer", describe(buffer))
    return inner


def health_scalars(buffer: Any, max_rows: int = 1024, seed: int = 0) -> dict[str, float]:
    """Health of the memory's key space and contents as plain floats.

    Args:
        buffer: A :class:`HippocampalReplayBuffer` or an SB3 ``HippoReplayBuffer``.
        max_rows: Transitions sampled for the key-space figures.
        seed: Seed of that sample (fixed, so successive calls compare the same transitions).

    Returns:
        ``memory_quality``'s figures (``reward_alignment``, ``success_precision``,
        ``effective_rank``, ``collapse_score``, ``key_dispersion``, ``retrieval_sharpness``,
        ``mean_cosine``, ``staleness_mean``, ...), ``key_drift`` (:func:`key_drift`), plus ``transitions``,
        ``units``, ``return_mean`` and ``success_rate`` (when known); ``{}`` for an empty memory.
    """
    hippo = _hippo(buffer)
    if len(hippo) == 0 or hippo.encoder is None:
        return {}
    quality = memory_quality(
        hippo.memory, int(hippo.encoder.version), max_rows=max_rows, seed=seed,
        temperature=hippo.retrieval_temperature,
    )
    out = {k: float(v) for k, v in quality.items()}
    out["key_drift"] = key_drift(hippo, max_rows=max_rows, seed=seed)
    stats = hippo.stats()
    out.update(
        transitions=float(stats["transitions"]), units=float(stats["units"]), return_mean=float(stats["return_mean"])
    )
    if stats["success_rate"] is not None:
        out["success_rate"] = float(stats["success_rate"])
    return out


def key_drift(buffer: Any, max_rows: int = 1024, seed: int = 0) -> float:
    """How far stored keys have drifted from what the current key encoder would write now.

    ``1 -`` the mean cosine similarity between each sampled row's stored key and its key
    re-encoded now (0 = every key is current; staleness counts encoder updates, this measures how
    much they moved the keys).

    Args:
        buffer: A :class:`HippocampalReplayBuffer` or an SB3 ``HippoReplayBuffer``.
        max_rows: Transitions sampled.
        seed: Seed of the sample.

    Raises:
        EmptyMemoryError: The memory holds no transition.
    """
    hippo = _hippo(buffer)
    if len(hippo) == 0 or hippo.featurizer is None:
        raise EmptyMemoryError("The memory is empty: there are no keys to compare.")
    store = hippo.memory
    rows = torch.unique(store.sample_rows(min(max_rows, len(hippo)), generator=torch.Generator().manual_seed(seed)))
    with torch.no_grad():
        fresh = hippo.encoder.encode_keys(store.features(rows, hippo.featurizer)).float()
    stored = store.keys[rows].float()
    cos = torch.nn.functional.cosine_similarity(stored, fresh, dim=1)
    return float(1.0 - cos.double().mean())


def write_health(writer: Any, buffer: Any, step: int, prefix: str = "hippo/health") -> dict[str, float]:
    """Write :func:`health_scalars` to a ``SummaryWriter`` as ``{prefix}/<name>``; returns them."""
    scalars = health_scalars(buffer)
    for name, value in scalars.items():
        writer.add_scalar(f"{prefix}/{name}", value, step)
    return scalars


def write_key_projector(
    writer: Any, buffer: Any, n: int = 2000, step: int = 0, seed: int = 0, tag: str = "hippo_keys"
) -> int:
    """Write up to ``n`` stored keys to TensorBoard's projector, labelled by unit, return and outcome.

    Args:
        writer: A ``torch.utils.tensorboard.SummaryWriter``.
        buffer: A :class:`HippocampalReplayBuffer` or an SB3 ``HippoReplayBuffer``.
        n: Keys written (a uniform sample of stored transitions when there are more).
        step: Global step of the snapshot.
        seed: Seed of the sample.
        tag: Name of the embedding in the projector.

    Returns:
        Number of keys written.

    Raises:
        EmptyMemoryError: The memory holds no transition.
    """
    hippo = _hippo(buffer)
    if len(hippo) == 0:
        raise EmptyMemoryError("The memory is empty: there are no keys to project.")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValidationError("n", "an int >= 1", describe(n))
    store = hippo.memory
    live, _ = store.rows_of(store.live_slots())
    pick = torch.randperm(live.numel(), generator=torch.Generator().manual_seed(seed))[:n]
    rows = torch.sort(live[pick]).values
    slots = store.row_slot[rows]
    outcome = {1: "success", 0: "failure", -1: "unknown"}
    metadata = [
        [str(int(u)), f"{float(r):.4g}", outcome[int(s)], str(int(t))]
        for u, r, s, t in zip(
            store.unit_id[slots], store.unit_return[slots], store.unit_success[slots], store.steps[rows]
        )
    ]
    header = ["unit", "return", "outcome", "step"]
    writer.add_embedding(store.keys[rows].float(), metadata=metadata, metadata_header=header, global_step=step, tag=tag)
    return int(rows.numel())
