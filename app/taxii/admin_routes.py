"""Collection administration under ``/api/v1/collections`` (role ``admin``)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1/collections", tags=["collections"])
