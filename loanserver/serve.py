"""``loanserver serve``: the HTTP API under uvicorn (to be completed)."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted; returns the exit code."""
    raise NotImplementedError("loanserver serve is being built")
