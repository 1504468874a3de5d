"""Push on post: push feeds deliver newly stored versions at once, from a durable outbox.

Every transaction that stores versions writes a ``stored_change`` row with them
(:func:`app.items.changes.announce_stored`): that table is the outbox. The :class:`OutboxWorker`
wakes after each such commit on this instance (``app.state.stored_signal``), when it starts (rows
left behind by a stop, a crash or kill -9), and every ``feed_outbox_sweep_s`` (rows written by
other instances, retries). For each collection with rows it runs the collection's enabled push
feeds with :func:`app.feeds.sync.run_feed`: the same releasable subset (``versions_page`` with the
partner's principal), envelopes, status check, audit and cursor as a scheduled run, under the same
per-feed lock, so the scheduler and this worker never push one feed at the same time.

A row is done when every enabled push feed of its collection has delivered up to it: the feed's
cursor is at or past the row's ``date_added_us``, or a run of the feed that started after the row
was read ended ``ok``. (A cursor stays behind trailing versions the partner may not see, so the
cursor alone would keep such rows forever.) Done rows are deleted, and only they: delivery is at
least once, since a run cut short (partner down, kill -9) starts again from the feed's cursor,
which moves only after the partner's status resource for an envelope was checked.

A failed run, or one the scheduler or another instance holds ("busy"), is tried again after a
back-off (:func:`app.feeds.backoff.backoff_s`); each feed runs in a thread of its own, so one slow
or unreachable partner delays no other.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from fastapi import FastAPI
from sqlalchemy import Engine, delete, func, select
from sqlmodel import Session, col

from app.feeds.backoff import backoff_s
from app.feeds.context import FeedContext, SyncResult
from app.feeds.models import Feed
from app.feeds.sync import run_feed
from app.http.background import STOP_WAIT_S, BackgroundWorker, run_with_app
from app.items.models import StoredChange

log = logging.getLogger(__name__)
MIN_WAIT_S = 0.01  # never spin: a retry due "now" waits this long


@dataclass(frozen=True)
class PushTarget:
    """An enabled push feed of a collection with outbox rows, as read at the start of a sweep."""

    name: str
    collection_id: str
    cursor_us: int | None
    created_us: int

    @property
    def key(self) -> tuple[str, str, int]:
        """Identifies the feed across sweeps; a feed removed and added again under its name is another."""
        return self.name, self.collection_id, self.created_us


@dataclass
class _FeedState:
    """What the worker remembers of one feed between sweeps."""

    delivered_us: int = -1
    """Rows up to this ``date_added_us`` were read before a run that ended ok."""
    failures: int = 0
    not_before: float = 0.0
    """Monotonic time before which a failed feed is not tried again."""
    thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()


def pending_changes(engine: Engine) -> dict[str, int]:
    """Collections with outbox rows, each with the latest ``date_added_us`` of its rows."""
    with Session(engine) as session:
        rows = session.execute(
            select(col(StoredChange.collection_id), func.max(StoredChange.date_added_us)).group_by(
                col(StoredChange.collection_id)
            )
        ).all()
    return {collection_id: int(last_us) for collection_id, last_us in rows}


def push_targets(engine: Engine, collection_ids: Iterable[str]) -> list[PushTarget]:
    """The enabled push feeds of these collections (a disabled or stopped feed holds no row back)."""
    ids = sorted(set(collection_ids))
    if not ids:
        return []
    with Session(engine) as session:
        rows = session.execute(
            select(col(Feed.name), col(Feed.local_collection_id), col(Feed.cursor_us), col(Feed.created_us))
            .where(col(Feed.direction) == "push", col(Feed.enabled).is_(True), col(Feed.local_collection_id).in_(ids))
            .order_by(col(Feed.name))
        ).all()
    return [PushTarget(*row) for row in rows]


def delete_delivered(engine: Engine, collection_id: str, through_us: int) -> int:
    """Delete the collection's outbox rows up to ``through_us``; return how many went."""
    with Session(engine) as session:
        result = session.execute(
            delete(StoredChange).where(
                col(StoredChange.collection_id) == collection_id, col(StoredChange.date_added_us) <= through_us
            )
        )
        session.commit()
        return int(getattr(result, "rowcount", 0) or 0)


class OutboxWorker(BackgroundWorker):
    """Delivers the outbox: runs the push feeds of collections with rows, deletes the rows delivered."""

    def __init__(self, ctx: FeedContext) -> None:
        super().__init__("tearline-outbox", self.deliver, ctx.settings.feed_outbox_sweep_s)
        self.ctx = ctx
        self._lock = threading.Lock()
        self._feeds: dict[tuple[str, str, int], _FeedState] = {}

    def start(self) -> None:
        """Start, and deliver what is pending at once: rows left by a stop, crash or kill -9."""
        super().start()
        self.notify()

    def on_stored(self, _collection_ids: set[str]) -> None:
        """Subscriber of ``app.state.stored_signal``: wake (called on the committing thread; quick)."""
        self.notify()

    def stop(self) -> None:
        """Stop sweeping, and give running pushes a moment to end (a push cut short is repeated later)."""
        super().stop()
        with self._lock:
            threads = [state.thread for state in self._feeds.values() if state.thread is not None]
        deadline = time.monotonic() + STOP_WAIT_S
        for thread in threads:
            thread.join(max(deadline - time.monotonic(), 0))

    def deliver(self, stop: threading.Event) -> None:
        """One sweep: start the runs the outbox needs, delete the rows every feed has delivered."""
        settings = self.ctx.settings
        pending = pending_changes(self.ctx.engine)
        targets = push_targets(self.ctx.engine, pending)
        by_collection: dict[str, list[PushTarget]] = defaultdict(list)
        for target in targets:
            by_collection[target.collection_id].append(target)
        next_sweep = settings.feed_outbox_sweep_s
        for collection_id, last_us in pending.items():
            if stop.is_set():
                return
            through_us = last_us
            for target in by_collection[collection_id]:
                delivered_us = self._delivered_through(target)
                through_us = min(through_us, delivered_us)
                if delivered_us < last_us:
                    wait = self._try(target, last_us)
                    if wait is not None:
                        next_sweep = min(next_sweep, wait)
            if delete_delivered(self.ctx.engine, collection_id, through_us):
                log.debug("outbox: rows of collection %s delivered through %s", collection_id, through_us)
        self._forget({target.key for target in targets})
        # Back before the next sweep when a failed feed's back-off ends.
        self.period_s = max(next_sweep, MIN_WAIT_S)

    def _delivered_through(self, target: PushTarget) -> int:
        with self._lock:
            state = self._feeds.get(target.key)
            remembered = state.delivered_us if state is not None else -1
        return max(target.cursor_us if target.cursor_us is not None else -1, remembered)

    def _try(self, target: PushTarget, last_us: int) -> float | None:
        """Start a run of the feed unless one is running or it is backing off; seconds until it may be tried."""
        with self._lock:
            state = self._feeds.setdefault(target.key, _FeedState())
            if state.running or self._stop.is_set():
                return None  # its end wakes the worker
            wait = state.not_before - time.monotonic()
            if wait > 0:
                return wait
            if sum(other.running for other in self._feeds.values()) >= self.ctx.settings.feed_push_concurrency:
                return None  # a run ending wakes the worker
            state.thread = threading.Thread(
                target=self._run, args=(target, last_us, state), name=f"tearline-push:{target.name}", daemon=True
            )
            state.thread.start()
        return None

    def _run(self, target: PushTarget, last_us: int, state: _FeedState) -> None:
        """Run the feed once and remember the outcome; ``last_us`` was read before the run started."""
        try:
            result = run_feed(self.ctx, target.name)
        except LookupError:  # removed meanwhile: its rows wait for it no more
            result = SyncResult(target.name, "push", status="disabled")
        except Exception:  # never let one feed's bug end the thread silently
            log.exception("outbox: push feed %s failed unexpectedly", target.name)
            result = SyncResult(target.name, "push", status="error")
        with self._lock:
            if result.status == "ok":
                state.delivered_us = max(state.delivered_us, last_us)
                state.failures, state.not_before = 0, 0.0
            elif result.status in ("error", "busy"):
                state.failures += 1
                state.not_before = time.monotonic() + backoff_s(self.ctx.settings, state.failures)
                log.info(
                    "outbox: push feed %s %s (%s); trying again in %.1fs",
                    target.name,
                    result.status,
                    result.message,
                    state.not_before - time.monotonic(),
                )
            # "stopped" and "disabled": the feed is no longer enabled, so its rows wait for it no more.
        self.notify()  # delete what is done, go on with what arrived meanwhile

    def _forget(self, keys: set[tuple[str, str, int]]) -> None:
        """Drop what is remembered of feeds without pending rows (unless running): memory stays bounded."""
        with self._lock:
            for key in [key for key, state in self._feeds.items() if key not in keys and not state.running]:
                del self._feeds[key]


def install_outbox(app: FastAPI, context: Callable[[FastAPI], FeedContext]) -> None:
    """Deliver the outbox for the app's lifetime (``app.state.feed_outbox``), woken by the app's commits
    that store versions; when ``feed_scheduler`` and ``feed_push_on_post`` are both on."""
    settings = app.state.settings
    if not (settings.feed_scheduler and settings.feed_push_on_post):
        return
    run_with_app(app, "feed_outbox", lambda application: OutboxWorker(context(application)))
    signal = getattr(app.state, "stored_signal", None)
    if signal is None:
        log.warning("no stored-version signal on this app: the outbox is swept every %ss", settings.feed_outbox_sweep_s)
        return

    def wake(collection_ids: set[str]) -> None:
        worker = getattr(app.state, "feed_outbox", None)
        if worker is not None:
            worker.on_stored(collection_ids)

    signal.subscribe(wake)
