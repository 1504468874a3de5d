"""Analyst API: per-partner read and write lists on collections; tearline derivations.

``read_partners`` / ``write_partners`` hold comma-joined nation trigraphs. Empty (the
default, and every existing row) means "every partner the collection's roles admit", so
upgrading changes no one's access. ``item_derivation`` links each tearline to the object
it was derived from, so the third-party rule follows a partner's content.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("collection") as batch:
        batch.add_column(sa.Column("read_partners", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("write_partners", sa.Text(), nullable=False, server_default=""))
    # The default only filled existing rows; like every other column, new rows get values from the app.
    with op.batch_alter_table("collection") as batch:
        batch.alter_column("read_partners", server_default=None, existing_type=sa.Text(), existing_nullable=False)
        batch.alter_column("write_partners", server_default=None, existing_type=sa.Text(), existing_nullable=False)
    op.create_table(
        "item_derivation",
        sa.Column("derived_id", sa.String(255), nullable=False),
        sa.Column("source_id", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("derived_id", "source_id", name="pk_item_derivation"),
    )


def downgrade() -> None:
    op.drop_table("item_derivation")
    with op.batch_alter_table("collection") as batch:
        batch.drop_column("write_partners")
        batch.drop_column("read_partners")
