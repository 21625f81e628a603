"""The dual encoder: an online (query) network trained by gradient and a momentum key network."""

from __future__ import annotations

import copy
import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from hippogym.encoders.backbones import MLPBackbone, build_backbone
from hippogym.errors import DimensionMismatchError, ValidationError, describe
from hippogym.types import DEFAULT_EMBED_DIM

__all__ = ["DualEncoder"]


def _l2_normalize(x: Tensor, eps: float = 1e-12) -> Tensor:
    """``F.normalize(x, dim=1)`` with the same kernels (bitwise equal) and less Python overhead:
    ``F.normalize`` goes through ``Tensor.norm`` and ``expand_as``, which costs ~8 µs per call
    here, a sizeable share of embedding a single query."""
    return x / torch.linalg.vector_norm(x, 2, dim=1, keepdim=True).clamp_min(eps)


class DualEncoder(nn.Module):
    """Online encoder plus a slowly moving key encoder (an exponential moving average of it).

    The key encoder produces the keys stored in memory and embeds retrieval queries, so queries and
    keys always live in the same space; it is never trained by gradient and always runs in eval
    mode, so the same input gives the same key. The online encoder is what consolidation trains.

    Args:
        input_dim: Width of the flat encoder input (``obs_dim + action_dim + 1``).
        embed_dim: Width of the embeddings (L2-normalised; default 64).
        momentum: EMA coefficient of the key encoder (``0.995``: higher = more stable keys).
        backbone: ``"mlp"`` (default), ``"identity"`` (no network, see
            :class:`~hippogym.encoders.backbones.IdentityBackbone`), a backbone config dict (see
            :func:`~hippogym.encoders.backbones.build_backbone`), or an ``nn.Module`` mapping
            ``[B, input_dim]`` to ``[B, embed_dim]`` that has a ``config()`` method.
        hidden: Hidden widths of the default MLP.

    Example:
        >>> enc = DualEncoder(input_dim=6, embed_dim=16)
        >>> keys = enc.encode_keys(torch.randn(5, 6))
        >>> keys.shape, bool(torch.allclose(keys.norm(dim=1), torch.ones(5)))
        (torch.Size([5, 16]), True)
    """

    def __init__(
        self,
        input_dim: int,
        embed_dim: int = DEFAULT_EMBED_DIM,
        momentum: float = 0.995,
        backbone: str | Mapping[str, Any] | nn.Module = "mlp",
        hidden: Sequence[int] = (256, 256),
    ) -> None:
        super().__init__()
        if not isinstance(input_dim, int) or input_dim < 1:
            raise ValidationError("input_dim", "an int >= 1", describe(input_dim))
        if not isinstance(embed_dim, int) or embed_dim < 2:
            raise ValidationError("embed_dim", "an int >= 2", describe(embed_dim))
        if not 0.0 <= float(momentum) <= 1.0:
            raise ValidationError("momentum", "a float in [0, 1]", repr(momentum))
        if isinstance(backbone, nn.Module):
            online = backbone
        elif backbone == "mlp":
            online = MLPBackbone(input_dim, embed_dim, hidden)
        elif backbone == "identity":
            online = build_backbone({"type": "identity", "input_dim": input_dim, "embed_dim": embed_dim})
        elif isinstance(backbone, Mapping):
            online = build_backbone({**backbone, "input_dim": input_dim, "embed_dim": embed_dim})
        else:
            raise ValidationError("backbone", "'mlp', 'identity', a backbone config dict or an nn.Module", describe(backbone))
        self.input_dim, self.embed_dim, self.momentum = int(input_dim), int(embed_dim), float(momentum)
        self.online = online
        self.key = copy.deepcopy(online)
        self.key.requires_grad_(False)
        self.key.train(False)  # eval mode: keys are deterministic
        # Number of momentum updates so far: stamps keys so staleness can be measured.
        self.register_buffer("version", torch.zeros((), dtype=torch.int64))

    def train(self, mode: bool = True) -> "DualEncoder":
        """Switch the online encoder's mode; the key encoder always stays in eval mode."""
        self.online.train(mode)
        self.key.train(False)  # eval mode: keys are deterministic
        self.training = mode
        return self

    def _check(self, x: Tensor) -> Tensor:
        if x.dim() != 2 or x.shape[1] != self.input_dim:
            raise DimensionMismatchError("encoder input", f"shape [B, {self.input_dim}]", describe(x))
        return x

    def encode_queries(self, x: Tensor) -> Tensor:
        """Online embeddings (with gradient), L2-normalised ``[B, embed_dim]``."""
        return _l2_normalize(self.online(self._check(x)))

    @torch.no_grad()
    def encode_keys(self, x: Tensor, batch_size: int = 8192) -> Tensor:
        """Key-encoder embeddings (no gradient, deterministic), L2-normalised ``[B, embed_dim]``."""
        self._check(x)
        if x.shape[0] <= batch_size:
            return _l2_normalize(self.key(x))
        return torch.cat([_l2_normalize(self.key(chunk)) for chunk in x.split(batch_size)])

    def encode_keys_np(self, x: np.ndarray) -> np.ndarray:
        """:meth:`encode_keys` for a float32 numpy batch ``[B, input_dim]``; returns numpy.

        A single row (one retrieval query, the replay hot path) goes through the backbone's numpy
        forward when it has one (:meth:`MLPBackbone.forward_row_numpy`), about twice as fast as
        torch for one row; the result agrees with :meth:`encode_keys` to float32 rounding.
        """
        if x.ndim == 2 and x.shape[0] == 1 and x.shape[1] == self.input_dim and x.dtype == np.float32:
            row_forward = getattr(self.key, "forward_row_numpy", None)
            out = row_forward(x[0]) if row_forward is not None else None
            if out is not None:
                out *= np.float32(1.0 / max(math.sqrt(float(np.dot(out, out))), 1e-12))
                return out[None]
        return self.encode_keys(torch.from_numpy(x)).numpy()

    def forward(self, x: Tensor) -> Tensor:
        """Same as :meth:`encode_queries`."""
        return self.encode_queries(x)

    @torch.no_grad()
    def momentum_update(self) -> None:
        """Move the key encoder towards the online encoder: ``k = m * k + (1 - m) * q``."""
        k_params = list(self.key.parameters())
        q_params = list(self.online.parameters())
        if k_params:  # a parameter-free backbone (identity) has nothing to move
            torch._foreach_mul_(k_params, self.momentum)
            torch._foreach_add_(k_params, q_params, alpha=1.0 - self.momentum)
        for kb, qb in zip(self.key.buffers(), self.online.buffers()):
            kb.copy_(qb)
        self.version += 1

    def config(self) -> dict[str, Any]:
        """JSON description (for manifests and :meth:`from_config`)."""
        backbone = self.online.config() if hasattr(self.online, "config") else {"type": type(self.online).__name__}
        return {"input_dim": self.input_dim, "embed_dim": self.embed_dim, "momentum": self.momentum, "backbone": backbone}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "DualEncoder":
        """Rebuild an (untrained) encoder from :meth:`config`; then load its ``state_dict``."""
        return cls(int(config["input_dim"]), int(config["embed_dim"]), float(config["momentum"]), backbone=dict(config["backbone"]))

    def save_pretrained(self, path: str | os.PathLike[str]) -> Path:
        """Save weights (safetensors) and config (JSON) in directory ``path``."""
        from hippogym.encoders.persist import save_encoder

        return save_encoder(self, path)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike[str]) -> "DualEncoder":
        """Load an encoder saved by :meth:`save_pretrained`."""
        from hippogym.encoders.persist import load_encoder

        return load_encoder(cls, path)
