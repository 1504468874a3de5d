"""Disclosure review: versions held for a disclosure officer, and the decisions on them.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "disclosure_review",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("object_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("object_id", sa.String(288), nullable=False),
        sa.Column("version_us", sa.BigInteger(), nullable=False),
        sa.Column("collection_id", sa.String(36), nullable=False),
        sa.Column("object_type", sa.String(250), nullable=False),
        sa.Column("marked_label_id", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("two_person", sa.Boolean(), nullable=False),
        sa.Column("submitted_by", sa.String(255), nullable=False),
        sa.Column("posted_us", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("action", sa.String(16), nullable=True),
        sa.Column("released_label_id", sa.Integer(), nullable=True),
        sa.Column("released_to", sa.Text(), nullable=True),
        sa.Column("result_object_id", sa.String(288), nullable=True),
        sa.Column("result_version_us", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("decided_us", sa.BigInteger(), nullable=True),
        sa.Column("decided_by", sa.String(255), nullable=True),
        sa.Column("proposed_by", sa.String(255), nullable=True),
        sa.Column("proposal", sa.Text(), nullable=True),
        sa.Column("proposed_us", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["marked_label_id"], ["label.id"], name="fk_disclosure_review_marked_label"),
        sa.ForeignKeyConstraint(
            ["object_pk"], ["stix_object.pk"], name="fk_disclosure_review_object", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_disclosure_review"),
    )
    op.create_index("ix_disclosure_review_object_pk", "disclosure_review", ["object_pk"], unique=True)
    op.create_index("ix_disclosure_review_state", "disclosure_review", ["state", "posted_us"])
    op.create_index("ix_disclosure_review_object", "disclosure_review", ["object_id", "version_us"])
    op.create_index("ix_disclosure_review_decided_by", "disclosure_review", ["decided_by", "decided_us"])
    op.create_index("ix_disclosure_review_submitted_by", "disclosure_review", ["submitted_by", "posted_us"])


def downgrade() -> None:
    op.drop_table("disclosure_review")
