"""The object-version table: canonical JSON text beside the indexed columns queries need.

Timestamps are integers of microseconds since the Unix epoch: they compare and
sort identically on SQLite and PostgreSQL, and ``date_added`` needs exactly
microsecond precision.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlmodel import Field, SQLModel

from app.db.columns import STIX_ID_LENGTH

# SQLite only autoincrements an INTEGER PRIMARY KEY.
_BIG_PK = BigInteger().with_variant(Integer(), "sqlite")


class StixObject(SQLModel, table=True):
    """One version of one STIX object in one collection."""

    __tablename__ = "stix_object"
    __table_args__ = (
        PrimaryKeyConstraint("pk", name="pk_stix_object"),
        # Led by the object id: lookups by id alone use its prefix, so no second index on the random
        # id has to be kept up to date on every insert (migration 0006).
        UniqueConstraint("object_id", "collection_id", "version_us", name="uq_stix_object_object_collection_version"),
        UniqueConstraint("collection_id", "date_added_us", name="uq_stix_object_collection_date_added"),
        Index("ix_stix_object_collection_label_date_added", "collection_id", "label_id", "date_added_us"),
    )

    if TYPE_CHECKING:  # set by SQLModel at class creation, but not declared by it
        __table__: ClassVar[Table]

    pk: int | None = Field(default=None, sa_column=Column(_BIG_PK, primary_key=True, autoincrement=True))
    collection_id: str = Field(
        sa_column=Column(String(36), ForeignKey("collection.id", name="fk_stix_object_collection"), nullable=False)
    )
    object_id: str = Field(sa_column=Column(String(STIX_ID_LENGTH), nullable=False))
    type: str = Field(sa_column=Column(String(250), nullable=False))
    spec_version: str = Field(sa_column=Column(String(10), nullable=False))
    version_us: int = Field(sa_column=Column(BigInteger, nullable=False))
    created_us: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    date_added_us: int = Field(sa_column=Column(BigInteger, nullable=False))
    label_id: int = Field(
        sa_column=Column(Integer, ForeignKey("label.id", name="fk_stix_object_label"), nullable=False)
    )
    originator: str = Field(sa_column=Column(String(3), nullable=False))
    submitter: str = Field(sa_column=Column(String(3), nullable=False))
    """The nation that submitted this version (the originator, or another under the third-party rule)."""
    has_granular: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    has_refs: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default=false()))
    """The version names other objects (``object_reference``): reference closure applies to it."""
    granular: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    """JSON {label id: [selectors]} of the granular markings, for redaction at serve time."""
    body: str = Field(sa_column=Column(Text, nullable=False))


class ObjectWithhold(SQLModel, table=True):
    """A label of a withholding set: when every label of one set (``set_no``) is hidden, removing
    what their granular markings mark would leave invalid STIX, so the whole version is withheld.
    Queries exclude such versions in SQL."""

    __tablename__ = "object_withhold"
    __table_args__ = (PrimaryKeyConstraint("object_pk", "set_no", "label_id", name="pk_object_withhold"),)

    if TYPE_CHECKING:  # set by SQLModel at class creation, but not declared by it
        __table__: ClassVar[Table]

    object_pk: int = Field(
        sa_column=Column(
            _BIG_PK, ForeignKey("stix_object.pk", name="fk_object_withhold_object", ondelete="CASCADE"), nullable=False
        )
    )
    set_no: int = Field(sa_column=Column(Integer, nullable=False))
    label_id: int = Field(
        sa_column=Column(Integer, ForeignKey("label.id", name="fk_object_withhold_label"), nullable=False)
    )


class ObjectReference(SQLModel, table=True):
    """One reference entry of a stored version, once per required group it belongs to.

    ``group_no`` numbers the version's minimal sets of reference properties that cannot all be
    removed (app/items/references.py); -1 (``app.items.references.NO_GROUP``) for an entry in none. A version is
    withheld from a requester when every entry of one group names a stored object hidden from it.
    """

    __tablename__ = "object_reference"
    __table_args__ = (
        PrimaryKeyConstraint("object_pk", "prop", "position", "group_no", name="pk_object_reference"),
        Index("ix_object_reference_ref", "ref_id"),
    )

    if TYPE_CHECKING:  # set by SQLModel at class creation, but not declared by it
        __table__: ClassVar[Table]

    object_pk: int = Field(
        sa_column=Column(
            _BIG_PK,
            ForeignKey("stix_object.pk", name="fk_object_reference_object", ondelete="CASCADE"),
            nullable=False,
        )
    )
    prop: str = Field(sa_column=Column(String(250), nullable=False))
    position: int = Field(sa_column=Column(Integer, nullable=False))
    group_no: int = Field(sa_column=Column(Integer, nullable=False))
    ref_id: str = Field(sa_column=Column(String(STIX_ID_LENGTH), nullable=False))


class ObjectMarkingRef(SQLModel, table=True):
    """A marking definition a stored version references (object-level or granular).

    Marking definitions are served to a principal only while a version it may see references
    them, so a definition never tells of the hidden versions it marks. The referring version's
    collection and label are copied here so that check is an index probe, not a join.
    """

    __tablename__ = "object_marking_ref"
    __table_args__ = (
        PrimaryKeyConstraint("object_pk", "marking_id", name="pk_object_marking_ref"),
        Index("ix_object_marking_ref_lookup", "collection_id", "marking_id", "label_id"),
    )

    if TYPE_CHECKING:  # set by SQLModel at class creation, but not declared by it
        __table__: ClassVar[Table]

    object_pk: int = Field(
        sa_column=Column(
            _BIG_PK,
            ForeignKey("stix_object.pk", name="fk_object_marking_ref_object", ondelete="CASCADE"),
            nullable=False,
        )
    )
    marking_id: str = Field(sa_column=Column(String(STIX_ID_LENGTH), nullable=False))
    collection_id: str = Field(sa_column=Column(String(36), nullable=False))
    label_id: int = Field(sa_column=Column(Integer, nullable=False))


class ItemDerivation(SQLModel, table=True):
    """A derived object (a tearline) and the object it was derived from.

    The derived object is the home nation's, but its content may be a partner's: this link
    lets the third-party rule follow the content through relabelling and further tearlines.
    """

    __tablename__ = "item_derivation"
    __table_args__ = (PrimaryKeyConstraint("derived_id", "source_id", name="pk_item_derivation"),)

    derived_id: str = Field(sa_column=Column(String(STIX_ID_LENGTH), nullable=False))
    source_id: str = Field(sa_column=Column(String(STIX_ID_LENGTH), nullable=False))


class StoredChange(SQLModel, table=True):
    """One transaction's new versions in a collection: the outbox push feeds deliver from.

    Written in the same transaction as the versions (:func:`app.items.changes.announce_stored`), so
    a version is never stored without its row, nor the row without the versions. ``date_added_us``
    is the last ``date_added`` the transaction gave; a push feed whose cursor has passed it is done
    with the row (app/feeds/outbox.py).
    """

    __tablename__ = "stored_change"
    __table_args__ = (
        PrimaryKeyConstraint("id", name="pk_stored_change"),
        Index("ix_stored_change_collection", "collection_id", "date_added_us"),
    )

    if TYPE_CHECKING:  # set by SQLModel at class creation, but not declared by it
        __table__: ClassVar[Table]

    id: int | None = Field(default=None, sa_column=Column(_BIG_PK, autoincrement=True))
    collection_id: str = Field(
        sa_column=Column(
            String(36),
            ForeignKey("collection.id", name="fk_stored_change_collection", ondelete="CASCADE"),
            nullable=False,
        )
    )
    date_added_us: int = Field(sa_column=Column(BigInteger, nullable=False))
    created_us: int = Field(sa_column=Column(BigInteger, nullable=False))
