"""Live pull: a pull feed from another Tearline follows that Tearline's event stream.

The :class:`LivePull` manager (one thread per app instance) looks every ``feed_live_check_s`` for
enabled pull feeds and gives each a :class:`Follower`. A follower opens the partner's
``GET {api root}collections/{id}/events/`` (app/live/routes.py) with the feed's credential. A server
answering ``text/event-stream`` is a Tearline, followed from then on; any other answer (medallion
and other TAXII 2.1 servers answer 404) ends the follower, and the feed is polled on its schedule
as before, asked again after ``feed_live_reprobe_s``.

An event only wakes the feed: the follower's runner then runs the feed's normal pull
(:func:`app.feeds.sync.run_feed`: same validation, provenance, audit and cursor as a scheduled
pull, under the same lock), so what an event carries is never stored as such, and events arriving
during a pull are folded into the next one. The runner also pulls each time the stream opens, for
what was stored while it was closed. A lost stream is reopened after a back-off, resuming with
``Last-Event-ID`` once an event came. Scheduled polls of a followed feed go on as a safety net.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from fastapi import FastAPI
from httpx_sse import connect_sse
from sqlalchemy import Engine, select
from sqlmodel import Session, col

from app.feeds.backoff import backoff_s
from app.feeds.client import FeedError, PermanentFeedError, connect
from app.feeds.context import FeedContext, feed_secret, load
from app.feeds.models import Feed
from app.feeds.sync import run_feed
from app.http.background import STOP_WAIT_S, BackgroundWorker, run_with_app

log = logging.getLogger(__name__)
EVENT_STREAM = "text/event-stream"


class NotLive(Exception):
    """The partner's server has no event stream for this feed: poll it instead."""


@dataclass(frozen=True)
class Watched:
    """What a follower was started for; any change (new URL, credential, interval) restarts it."""

    name: str
    url: str
    remote_collection_id: str
    auth_kind: str
    username: str | None
    secret_ciphertext: str | None
    secret_env: str | None
    poll_interval_s: int
    created_us: int


def pull_feeds(engine: Engine) -> list[Watched]:
    """The enabled pull feeds, as a follower watches them."""
    with Session(engine) as session:
        feeds = session.execute(
            select(Feed).where(col(Feed.direction) == "pull", col(Feed.enabled).is_(True)).order_by(col(Feed.name))
        ).scalars()
        return [
            Watched(
                feed.name,
                feed.url,
                feed.remote_collection_id,
                feed.auth_kind,
                feed.username,
                feed.secret_ciphertext,
                feed.secret_env,
                feed.poll_interval_s,
                feed.created_us,
            )
            for feed in feeds
        ]


def _auth(auth_kind: str, username: str | None, secret: str | None) -> tuple[httpx.Auth | None, dict[str, str]]:
    """The feed's credential for httpx: Basic as an auth object, a bearer token as a header."""
    if auth_kind == "basic":
        return httpx.BasicAuth(username or "", secret or ""), {}
    if auth_kind == "bearer":
        return None, {"Authorization": f"Bearer {secret or ''}"}
    return None, {}


class Follower:
    """Follows one pull feed's event stream; each event wakes the feed's pull."""

    def __init__(self, ctx: FeedContext, watched: Watched, on_not_live: Callable[[], None]) -> None:
        self.ctx, self.watched, self.name = ctx, watched, watched.name
        self.live = threading.Event()
        """Set while the stream is open."""
        self.not_live = threading.Event()
        """Set once the server answered without an event stream: the feed is polled instead."""
        self.reason: str | None = None
        self.connections = 0
        self.events = 0
        self.last_event_id: str | None = None
        self._on_not_live = on_not_live
        self._stop = threading.Event()
        self._client: httpx.Client | None = None
        self._socket: socket.socket | None = None
        self._stream_failures = 0
        self._pull_failures = 0
        self.runner = BackgroundWorker(f"tearline-live-pull:{self.name}", self._pull, watched.poll_interval_s)
        self._thread = threading.Thread(target=self._follow, name=f"tearline-follow:{self.name}", daemon=True)

    def start(self) -> None:
        """Open the stream in a thread of its own."""
        self.runner.start()
        self._thread.start()

    def stop(self) -> None:
        """Close the stream (cutting a blocked read short) and stop pulling."""
        self._stop.set()
        self.cut()
        self.runner.stop()
        self._thread.join(timeout=STOP_WAIT_S)

    def cut(self) -> None:
        """Drop the open connection as a network failure would; the stream is reopened after a back-off."""
        sock = self._socket
        if sock is not None:
            # Closing the client alone leaves a read blocked in another thread until the next byte;
            # a shutdown ends it at once.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        client = self._client
        if client is not None:
            client.close()

    # ------------------------------------------------------------------ the stream

    def _follow(self) -> None:
        while not self._stop.is_set():
            try:
                self._stream()
            except NotLive as exc:
                self.reason = str(exc)
                self.not_live.set()
                log.info("feed %s: no event stream at the partner (%s); polled on schedule", self.name, exc)
                self._on_not_live()
                return
            except (httpx.HTTPError, FeedError) as exc:
                if self._stop.is_set():
                    return
                log.warning("feed %s: event stream lost (%s); reconnecting", self.name, exc)
            except Exception:  # a bug here must not end live pull for good
                log.exception("feed %s: event stream failed", self.name)
            finally:
                self.live.clear()
            self._stream_failures += 1
            self._stop.wait(backoff_s(self.ctx.settings, self._stream_failures))

    def _events_url(self) -> tuple[str, httpx.Auth | None, dict[str, str]]:
        """The events URL next to the feed's TAXII collection (found as a pull finds it), and the credential."""
        try:
            feed, _partner = load(self.ctx, self.name)
            secret = feed_secret(self.ctx, feed)
            remote = connect(
                self.ctx.settings,
                url=feed.url,
                collection_id=feed.remote_collection_id,
                auth_kind=feed.auth_kind,
                username=feed.username,
                secret=secret,
            )
        except PermanentFeedError as exc:  # the pull will stop the feed with the same reason
            raise NotLive(str(exc)) from None
        remote.close()
        auth, headers = _auth(feed.auth_kind, feed.username, secret)
        return f"{remote.collection.url}events/", auth, headers

    def _stream(self) -> None:
        """Open the stream, wake the pull on each event, return when the server ends the stream."""
        settings = self.ctx.settings
        url, auth, headers = self._events_url()
        if self.last_event_id is not None:
            headers["Last-Event-ID"] = self.last_event_id
        timeout = httpx.Timeout(settings.feed_timeout_s, read=settings.feed_live_idle_timeout_s)
        with httpx.Client(timeout=timeout, auth=auth) as client:
            self._client = client
            if self._stop.is_set():
                return
            with connect_sse(client, "GET", url, headers=headers) as source:
                self._check(source.response)
                stream = source.response.extensions.get("network_stream")
                self._socket = stream.get_extra_info("socket") if stream is not None else None
                self.connections += 1
                self._stream_failures = 0
                self.live.set()
                self.runner.notify()  # what was stored while no stream was open
                for event in source.iter_sse():
                    if self._stop.is_set():
                        return
                    if event.event == "objects":
                        self.events += 1
                        self.last_event_id = event.id or self.last_event_id
                        self.runner.notify()
                    elif event.event == "close":
                        log.info("feed %s: the partner closed the event stream: %s", self.name, event.data)
                        return

    def _check(self, response: httpx.Response) -> None:
        """Go on with an event stream; raise FeedError to retry, NotLive to poll instead."""
        status = response.status_code
        kind = response.headers.get("content-type", "").partition(";")[0].strip().lower()
        if status == 200 and kind == EVENT_STREAM:
            return
        if status == 400 and self.last_event_id is not None:
            # The partner no longer takes our cursor (its secret or our agreement changed): start
            # afresh; the pull on opening covers the gap.
            self.last_event_id = None
            raise FeedError("the partner refused the Last-Event-ID; reopening without it")
        if status == 429 or status >= 500:
            raise FeedError(f"HTTP {status} from the event stream")
        raise NotLive(f"HTTP {status} {kind or 'without a content type'} from {response.url}")

    # ------------------------------------------------------------------ the pull

    def _pull(self, _stop: threading.Event) -> None:
        """Run the feed's pull; after a failure or a busy lock, again after a back-off."""
        try:
            result = run_feed(self.ctx, self.name)
        except LookupError:  # removed: the manager stops this follower at its next check
            return
        if result.status in ("error", "busy"):
            self._pull_failures += 1
            self.runner.period_s = backoff_s(self.ctx.settings, self._pull_failures)
        else:
            self._pull_failures = 0
            self.runner.period_s = self.watched.poll_interval_s


class LivePull(BackgroundWorker):
    """Keeps one :class:`Follower` per enabled pull feed whose server has an event stream."""

    def __init__(self, ctx: FeedContext) -> None:
        super().__init__("tearline-live-pull", self.check, ctx.settings.feed_live_check_s)
        self.ctx = ctx
        self._lock = threading.Lock()
        self._followers: dict[str, Follower] = {}
        self._polled: dict[str, tuple[Watched, float]] = {}
        """Feeds whose server has no event stream, with the monotonic time to ask again."""

    def start(self) -> None:
        """Start following at once."""
        super().start()
        self.notify()

    def stop(self) -> None:
        """Stop every follower."""
        super().stop()
        with self._lock:
            followers, self._followers = list(self._followers.values()), {}
        for follower in followers:
            follower.stop()

    def follower(self, name: str) -> Follower | None:
        """The follower of feed ``name``, if it has one."""
        with self._lock:
            return self._followers.get(name)

    def modes(self) -> dict[str, str]:
        """Each enabled pull feed seen: ``live`` (stream open), ``connecting``, or ``polled``."""
        with self._lock:
            modes = dict.fromkeys(self._polled, "polled")
            for name, follower in self._followers.items():
                modes[name] = (
                    "live" if follower.live.is_set() else "polled" if follower.not_live.is_set() else "connecting"
                )
        return modes

    def check(self, stop: threading.Event) -> None:
        """Start followers for new feeds, restart those of changed ones, stop those of removed ones."""
        watched = {feed.name: feed for feed in pull_feeds(self.ctx.engine)}
        now = time.monotonic()
        stopping: list[Follower] = []
        with self._lock:
            for name, follower in list(self._followers.items()):
                if watched.get(name) != follower.watched or follower.not_live.is_set():
                    del self._followers[name]
                    stopping.append(follower)
                    if follower.not_live.is_set():
                        self._polled[name] = (follower.watched, now + self.ctx.settings.feed_live_reprobe_s)
            for name in [
                name for name, (feed, until) in self._polled.items() if watched.get(name) != feed or until <= now
            ]:
                del self._polled[name]
            for name, feed in watched.items():
                if name in self._followers or name in self._polled or stop.is_set():
                    continue
                follower = Follower(self.ctx, feed, self.notify)
                follower.start()
                self._followers[name] = follower
        for follower in stopping:
            follower.stop()


def install_live_pull(app: FastAPI, context: Callable[[FastAPI], FeedContext]) -> None:
    """Follow live pull feeds for the app's lifetime (``app.state.feed_live_pull``), when
    ``feed_scheduler`` and ``feed_live_pull`` are both on."""
    settings = app.state.settings
    if settings.feed_scheduler and settings.feed_live_pull:
        run_with_app(app, "feed_live_pull", lambda application: LivePull(context(application)))
