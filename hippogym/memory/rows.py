"""Row-storage helpers of the memory store: numpy views over torch tensors and fast row copies.

A numpy call on a small array costs about 1 µs, a torch call 5-8 µs, so the store's hot paths
read and write rows through numpy views that share memory with its tensors.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["KEY_DTYPES", "as_torch", "grown", "host_array", "numpy_view", "take_rows", "write_range"]

#: Key storage dtypes a store accepts (``key_dtype``), by name.
KEY_DTYPES = {"float32": torch.float32, "float16": torch.float16}


def numpy_view(tensor: Tensor | None) -> np.ndarray | None:
    """A numpy array sharing memory with ``tensor``.

    Args:
        tensor: A tensor, or ``None``.

    Returns:
        The view, or ``None`` if ``tensor`` is ``None`` or numpy cannot hold it (dtype, device).
    """
    if tensor is None:
        return None
    try:
        return tensor.numpy()
    except (TypeError, RuntimeError):
        return None


def host_array(value: Tensor) -> np.ndarray | None:
    """``value`` as a host numpy array, without a copy when possible.

    Args:
        value: Any tensor.

    Returns:
        The array, or ``None`` if numpy cannot hold its dtype.
    """
    try:
        return value.numpy()  # CPU tensors without grad: a view, no dispatch
    except (TypeError, RuntimeError):
        pass
    try:
        return value.detach().cpu().numpy()
    except (TypeError, RuntimeError):
        return None


def write_range(tensor: Tensor, view: np.ndarray | None, start: int, end: int, value: Tensor) -> None:
    """``tensor[start:end] = value``, through the numpy view when dtypes agree (no torch dispatch).

    Args:
        tensor: Destination tensor.
        view: Its numpy view (:func:`numpy_view`), or ``None``.
        start: First row written.
        end: One past the last row written.
        value: ``[end - start, ...]`` rows.
    """
    src = host_array(value) if view is not None else None
    if src is not None and src.dtype == view.dtype:
        view[start:end] = src
    else:
        tensor[start:end] = value


def take_rows(tensor: Tensor, view: np.ndarray | None, rows: np.ndarray) -> np.ndarray | Tensor:
    """Rows of ``tensor``: numpy when it has a view, else a torch gather.

    Args:
        tensor: Source tensor.
        view: Its numpy view, or ``None``.
        rows: int64 row indices.

    Returns:
        The gathered rows.
    """
    if view is not None:
        return view.take(rows, axis=0)
    return tensor.index_select(0, torch.from_numpy(rows))


def as_torch(value: np.ndarray | Tensor) -> Tensor:
    """``value`` as a tensor (numpy arrays are wrapped without a copy).

    Args:
        value: An array or a tensor.

    Returns:
        A tensor.
    """
    return value if isinstance(value, Tensor) else torch.from_numpy(value)


def grown(tensor: Tensor, rows: int) -> Tensor:
    """A copy of ``tensor`` with ``rows`` rows (at least as many as it has): new rows are zero.

    Args:
        tensor: ``[n, ...]`` row storage.
        rows: Rows wanted.

    Returns:
        ``[rows, ...]``, the first ``n`` rows equal to ``tensor``'s.
    """
    out = torch.zeros((rows, *tensor.shape[1:]), dtype=tensor.dtype)
    out[: tensor.shape[0]] = tensor
    return out
