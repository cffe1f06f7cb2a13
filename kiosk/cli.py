"""The ``digibank-kiosk`` command line."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    print("digibank-kiosk: nothing here yet", file=sys.stderr)
    return 1
