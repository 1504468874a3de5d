"""Recall tables: each recall, the notice each recipient nation gets, and the versions recalled from it.

A recall names one object. Its notices are ordinary stored versions (STIX ``note`` objects, one
per recipient nation and collection) so that they travel every path a version travels; the
``recall_notice`` row links a notice to its recall and holds the recipient's acknowledgement.
``recalled_version`` holds each (version, nation) once, so no version is recalled twice from
one nation, whatever later recalls say.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from sqlalchemy import BigInteger, Column, Index, PrimaryKeyConstraint, String, Table, Text
from sqlmodel import Field, SQLModel

from app.db.columns import STIX_ID_LENGTH


class Recall(SQLModel, table=True):
    """One recall of versions of one object: why, what is expected, who issued it and when."""

    __tablename__ = "recall"
    __table_args__ = (
        PrimaryKeyConstraint("id", name="pk_recall"),
        Index("ix_recall_object", "object_id", "issued_us"),
        Index("ix_recall_issued", "issued_us"),
    )

    if TYPE_CHECKING:  # set by SQLModel at class creation, but not declared by it
        __table__: ClassVar[Table]

    id: str = Field(sa_column=Column(String(64), nullable=False))
    object_id: str = Field(sa_column=Column(String(STIX_ID_LENGTH), nullable=False))
    cause: str = Field(sa_column=Column(String(16), nullable=False))
    """``tightened``, ``revoked``, ``explicit``, ``partner`` (a partner's recall that reached us) or ``derived``."""
    reason: str = Field(sa_column=Column(Text, nullable=False))
    action: str = Field(sa_column=Column(String(32), nullable=False))
    issued_us: int = Field(sa_column=Column(BigInteger, nullable=False))
    issued_by: str = Field(sa_column=Column(String(255), nullable=False))
    trigger_version_us: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    """The version whose storing caused it (tightened, revoked); NULL for explicit and partner recalls."""
    parent_id: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    """The recall of the item this one was derived from (``derived``)."""
    source_note_id: str | None = Field(default=None, sa_column=Column(String(STIX_ID_LENGTH), nullable=True))
    """The partner's notice that brought this recall (``partner``)."""


class RecallNotice(SQLModel, table=True):
    """The notice one recipient nation gets for one recall, in one collection, and its acknowledgement."""

    __tablename__ = "recall_notice"
    __table_args__ = (
        PrimaryKeyConstraint("recall_id", "nation", "collection_id", name="pk_recall_notice"),
        Index("ix_recall_notice_notice", "notice_id"),
        Index("ix_recall_notice_nation", "nation", "recall_id"),
    )

    if TYPE_CHECKING:  # set by SQLModel at class creation, but not declared by it
        __table__: ClassVar[Table]

    recall_id: str = Field(sa_column=Column(String(64), nullable=False))
    nation: str = Field(sa_column=Column(String(3), nullable=False))
    collection_id: str = Field(sa_column=Column(String(36), nullable=False))
    notice_id: str = Field(sa_column=Column(String(STIX_ID_LENGTH), nullable=False))
    notice_version_us: int = Field(sa_column=Column(BigInteger, nullable=False))
    versions: str = Field(sa_column=Column(Text, nullable=False))
    """JSON list of the recalled versions this nation received (STIX timestamps)."""
    acknowledged_us: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    acknowledged_by: str | None = Field(default=None, sa_column=Column(String(255), nullable=True))


class RecalledVersion(SQLModel, table=True):
    """One version recalled from one nation, by the first recall that named it."""

    __tablename__ = "recalled_version"
    __table_args__ = (PrimaryKeyConstraint("object_id", "version_us", "nation", name="pk_recalled_version"),)

    if TYPE_CHECKING:  # set by SQLModel at class creation, but not declared by it
        __table__: ClassVar[Table]

    object_id: str = Field(sa_column=Column(String(STIX_ID_LENGTH), nullable=False))
    version_us: int = Field(sa_column=Column(BigInteger, nullable=False))
    nation: str = Field(sa_column=Column(String(3), nullable=False))
    recall_id: str = Field(sa_column=Column(String(64), nullable=False))


class RecallWatch(SQLModel, table=True):
    """An object whose versions were withdrawn recently: swept for late recipients until ``until_us``.

    A read that served an older version while the withdrawal committed writes its served list
    after the withdrawing transaction read the recipients; the sweep (app/recall/sweep.py) finds it.
    """

    __tablename__ = "recall_watch"
    __table_args__ = (PrimaryKeyConstraint("object_id", name="pk_recall_watch"),)

    if TYPE_CHECKING:  # set by SQLModel at class creation, but not declared by it
        __table__: ClassVar[Table]

    object_id: str = Field(sa_column=Column(String(STIX_ID_LENGTH), nullable=False))
    until_us: int = Field(sa_column=Column(BigInteger, nullable=False))
