"""The disclosure review table: one row per held version, from its posting to the officer's decision.

A held version is stored like any other, but served under a *held label* (its marked label released
to nobody): every read decides by label in SQL, so it is absent for every partner on every path
until an officer releases it. The label its markings state is kept here (``marked_label_id``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    exists,
)
from sqlmodel import Field, SQLModel

from app.db.columns import STIX_ID_LENGTH

_BIG_KEY = BigInteger().with_variant(Integer(), "sqlite")  # stix_object.pk
PENDING, RELEASED, DECLINED, REPLACED = "pending", "released", "declined", "replaced"
"""Review states: waiting; released as marked; declined; replaced by what partners got instead (a
narrowed new version or a tearline). Only a released version leaves its held label."""


class DisclosureReview(SQLModel, table=True):
    """One held version and what became of it."""

    __tablename__ = "disclosure_review"
    __table_args__ = (
        PrimaryKeyConstraint("id", name="pk_disclosure_review"),
        Index("ix_disclosure_review_object_pk", "object_pk", unique=True),
        Index("ix_disclosure_review_state", "state", "posted_us"),
        Index("ix_disclosure_review_object", "object_id", "version_us"),
        Index("ix_disclosure_review_decided_by", "decided_by", "decided_us"),
        Index("ix_disclosure_review_submitted_by", "submitted_by", "posted_us"),
    )

    if TYPE_CHECKING:  # set by SQLModel at class creation, but not declared by it
        __table__: ClassVar[Table]

    id: str = Field(sa_column=Column(String(36), nullable=False))
    object_pk: int | None = Field(
        sa_column=Column(
            _BIG_KEY,
            ForeignKey("stix_object.pk", name="fk_disclosure_review_object", ondelete="SET NULL"),
            nullable=True,
        )
    )
    """The held ``stix_object`` row; NULL once the version is deleted (a TAXII DELETE), so a row id the
    database gives again (SQLite reuses the highest) never takes over a review."""
    object_id: str = Field(sa_column=Column(String(STIX_ID_LENGTH), nullable=False))
    version_us: int = Field(sa_column=Column(BigInteger, nullable=False))
    collection_id: str = Field(sa_column=Column(String(36), nullable=False))
    object_type: str = Field(sa_column=Column(String(250), nullable=False))
    marked_label_id: int = Field(
        sa_column=Column(Integer, ForeignKey("label.id", name="fk_disclosure_review_marked_label"), nullable=False)
    )
    rank: int = Field(sa_column=Column(Integer, nullable=False))
    """The marked classification rank (the queue's and the metrics' breakdown; the two-person rule)."""
    two_person: bool = Field(sa_column=Column(Boolean, nullable=False))
    submitted_by: str = Field(sa_column=Column(String(255), nullable=False))
    """The subject whose request stored the version: it may not decide on it."""
    posted_us: int = Field(sa_column=Column(BigInteger, nullable=False))
    state: str = Field(sa_column=Column(String(16), nullable=False))
    """``pending``, ``released``, ``declined`` or ``replaced``."""
    action: str | None = Field(default=None, sa_column=Column(String(16), nullable=True))
    """How it was decided: ``release`` (as marked), ``narrow``, ``tearline`` or ``decline``."""
    released_label_id: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    released_to: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    """JSON list of the partner nations that could see the release when it was decided."""
    result_object_id: str | None = Field(default=None, sa_column=Column(String(STIX_ID_LENGTH), nullable=True))
    """What partners received instead of the held version: a narrowed new version, or a tearline."""
    result_version_us: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    decided_us: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    decided_by: str | None = Field(default=None, sa_column=Column(String(255), nullable=True))
    """The officer whose decision took effect (the second one under the two-person rule)."""
    proposed_by: str | None = Field(default=None, sa_column=Column(String(255), nullable=True))
    """Two-person rule: the first officer's approval, waiting for a second officer."""
    proposal: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    """JSON of the proposed decision (action and its arguments), which the second officer confirms."""
    proposed_us: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


def still_held(object_pk: Any) -> ColumnElement[bool]:
    """SQL: the version ``object_pk`` is served under its held label (its review is not a release)."""
    review = DisclosureReview.__table__.c
    return exists().where(review.object_pk == object_pk, review.state != RELEASED)
