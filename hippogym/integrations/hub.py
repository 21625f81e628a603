"""Share memories through the Hugging Face Hub (or any Hub-compatible server).

A memory on the Hub is a repository whose root holds one ``hippo_format`` directory
(``manifest.json``, the Arrow tables, the safetensors files) plus a generated model card
(``README.md``) whose YAML metadata says ``library_name: hippogym``::

    from hippogym.integrations.hub import push_memory_to_hub, load_memory_from_hub

    commit = push_memory_to_hub(buffer, "alice/corridor-memory")      # one commit
    buffer = load_memory_from_hub("alice/corridor-memory", revision=commit.oid)

Guarantees:

* **One commit per push.** The memory and its card are sent with a single
  ``HfApi.create_commit`` whose parent is the branch head read before the push, so a push either
  lands completely or not at all, and a concurrent push to the same branch is refused (HTTP 412)
  instead of being silently interleaved. Files of the previous memory on that branch that the new
  one no longer has are deleted in the same commit. (``upload_folder`` is not used: with
  ``hf_xet`` installed it splits large folders into several commits.)
* **Verified before use.** Downloads go through ``snapshot_download`` (so the normal Hub cache,
  ``revision`` pinning, tokens and offline mode all apply) and every file is checked against the
  SHA-256 and size recorded in ``manifest.json`` before anything is decoded. A corrupted or
  tampered file raises :class:`hippo_format.ChecksumMismatchError` (or another
  :class:`hippo_format.FormatError`) and nothing is returned; only the cached files that fail
  their checksum are evicted from the cache, so that the next call downloads them again (a refusal
  for any other reason, e.g. an output directory that is not a memory, never touches the cache).
* **Atomic placement.** :func:`download_memory` copies into a temporary sibling of the target,
  verifies the copy, then renames it into place (an existing memory there is replaced atomically).

The transport itself (push, fetch, card) is :mod:`hippogym.hubio`, which takes any object with
``save(path)``; this module adds the buffer-aware entry points (a store-only memory loads as a
buffer with a fresh encoder) and keeps every name it has always exported.

Local directories and ``file://`` URLs work wherever a repo id does, for teams without Hub access.
The Hub endpoint defaults to ``HF_ENDPOINT`` (read by ``huggingface_hub`` when it is imported);
pass ``endpoint=`` to talk to another server, e.g. the offline test server in the repository's
``tests/hubserver/``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hippogym.errors import (  # the Hub errors are defined in hippogym.errors, re-exported here
    HubAuthError,
    HubError,
    HubNotFoundError,
    HubPushError,
    HubPushUnknownOutcomeError,
)
from hippogym.hubio.card import memory_card
from hippogym.hubio.common import LIBRARY_NAME
from hippogym.hubio.fetch import download_memory, fetch_memory
from hippogym.hubio.push import Saveable, push_to_hub

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from huggingface_hub import CommitInfo

    from hippogym.replay.buffer import HippocampalReplayBuffer

__all__ = [
    "LIBRARY_NAME",
    "HubAuthError",
    "HubError",
    "HubNotFoundError",
    "HubPushError",
    "HubPushUnknownOutcomeError",
    "download_memory",
    "load_memory_from_hub",
    "memory_card",
    "push_memory_to_hub",
]

logger = logging.getLogger(__name__)


def push_memory_to_hub(memory: Saveable | str | os.PathLike[str], repo_id: str, **kwargs: Any) -> CommitInfo:
    """Push a memory and its model card to a Hub repository as one commit.

    ``memory`` is a :class:`~hippogym.HippocampalReplayBuffer` (saved whole), a
    :class:`~hippogym.MemoryStore` (memory and keys only), any other object with ``save(path)``, or
    the path of a saved memory directory. Every keyword (``private``, ``token``, ``revision``,
    ``commit_message``, ``commit_description``, ``endpoint``, ``repo_type``, ``create_pr``,
    ``compression``, ``license``) and every guarantee and error is that of
    :func:`hippogym.hubio.push_to_hub`.

    Returns:
        The ``huggingface_hub.CommitInfo`` of the commit (its ``oid`` is the commit id).
    """
    return push_to_hub(memory, repo_id, **kwargs)


def _load_directory(path: Path, verify: str, device: str | torch.device) -> HippocampalReplayBuffer:
    """Load a buffer (or a store-only memory, wrapped in a buffer) from a memory directory."""
    from hippogym.replay.buffer import HippocampalReplayBuffer
    from hippogym.replay.persist import load_saved_memory

    return load_saved_memory(HippocampalReplayBuffer, path, verify=verify, device=device)


def load_memory_from_hub(
    repo_id_or_path: str | os.PathLike[str],
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    endpoint: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    repo_type: str = "model",
    verify: bool | str = True,
    device: str | torch.device = "cpu",
    force_download: bool = False,
) -> HippocampalReplayBuffer:
    """Load a memory from a Hub repository, a local directory or a ``file://`` URL.

    Hub memories are downloaded with ``snapshot_download`` (Hub cache, offline mode and tokens
    apply), then every file is checked against the SHA-256 and size in ``manifest.json`` before
    anything is decoded. A corrupt or tampered file raises and is evicted from the cache.

    Args:
        repo_id_or_path: ``"namespace/name"``, a directory (``"./memory"``, a ``Path``) or
            ``"file:///abs/memory"``. An existing local directory wins over a repo id of the same
            spelling.
        revision: Branch, tag or commit id to load (Hub only; default: the default branch).
        token: Hub token; ``None`` uses the stored login / ``HF_TOKEN``, ``False`` sends none.
        endpoint: Hub URL (default: ``HF_ENDPOINT`` or https://huggingface.co).
        cache_dir: Hub cache directory (default: ``HF_HUB_CACHE``).
        repo_type: ``"model"`` (default), ``"dataset"`` or ``"space"``.
        verify: ``True`` (default: SHA-256 of every file), ``False`` (sizes only) or a
            :func:`hippo_format.open_memory` mode.
        device: Device of the batches the buffer returns.
        force_download: Download again even if the cache holds the files.

    Returns:
        The :class:`~hippogym.HippocampalReplayBuffer`, exactly as it was saved (same keys bit
        for bit, same batches with the same seed). A memory saved from a bare
        :class:`~hippogym.MemoryStore` gets a fresh encoder.

    Raises:
        hippo_format.ChecksumMismatchError: A file differs from what the manifest records.
        hippo_format.FormatError: Any other problem with the memory (subclass says which).
        HubNotFoundError: No such repository or revision, or a private one without access.
        HubAuthError: The token was rejected.
        HubError: The Hub could not be reached and nothing is cached.
        ValidationError: Bad arguments (e.g. ``revision`` with a local path).
        MissingDependencyError: ``huggingface_hub`` is not installed (Hub repositories only).
    """
    buffer = fetch_memory(
        repo_id_or_path,
        lambda path, mode: _load_directory(path, mode, device),
        revision=revision,
        token=token,
        endpoint=endpoint,
        cache_dir=cache_dir,
        repo_type=repo_type,
        verify=verify,
        force_download=force_download,
    )
    logger.info("loaded %s: %d transitions", repo_id_or_path, len(buffer))
    return buffer
