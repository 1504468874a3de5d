"""The audit middleware: exactly one record per audited request, written before any byte is sent.

A pure ASGI middleware, so exports and pages stream untouched. When the response
starts (after the endpoint ran), the request's :class:`AuditContext` and the status
become one record, unless the request was a write whose record already committed with
its data (:mod:`app.audit.transaction`, described by :func:`write_facts`). Error responses are small; their body is held back only until
its title and detail are read into the record's reason. Records of concurrent requests
share a transaction (:mod:`app.audit.writer`); each request waits for its own to commit. If the
record cannot be written the client gets 503 and the original response is dropped: nothing is
served without a record (fail closed).
"""

from __future__ import annotations

import asyncio
import logging
import time
from functools import partial
from typing import Any, TypedDict

import anyio
import orjson
from sqlalchemy import Engine, text
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.audit.context import AuditContext, audit_context
from app.audit.service import RecordFields, record_fields
from app.audit.transaction import WriteFacts
from app.audit.writer import RecordWriter
from app.http.errors import error_response

log = logging.getLogger(__name__)

AUDITED_PREFIXES = ("/taxii2", "/api/v1")
MAX_ERROR_BODY = 64 * 1024
UNAVAILABLE = "The audit log cannot be written at the moment; nothing was served. Retry later."


def is_audited(path: str) -> bool:
    """Whether requests to ``path`` are recorded (health, metrics, docs and static assets are not)."""
    return any(path == prefix or path.startswith(prefix + "/") for prefix in AUDITED_PREFIXES)


def _reason_kind(status: int) -> str:
    if status == 401:
        return "bad token"
    if status == 403:
        return "no right"
    if status == 404:
        return "not found"
    if status >= 500:
        return "error"
    return "bad input"


def _error_text(body: bytes) -> str:
    """Title and detail of a TAXII error or RFC 9457 problem body, else nothing."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ""
    if not isinstance(document, dict):
        return ""
    title = str(document.get("title") or "")
    detail = str(document.get("detail") or document.get("description") or "")
    return ": ".join(part for part in (title, detail) if part)


def _hidden_or_absent(engine: Engine, path_params: dict[str, Any]) -> str | None:
    """For a 404 on an object or collection: whether it exists (so was hidden) or not.

    Only auditors read this; the client saw the same plain 404 either way.
    """
    collection_id, object_id = path_params.get("collection_id"), path_params.get("object_id")
    if not collection_id:
        return None
    with engine.connect() as connection:
        if object_id:
            found = connection.execute(
                text("SELECT 1 FROM stix_object WHERE collection_id = :c AND object_id = :o LIMIT 1"),
                {"c": collection_id, "o": object_id},
            ).first()
            return "hidden object requested" if found else "no such object"
        found = connection.execute(text("SELECT 1 FROM collection WHERE id = :c"), {"c": collection_id}).first()
        return "hidden collection requested" if found else "no such collection"


def _route_text(scope: Scope) -> str:
    path = scope.get("path", "")
    query = scope.get("query_string", b"")
    return f"{path}?{query.decode('latin-1')}" if query else path


def _finer_404_reason(engine: Engine, scope: Scope) -> str | None:
    """Whether a 404's object or collection exists, for the record (runs in a worker thread)."""
    try:
        return _hidden_or_absent(engine, scope.get("path_params") or {})
    except Exception:  # noqa: BLE001 - the finer reason is a nicety; the record is not
        log.warning("could not tell hidden from absent for %s", scope.get("path"))
        return None


def _fields(
    scope: Scope, context: AuditContext, status: int, error_text: str | None, finer_reason: str | None
) -> RecordFields:
    """The record built from what the request gathered (runs on the audit writer's thread)."""
    principal = context.principal
    subject = principal.subject if principal else (context.subject or "")
    nation = principal.nation if principal else (context.nation or "")
    roles = sorted(principal.roles) if principal else []
    decision, reason = context.decision, context.reason
    failed = status >= 400
    if failed and decision != "deny":
        kind = finer_reason or _reason_kind(status)
        decision, reason = "deny", f"{kind}: {error_text}" if error_text else kind
    elif decision is None:
        decision = "allow"
    path_params = scope.get("path_params") or {}
    client = scope.get("client")
    return record_fields(
        request_id=context.request_id or scope.get("state", {}).get("request_id", ""),
        subject=subject,
        nation=nation,
        roles=roles,
        method=scope.get("method", ""),
        route=_route_text(scope),
        status=status,
        decision=decision,
        reason=reason,
        collection_id=context.collection_id or path_params.get("collection_id"),
        # An error body carries no object, whatever the route noted before it failed.
        served=() if failed else context.served,
        client=client[0] if client else None,
    )


def write_facts(scope: Scope, context: AuditContext) -> WriteFacts:
    """The record of a write about to commit: who, through which route, with the route's success status."""
    principal = context.principal
    route = scope.get("route")
    path_params = scope.get("path_params") or {}
    client = scope.get("client")
    return WriteFacts(
        request_id=context.request_id or scope.get("state", {}).get("request_id", ""),
        subject=principal.subject if principal else (context.subject or ""),
        nation=principal.nation if principal else (context.nation or ""),
        roles=principal.roles if principal else frozenset(),
        method=scope.get("method", ""),
        route=_route_text(scope),
        status=int(getattr(route, "status_code", None) or 200),
        collection_id=context.collection_id or path_params.get("collection_id"),
        reason=context.reason,
        client=client[0] if client else None,
    )


class _SendState(TypedDict):
    """What the send wrapper of one request remembers between messages."""

    started: bool
    dropped: bool
    held: Message | None  # an error's response start, sent once its body has been read
    body: bytes


class AuditMiddleware:
    """Records every request under ``/taxii2`` and ``/api/v1``; must sit inside RequestIdMiddleware."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; write its record when the response starts, or answer 503 if that fails."""
        if scope["type"] != "http" or not is_audited(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        engine: Engine = scope["app"].state.audit_engine
        writer: RecordWriter = scope["app"].state.audit_writer
        context = audit_context(Request(scope))
        state: _SendState = {"started": False, "dropped": False, "held": None, "body": b""}

        metrics = getattr(scope["app"].state, "metrics", None)
        indexer = getattr(scope["app"].state, "audit_indexer", None)

        async def record(status: int, error_text: str | None) -> bool:
            if context.write_records and status < 400:
                return True  # the write committed its own record with its data (app.audit.transaction)
            try:
                started = time.perf_counter()
                finer = None
                if status == 404 and context.decision != "deny":
                    finer = await anyio.to_thread.run_sync(_finer_404_reason, engine, scope)
                await asyncio.wrap_future(writer.submit(partial(_fields, scope, context, status, error_text, finer)))
                if metrics is not None:
                    metrics.audit_write_seconds.observe(time.perf_counter() - started)
                if indexer is not None and context.served and status < 400:
                    indexer.notify()
                return True
            except Exception:
                log.exception("audit record not written for %s %s", scope.get("method"), scope.get("path"))
                return False

        async def refuse() -> None:
            state["dropped"] = True
            response = error_response(Request(scope), 503, "Service Unavailable", UNAVAILABLE, {"Retry-After": "5"})
            await response(scope, receive, send)

        async def audited_send(message: Message) -> None:
            if state["dropped"]:
                return
            if message["type"] == "http.response.start":
                state["started"] = True
                status = int(message["status"])
                if status >= 400 and context.decision != "deny":
                    state["held"] = message  # read the error's title/detail first
                    return
                if not await record(status, None):
                    await refuse()
                    return
                await send(message)
                return
            if message["type"] == "http.response.body" and state["held"] is not None:
                state["body"] += message.get("body", b"")
                if message.get("more_body", False) and len(state["body"]) < MAX_ERROR_BODY:
                    return
                held, state["held"] = state["held"], None
                if not await record(int(held["status"]), _error_text(state["body"])):
                    await refuse()
                    return
                await send(held)
                await send(
                    {"type": "http.response.body", "body": state["body"], "more_body": message.get("more_body", False)}
                )
                return
            await send(message)

        try:
            await self.app(scope, receive, audited_send)
        except Exception:
            if not state["started"]:
                # The outer error handler answers 500; the record says so.
                await record(500, "Internal Server Error")
            raise
