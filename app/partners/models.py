"""The partner table: one row per partner nation with its cleared rank and groups."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, ClassVar

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    text,
)
from sqlmodel import Field, SQLModel


def _now() -> datetime:
    return datetime.now(UTC)


class Partner(SQLModel, table=True):
    """A partner nation, registered by an operator."""

    __tablename__ = "partner"
    __table_args__ = (
        PrimaryKeyConstraint("nation", name="pk_partner"),
        CheckConstraint("clearance BETWEEN 0 AND 4", name="ck_partner_clearance_rank"),
    )

    if TYPE_CHECKING:  # set by SQLModel at class creation, but not declared by it
        __table__: ClassVar[Table]

    nation: str = Field(sa_column=Column(String(3), primary_key=True))
    name: str = Field(default="", sa_column=Column(String(200), nullable=False))
    clearance: int = Field(sa_column=Column(Integer, nullable=False))
    groups: str = Field(default="", sa_column=Column(Text, nullable=False))
    active: bool = Field(default=True, sa_column=Column(Boolean, nullable=False))
    # The STIX identities whose objects this partner may submit (created_by_ref), comma-joined;
    # empty means the one identity a partner's own Tearline writes (app.partners.identity).
    identities: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=text("''")))
    created_at: datetime = Field(default_factory=_now, sa_column=Column(DateTime(timezone=True), nullable=False))

    @property
    def group_list(self) -> list[str]:
        """The partner's group codes as a list (``groups`` is comma-joined)."""
        return group_codes(self.groups)


def group_codes(groups: str) -> list[str]:
    """The group codes of a partner's comma-joined ``groups`` column."""
    return [g for g in groups.split(",") if g]


class PartnerGroup(SQLModel, table=True):
    """An operator's edit of a group's members; it replaces the group's list in ``stix_mappings``."""

    __tablename__ = "partner_group"
    __table_args__ = (PrimaryKeyConstraint("code", name="pk_partner_group"),)

    code: str = Field(sa_column=Column(String(10), nullable=False))
    members: str = Field(default="", sa_column=Column(Text, nullable=False))
    updated_at: datetime = Field(default_factory=_now, sa_column=Column(DateTime(timezone=True), nullable=False))
