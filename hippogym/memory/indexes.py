"""Build a retrieval index from a name or a saved config (the store's ``index=`` argument)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hippogym.errors import ValidationError
from hippogym.memory.index import FaissIndex, RetrievalIndex, TorchIndex
from hippogym.memory.transition_index import TransitionIndex

__all__ = ["make_index"]


def make_index(spec: str | Mapping[str, Any] | RetrievalIndex) -> RetrievalIndex:
    """Build an index from a name (``"transition"``, ``"torch"``, ``"faiss"``), a config dict, or pass one through."""
    if isinstance(spec, RetrievalIndex):
        return spec
    if isinstance(spec, str):
        spec = {"type": spec}
    kind = spec.get("type")
    kwargs = {k: v for k, v in spec.items() if k != "type"}
    if kind == "transition":
        return TransitionIndex(**kwargs)
    if kind == "torch":
        return TorchIndex(**kwargs)
    if kind == "faiss":
        return FaissIndex(**kwargs)
    raise ValidationError("index", "'transition', 'torch', 'faiss' or a RetrievalIndex", repr(kind))
