"""Move ``hippo_format`` directories over the Hugging Face Hub (or any Hub-compatible server).

The transport knows nothing of buffers or stores: it pushes any object with ``save(path)`` (or a
saved directory) as one commit, and fetches a memory into a verified staging directory for a
``loader`` the caller passes. It sits in the base layer (it imports ``hippo_format``, the errors,
the checks and the progress bar only), so the replay buffer's ``push_to_hub`` and
``load_memory_from_hub`` use it without reaching up to :mod:`hippogym.integrations.hub`, which
adds the buffer-aware entry points on top.

Parts: :mod:`~hippogym.hubio.common` (client import, repo ids, error mapping, manifest reads),
:mod:`~hippogym.hubio.card` (the model card), :mod:`~hippogym.hubio.push` (one-commit push with
retries and a truthful account of the branch), :mod:`~hippogym.hubio.fetch` (download, verify,
evict corrupt cache entries, atomic placement).
"""

from hippogym.hubio.card import memory_card
from hippogym.hubio.common import LIBRARY_NAME
from hippogym.hubio.fetch import download_memory, fetch_memory
from hippogym.hubio.push import Saveable, push_to_hub

__all__ = ["LIBRARY_NAME", "Saveable", "download_memory", "fetch_memory", "memory_card", "push_to_hub"]
