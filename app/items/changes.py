"""Announcing stored versions: the push outbox row, and the wake-up of live streams after commit.

:func:`announce_stored` runs inside the storing transaction. It writes the outbox row
(:class:`~app.items.models.StoredChange`) and, on PostgreSQL, a ``NOTIFY`` on :data:`CHANNEL`,
which the server delivers only when (and if) the transaction commits, to every app instance
listening (app/live/listener.py). It also marks the connection, so that the signal of
:func:`watch_commits` (``app.state.stored_signal``) wakes this instance's streams and push feeds once the commit is done: never before, or a stream woken early
would read before the versions are visible and then sleep past them.

:func:`after_store` runs, also inside the storing transaction, the hooks bound to the engine with
:func:`bind_after_store`, in order (the app binds the disclosure hold, app/disclosure/hold.py, then
recall detection, app/recall/detect.py): whatever they write commits with the versions or not at
all. A hook may return a narrower batch for the hooks after it (versions held for review are not
yet released, so they withdraw nothing).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Engine, event, func, insert, select
from sqlmodel import Session

from app.items.models import StoredChange

log = logging.getLogger(__name__)
CHANNEL = "tearline_stored"
"""PostgreSQL notification channel; the payload is the collection id."""

_PENDING = "tearline.stored.pending"  # on the connection: collections stored in the open transaction
_COMMITTED = "tearline.stored.committed"  # ... and in a committed one, until the connection is returned


@dataclass(frozen=True)
class StoredBatch:
    """The versions one call of the ingest path stored in one collection."""

    collection_id: str
    rows: list[dict[str, Any]]
    """The new ``stix_object`` rows (pk, object_id, version_us, label_id, type, originator, submitter, body, ...)."""
    prior_ids: frozenset[str]
    """Ids among them that had versions stored before (in any collection)."""


StoreHook = Callable[[Session, StoredBatch], StoredBatch | None]
_HOOKS: dict[Engine, dict[str, tuple[int, StoreHook]]] = {}
_REVIEW_EXEMPT = "tearline.review.exempt"


def bind_after_store(engine: Engine, name: str, hook: StoreHook, *, order: int) -> None:
    """Run ``hook`` in every transaction on ``engine`` that stores versions, after they are inserted.

    Hooks run by ascending ``order``; binding a ``name`` again replaces its hook.
    """
    _HOOKS.setdefault(engine, {})[name] = (order, hook)


def after_store(session: Session, batch: StoredBatch) -> None:
    """Run the hooks bound to the session's engine on ``batch``, in order (same transaction)."""
    bind = session.get_bind()
    hooks = _HOOKS.get(bind if isinstance(bind, Engine) else bind.engine, {})
    for _, hook in sorted(hooks.values(), key=lambda entry: entry[0]):
        narrowed = hook(session, batch)
        if narrowed is not None:
            batch = narrowed
        if not batch.rows:
            return


def only_rows(batch: StoredBatch, keep: Callable[[dict[str, Any]], bool]) -> StoredBatch:
    """``batch`` with only the rows ``keep`` accepts."""
    return replace(batch, rows=[row for row in batch.rows if keep(row)])


@contextmanager
def review_exempt(session: Session) -> Iterator[None]:
    """Versions stored on ``session`` inside this block are not held for disclosure review: they are
    a disclosure officer's own release, or a recall notice (which only withdraws)."""
    before = session.info.get(_REVIEW_EXEMPT, False)
    session.info[_REVIEW_EXEMPT] = True
    try:
        yield
    finally:
        session.info[_REVIEW_EXEMPT] = before


def is_review_exempt(session: Session) -> bool:
    """Whether versions stored now on ``session`` skip disclosure review (:func:`review_exempt`)."""
    return bool(session.info.get(_REVIEW_EXEMPT, False))


def announce_stored(session: Session, collection_id: str, last_date_added_us: int) -> None:
    """Record, in the storing transaction, that versions up to ``last_date_added_us`` were stored."""
    connection = session.connection()
    connection.info.setdefault(_PENDING, set()).add(collection_id)
    connection.execute(
        insert(StoredChange.__table__).values(
            collection_id=collection_id, date_added_us=last_date_added_us, created_us=time.time_ns() // 1000
        )
    )
    if connection.dialect.name == "postgresql":
        connection.execute(select(func.pg_notify(CHANNEL, collection_id)))


class StoredSignal:
    """Calls its subscribers with the collection ids of each commit on one engine that stored versions."""

    def __init__(self) -> None:
        self._subscribers: list[Callable[[set[str]], None]] = []

    def subscribe(self, on_committed: Callable[[set[str]], None]) -> None:
        """Call ``on_committed(collection ids)`` after each such commit (on the committing thread: be quick)."""
        self._subscribers.append(on_committed)

    def emit(self, collection_ids: set[str]) -> None:
        """Tell every subscriber; one failing does not keep the others from hearing."""
        for on_committed in self._subscribers:
            try:
                on_committed(set(collection_ids))
            except Exception:
                log.exception("a subscriber to stored versions failed")


def watch_commits(engine: Engine) -> StoredSignal:
    """The signal of commits on ``engine`` that stored versions (install once per engine).

    SQLAlchemy's ``commit`` event fires just before the database commits; the collections move
    from pending to committed there, and are handed on when the connection returns to the pool,
    which is after the commit. A rollback drops them.
    """
    signal = StoredSignal()

    def committing(connection: Any) -> None:
        pending = connection.info.pop(_PENDING, None)
        if pending:
            connection.info.setdefault(_COMMITTED, set()).update(pending)

    def rolled_back(connection: Any) -> None:
        if connection.invalidated:
            return  # the connection died under the transaction: its info goes with it, and reading it raises
        connection.info.pop(_PENDING, None)

    def returned(_dbapi_connection: Any, record: Any) -> None:
        committed = record.info.pop(_COMMITTED, None) if record is not None else None
        if committed:
            signal.emit(committed)

    event.listen(engine, "commit", committing)
    event.listen(engine, "rollback", rolled_back)
    event.listen(engine.pool, "checkin", returned)
    return signal
