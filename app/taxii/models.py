"""Collections and TAXII status resources."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

DEFAULT_COLLECTION_ID = "365fed99-08fa-fdcd-a1b3-fb247eb41d01"


class Collection(SQLModel, table=True):
    """A TAXII collection. ``date_added_hwm`` is the last ``date_added`` handed out in it."""

    __tablename__ = "collection"
    __table_args__ = (
        PrimaryKeyConstraint("id", name="pk_collection"),
        UniqueConstraint("alias", name="uq_collection_alias"),
    )

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    alias: str | None = Field(default=None, sa_column=Column(String(100), nullable=True))
    title: str = Field(sa_column=Column(String(200), nullable=False))
    description: str = Field(default="", sa_column=Column(Text, nullable=False))
    read_roles: str = Field(default="", sa_column=Column(Text, nullable=False))
    write_roles: str = Field(default="", sa_column=Column(Text, nullable=False))
    date_added_hwm: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    read_partners: str = Field(default="", sa_column=Column(Text, nullable=False))
    """Comma-joined partner nations that may read; empty: every partner the read roles admit."""
    write_partners: str = Field(default="", sa_column=Column(Text, nullable=False))
    """Comma-joined partner nations that may write; empty: every partner the write roles admit."""

    def roles(self, access: str) -> set[str]:
        """Roles granted ``access`` ("read" or "write") on this collection."""
        text = self.read_roles if access == "read" else self.write_roles
        return {role for role in text.split(",") if role}

    def partners(self, access: str) -> set[str]:
        """Partner nations listed for ``access`` ("read" or "write"); empty means no restriction."""
        text = self.read_partners if access == "read" else self.write_partners
        return {nation for nation in (text or "").split(",") if nation}

    def admits_partner(self, access: str, nation: str) -> bool:
        """Whether a partner of ``nation`` passes the collection's partner list for ``access``."""
        listed = self.partners(access)
        return not listed or nation in listed


class StatusResource(SQLModel, table=True):
    """The outcome of one Add Objects request, visible only to its poster."""

    __tablename__ = "taxii_status"
    __table_args__ = (
        PrimaryKeyConstraint("id", name="pk_taxii_status"),
        Index("ix_taxii_status_owner", "owner_subject", "owner_nation"),
    )

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    collection_id: str = Field(
        sa_column=Column(String(36), ForeignKey("collection.id", name="fk_taxii_status_collection"), nullable=False)
    )
    owner_subject: str = Field(sa_column=Column(String(255), nullable=False))
    owner_nation: str = Field(sa_column=Column(String(3), nullable=False))
    status: str = Field(sa_column=Column(String(20), nullable=False))
    request_timestamp_us: int = Field(sa_column=Column(BigInteger, nullable=False))
    total_count: int = Field(sa_column=Column(Integer, nullable=False))
    success_count: int = Field(sa_column=Column(Integer, nullable=False))
    failure_count: int = Field(sa_column=Column(Integer, nullable=False))
    pending_count: int = Field(sa_column=Column(Integer, nullable=False))
    details: str = Field(sa_column=Column(Text, nullable=False))
