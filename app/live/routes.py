"""``GET /taxii2/{api_root}/collections/{id}/events/``: a collection's new objects as Server-Sent Events.

Each event is ``event: objects``, ``id:`` an opaque cursor, ``data:`` a TAXII envelope holding
exactly what ``GET .../objects/?added_after=<cursor>`` would serve the principal
(:mod:`app.live.service`). Opening the stream is an audited TAXII read (refusals in TAXII's error
format, hidden and absent collections alike); each event is recorded with what it served.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from sqlmodel import Session
from sse_starlette import EventSourceResponse, ServerSentEvent

from app.audit.context import note_collection
from app.audit.service import AuditUnavailable
from app.auth.principal import Principal
from app.config.settings import Settings
from app.http.dependencies import SESSION, get_principal, get_role_rights, get_settings
from app.http.errors import ApiError, not_found
from app.live import service
from app.live.hub import LiveHub, Subscription, TooManyStreams
from app.live.service import Reader
from app.policy.enforcer import RoleRights
from app.taxii import service as taxii_service
from app.taxii.filters import parse_page_request
from app.taxii.media import media_ranges
from app.taxii.service import own_nation as taxii_own_nation

log = logging.getLogger(__name__)
EVENT_STREAM = "text/event-stream"
_ACCEPTABLE = {EVENT_STREAM, "text/*", "*/*"}


async def _require_event_stream_accept(request: Request) -> None:
    header = request.headers.get("accept")
    if header and not any(kind in _ACCEPTABLE for kind, _ in media_ranges(header)):
        raise ApiError(406, f"The events endpoint answers only with {EVENT_STREAM}.")


router = APIRouter(prefix="/taxii2", tags=["TAXII 2.1 live"], dependencies=[Depends(_require_event_stream_accept)])


def _reader(request: Request) -> Reader:
    state = request.app.state
    return Reader(
        state.engine,
        state.audit_writer,
        state.settings,
        state.role_rights,
        state.visibility,
        state.mappings,
        state.token_verifier,
    )


@router.get(
    "/{api_root}/collections/{collection_id}/events/",
    summary="Follow a collection's new objects (Server-Sent Events)",
    response_class=EventSourceResponse,
)
async def follow_events(
    request: Request,
    api_root: str,
    collection_id: str,
    principal: Principal = Depends(get_principal),
    session: Session = SESSION,
    settings: Settings = Depends(get_settings),
    rights: RoleRights = Depends(get_role_rights),
) -> EventSourceResponse:
    """Objects you may see, as they are stored: resume with ``Last-Event-ID``, or start at ``added_after``."""
    if api_root != settings.api_root:
        raise not_found("No such API root.")
    note_collection(request, collection_id)
    taxii_service.open_collection(session, rights, principal, collection_id, need="read")
    flt = parse_page_request(request, "events", settings).flt
    after_us = service.start_cursor(
        session, settings, collection_id, principal, request.headers.get("last-event-id"), flt.added_after_us
    )
    hub: LiveHub = request.app.state.live_hub
    hub.attach(asyncio.get_running_loop())
    try:
        subscription = hub.open(principal.nation, principal.subject, collection_id)
    except TooManyStreams as exc:
        raise ApiError(429, str(exc), headers={"Retry-After": "30"}) from None
    token = request.headers["authorization"].split(None, 1)[1]  # get_principal verified it is a bearer token
    client = request.client.host if request.client else None
    stream = _events(
        hub,
        subscription,
        _reader(request),
        principal,
        token,
        after_us,
        route=str(request.url.path),
        request_id=getattr(request.state, "request_id", ""),
        client=client,
    )
    return EventSourceResponse(
        stream,
        # No ping task: the stream yields its own keep-alive comments. sse-starlette's ping task runs
        # beside the one that sends the response start, and when the start took longer than one ping
        # interval (the audit record is written before the first byte) a ping went first: an ASGI error.
        ping=0,
        send_timeout=settings.live_send_timeout_seconds,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _events(
    hub: LiveHub,
    subscription: Subscription,
    reader: Reader,
    principal: Principal,
    token: str,
    after_us: int,
    *,
    route: str,
    request_id: str,
    client: str | None,
) -> AsyncIterator[ServerSentEvent]:
    """Read, send, wait for the next wake-up (or the re-check period), until the stream must close."""
    collection_id = subscription.collection_id
    settings = reader.settings
    checked = sent = time.monotonic()
    try:
        while not hub.closing.is_set():
            generation = hub.generation(collection_id)
            visible, readable = await asyncio.to_thread(service.visibility_key, reader, principal)
            own = taxii_own_nation(principal)  # a partner's own versions are served whole: part of the key
            key: tuple[Any, ...] = (collection_id, generation, visible, readable, own, after_us)
            page = await hub.shared_read(
                key, partial(service.read_after, reader, collection_id, visible, readable, after_us, own)
            )
            event = service.to_event(page)
            if event is not None:
                # Raises AuditUnavailable when the record cannot be written: nothing is sent.
                await asyncio.wrap_future(
                    reader.audit_writer.submit(
                        partial(
                            service.event_record,
                            principal,
                            request_id=request_id,
                            route=route,
                            collection_id=collection_id,
                            served=event.served,
                            client=client,
                        )
                    )
                )
                after_us = event.after_us
                yield ServerSentEvent(
                    event.envelope.decode(),
                    event="objects",
                    id=service.event_id(settings, collection_id, principal, after_us),
                )
                sent = time.monotonic()
                if page.more:
                    continue  # a backlog: read on at once
            until = time.monotonic() + settings.live_recheck_seconds
            while (now := time.monotonic()) < until:
                if now >= sent + settings.live_keepalive_seconds:
                    yield KEEP_ALIVE
                    sent = now
                    continue
                wait = min(until, sent + settings.live_keepalive_seconds) - now
                if await hub.wait_for_change(collection_id, generation, wait) or hub.closing.is_set():
                    break
            if time.monotonic() - checked >= settings.live_recheck_seconds:
                checked = time.monotonic()
                reason = await asyncio.to_thread(service.still_valid, reader, token, principal)
                if reason is not None:
                    yield _closing(reason)
                    return
    except AuditUnavailable:
        log.error("live event not sent: the audit log cannot be written")
        yield _closing("the audit log cannot be written; nothing more is sent. Reconnect later with Last-Event-ID")
    finally:
        hub.close(subscription)


KEEP_ALIVE = ServerSentEvent(comment="keep-alive")
"""A comment line: keeps proxies from cutting an idle stream; clients ignore it."""


def _closing(reason: str) -> ServerSentEvent:
    """The last event of a stream the server ends: why, and how to go on."""
    return ServerSentEvent(orjson.dumps({"reason": reason}).decode(), event="close")
