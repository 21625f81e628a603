"""Version of the hippo_format library (not of the on-disk format, see ``FORMAT_VERSION``)."""

from __future__ import annotations

__version__ = "0.1.0"
