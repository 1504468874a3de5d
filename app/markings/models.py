"""The label table: every distinct access label, interned once and referenced by object versions."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

UNRESTRICTED_LABEL_ID = 1
UNRESTRICTED_LABEL_KEY = "UNRESTRICTED"


class Label(SQLModel, table=True):
    """One access label. ``key`` is its canonical banner, unique."""

    __tablename__ = "label"
    __table_args__ = (PrimaryKeyConstraint("id", name="pk_label"), UniqueConstraint("key", name="uq_label_key"))

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    key: str = Field(sa_column=Column(String(512), nullable=False))
    marking_ref: str | None = Field(default=None, sa_column=Column(String(80), nullable=True))
    rank: int = Field(sa_column=Column(Integer, nullable=False))
    releasable_to: str = Field(default="", sa_column=Column(Text, nullable=False))
    caveats: str = Field(default="", sa_column=Column(Text, nullable=False))
    originator: str | None = Field(default=None, sa_column=Column(String(3), nullable=True))
