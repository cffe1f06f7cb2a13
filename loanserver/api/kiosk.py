"""The kiosk API (docs/api.md): bearer token per kiosk."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1/kiosk", tags=["kiosk"])
