"""Token revocation by subject: every token of a subject issued up to a moment is refused from then on.

Bearer tokens are stateless JWTs; a leaked or withdrawn one would otherwise stay good until it
expires. An operator revokes a subject (``tearline token revoke --subject S``): requests with its
tokens issued until then answer 401, and its open event streams close at their next re-check
(``app.live.service.still_valid`` admits the principal the same way as a request). Tokens issued
afterwards (``iat`` in a later second than the revocation) are accepted again.
"""

from __future__ import annotations

import math
import time
from typing import Any

from sqlalchemy import BigInteger, Column, PrimaryKeyConstraint, ScalarSelect, String
from sqlmodel import Field, Session, SQLModel, col, select

from app.db.engine import dialect_insert


class TokenRevocation(SQLModel, table=True):
    """One revoked subject: its tokens issued at or before ``revoked_before`` (epoch seconds) are refused."""

    __tablename__ = "token_revocation"
    __table_args__ = (PrimaryKeyConstraint("subject", name="pk_token_revocation"),)

    subject: str = Field(sa_column=Column(String(255), nullable=False))
    revoked_before: int = Field(sa_column=Column(BigInteger, nullable=False))
    revoked_by: str = Field(sa_column=Column(String(255), nullable=False))


def revoke_subject(session: Session, subject: str, revoked_by: str) -> int:
    """Revoke every token of ``subject`` issued until now (no commit); returns the moment, in epoch seconds."""
    moment = int(time.time())
    statement = dialect_insert(session)(TokenRevocation).values(
        subject=subject, revoked_before=moment, revoked_by=revoked_by
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["subject"],
            set_={"revoked_before": statement.excluded.revoked_before, "revoked_by": statement.excluded.revoked_by},
        )
    )
    return moment


def revoked_before_of(subject: Any) -> ScalarSelect[int | None]:
    """The moment ``subject``'s tokens were last revoked (epoch seconds), NULL if never: a scalar subquery."""
    return select(col(TokenRevocation.revoked_before)).where(col(TokenRevocation.subject) == subject).scalar_subquery()


def revoked(revoked_before: int | None, issued_at: object) -> bool:
    """Whether a token issued at ``issued_at`` (its ``iat``; absent counts as revoked when its subject
    is) falls under a revocation at ``revoked_before`` (None: its subject was never revoked)."""
    if revoked_before is None:
        return False
    # Whole seconds on both sides: a revocation stores the second it happened in (rounded down), and
    # a fractional iat issued earlier in that second (1796331217.279 against 1796331217) is refused.
    # bool is an int to Python but no time.
    if isinstance(issued_at, bool) or not isinstance(issued_at, int | float):
        return True
    return not math.floor(issued_at) > revoked_before
