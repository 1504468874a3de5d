"""The feed scheduler inside ``tearline serve``: runs each enabled feed when its poll interval is due.

One background thread per app instance; on PostgreSQL the per-feed advisory
lock keeps two instances from running the same feed at once, and the shared
``last_attempt_us`` keeps them from running it twice per interval. Enabled by
``TEARLINE_FEED_SCHEDULER`` (on by default, off in the test suite), which also
brings push on post (app/feeds/outbox.py) and live pull (app/feeds/follow.py).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI
from sqlalchemy import select
from sqlmodel import Session, col

from app.db.timestamps import now_us
from app.feeds.context import FeedContext
from app.feeds.follow import install_live_pull
from app.feeds.models import Feed
from app.feeds.outbox import install_outbox
from app.feeds.sync import run_feed
from app.http.background import BackgroundWorker, run_with_app

log = logging.getLogger(__name__)


def due_feeds(ctx: FeedContext, at_us: int) -> list[str]:
    """Names of enabled feeds whose last attempt is at least one poll interval old."""
    with Session(ctx.engine) as session:
        feeds = session.execute(select(Feed).where(col(Feed.enabled).is_(True)).order_by(Feed.name)).scalars()
        return [
            feed.name
            for feed in feeds
            if feed.last_attempt_us is None or at_us - feed.last_attempt_us >= feed.poll_interval_s * 1_000_000
        ]


class FeedScheduler(BackgroundWorker):
    """A daemon thread that runs due feeds one after another until stopped."""

    def __init__(self, ctx: FeedContext) -> None:
        super().__init__("tearline-feeds", lambda stop: self.run_due(), ctx.settings.feed_scheduler_tick_s)
        self.ctx = ctx

    def run_due(self) -> list[str]:
        """Run every due feed once; return their names."""
        names = due_feeds(self.ctx, now_us())
        for name in names:
            if self._stop.is_set():
                break
            try:
                run_feed(self.ctx, name)
            except Exception:  # one broken feed must not stop the others or the thread
                log.exception("feed %s: unexpected error", name)
        return names


def feed_context(application: FastAPI) -> FeedContext:
    """What a background feed run needs, from the app's state."""
    state = application.state
    return FeedContext(
        state.settings,
        state.engine,
        state.mappings,
        state.visibility,
        state.role_rights,
        getattr(state, "metrics", None),
    )


def install_scheduler(app: FastAPI) -> None:
    """Run the scheduler, push on post and live pull for the app's lifetime when ``settings.feed_scheduler``
    is on (the last two each have a switch of their own as well)."""
    if not app.state.settings.feed_scheduler:
        return
    run_with_app(app, "feed_scheduler", lambda application: FeedScheduler(feed_context(application)))
    install_outbox(app, feed_context)
    install_live_pull(app, feed_context)
