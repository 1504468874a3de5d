"""The push outbox: one row per transaction that stored versions in a collection.

Written in the same transaction as the versions (``app.items.changes.announce_stored``); push
feeds deliver from it (``app.feeds.outbox``) and delete a row once every push feed of its
collection has passed it.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

BIG_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "stored_change",
        sa.Column("id", BIG_PK, autoincrement=True, nullable=False),
        sa.Column(
            "collection_id",
            sa.String(36),
            sa.ForeignKey("collection.id", name="fk_stored_change_collection", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("date_added_us", sa.BigInteger(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_stored_change"),
    )
    op.create_index("ix_stored_change_collection", "stored_change", ["collection_id", "date_added_us"])


def downgrade() -> None:
    op.drop_index("ix_stored_change_collection", table_name="stored_change")
    op.drop_table("stored_change")
