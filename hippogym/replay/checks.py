"""Per-call argument checks at :class:`~hippogym.replay.buffer.HippocampalReplayBuffer`'s public edge.

Each check runs before the buffer touches its state, so a refused call leaves the memory, the
generators and the sampler exactly as they were.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from hippogym.episode import Episode
from hippogym.errors import ValidationError, describe

__all__ = ["check_batch_size", "check_episode_values", "check_top_k"]


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < 1:
        raise ValidationError(name, "an int >= 1", describe(value))
    return int(value)


def check_batch_size(batch_size: Any) -> int:
    """Return ``batch_size`` as an int, refusing bools, non-integers and values < 1."""
    return _positive_int("batch_size", batch_size)


def check_top_k(top_k: Any) -> int | None:
    """Return ``top_k`` as an int (``None`` passes), refusing bools, non-integers and values < 1."""
    return None if top_k is None else _positive_int("top_k", top_k)


def _leaves(name: str, value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, Mapping):
        return [leaf for key, v in value.items() for leaf in _leaves(f"{name}[{key!r}]", v)]
    return [(name, value)]


def check_episode_values(episode: Episode) -> None:
    """Refuse an episode whose rewards or float observations hold NaN or infinite values."""
    if not isinstance(episode, Episode):
        raise ValidationError("episode", "an Episode", describe(episode))
    rewards = torch.as_tensor(episode.rewards)
    if rewards.is_floating_point() and not bool(torch.isfinite(rewards).all()):
        raise ValidationError("episode.rewards", "finite values", f"{int((~torch.isfinite(rewards)).sum())} NaN/inf")
    for name, leaf in _leaves("episode.states", episode.states):
        t = torch.as_tensor(leaf)
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise ValidationError(name, "finite values", f"{int((~torch.isfinite(t)).sum())} NaN/inf")
