"""The object versions a transaction changed, kept on its session until the audit record names them.

Code that stores or deletes object versions notes each (object id, version) here; the write's
audit record, appended in the same transaction just before it commits (:mod:`app.audit.transaction`),
takes the list, so the chain names exactly what each write changed.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel import Session

_KEY = "tearline.written"


def note_written(session: Session, versions: Iterable[tuple[str, str]]) -> None:
    """Add (object id, version) pairs this transaction stored or deleted."""
    session.info.setdefault(_KEY, []).extend(versions)


def take_written(session: Session) -> list[tuple[str, str]]:
    """The pairs noted since the last call, removed from the session."""
    written: list[tuple[str, str]] = session.info.pop(_KEY, [])
    return written


def forget_written(session: Session) -> None:
    """Drop what was noted (the transaction rolled back, so nothing was changed)."""
    session.info.pop(_KEY, None)


_ACTOR = "tearline.actor"


def note_actor(session: Session, subject: str) -> None:
    """Record who writes through ``session`` (the authenticated subject, or ``operator:<name>``)."""
    session.info[_ACTOR] = subject


def actor_of(session: Session) -> str | None:
    """The subject :func:`note_actor` recorded on ``session``, if any."""
    actor = session.info.get(_ACTOR)
    return actor if isinstance(actor, str) else None
