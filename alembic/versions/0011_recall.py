"""Recall: recalls, their notices (with acknowledgements), the versions recalled per nation, and the
objects swept for late recipients.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

STIX_ID = 288  # app.db.columns.STIX_ID_LENGTH, fixed here: a migration must not change with the code


def upgrade() -> None:
    op.create_table(
        "recall",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("object_id", sa.String(STIX_ID), nullable=False),
        sa.Column("cause", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("issued_us", sa.BigInteger(), nullable=False),
        sa.Column("issued_by", sa.String(255), nullable=False),
        sa.Column("trigger_version_us", sa.BigInteger(), nullable=True),
        sa.Column("parent_id", sa.String(64), nullable=True),
        sa.Column("source_note_id", sa.String(STIX_ID), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_recall"),
    )
    op.create_index("ix_recall_object", "recall", ["object_id", "issued_us"])
    op.create_index("ix_recall_issued", "recall", ["issued_us"])
    op.create_table(
        "recall_notice",
        sa.Column("recall_id", sa.String(64), nullable=False),
        sa.Column("nation", sa.String(3), nullable=False),
        sa.Column("collection_id", sa.String(36), nullable=False),
        sa.Column("notice_id", sa.String(STIX_ID), nullable=False),
        sa.Column("notice_version_us", sa.BigInteger(), nullable=False),
        sa.Column("versions", sa.Text(), nullable=False),
        sa.Column("acknowledged_us", sa.BigInteger(), nullable=True),
        sa.Column("acknowledged_by", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("recall_id", "nation", "collection_id", name="pk_recall_notice"),
    )
    op.create_index("ix_recall_notice_notice", "recall_notice", ["notice_id"])
    op.create_index("ix_recall_notice_nation", "recall_notice", ["nation", "recall_id"])
    op.create_table(
        "recalled_version",
        sa.Column("object_id", sa.String(STIX_ID), nullable=False),
        sa.Column("version_us", sa.BigInteger(), nullable=False),
        sa.Column("nation", sa.String(3), nullable=False),
        sa.Column("recall_id", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("object_id", "version_us", "nation", name="pk_recalled_version"),
    )
    op.create_table(
        "recall_watch",
        sa.Column("object_id", sa.String(STIX_ID), nullable=False),
        sa.Column("until_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("object_id", name="pk_recall_watch"),
    )


def downgrade() -> None:
    op.drop_table("recall_watch")
    op.drop_table("recalled_version")
    op.drop_index("ix_recall_notice_nation", table_name="recall_notice")
    op.drop_index("ix_recall_notice_notice", table_name="recall_notice")
    op.drop_table("recall_notice")
    op.drop_index("ix_recall_issued", table_name="recall")
    op.drop_index("ix_recall_object", table_name="recall")
    op.drop_table("recall")
