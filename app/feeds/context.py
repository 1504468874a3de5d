"""What a feed run shares between pull and push: the app's context, the result, progress, the feed
and its partner, the credential, and the audit record of each exchange."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Engine
from sqlmodel import Session

from app.audit.transaction import WriteFacts
from app.config.settings import Settings
from app.feeds.client import FeedError, PermanentFeedError
from app.feeds.models import Feed
from app.feeds.secrets import CredentialError, StoredSecret, read_secret
from app.markings.mappings import Mappings
from app.partners.models import Partner
from app.policy.enforcer import RoleRights
from app.policy.visibility import VisibilityCache


@dataclass(frozen=True)
class FeedContext:
    """What a feed run needs from the application: settings, database, tables, the decision cache and
    the role rights (a push goes out only from a collection the partner could read over TAXII)."""

    settings: Settings
    engine: Engine
    mappings: Mappings
    visibility: VisibilityCache
    rights: RoleRights
    metrics: Any = None  # the app's Metrics (app/observability/metrics.py); the CLI runs without


@dataclass
class SyncResult:
    """The outcome of one run of one feed."""

    name: str
    direction: str
    status: str = "ok"  # ok | busy | error | stopped | disabled
    pages: int = 0
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    unknown_markings: int = 0
    refused: int = 0
    sent: int = 0
    message: str | None = None
    refusals: list[str] = field(default_factory=list)


class ProgressSink(Protocol):
    """What a run reports its progress to: a :class:`Progress`, or anything with the same two methods."""

    def start(self, name: str, total: int | None) -> None:
        """A run of ``name`` begins; ``total`` objects expected if known."""

    def advance(self, count: int) -> None:
        """``count`` more objects handled."""


class Progress:
    """Receives progress of a run (the CLI draws a rich progress bar from it)."""

    def start(self, name: str, total: int | None) -> None:
        """A run of ``name`` begins; ``total`` objects expected if known."""

    def advance(self, count: int) -> None:
        """``count`` more objects handled."""


def feed_secret(ctx: FeedContext, feed: Feed) -> str | None:
    """The feed's credential in clear; an unreadable one stops the feed."""
    try:
        return read_secret(ctx.settings, StoredSecret(feed.secret_ciphertext, feed.secret_env))
    except CredentialError as exc:
        raise PermanentFeedError(f"credential: {exc}") from None


def load(ctx: FeedContext, name: str) -> tuple[Feed, Partner]:
    """The feed and its partner, refusing an inactive or unregistered partner."""
    with Session(ctx.engine) as session:
        feed = session.get(Feed, name)
        partner = session.get(Partner, feed.partner) if feed else None
        if feed is None or partner is None or not partner.active:
            raise PermanentFeedError(f"partner {feed.partner if feed else '?'} is not an active partner")
        session.expunge(feed)
        session.expunge(partner)
        return feed, partner


def page_facts(feed: Feed, *, route: str, reason: str) -> WriteFacts:
    """The audit record of one pulled page, committed with what the page stored."""
    return WriteFacts(
        request_id=uuid.uuid4().hex,
        subject=f"feed:{feed.name}",
        nation=feed.partner,
        roles=frozenset({"feed"}),
        method="PULL",
        route=route,
        status=200,
        collection_id=feed.local_collection_id,
        reason=reason,
    )


def audit(
    ctx: FeedContext,
    feed: Feed,
    *,
    method: str,
    route: str,
    status: int,
    reason: str | None,
    served: list[tuple[str, str]],
) -> None:
    """One audit record for a pulled page or a pushed envelope (docs/design.md 6); raises if it cannot be written."""
    from app.audit.service import AuditUnavailable, record_event

    try:
        record_event(
            ctx.engine,
            request_id=uuid.uuid4().hex,
            subject=f"feed:{feed.name}",
            nation=feed.partner,
            roles=["feed"],
            method=method,
            route=route,
            status=status,
            decision="allow",
            reason=reason,
            collection_id=feed.local_collection_id,
            served=served,
            recipient_nation=feed.partner,
        )
    except AuditUnavailable as exc:
        raise FeedError(f"audit log unavailable: {exc}") from exc
