"""The back-office API (docs/api.md): bearer admin token."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1/admin", tags=["back office"])
