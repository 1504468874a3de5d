"""Feed administration and state under ``/api/v1/feeds`` (role ``admin``).

Credentials go in (``credential``: the secret, or ``env:NAME``) and never come out.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field
from sqlmodel import Session

from app.auth.principal import Principal
from app.config.settings import Settings
from app.feeds import service
from app.feeds.context import FeedContext
from app.feeds.models import Feed
from app.feeds.sync import run_feed
from app.http.body import body_docs, json_body
from app.http.dependencies import (
    SESSION,
    get_mappings,
    get_principal,
    get_role_rights,
    get_settings,
    get_visibility,
)
from app.http.errors import ApiError, not_found
from app.markings.mappings import Mappings
from app.policy.enforcer import RoleRights
from app.policy.visibility import VisibilityCache
from app.taxii.models import DEFAULT_COLLECTION_ID


def _admin(principal: Principal = Depends(get_principal), rights: RoleRights = Depends(get_role_rights)) -> Principal:
    if not rights.allows(principal.roles, "feeds", "manage"):
        raise ApiError(403, "Managing feeds needs the admin role.")
    return principal


router = APIRouter(prefix="/api/v1/feeds", tags=["feeds"], dependencies=[Depends(_admin)])


class FeedIn(BaseModel):
    """A new feed. ``credential`` is the password or token itself, or ``env:NAME``; it is never returned."""

    name: str = Field(min_length=1, max_length=64)
    partner: str = Field(min_length=3, max_length=3, description="Registered partner nation (alpha-3).")
    direction: Literal["pull", "push"]
    url: str = Field(min_length=8, max_length=2000, description="TAXII discovery or API root URL.")
    collection_id: str = Field(min_length=1, max_length=255, description="The partner's collection id.")
    local_collection_id: str = Field(DEFAULT_COLLECTION_ID, max_length=36)
    auth: Literal["none", "basic", "bearer"] = "none"
    username: str | None = Field(None, max_length=255)
    credential: str | None = Field(None, max_length=8192)
    poll_interval_s: int = Field(300, gt=0)
    default_label: str | None = Field(
        None, max_length=512, description="Banner for unmarked incoming objects; default originator-only."
    )


def _get(session: Session, name: str) -> Feed:
    try:
        return service.get_feed(session, name)
    except service.NoSuchFeed:
        raise not_found("No such feed.") from None


@router.get("", summary="Feeds with their state", response_model=None)
def list_feeds(session: Session = SESSION, visibility: VisibilityCache = Depends(get_visibility)) -> dict[str, Any]:
    """Every feed: its configuration without credentials, cursor, counters, last outcome and push backlog."""
    return {
        "feeds": [
            service.feed_view(feed, service.push_backlog(session, feed, visibility))
            for feed in service.list_feeds(session)
        ]
    }


@router.post("", summary="Add a feed", status_code=201, response_model=None, openapi_extra=body_docs(FeedIn))
def add_feed(
    body: FeedIn = Depends(json_body(FeedIn, _admin)),
    session: Session = SESSION,
    settings: Settings = Depends(get_settings),
    mappings: Mappings = Depends(get_mappings),
) -> dict[str, Any]:
    """Check and store a new feed; 409 if the name is taken, 400 if the configuration is refused."""
    spec = service.FeedSpec(
        name=body.name,
        partner=body.partner,
        direction=body.direction,
        url=body.url,
        collection_id=body.collection_id,
        local_collection_id=body.local_collection_id,
        auth_kind=body.auth,
        username=body.username,
        credential=body.credential,
        poll_interval_s=body.poll_interval_s,
        default_label=body.default_label,
    )
    try:
        feed = service.add_feed(session, settings, mappings, spec)
    except service.FeedExists as exc:
        raise ApiError(409, str(exc)) from None
    except service.InvalidFeed as exc:
        raise ApiError(400, str(exc)) from None
    return service.feed_view(feed)


@router.get("/{name}", summary="One feed with its state", response_model=None)
def get_feed(
    name: str, session: Session = SESSION, visibility: VisibilityCache = Depends(get_visibility)
) -> dict[str, Any]:
    """The feed's configuration without credentials, cursor, counters, last outcome and push backlog."""
    feed = _get(session, name)
    return service.feed_view(feed, service.push_backlog(session, feed, visibility))


@router.delete("/{name}", summary="Remove a feed", status_code=204)
def remove_feed(name: str, session: Session = SESSION) -> Response:
    """Delete the feed and its cursor; the objects it brought in stay."""
    _get(session, name)
    service.remove_feed(session, name)
    return Response(status_code=204)


@router.post(
    "/{name}/sync", summary="Run a feed now (a stopped feed is resumed if the run succeeds)", response_model=None
)
def sync_feed(name: str, request: Request, session: Session = SESSION) -> dict[str, Any]:
    """Run the feed once and report the outcome: status, pages, objects received, stored, sent and refused."""
    _get(session, name)
    state = request.app.state
    ctx = FeedContext(
        state.settings,
        state.engine,
        state.mappings,
        state.visibility,
        state.role_rights,
        getattr(state, "metrics", None),
    )
    result = run_feed(ctx, name, force=True)
    return asdict(result)
