"""Persistence of a :class:`~hippogym.encoders.dual.DualEncoder` on its own.

An encoder directory holds ``encoder.safetensors`` (online and key encoder weights and the
version counter, written with :func:`hippo_format.torch.save_state_dict`) and ``config.json``
(``{"producer", "version", "encoder"}``, the last being :meth:`DualEncoder.config`). Nothing is
unpickled on load: the config is JSON and the weights are checked name by name and shape by
shape against a freshly built encoder before they are loaded.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import hippo_format
from hippo_format.errors import ManifestError
from hippogym.checks import PRODUCER, check_state_keys, producer_version

__all__ = ["load_encoder", "save_encoder"]


def save_encoder(encoder: Any, path: str | os.PathLike[str]) -> Path:
    """Save a :class:`DualEncoder` as ``encoder.safetensors`` plus ``config.json`` in ``path``.

    Args:
        encoder: The encoder.
        path: Target directory (created if needed); ``config.json`` is replaced atomically.

    Returns:
        The directory written.
    """
    from hippo_format.torch import save_state_dict

    target = Path(path)
    target.mkdir(parents=True, exist_ok=True)
    save_state_dict(target / "encoder.safetensors", encoder.state_dict())
    tmp = target / ".config.json.tmp"
    config = {"producer": PRODUCER, "version": producer_version(), "encoder": encoder.config()}
    tmp.write_text(json.dumps(config, indent=2))
    os.replace(tmp, target / "config.json")
    return target


def load_encoder(cls: type[Any], path: str | os.PathLike[str]) -> Any:
    """Load an encoder saved by :func:`save_encoder`.

    Args:
        cls: The encoder class to build (``DualEncoder``; passed in so that this module never
            imports the encoder, which imports it).
        path: Encoder directory.

    Returns:
        The encoder, weights loaded.

    Raises:
        hippo_format.MissingFileError: If ``config.json`` is missing.
        hippo_format.ManifestError: If ``config.json`` is not JSON with an ``encoder`` object.
        hippo_format.SchemaError: If the weights do not match the config.
    """
    from hippo_format.torch import load_state_dict

    target = Path(path)
    try:
        config = json.loads((target / "config.json").read_text(encoding="utf-8"))["encoder"]
    except FileNotFoundError as exc:
        raise hippo_format.MissingFileError(
            f"Expected {target / 'config.json'} (the encoder config), found none."
        ) from exc
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ManifestError(f"Expected {target / 'config.json'} to be JSON with an `encoder` object: {exc}") from exc
    encoder = cls.from_config(config)
    state = load_state_dict(target / "encoder.safetensors")
    check_state_keys(encoder.state_dict(), state, "encoder.safetensors")
    encoder.load_state_dict(state)
    return encoder
