"""Analyst API under ``/api/v1/items``."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1/items", tags=["items"])
