"""What one request tells the audit log: who asked, what was decided, and which versions left.

Routes and dependencies note facts on the request's :class:`AuditContext`; the audit
layer turns it into exactly one record when the response starts. Code that serves
objects calls :func:`note_served` with every (id, version) it returns, so the
dissemination records list exactly what a client received.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from starlette.requests import HTTPConnection

from app.auth.principal import Principal


@dataclass
class AuditContext:
    """Facts about one request, gathered while it is handled."""

    request_id: str
    principal: Principal | None = None
    subject: str | None = None  # set even when the token was refused, if it named one
    nation: str | None = None
    collection_id: str | None = None
    decision: str | None = None  # "allow" or "deny"; None means "decided by the status code"
    reason: str | None = None
    served: list[tuple[str, str]] = field(default_factory=list)
    write_records: list[int] = field(default_factory=list)
    """Records a write already committed with its data (app.audit.transaction): no second record is due."""

    def allow(self) -> None:
        """Record that the request was allowed (a later deny wins)."""
        if self.decision is None:
            self.decision = "allow"

    def deny(self, reason: str) -> None:
        """Record a refusal and why; the first reason given is kept."""
        if self.decision != "deny":
            self.decision, self.reason = "deny", reason


def audit_context(connection: HTTPConnection) -> AuditContext:
    """The request's audit context, created on first use."""
    context = getattr(connection.state, "audit", None)
    if context is None:
        request_id = getattr(connection.state, "request_id", None) or ""
        context = AuditContext(request_id=request_id)
        connection.state.audit = context
    return context


def note_served(connection: HTTPConnection, versions: Iterable[tuple[str, str]]) -> None:
    """Add the (object id, version) pairs a response carries to the request's audit record."""
    audit_context(connection).served.extend(versions)


def note_collection(connection: HTTPConnection, collection_id: str) -> None:
    """Name the collection a request concerns."""
    audit_context(connection).collection_id = collection_id
