"""Backbones: the networks inside :class:`~hippogym.DualEncoder`.

Every backbone maps flat inputs ``[B, input_dim]`` to unnormalised embeddings ``[B, embed_dim]``
and ends with a linear layer, so after L2 normalisation embeddings can point anywhere on the sphere
(a ReLU right before the normalisation would confine them to the positive orthant). Each backbone
reports a JSON ``config()`` so a saved memory can rebuild it without pickle.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hippogym.errors import ValidationError

__all__ = ["MLPBackbone", "CNNBackbone", "IdentityBackbone", "SequenceBackbone", "build_backbone", "BACKBONES"]


def _mlp(sizes: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.LayerNorm(sizes[i + 1]))
            layers.append(nn.GELU(approximate="tanh"))
    return nn.Sequential(*layers)


def _run_mlp(net: nn.Sequential, x: Tensor) -> Tensor:
    """Functional forward of :func:`_mlp`'s layers: skips per-module dispatch, which dominates
    the cost of embedding one query (a replay-buffer hot path)."""
    layers = list(net)
    for i in range(0, len(layers), 3):
        lin = layers[i]
        x = F.linear(x, lin.weight, lin.bias)
        if i + 1 < len(layers):
            norm = layers[i + 1]
            x = F.gelu(F.layer_norm(x, norm.normalized_shape, norm.weight, norm.bias, norm.eps), approximate="tanh")
    return x


_GELU_C = np.float32(math.sqrt(2.0 / math.pi))
_GELU_C3 = np.float32(math.sqrt(2.0 / math.pi) * 0.044715)


class _NumpyMLP:
    """Numpy views of an :func:`_mlp`'s parameters, for embedding one row without torch dispatch.

    Embedding a single query is ~10 torch calls of ~5 µs each here, almost all overhead (the
    arithmetic is ~100k multiply-adds); the same layers on 1-D numpy arrays cost about half. The
    views share memory with the parameters, so in-place updates (optimiser steps, the momentum
    update, ``load_state_dict``) are seen; :meth:`valid` detects replaced parameters.
    """

    def __init__(self, net: nn.Sequential) -> None:
        layers = list(net)
        self.params: list[tuple[nn.Module, str, Tensor]] = []
        self.blocks: list[tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray, float] | None]] = []
        for i in range(0, len(layers), 3):
            lin = layers[i]
            norm = layers[i + 1] if i + 1 < len(layers) else None
            self.params += [(lin, "weight", lin.weight), (lin, "bias", lin.bias)]
            ln = None
            if norm is not None:
                self.params += [(norm, "weight", norm.weight), (norm, "bias", norm.bias)]
                ln = (norm.weight.detach().numpy(), norm.bias.detach().numpy(), float(norm.eps))
            self.blocks.append((lin.weight.detach().numpy(), lin.bias.detach().numpy(), ln))
        self.ptrs = [p.data_ptr() for _, _, p in self.params]

    @staticmethod
    def supported(net: nn.Sequential) -> bool:
        """Whether ``net`` is exactly an :func:`_mlp` stack of float32 CPU layers."""
        layers = list(net)
        for i, layer in enumerate(layers):
            kind = (nn.Linear, nn.LayerNorm, nn.GELU)[i % 3]
            if type(layer) is not kind:
                return False
            if kind is nn.GELU and layer.approximate != "tanh":
                return False
            if kind is nn.LayerNorm and (len(layer.normalized_shape) != 1 or layer.weight is None):
                return False
            if kind is nn.Linear and layer.bias is None:
                return False
        params = list(net.parameters())
        return bool(layers) and len(layers) % 3 == 1 and all(p.dtype == torch.float32 and p.device.type == "cpu" for p in params)

    def valid(self) -> bool:
        """Whether the views still alias the module's current parameters."""
        for (module, name, param), ptr in zip(self.params, self.ptrs):
            if module._parameters.get(name) is not param or param.data_ptr() != ptr:
                return False
        return True

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Forward of one row ``x`` ``[input_dim]`` float32 (unnormalised output)."""
        for weight, bias, ln in self.blocks:
            x = np.dot(weight, x)
            x += bias
            if ln is not None:
                gamma, beta, eps = ln
                x -= x.sum() / np.float32(x.size)
                x *= np.float32(1.0 / math.sqrt(float(np.dot(x, x)) / x.size + eps))
                x *= gamma
                x += beta
                # GELU, tanh approximation: 0.5 x (1 + tanh(c (x + 0.044715 x^3))).
                t = x * x
                t *= _GELU_C3
                t += _GELU_C
                t *= x
                np.tanh(t, out=t)
                t += np.float32(1.0)
                t *= np.float32(0.5)
                x *= t
        return x


class MLPBackbone(nn.Module):
    """The default backbone for vector observations: Linear-LayerNorm-GELU blocks, linear head.

    Args:
        input_dim: Input width.
        embed_dim: Output width.
        hidden: Hidden layer widths.
    """

    def __init__(self, input_dim: int, embed_dim: int, hidden: Sequence[int] = (256, 256)) -> None:
        super().__init__()
        self.input_dim, self.embed_dim, self.hidden = int(input_dim), int(embed_dim), tuple(int(h) for h in hidden)
        self.net = _mlp([self.input_dim, *self.hidden, self.embed_dim])
        self._numpy: _NumpyMLP | None = None

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        return _run_mlp(self.net, x)

    def forward_row_numpy(self, x: np.ndarray) -> np.ndarray | None:
        """Inference forward of a single row ``[input_dim]`` in numpy (no autograd).

        Same layers as :meth:`forward`; results agree with it to float32 rounding (~1e-7, the same
        order as torch's own single-row vs batched kernels). Returns ``None`` when the network is
        not a plain float32 CPU MLP (the caller then uses :meth:`forward`).
        """
        fast = self.__dict__.get("_numpy")
        if fast is None or not fast.valid():
            if not _NumpyMLP.supported(self.net):
                return None
            fast = _NumpyMLP(self.net)
            self.__dict__["_numpy"] = fast
        return fast(x)

    def config(self) -> dict[str, Any]:
        """JSON description."""
        return {"type": "mlp", "input_dim": self.input_dim, "embed_dim": self.embed_dim, "hidden": list(self.hidden)}


class CNNBackbone(nn.Module):
    """A small convolutional backbone for image observations.

    The flat input holds the image (``C*H*W`` scalars in channel-first order, starting at
    ``image_offset``) plus any other features; the image goes through the convolutions, the rest is
    concatenated before the head.

    Args:
        input_dim: Total flat input width.
        embed_dim: Output width.
        image_shape: ``(C, H, W)`` of the image part.
        image_offset: Where the image part starts in the flat input.
        channels: Convolution channels.
        hidden: Width of the hidden layer of the head.
        channels_last: The flat image is stored ``(H, W, C)`` (Gymnasium's usual layout).
    """

    def __init__(
        self,
        input_dim: int,
        embed_dim: int,
        image_shape: Sequence[int],
        image_offset: int = 0,
        channels: Sequence[int] = (32, 64),
        hidden: int = 256,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        if len(image_shape) != 3:
            raise ValidationError("image_shape", "(C, H, W)", repr(tuple(image_shape)))
        self.input_dim, self.embed_dim = int(input_dim), int(embed_dim)
        self.image_shape = tuple(int(s) for s in image_shape)
        self.image_offset, self.channels_last = int(image_offset), bool(channels_last)
        self.channels, self.hidden = tuple(int(c) for c in channels), int(hidden)
        c, h, w = self.image_shape
        self.image_size = c * h * w
        if self.image_offset + self.image_size > self.input_dim:
            raise ValidationError("image_shape", f"to fit in input_dim={input_dim} from offset {image_offset}", repr(self.image_shape))
        convs: list[nn.Module] = []
        prev = c
        for ch in self.channels:
            convs += [nn.Conv2d(prev, ch, 3, stride=2, padding=1), nn.GELU()]
            prev = ch
        convs += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.conv = nn.Sequential(*convs)
        extra = self.input_dim - self.image_size
        self.head = _mlp([prev + extra, self.hidden, self.embed_dim])

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        lo, hi = self.image_offset, self.image_offset + self.image_size
        img = x[:, lo:hi]
        c, h, w = self.image_shape
        img = img.reshape(-1, h, w, c).permute(0, 3, 1, 2) if self.channels_last else img.reshape(-1, c, h, w)
        rest = torch.cat([x[:, :lo], x[:, hi:]], dim=1)
        return self.head(torch.cat([self.conv(img), rest], dim=1))

    def config(self) -> dict[str, Any]:
        """JSON description."""
        return {
            "type": "cnn", "input_dim": self.input_dim, "embed_dim": self.embed_dim,
            "image_shape": list(self.image_shape), "image_offset": self.image_offset,
            "channels": list(self.channels), "hidden": self.hidden, "channels_last": self.channels_last,
        }


class SequenceBackbone(nn.Module):
    """A GRU over a context window of steps (use with ``TransitionFeaturizer(context=n)``).

    Args:
        input_dim: Flat input width, ``context * step_dim``.
        embed_dim: Output width.
        context: Steps in the window.
        hidden: GRU hidden size.
    """

    def __init__(self, input_dim: int, embed_dim: int, context: int, hidden: int = 128) -> None:
        super().__init__()
        if context < 1 or input_dim % context:
            raise ValidationError("context", f"a divisor of input_dim={input_dim}", repr(context))
        self.input_dim, self.embed_dim, self.context, self.hidden = int(input_dim), int(embed_dim), int(context), int(hidden)
        self.step_dim = self.input_dim // self.context
        self.inp = nn.Linear(self.step_dim, self.hidden)
        self.gru = nn.GRU(self.hidden, self.hidden, batch_first=True)
        self.head = nn.Linear(self.hidden, self.embed_dim)

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        seq = torch.nn.functional.gelu(self.inp(x.reshape(x.shape[0], self.context, self.step_dim)))
        _, last = self.gru(seq)
        return self.head(last[-1])

    def config(self) -> dict[str, Any]:
        """JSON description."""
        return {"type": "sequence", "input_dim": self.input_dim, "embed_dim": self.embed_dim, "context": self.context, "hidden": self.hidden}


class IdentityBackbone(nn.Module):
    """No network: the features themselves are the embedding (zero-padded to ``embed_dim``).

    Retrieval then compares raw (featurised) transitions by cosine similarity: a baseline that
    separates what the memory's storage and sampling do from what a learned key space adds (the
    seed's ``IdentityDualEncoder``), and a sensible choice when observations already are good
    descriptors. Use ``DualEncoder(input_dim, embed_dim, backbone="identity")``.

    By default it has no parameters, so there is nothing to consolidate (build the
    :class:`~hippogym.Consolidator` only with ``learnable=True``). With ``learnable=True`` it is a
    per-feature scale, initialised to 1, that consolidation may reweight.

    Args:
        input_dim: Input width.
        embed_dim: Output width, ``>= input_dim`` (extra dimensions are zero).
        learnable: Add a trainable per-feature scale.

    Raises:
        ValidationError: ``embed_dim < input_dim``.

    Example:
        >>> net = IdentityBackbone(3, 4)
        >>> net(torch.tensor([[1.0, 2.0, 3.0]])).tolist()
        [[1.0, 2.0, 3.0, 0.0]]
    """

    def __init__(self, input_dim: int, embed_dim: int, learnable: bool = False) -> None:
        super().__init__()
        if int(embed_dim) < int(input_dim):
            raise ValidationError(
                "embed_dim", f">= input_dim={input_dim} (the identity keeps every feature)", repr(embed_dim),
                "Use an MLP backbone to compress features.",
            )
        self.input_dim, self.embed_dim, self.learnable = int(input_dim), int(embed_dim), bool(learnable)
        self.scale = nn.Parameter(torch.ones(self.input_dim)) if self.learnable else None

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        if self.scale is not None:
            x = x * self.scale
        pad = self.embed_dim - self.input_dim
        return F.pad(x, (0, pad)) if pad else x.clone()

    def config(self) -> dict[str, Any]:
        """JSON description."""
        return {"type": "identity", "input_dim": self.input_dim, "embed_dim": self.embed_dim, "learnable": self.learnable}


BACKBONES: dict[str, type[nn.Module]] = {
    "mlp": MLPBackbone, "cnn": CNNBackbone, "sequence": SequenceBackbone, "identity": IdentityBackbone,
}


def build_backbone(config: Mapping[str, Any]) -> nn.Module:
    """Build a backbone from its JSON ``config()``.

    Raises:
        ValidationError: Unknown backbone type.
    """
    kind = config.get("type")
    if kind not in BACKBONES:
        raise ValidationError("backbone type", f"one of {sorted(BACKBONES)}", repr(kind))
    kwargs = {k: v for k, v in config.items() if k != "type"}
    return BACKBONES[kind](**kwargs)
