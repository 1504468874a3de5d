"""Writes commit with their audit record or not at all.

A session that will change data gets :func:`audit_writes`: just before each commit, after the
pending changes are flushed, the write's audit record is appended on the session's own
connection, naming the object versions the transaction stored or deleted
(:mod:`app.db.written`). Both commit together; if the record cannot be written, the commit
fails with :class:`AuditUnavailable` and nothing is stored. Reads keep their own rule: the
record is written before the first byte of the response (:mod:`app.audit.middleware`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, event
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from app.audit.service import AuditSigner, AuditUnavailable, append_record, bind_signer, signer_for
from app.config.settings import Settings
from app.db.written import forget_written, note_actor, take_written


@dataclass(frozen=True)
class WriteFacts:
    """Who wrote, through what, and how it ended: the fields of a write's record besides what changed."""

    request_id: str
    subject: str
    nation: str
    roles: frozenset[str]
    method: str
    route: str
    status: int
    collection_id: str | None = None
    reason: str | None = None
    client: str | None = None


def audit_writes(
    session: Session, describe: Callable[[], WriteFacts], on_recorded: Callable[[int], None] | None = None
) -> None:
    """Append a write record, described by ``describe()`` at that moment, in every commit of ``session``.

    ``on_recorded`` gets each record's sequence number (the HTTP layer then writes no second record).
    """

    def before_commit(committing: Session) -> None:
        committing.flush()  # the record describes what is about to commit, and holds the head lock briefly
        facts = describe()
        written = take_written(committing)
        try:
            seq = append_record(
                committing.connection(),
                signer_for(_engine(committing)),
                request_id=facts.request_id,
                subject=facts.subject,
                nation=facts.nation,
                roles=facts.roles,
                method=facts.method,
                route=facts.route,
                status=facts.status,
                decision="allow",
                reason=facts.reason,
                collection_id=facts.collection_id,
                written=written,
                client=facts.client,
            )
        except SQLAlchemyError as exc:
            raise AuditUnavailable.of(exc) from exc
        if on_recorded is not None:
            on_recorded(seq)

    def after_rollback(rolled_back: Session) -> None:
        forget_written(rolled_back)

    event.listen(session, "before_commit", before_commit)
    event.listen(session, "after_soft_rollback", lambda rolled_back, _previous: after_rollback(rolled_back))


def _engine(session: Session) -> Engine:
    bind = session.get_bind()
    return bind if isinstance(bind, Engine) else bind.engine


def audit_operator_writes(session: Session, settings: Settings, *, operator: str, command: str) -> None:
    """Every commit of ``session`` made by an operator's command appends its record, in the same transaction.

    The record's subject is ``operator:<name>``, its nation the home nation, its method ``CLI`` and
    its route the command (secrets masked by the caller). The signer is bound at the first commit,
    so a command that changes nothing creates no key file.
    """
    engine = _engine(session)
    note_actor(session, f"operator:{operator}")

    def describe() -> WriteFacts:
        bind_signer(engine, AuditSigner.from_settings(settings))
        return WriteFacts(
            request_id=uuid.uuid4().hex,
            subject=f"operator:{operator}",
            nation=settings.home_nation,
            roles=frozenset({"operator"}),
            method="CLI",
            route=command,
            status=0,
        )

    audit_writes(session, describe)
