"""Feed administration and state under ``/api/v1/feeds``."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1/feeds", tags=["feeds"])
