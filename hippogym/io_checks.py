"""Validation of the manifest values the loaders retype when they load a memory (re-exports).

The checks live with the part they check, so each part's persistence stays in its own layer:

* :mod:`hippogym.checks`: the field readers (:func:`manifest_int`, :func:`manifest_float`,
  :func:`manifest_bool`, :func:`manifest_name`);
* :mod:`hippogym.memory.persist`: :func:`store_config` and :func:`check_store_allocation`;
* :mod:`hippogym.replay.persist`: :func:`sampling_kwargs` (there ``read_sampling_kwargs``).

This module re-exports them under their historical names.
"""

from __future__ import annotations

from hippogym.checks import manifest_bool, manifest_float, manifest_int, manifest_name
from hippogym.memory.persist import check_store_allocation, store_config
from hippogym.replay.persist import read_sampling_kwargs as sampling_kwargs

__all__ = [
    "check_store_allocation", "manifest_bool", "manifest_float", "manifest_int", "manifest_name", "sampling_kwargs",
    "store_config",
]

