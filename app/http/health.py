"""Probes: liveness (``/healthz``) and readiness (``/readyz``); neither needs a token.

``/healthz`` answers as long as the process serves HTTP and touches nothing. ``/readyz``
says whether this instance can serve requests now: the database answers, its schema is at
the revision this code needs, and the policy and mapping tables are loaded. A load balancer
sends traffic only to ready instances; an orchestrator restarts only dead ones.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

import orjson
from alembic.script import ScriptDirectory
from fastapi import APIRouter, Request
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import Response

from app.db import migrations
from app.http.errors import PROBLEM_MEDIA_TYPE

router = APIRouter(tags=["operations"])
log = logging.getLogger(__name__)


@router.get("/healthz", summary="Liveness probe")
def healthz() -> dict[str, Any]:
    """200 while the process serves HTTP; checks nothing else."""
    return {"status": "ok"}


@lru_cache(maxsize=1)
def schema_head() -> str | None:
    """The Alembic head revision of this code (the migration files do not change while it runs)."""
    return ScriptDirectory.from_config(migrations.alembic_config("sqlite://")).get_current_head()


def _database_checks(request: Request) -> dict[str, str]:
    try:
        with request.app.state.engine.connect() as connection:
            revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except SQLAlchemyError as exc:
        # The reason stays in the server log: a probe's answer names no host, user or SQL.
        log.warning("readiness: database check failed: %s", str(getattr(exc, "orig", exc)).splitlines()[0])
        return {"database": "unreachable or without a schema", "schema": "unknown"}
    head = schema_head()
    if revision != head:
        return {"database": "ok", "schema": f"at revision {revision}, this version needs {head}"}
    return {"database": "ok", "schema": "ok"}


def _policy_check(request: Request) -> str:
    state = request.app.state
    if getattr(state, "role_rights", None) is None or getattr(state, "mappings", None) is None:
        return "not loaded"
    if getattr(state, "visibility", None) is None:
        return "visibility cache missing"
    policies_dir = state.settings.policies_dir
    # The visibility cache reloads these files when they change: they must stay readable.
    missing = [name for name in ("model.conf", "policy.csv") if not (policies_dir / name).is_file()]
    return f"missing {', '.join(missing)}" if missing else "ok"


@router.get("/readyz", summary="Readiness probe", responses={503: {"description": "Not ready (problem details)"}})
def readyz(request: Request) -> Response:
    """200 when the database, its schema and the policy are usable; 503 problem details naming what is not."""
    checks = {**_database_checks(request), "policy": _policy_check(request)}
    failing = [f"{name}: {result}" for name, result in checks.items() if result != "ok"]
    if not failing:
        return Response(orjson.dumps({"status": "ready", "checks": checks}), media_type="application/json")
    body = {
        "type": "about:blank",
        "title": "Service Unavailable",
        "status": 503,
        "detail": "Not ready: " + "; ".join(failing),
        "instance": request.url.path,
        "checks": checks,
    }
    return Response(orjson.dumps(body), status_code=503, media_type=PROBLEM_MEDIA_TYPE, headers={"Retry-After": "5"})
