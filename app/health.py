"""Liveness: answers without touching the database or needing a token."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness probe")
def healthz() -> dict:
    return {"status": "ok"}
