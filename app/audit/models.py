"""Audit tables: the hash-chained records, the chain head, checkpoints, served lists and their index.

``audit_record.seq`` is assigned from the one-row ``audit_head`` table inside the
writing transaction, never by an autoincrement, so that the chain stays linear
across threads and processes. ``at`` is a fixed-width UTC ISO 8601 string
(microseconds, ``Z``) so that it sorts as text and hashes the same on every database.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Index,
    Integer,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from app.db.columns import STIX_ID_LENGTH

GENESIS_HASH = "0" * 64
# INTEGER on SQLite makes the key the rowid (no second index); BIGINT elsewhere.
_BIG_KEY = BigInteger().with_variant(Integer(), "sqlite")


class AuditHead(SQLModel, table=True):
    """One row: the last sequence number and hash, and an HMAC of both (detects a cut tail)."""

    __tablename__ = "audit_head"
    __table_args__ = (PrimaryKeyConstraint("id", name="pk_audit_head"),)

    if TYPE_CHECKING:  # set by SQLModel at class creation, but not declared by it
        __table__: ClassVar[Table]

    id: int = Field(default=1, sa_column=Column(Integer, nullable=False))
    seq: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    hash: str = Field(default=GENESIS_HASH, sa_column=Column(String(64), nullable=False))
    mac: str = Field(default="", sa_column=Column(String(64), nullable=False))


class AuditRecord(SQLModel, table=True):
    """One request: who, what, the decision and why, and a digest of the versions served."""

    __tablename__ = "audit_record"
    __table_args__ = (
        PrimaryKeyConstraint("seq", name="pk_audit_record"),
        CheckConstraint("decision IN ('allow', 'deny')", name="ck_audit_record_decision"),
        Index("ix_audit_record_at", "at"),
        Index("ix_audit_record_subject", "subject", "seq"),
        Index("ix_audit_record_nation", "nation", "seq"),
        Index("ix_audit_record_collection", "collection_id", "seq"),
    )

    if TYPE_CHECKING:  # set by SQLModel at class creation, but not declared by it
        __table__: ClassVar[Table]

    seq: int = Field(sa_column=Column(_BIG_KEY, nullable=False, autoincrement=False))
    at: str = Field(sa_column=Column(String(32), nullable=False))
    request_id: str = Field(sa_column=Column(String(64), nullable=False))
    subject: str = Field(sa_column=Column(String(255), nullable=False))
    nation: str = Field(sa_column=Column(String(3), nullable=False))
    roles: str = Field(sa_column=Column(String(255), nullable=False))
    client: str = Field(sa_column=Column(String(255), nullable=False))
    method: str = Field(sa_column=Column(String(16), nullable=False))
    route: str = Field(sa_column=Column(String(1024), nullable=False))
    collection_id: str | None = Field(default=None, sa_column=Column(String(255), nullable=True))
    decision: str = Field(sa_column=Column(String(8), nullable=False))
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    status: int = Field(sa_column=Column(SmallInteger, nullable=False))
    recipient_nation: str = Field(sa_column=Column(String(3), nullable=False))
    served_count: int = Field(sa_column=Column(Integer, nullable=False))
    served_digest: str = Field(sa_column=Column(String(64), nullable=False))
    # A write's record also names the versions it stored or deleted; NULL on reads (and older records).
    written_count: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    written_digest: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    prev_hash: str = Field(sa_column=Column(String(64), nullable=False))
    hash: str = Field(sa_column=Column(String(64), nullable=False))


class AuditServed(SQLModel, table=True):
    """The versions one record served: written in the record's transaction, before any byte is sent.

    ``pairs`` is the canonical JSON of the record's sorted (object id, version) list, the exact
    bytes whose SHA-256 is the record's ``served_digest``; the chain therefore covers it. One row
    per record, appended in ``seq`` order, so writing it costs the same at any size of the log.
    """

    __tablename__ = "audit_served"
    __table_args__ = (PrimaryKeyConstraint("record_seq", name="pk_audit_served"),)

    if TYPE_CHECKING:  # set by SQLModel at class creation, but not declared by it
        __table__: ClassVar[Table]

    record_seq: int = Field(sa_column=Column(_BIG_KEY, nullable=False, autoincrement=False))
    pairs: str = Field(sa_column=Column(Text, nullable=False))


class AuditWritten(SQLModel, table=True):
    """The versions one write stored or deleted, committed in the write's own transaction.

    Like a served list: the canonical JSON of the sorted (object id, version) list, whose SHA-256 is
    the record's ``written_digest``. Written only for writes that changed object versions.
    """

    __tablename__ = "audit_written"
    __table_args__ = (PrimaryKeyConstraint("record_seq", name="pk_audit_written"),)

    if TYPE_CHECKING:  # set by SQLModel at class creation, but not declared by it
        __table__: ClassVar[Table]

    record_seq: int = Field(sa_column=Column(_BIG_KEY, nullable=False, autoincrement=False))
    pairs: str = Field(sa_column=Column(Text, nullable=False))


class AuditIndexHead(SQLModel, table=True):
    """One row: every record up to ``seq`` has its served list in the recipients index.

    The index (``audit_object`` and ``audit_dissemination``) is derived from ``audit_served``
    after the response, by ``app.audit.index``; readers bring it up to date before they use it.
    """

    __tablename__ = "audit_index_head"
    __table_args__ = (PrimaryKeyConstraint("id", name="pk_audit_index_head"),)

    if TYPE_CHECKING:  # set by SQLModel at class creation, but not declared by it
        __table__: ClassVar[Table]

    id: int = Field(default=1, sa_column=Column(Integer, nullable=False))
    seq: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))


class AuditObject(SQLModel, table=True):
    """An object id that was ever served, with a small key given in the order of first receipt.

    Dissemination rows are keyed by this key rather than by the id text: the objects of a
    page were first served together, so their keys are close and a later page's rows land in
    a few neighbouring index pages instead of one random page each. Never deleted.
    """

    __tablename__ = "audit_object"
    __table_args__ = (
        PrimaryKeyConstraint("key", name="pk_audit_object"),
        UniqueConstraint("object_id", name="uq_audit_object_object_id"),
    )

    if TYPE_CHECKING:  # set by SQLModel at class creation, but not declared by it
        __table__: ClassVar[Table]

    key: int | None = Field(default=None, sa_column=Column(_BIG_KEY, nullable=False, autoincrement=True))
    object_id: str = Field(sa_column=Column(String(STIX_ID_LENGTH), nullable=False))


class AuditDissemination(SQLModel, table=True):
    """One object version that left in the response of one record, and to which nation (the index)."""

    __tablename__ = "audit_dissemination"
    __table_args__ = (
        # The key is the lookup "who received object X" (every version, every nation): an index
        # range scan after one probe of audit_object.
        PrimaryKeyConstraint("object_key", "version", "nation", "record_seq", name="pk_audit_dissemination"),
        # No foreign keys: a row-level check per served object (PostgreSQL locks the parent row
        # once per row) would cost more than the insert. The rows are derived from the record's
        # served list, and verification checks them against it.
        # Verification reads the index rows of a range of records: an append-only integer index.
        Index("ix_audit_dissemination_record", "record_seq"),
    )

    if TYPE_CHECKING:  # set by SQLModel at class creation, but not declared by it
        __table__: ClassVar[Table]

    object_key: int = Field(sa_column=Column(_BIG_KEY, nullable=False))
    version: str = Field(sa_column=Column(String(64), nullable=False))
    nation: str = Field(sa_column=Column(String(3), nullable=False))
    record_seq: int = Field(sa_column=Column(_BIG_KEY, nullable=False))


class AuditCheckpoint(SQLModel, table=True):
    """An HMAC of the chain at ``seq``: anchors verification after old ranges are archived."""

    __tablename__ = "audit_checkpoint"
    __table_args__ = (PrimaryKeyConstraint("seq", name="pk_audit_checkpoint"),)

    if TYPE_CHECKING:  # set by SQLModel at class creation, but not declared by it
        __table__: ClassVar[Table]

    seq: int = Field(sa_column=Column(_BIG_KEY, nullable=False, autoincrement=False))
    hash: str = Field(sa_column=Column(String(64), nullable=False))
    at: str = Field(sa_column=Column(String(32), nullable=False))
    mac: str = Field(sa_column=Column(String(64), nullable=False))
