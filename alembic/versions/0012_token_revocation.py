"""Token revocation by subject: tokens issued up to a moment are refused.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "token_revocation",
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("revoked_before", sa.BigInteger(), nullable=False),
        sa.Column("revoked_by", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("subject", name="pk_token_revocation"),
    )


def downgrade() -> None:
    op.drop_table("token_revocation")
