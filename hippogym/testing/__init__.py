"""Test helpers for hippogym (import-light: standard library only).

``hippogym.testing.hub_server`` provides :class:`LocalHubServer`, a small Hugging Face
Hub-compatible HTTP server that lets tests and benchmarks drive the real
``huggingface_hub`` client (and Minari's ``hf://`` remote) without internet access.
"""

from __future__ import annotations

__all__ = ["LocalHubServer"]


def __getattr__(name: str):
    # Lazy attribute so that ``import hippogym.testing`` stays cheap.
    if name == "LocalHubServer":
        from .hub_server import LocalHubServer

        return LocalHubServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
