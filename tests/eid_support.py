"""Shared helpers for the eID tests: specimen folder, and a private pcscd with vpcd."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SPECIMEN_DIR = REPO_ROOT.parent / "shared" / "testdata" / "eid"
