"""Running a feed once: one runner at a time per feed, outcome recorded on the feed row.

On PostgreSQL a session-level advisory lock per feed makes sure one app instance
runs a feed at a time; on SQLite (one node) a process-local lock is enough.
A permanent error (401/403/404, inactive partner) stops the feed with the reason;
any other error is recorded and the feed is tried again at its next turn.
"""

from __future__ import annotations

import logging
import threading
import uuid
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, text
from sqlmodel import Session

from app.config import Settings
from app.feeds.client import FeedError, PermanentFeedError
from app.feeds.models import Feed
from app.markings.mappings import Mappings
from app.policy.enforcer import RoleRights
from app.policy.visibility import VisibilityCache
from app.timestamps import now_us

log = logging.getLogger(__name__)

ADVISORY_LOCK_CLASS = 0x7EED  # first key of the two-key advisory lock: "feeds"
_LOCAL_LOCKS: dict[str, threading.Lock] = {}
_LOCAL_LOCKS_GUARD = threading.Lock()


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


class Progress:
    """Receives progress of a run (the CLI draws a rich progress bar from it)."""

    def start(self, name: str, total: int | None) -> None:
        """A run of ``name`` begins; ``total`` objects expected if known."""

    def advance(self, count: int) -> None:
        """``count`` more objects handled."""


@contextmanager
def feed_lock(engine: Engine, name: str) -> Iterator[bool]:
    """Hold the feed's run lock if free; yields whether it was acquired."""
    if engine.dialect.name == "postgresql":
        key = zlib.crc32(name.encode()) - (1 << 31)  # into int4 range; a collision only serialises two feeds
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            acquired = connection.execute(text("SELECT pg_try_advisory_lock(:a, :b)"),
                                          {"a": ADVISORY_LOCK_CLASS, "b": key}).scalar_one()
            try:
                yield bool(acquired)
            finally:
                if acquired:
                    connection.execute(text("SELECT pg_advisory_unlock(:a, :b)"),
                                       {"a": ADVISORY_LOCK_CLASS, "b": key})
        return
    with _LOCAL_LOCKS_GUARD:
        lock = _LOCAL_LOCKS.setdefault(name, threading.Lock())
    acquired = lock.acquire(blocking=False)
    try:
        yield acquired
    finally:
        if acquired:
            lock.release()


def _update(engine: Engine, name: str, **values) -> None:
    with Session(engine) as session:
        feed = session.get(Feed, name)
        if feed is None:
            return
        for key, value in values.items():
            setattr(feed, key, value)
        session.add(feed)
        session.commit()


def audit(ctx: FeedContext, feed: Feed, *, method: str, route: str, status: int, reason: str | None,
          served: list[tuple[str, str]]) -> None:
    """One audit record for a pulled page or a pushed envelope (DESIGN.md 6); raises if it cannot be written."""
    from app.audit.service import AuditUnavailable, record_event

    try:
        record_event(ctx.engine, request_id=uuid.uuid4().hex, subject=f"feed:{feed.name}", nation=feed.partner,
                     roles=["feed"], method=method, route=route, status=status, decision="allow", reason=reason,
                     collection_id=feed.local_collection_id, served=served, recipient_nation=feed.partner)
    except AuditUnavailable as exc:
        raise FeedError(f"audit log unavailable: {exc}") from exc


def run_feed(ctx: FeedContext, name: str, *, progress: Progress | None = None,
             on_page: Callable[[int], None] | None = None, force: bool = False) -> SyncResult:
    """Run one feed now (pull or push). ``on_page`` is called after each committed page (tests inject
    crashes there). A stopped feed runs only with ``force``, which also resumes it on success."""
    result = _run_feed(ctx, name, progress=progress, on_page=on_page, force=force)
    if ctx.metrics is not None and result.status in ("ok", "error", "stopped"):
        _observe(ctx, name, result)
    return result


def _observe(ctx: FeedContext, name: str, result: SyncResult) -> None:
    """Feed metrics: runs by outcome, and lag (0 after a complete run, else time since the cursor)."""
    ctx.metrics.feed_runs.labels(feed=name, outcome="ok" if result.status == "ok" else "error").inc()
    if result.status == "ok":
        ctx.metrics.feed_lag_seconds.labels(feed=name).set(0)
        return
    with Session(ctx.engine) as session:
        feed = session.get(Feed, name)
        cursor_us = feed.cursor_us if feed is not None else None
    if cursor_us is not None:
        ctx.metrics.feed_lag_seconds.labels(feed=name).set(max(now_us() - cursor_us, 0) / 1_000_000)


def _run_feed(ctx: FeedContext, name: str, *, progress: Progress | None,
              on_page: Callable[[int], None] | None, force: bool) -> SyncResult:
    from app.feeds.pull import pull
    from app.feeds.push import push

    with Session(ctx.engine) as session:
        feed = session.get(Feed, name)
        if feed is None:
            raise LookupError(name)
        direction = feed.direction
        if not feed.enabled and not force:
            return SyncResult(name, direction, status="disabled", message=feed.stopped_reason)
    result = SyncResult(name, direction)
    with feed_lock(ctx.engine, name) as acquired:
        if not acquired:
            result.status, result.message = "busy", "another run of this feed is in progress"
            return result
        started = now_us()
        _update(ctx.engine, name, last_attempt_us=started)
        try:
            (pull if direction == "pull" else push)(ctx, name, result, progress or Progress(), on_page)
        except PermanentFeedError as exc:
            result.status, result.message = "stopped", str(exc)
            _update(ctx.engine, name, enabled=False, stopped_reason=str(exc), last_error=str(exc),
                    last_error_us=now_us())
            log.warning("feed %s stopped: %s", name, exc)
            return result
        except FeedError as exc:
            result.status, result.message = "error", str(exc)
            _update(ctx.engine, name, last_error=str(exc), last_error_us=now_us())
            log.warning("feed %s failed: %s", name, exc)
            return result
        done = {"last_success_us": now_us(), "enabled": True, "stopped_reason": None}
        if result.refusals:
            result.message = f"{len(result.refusals)} object(s) refused, first: {result.refusals[0]}"
            done |= {"last_error": result.message, "last_error_us": done["last_success_us"]}
        _update(ctx.engine, name, **done)
    return result
