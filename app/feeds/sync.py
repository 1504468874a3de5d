"""Running a feed once: one runner at a time per feed, outcome recorded on the feed row.

On PostgreSQL a session-level advisory lock per feed makes sure one app instance
runs a feed at a time; on SQLite (one node) a process-local lock is enough.
A permanent error (401/403/404, inactive partner) stops the feed with the reason;
any other error is recorded and the feed is tried again at its next turn.
"""

from __future__ import annotations

import logging
import threading
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text
from sqlmodel import Session

from app.db.timestamps import now_us
from app.feeds.client import FeedError, PermanentFeedError
from app.feeds.context import FeedContext, Progress, ProgressSink, SyncResult
from app.feeds.models import Feed
from app.feeds.pull import pull
from app.feeds.push import push

log = logging.getLogger(__name__)

ADVISORY_LOCK_CLASS = 0x7EED  # first key of the two-key advisory lock: "feeds"
_LOCAL_LOCKS: dict[str, threading.Lock] = {}
_LOCAL_LOCKS_GUARD = threading.Lock()


@contextmanager
def feed_lock(engine: Engine, name: str) -> Iterator[bool]:
    """Hold the feed's run lock if free; yields whether it was acquired."""
    if engine.dialect.name == "postgresql":
        key = zlib.crc32(name.encode()) - (1 << 31)  # into int4 range; a collision only serialises two feeds
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            acquired = connection.execute(
                text("SELECT pg_try_advisory_lock(:a, :b)"), {"a": ADVISORY_LOCK_CLASS, "b": key}
            ).scalar_one()
            try:
                yield bool(acquired)
            finally:
                if acquired:
                    connection.execute(text("SELECT pg_advisory_unlock(:a, :b)"), {"a": ADVISORY_LOCK_CLASS, "b": key})
        return
    with _LOCAL_LOCKS_GUARD:
        lock = _LOCAL_LOCKS.setdefault(name, threading.Lock())
    acquired = lock.acquire(blocking=False)
    try:
        yield acquired
    finally:
        if acquired:
            lock.release()


def _update(engine: Engine, name: str, **values: object) -> None:
    with Session(engine) as session:
        feed = session.get(Feed, name)
        if feed is None:
            return
        for key, value in values.items():
            setattr(feed, key, value)
        session.add(feed)
        session.commit()


def run_feed(
    ctx: FeedContext,
    name: str,
    *,
    progress: ProgressSink | None = None,
    on_page: Callable[[int], None] | None = None,
    force: bool = False,
) -> SyncResult:
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


def _run_feed(
    ctx: FeedContext, name: str, *, progress: ProgressSink | None, on_page: Callable[[int], None] | None, force: bool
) -> SyncResult:
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
            _update(
                ctx.engine, name, enabled=False, stopped_reason=str(exc), last_error=str(exc), last_error_us=now_us()
            )
            log.warning("feed %s stopped: %s", name, exc)
            return result
        except FeedError as exc:
            result.status, result.message = "error", str(exc)
            _update(ctx.engine, name, last_error=str(exc), last_error_us=now_us())
            log.warning("feed %s failed: %s", name, exc)
            return result
        done: dict[str, object] = {"last_success_us": now_us(), "enabled": True, "stopped_reason": None}
        if result.refusals:
            result.message = f"{len(result.refusals)} object(s) refused, first: {result.refusals[0]}"
            done |= {"last_error": result.message, "last_error_us": done["last_success_us"]}
        _update(ctx.engine, name, **done)
    return result
