"""``python -m hippogym``: the same command line as the ``hippogym`` console script."""

from __future__ import annotations

import sys

from hippogym.cli import main

if __name__ == "__main__":
    sys.exit(main())
