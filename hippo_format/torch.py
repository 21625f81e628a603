"""Thin torch surface over the numpy-based format (the only module that imports torch).

* :func:`to_torch` / :func:`from_torch` convert name -> array dicts.
* :func:`save_state_dict` / :func:`load_state_dict` store a flat ``state_dict``
  as a plain safetensors file, bfloat16 included, through the same validating
  safetensors code the memory reader uses (never ``torch.load``, never pickle).
* :func:`read_tensors` reads a tensor file of an open memory as torch tensors,
  bfloat16 included.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from hippo_format._files import open_file
from hippo_format._io import HashingFile, fsync_dir
from hippo_format._safetensors import NUMPY_TO_TAG, SafetensorsFile, write_safetensors
from hippo_format.errors import SchemaError
from hippo_format.limits import DEFAULT_LIMITS, LoadLimits, numpy_dtype_from_name

if TYPE_CHECKING:
    from hippo_format.reader import MemoryReader

__all__ = ["from_torch", "load_state_dict", "read_tensors", "save_state_dict", "to_torch", "torch_dtype_from_name"]

_RAW_TO_TORCH: dict[str, Any] = {"BF16": torch.bfloat16}
for _tag, _name in (("F8_E4M3", "float8_e4m3fn"), ("F8_E5M2", "float8_e5m2")):
    if hasattr(torch, _name):
        _RAW_TO_TORCH[_tag] = getattr(torch, _name)
_TORCH_TO_RAW = {v: k for k, v in _RAW_TO_TORCH.items()}


def torch_dtype_from_name(name: object, field: str) -> torch.dtype:
    """Turn a dtype name from a manifest into a torch dtype, from an allow-list only.

    Accepts the names :func:`hippo_format.limits.numpy_dtype_from_name` accepts
    (``"float32"``, ``"torch.float32"``, ``"float"``, ``"long"``, ...) plus
    ``"bfloat16"`` (and ``"torch.bfloat16"``). Never calls ``getattr(torch, name)``
    on a name read from a file.

    Args:
        name: The name from the manifest.
        field: Manifest field it came from, for the error.

    Returns:
        The torch dtype.

    Raises:
        SchemaError: For any other name.
    """
    if name in ("bfloat16", "torch.bfloat16"):
        return torch.bfloat16
    try:
        return torch.from_numpy(np.zeros(0, dtype=numpy_dtype_from_name(name, field))).dtype
    except SchemaError:
        raise SchemaError(
            f"{field}: expected a dtype name such as 'float32', 'torch.float32', 'int64', 'bool' or 'bfloat16', "
            f"got {name!r:.80}",
            field=field,
        ) from None


def to_torch(arrays: Mapping[str, np.ndarray], *, copy: bool = False) -> dict[str, torch.Tensor]:
    """Convert numpy arrays to CPU torch tensors.

    Args:
        arrays: Name -> array.
        copy: Always copy. Without it, writable arrays are shared with torch
            and read-only ones (memory-mapped views) are copied, since torch
            tensors are always writable.

    Returns:
        Name -> tensor.
    """
    out: dict[str, torch.Tensor] = {}
    for name, array in arrays.items():
        if copy or not array.flags.writeable or not array.flags.c_contiguous:
            array = np.array(array, order="C", copy=True)
        out[name] = torch.from_numpy(array)
    return out


def from_torch(tensors: Mapping[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """Convert torch tensors to numpy arrays (detached, on CPU, C-contiguous).

    Args:
        tensors: Name -> tensor.

    Returns:
        Name -> array.

    Raises:
        SchemaError: For a non-tensor value, or a dtype numpy cannot hold
            (bfloat16, float8): convert it (``t.float()``) or use :func:`save_state_dict`.
    """
    out: dict[str, np.ndarray] = {}
    for name, tensor in tensors.items():
        if not isinstance(tensor, torch.Tensor):
            raise SchemaError(f"{name!r}: expected a torch.Tensor, got {type(tensor).__name__}")
        if tensor.dtype in _TORCH_TO_RAW:
            raise SchemaError(
                f"{name!r}: dtype {tensor.dtype} has no numpy equivalent; call .float() first, or store it "
                "with hippo_format.torch.save_state_dict which keeps it exactly"
            )
        out[name] = tensor.detach().cpu().contiguous().numpy()
    return out


def _to_tagged(name: str, tensor: Any) -> tuple[str, np.ndarray]:
    if not isinstance(tensor, torch.Tensor):
        raise SchemaError(
            f"state_dict[{name!r}]: expected a torch.Tensor, got {type(tensor).__name__}; only flat "
            "name -> tensor dicts can be saved (flatten nested optimizer state first)"
        )
    t = tensor.detach().cpu().contiguous()
    if t.dtype in _TORCH_TO_RAW:
        carrier = torch.int16 if t.element_size() == 2 else torch.int8
        bits = t.view(carrier).numpy().view(np.uint16 if t.element_size() == 2 else np.uint8)
        return _TORCH_TO_RAW[t.dtype], np.require(bits, dtype=bits.dtype.newbyteorder("<"), requirements="C")
    try:
        array = t.numpy()
    except TypeError as exc:
        raise SchemaError(f"state_dict[{name!r}]: dtype {t.dtype} cannot be stored ({exc})") from None
    tag = NUMPY_TO_TAG.get(array.dtype)
    if tag is None:
        raise SchemaError(f"state_dict[{name!r}]: dtype {t.dtype} cannot be stored in safetensors")
    little = array.dtype.newbyteorder("<") if array.dtype.byteorder != "|" else array.dtype
    return tag, np.require(array, dtype=little, requirements="C")  # keeps 0-d scalars 0-d


def save_state_dict(
    path: str | os.PathLike[str],
    state_dict: Mapping[str, torch.Tensor],
    *,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Write a flat torch ``state_dict`` as a safetensors file, atomically.

    The file is written beside ``path`` under a temporary name, fsynced, and
    renamed over ``path``. Tied (shared-storage) tensors are stored once per name.

    Args:
        path: Destination file (conventionally ``*.safetensors``).
        state_dict: Name -> tensor (any device; bfloat16 and float8 are kept bit-exact).
        metadata: Optional safetensors ``__metadata__`` (str -> str).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        SchemaError: For non-tensor values or unsupported dtypes.
    """
    target = Path(path)
    if metadata is not None and not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise SchemaError("metadata: expected a dict of str -> str (safetensors metadata is strings only)")
    tagged = {}
    for name, tensor in state_dict.items():
        if not isinstance(name, str) or not name or name == "__metadata__":
            raise SchemaError(f"state_dict key {name!r}: expected a non-empty string other than '__metadata__'")
        tagged[name] = _to_tagged(name, tensor)
    tmp = target.with_name(f".{target.name}.tmp-{secrets.token_hex(8)}")
    sink = HashingFile(tmp)
    try:
        write_safetensors(sink, tagged, metadata)
        sink.finish().result()
        os.replace(tmp, target)
    except BaseException:
        sink.abort()
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent if str(target.parent) else Path("."))
    return target


def _file_to_torch(f: SafetensorsFile) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for name in f.names():
        entry = f.entry(name)
        array = f.read(name, raw=True)
        tensor = torch.from_numpy(array)
        if entry.dtype in _RAW_TO_TORCH:
            tensor = tensor.view(_RAW_TO_TORCH[entry.dtype])
        elif entry.dtype in ("F8_E4M3", "F8_E5M2"):
            raise SchemaError(f"{f.where}: tensor {name!r} is {entry.dtype}, which this torch build lacks")
        out[name] = tensor
    return out


def load_state_dict(
    path: str | os.PathLike[str],
    *,
    device: str | torch.device = "cpu",
    limits: LoadLimits | None = None,
) -> dict[str, torch.Tensor]:
    """Read a safetensors file into torch tensors, validating the header first.

    Args:
        path: The file (a regular file; FIFOs and devices are refused without blocking).
        device: Where to put the tensors.
        limits: Header limits (default :data:`hippo_format.limits.DEFAULT_LIMITS`).

    Returns:
        Name -> tensor (bfloat16/float8 restored exactly).

    Raises:
        MissingFileError: If the file does not exist.
        CorruptFileError: If the file is not a valid safetensors file.
    """
    target = Path(path)
    tensors = _file_to_torch(SafetensorsFile(open_file(target, str(target)), str(target), limits or DEFAULT_LIMITS))
    if torch.device(device).type != "cpu":
        tensors = {k: v.to(device) for k, v in tensors.items()}
    return tensors


def read_tensors(reader: MemoryReader, file_stem: str) -> dict[str, torch.Tensor]:
    """Read every tensor of ``<file_stem>.safetensors`` in an open memory as torch tensors.

    Unlike :meth:`MemoryReader.read_tensors` this also handles bfloat16/float8.

    Args:
        reader: An open memory.
        file_stem: Tensor file stem, e.g. ``"encoder"``.

    Returns:
        Name -> CPU tensor (writable copies).
    """
    return _file_to_torch(reader.tensor_file(file_stem))
