"""The feed table: one row per partner feed, with its configuration, cursor and counters.

Timestamps are integers of microseconds since the Unix epoch, like every other
timestamp in the store. A pull feed's cursor is the partner's ``date_added`` of
the last object committed here; a push feed's cursor is the local ``date_added``
of the last version handed to the partner.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
)
from sqlmodel import Field, SQLModel

DIRECTIONS = ("pull", "push")
AUTH_KINDS = ("none", "basic", "bearer")


class Feed(SQLModel, table=True):
    """A partner feed: where to pull from or push to, how to authenticate, and how far it got."""

    __tablename__ = "feed"
    __table_args__ = (
        PrimaryKeyConstraint("name", name="pk_feed"),
        CheckConstraint("direction IN ('pull', 'push')", name="ck_feed_direction"),
        CheckConstraint("auth_kind IN ('none', 'basic', 'bearer')", name="ck_feed_auth_kind"),
        CheckConstraint("poll_interval_s > 0", name="ck_feed_poll_interval"),
    )

    name: str = Field(sa_column=Column(String(64), nullable=False))
    partner: str = Field(
        sa_column=Column(String(3), ForeignKey("partner.nation", name="fk_feed_partner"), nullable=False)
    )
    direction: str = Field(sa_column=Column(String(4), nullable=False))
    url: str = Field(sa_column=Column(Text, nullable=False))
    """TAXII discovery URL or API root URL of the partner's server."""
    remote_collection_id: str = Field(sa_column=Column(String(255), nullable=False))
    local_collection_id: str = Field(
        sa_column=Column(String(36), ForeignKey("collection.id", name="fk_feed_local_collection"), nullable=False)
    )
    """Pull: where incoming objects are stored. Push: the collection whose releasable versions go out."""
    auth_kind: str = Field(default="none", sa_column=Column(String(10), nullable=False))
    username: str | None = Field(default=None, sa_column=Column(String(255), nullable=True))
    secret_ciphertext: str | None = Field(default=None, repr=False, sa_column=Column(Text, nullable=True))
    """Fernet token of the password or bearer token; never returned by the API."""
    secret_env: str | None = Field(default=None, sa_column=Column(String(255), nullable=True))
    """Name of the environment variable holding the secret, instead of storing it."""
    poll_interval_s: int = Field(default=300, sa_column=Column(Integer, nullable=False))
    default_label: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    """Banner applied to unmarked incoming objects; NULL means originator-only."""
    enabled: bool = Field(default=True, sa_column=Column(Boolean, nullable=False))
    stopped_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    cursor_us: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    cursor_seen: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    """Pull: JSON list of the ``id|version`` keys of the last committed page. The next run asks from
    just before the cursor (other objects may share its timestamp) and skips these."""
    objects_in: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    objects_out: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    unknown_markings: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    """Incoming objects whose markings could not be read, stored with the originator-only label."""
    refused: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    """Objects refused (by this store on pull, by the partner's status resource on push)."""
    last_attempt_us: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    last_success_us: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    last_error_us: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    created_us: int = Field(sa_column=Column(BigInteger, nullable=False))
