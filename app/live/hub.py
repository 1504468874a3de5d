"""The live hub of one app instance: wake-ups per collection, shared reads, and the open streams.

Streams wait on a collection's *generation*, a counter raised each time versions are stored in it
(by this instance after commit, or by another through PostgreSQL ``NOTIFY``). A woken stream reads
what its principal may see after its cursor; streams whose principals see the same labels and
collections, at the same cursor and generation, share one read (:meth:`LiveHub.shared_read`):
one query per wake-up per collection and visibility, however many subscribers hold it.

Everything here runs on the event loop, except :meth:`LiveHub.wake`, which any thread may call.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

from starlette.concurrency import run_in_threadpool


class TooManyStreams(Exception):
    """The instance or the principal already holds as many streams as the settings allow."""


@dataclass(frozen=True)
class Subscription:
    """One open stream, counted against its principal's and the instance's limits."""

    key: tuple[str, str]
    """(nation, subject) of the principal."""
    collection_id: str
    number: int = field(compare=False)


class LiveHub:
    """Wake-ups, shared reads and the limits on open streams, for one app instance."""

    def __init__(self, max_streams: int, max_per_principal: int) -> None:
        self.max_streams, self.max_per_principal = max_streams, max_per_principal
        self._loop: asyncio.AbstractEventLoop | None = None
        self._generation: Counter[str] = Counter()
        self._changed: dict[str, asyncio.Event] = {}
        self._reads: dict[Hashable, asyncio.Future[Any]] = {}
        self._open: dict[int, Subscription] = {}
        self._numbers = 0
        self.closing = asyncio.Event()
        self.on_first_stream: Callable[[], None] | None = None
        """Called when a stream opens: starts what wakes streams from other instances, only once needed."""

    # ------------------------------------------------------------------ wake-ups

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Deliver wake-ups on ``loop``, the one streams run on (each stream attaches it when it opens).

        A new loop (an app served again, as tests do) starts with fresh waiting state: asyncio's
        events and futures belong to the loop they were first used on.
        """
        if loop is self._loop:
            return
        self._loop = loop
        self._changed, self._reads = {}, {}
        self.closing = asyncio.Event()

    def wake(self, collection_ids: Iterable[str]) -> None:
        """Versions were stored in these collections and committed. Safe from any thread."""
        loop, ids = self._loop, set(collection_ids)
        if loop is None or loop.is_closed() or not ids:
            return  # no stream has started on this instance: nobody to wake
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile (shutdown)
            loop.call_soon_threadsafe(self._wake_now, ids)

    def _wake_now(self, collection_ids: set[str]) -> None:
        for collection_id in collection_ids:
            self._generation[collection_id] += 1
            changed = self._changed.pop(collection_id, None)
            if changed is not None:
                changed.set()
        # Results of reads made before this wake-up are stale for any read after it.
        for key in [key for key in self._reads if isinstance(key, tuple) and key[0] in collection_ids]:
            if self._reads[key].done():
                del self._reads[key]

    def generation(self, collection_id: str) -> int:
        """The collection's current generation: compare with :meth:`wait_for_change`."""
        return self._generation[collection_id]

    async def wait_for_change(self, collection_id: str, seen: int, timeout: float) -> bool:
        """Wait until the collection's generation passes ``seen``, for at most ``timeout`` seconds.

        Returns whether it did; False on timeout (the caller re-checks its principal and reads
        anyway, which also finds versions stored by a process that could not notify).
        """
        if self._generation[collection_id] != seen:
            return True
        changed = self._changed.setdefault(collection_id, asyncio.Event())
        closing = asyncio.ensure_future(self.closing.wait())
        waiting = asyncio.ensure_future(changed.wait())
        try:
            await asyncio.wait({closing, waiting}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closing.cancel()
            waiting.cancel()
        return self._generation[collection_id] != seen

    # ------------------------------------------------------------------ shared reads

    async def shared_read(self, key: tuple[Hashable, ...], read: Callable[[], Any]) -> Any:
        """``read()`` in a worker thread, once for every caller asking with the same ``key`` meanwhile.

        ``key`` starts with the collection id and must hold everything the result depends on:
        generation, visibility and cursor. A failed read is not shared with later callers.
        """
        running = self._reads.get(key)
        if running is None:
            running = asyncio.ensure_future(run_in_threadpool(read))
            self._reads[key] = running
            running.add_done_callback(lambda done: self._forget_failed(key, done))
        return await asyncio.shield(running)

    def _forget_failed(self, key: Hashable, done: asyncio.Future[Any]) -> None:
        if (done.cancelled() or done.exception() is not None) and self._reads.get(key) is done:
            del self._reads[key]

    # ------------------------------------------------------------------ open streams

    def open(self, nation: str, subject: str, collection_id: str) -> Subscription:
        """Count a new stream, or raise :class:`TooManyStreams`."""
        key = (nation, subject)
        if len(self._open) >= self.max_streams:
            raise TooManyStreams("This server holds as many event streams as it allows; retry later.")
        if sum(1 for held in self._open.values() if held.key == key) >= self.max_per_principal:
            raise TooManyStreams("You hold as many event streams as you may; close one first.")
        if self.on_first_stream is not None:
            self.on_first_stream()
        self._numbers += 1
        subscription = Subscription(key, collection_id, self._numbers)
        self._open[subscription.number] = subscription
        return subscription

    def close(self, subscription: Subscription) -> None:
        """Stop counting a stream."""
        self._open.pop(subscription.number, None)

    @property
    def open_streams(self) -> int:
        """How many streams are open."""
        return len(self._open)
