"""Row-storage helpers of the memory store: numpy views over torch tensors and fast row copies.

A numpy call on a small array costs about 1 µs, a torch call 5-8 µs, so the store's hot paths
read and write rows through numpy views that share memory with its tensors.

**16-bit keys** (``key_dtype="float16"``, the default) are read as float32 unit vectors: every read
re-normalises them (:func:`keys_as_float32`, :func:`float32_rows`, :func:`dot_rows`). Rounding
then only turns a key, never stretches it, so the float32 query a stored key was made from scores
``1 - O(2**-22)`` against it (within 1e-5 of 1, as with float32 keys), and another key's score
moves by at most the rounding angle times their distance: near-duplicates keep their order.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "KEY_DTYPES", "as_torch", "dot_rows", "float32_rows", "grown",
    "host_array", "keys_as_float32", "new_rows", "numpy_view", "take_rows", "write_range",
]

#: Key storage dtypes a store accepts (``key_dtype``), by name.
KEY_DTYPES = {"float32": torch.float32, "float16": torch.float16}

#: Rows converted per step when a scan reads 16-bit keys (2 MB of float32 at 128-d: stays in cache).
_CONVERT_ROWS = 4_096
#: Up to this many elements numpy's float16 conversion beats torch's per-call cost.
_NUMPY_CONVERT = 2_048

#: Row dtypes whose storage :func:`new_rows` takes from numpy.
_NUMPY_DTYPES = {
    torch.float64: np.float64, torch.float32: np.float32, torch.float16: np.float16,
    torch.int64: np.int64, torch.int32: np.int32, torch.int16: np.int16, torch.int8: np.int8,
    torch.uint8: np.uint8, torch.bool: np.bool_,
}


def new_rows(shape: tuple[int, ...], dtype: torch.dtype, fill: float | int | bool | None = 0) -> Tensor:
    """A CPU tensor for row storage, its memory allocated by numpy.

    numpy asks the kernel for transparent huge pages on large allocations (``madvise``); torch's
    CPU allocator does not by default. Writing a fresh 240 MB row buffer for the first time then
    costs about 0.05 s instead of 0.3 s here (one page fault per 2 MiB instead of per 4 KiB),
    which is most of what loading, growing or first filling a large memory spends.

    Args:
        shape: The tensor's shape.
        dtype: Its dtype (dtypes numpy lacks, such as bfloat16, fall back to torch's allocator).
        fill: The value of every element; ``None`` leaves them uninitialised (for a caller that
            writes every one next).

    Returns:
        The tensor (it shares memory with a numpy array it keeps alive).
    """
    np_dtype = _NUMPY_DTYPES.get(dtype)
    if np_dtype is None:
        out = torch.empty(shape, dtype=dtype)
        return out if fill is None else out.fill_(fill)
    if fill is None:
        array = np.empty(shape, dtype=np_dtype)
    elif fill == 0:
        array = np.zeros(shape, dtype=np_dtype)
    else:
        array = np.full(shape, fill, dtype=np_dtype)
    return torch.from_numpy(array)


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


def keys_as_float32(keys: Tensor) -> Tensor:
    """Stored keys as float32 unit vectors: float32 keys as they are, 16-bit keys re-normalised.

    Args:
        keys: ``[n, d]`` keys read from a store.

    Returns:
        ``[n, d]`` float32 tensor.
    """
    if keys.dtype == torch.float32:
        return keys
    return torch.nn.functional.normalize(keys.float(), dim=-1)


def float32_rows(keys: np.ndarray) -> np.ndarray:
    """:func:`keys_as_float32` on a numpy array of stored keys.

    numpy converts float16 at about 4-5 ns an element; torch's vectorised copy does it several times
    faster but costs about 10 µs a call, so blocks of more than ``_NUMPY_CONVERT`` elements go
    through torch.

    Args:
        keys: ``[n, d]`` float32 or float16 array.

    Returns:
        ``[n, d]`` float32 array.
    """
    if keys.dtype == np.float32:
        return keys
    if keys.size <= _NUMPY_CONVERT:
        out = keys.astype(np.float32)  # a new array: normalised in place
    else:
        out = torch.from_numpy(np.ascontiguousarray(keys)).float().numpy()
    norms = np.sqrt(np.einsum("ij,ij->i", out, out))
    out /= np.maximum(norms, 1e-12)[:, None]
    return out


def dot_rows(keys: np.ndarray, queries_t: np.ndarray, out: np.ndarray) -> None:
    """``out = float32_rows(keys) @ queries_t`` without a full-size float32 copy of ``keys``.

    float16 keys are converted a few thousand rows at a time into one scratch buffer (torch's copy)
    and the scores divided by the converted rows' norms, so the scan streams the 16-bit keys once.

    Args:
        keys: ``[n, d]`` float32 or float16 rows.
        queries_t: ``[d]`` one query, or ``[d, q]`` queries (float32).
        out: ``[n]`` (one query) or ``[n, q]`` float32 destination.
    """
    if keys.dtype == np.float32:
        np.dot(keys, queries_t, out=out)
        return
    n = keys.shape[0]
    step = min(n, _CONVERT_ROWS)
    scratch = torch.empty((step, keys.shape[1]), dtype=torch.float32)
    scratch_np = scratch.numpy()
    src = torch.from_numpy(keys)
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        block = scratch[: hi - lo]
        block.copy_(src[lo:hi])
        norms = torch.linalg.vector_norm(block, dim=1).clamp_(min=1e-12).numpy()
        np.dot(scratch_np[: hi - lo], queries_t, out=out[lo:hi])
        if out.ndim == 1:
            out[lo:hi] /= norms
        else:
            out[lo:hi] /= norms[:, None]


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
    out = new_rows((rows, *tensor.shape[1:]), tensor.dtype, None)
    n = tensor.shape[0]
    out[:n] = tensor
    out[n:] = 0
    return out
