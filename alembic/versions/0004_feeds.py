"""Feed exchange: partner feed configuration, cursors and counters.

Hand-written: every constraint has an explicit name, like 0001 and 0002.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feed",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("partner", sa.String(3), nullable=False),
        sa.Column("direction", sa.String(4), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("remote_collection_id", sa.String(255), nullable=False),
        sa.Column("local_collection_id", sa.String(36), nullable=False),
        sa.Column("auth_kind", sa.String(10), nullable=False),
        sa.Column("username", sa.String(255), nullable=True),
        sa.Column("secret_ciphertext", sa.Text(), nullable=True),
        sa.Column("secret_env", sa.String(255), nullable=True),
        sa.Column("poll_interval_s", sa.Integer(), nullable=False),
        sa.Column("default_label", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("stopped_reason", sa.Text(), nullable=True),
        sa.Column("cursor_us", sa.BigInteger(), nullable=True),
        sa.Column("cursor_seen", sa.Text(), nullable=True),
        sa.Column("objects_in", sa.BigInteger(), nullable=False),
        sa.Column("objects_out", sa.BigInteger(), nullable=False),
        sa.Column("unknown_markings", sa.BigInteger(), nullable=False),
        sa.Column("refused", sa.BigInteger(), nullable=False),
        sa.Column("last_attempt_us", sa.BigInteger(), nullable=True),
        sa.Column("last_success_us", sa.BigInteger(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_us", sa.BigInteger(), nullable=True),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_feed"),
        sa.ForeignKeyConstraint(["partner"], ["partner.nation"], name="fk_feed_partner"),
        sa.ForeignKeyConstraint(["local_collection_id"], ["collection.id"], name="fk_feed_local_collection"),
        sa.CheckConstraint("direction IN ('pull', 'push')", name="ck_feed_direction"),
        sa.CheckConstraint("auth_kind IN ('none', 'basic', 'bearer')", name="ck_feed_auth_kind"),
        sa.CheckConstraint("poll_interval_s > 0", name="ck_feed_poll_interval"),
    )


def downgrade() -> None:
    op.drop_table("feed")
