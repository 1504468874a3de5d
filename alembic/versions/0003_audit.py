"""Audit log: hash-chained access records, chain head, checkpoints, dissemination records.

Hand-written. ``audit_head`` holds one row (seq 0, the genesis hash) that every
writer updates first, which serialises the chain across threads and processes.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BIG_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
GENESIS_HASH = "0" * 64


def upgrade() -> None:
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("mac", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_head"),
    )
    op.bulk_insert(
        sa.table(
            "audit_head",
            sa.column("id", sa.Integer),
            sa.column("seq", sa.BigInteger),
            sa.column("hash", sa.String),
            sa.column("mac", sa.String),
        ),
        [{"id": 1, "seq": 0, "hash": GENESIS_HASH, "mac": ""}],
    )
    op.create_table(
        "audit_record",
        sa.Column("seq", BIG_PK, nullable=False, autoincrement=False),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("nation", sa.String(3), nullable=False),
        sa.Column("roles", sa.String(255), nullable=False),
        sa.Column("client", sa.String(255), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("route", sa.String(1024), nullable=False),
        sa.Column("collection_id", sa.String(255), nullable=True),
        sa.Column("decision", sa.String(8), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("recipient_nation", sa.String(3), nullable=False),
        sa.Column("served_count", sa.Integer(), nullable=False),
        sa.Column("served_digest", sa.String(64), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_record"),
        sa.CheckConstraint("decision IN ('allow', 'deny')", name="ck_audit_record_decision"),
    )
    op.create_index("ix_audit_record_at", "audit_record", ["at"])
    op.create_index("ix_audit_record_subject", "audit_record", ["subject", "seq"])
    op.create_index("ix_audit_record_nation", "audit_record", ["nation", "seq"])
    op.create_index("ix_audit_record_collection", "audit_record", ["collection_id", "seq"])
    op.create_table(
        "audit_object",
        sa.Column("key", BIG_PK, nullable=False, autoincrement=True),
        sa.Column("object_id", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_audit_object"),
        sa.UniqueConstraint("object_id", name="uq_audit_object_object_id"),
    )
    op.create_table(
        "audit_dissemination",
        sa.Column("object_key", BIG_PK, nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("nation", sa.String(3), nullable=False),
        sa.Column("record_seq", BIG_PK, nullable=False),
        sa.PrimaryKeyConstraint("object_key", "version", "nation", "record_seq", name="pk_audit_dissemination"),
    )
    op.create_index("ix_audit_dissemination_record", "audit_dissemination", ["record_seq"])
    op.create_table(
        "audit_checkpoint",
        sa.Column("seq", BIG_PK, nullable=False, autoincrement=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("mac", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_checkpoint"),
    )


def downgrade() -> None:
    op.drop_table("audit_checkpoint")
    op.drop_index("ix_audit_dissemination_record", table_name="audit_dissemination")
    op.drop_table("audit_dissemination")
    op.drop_table("audit_object")
    op.drop_index("ix_audit_record_collection", table_name="audit_record")
    op.drop_index("ix_audit_record_nation", table_name="audit_record")
    op.drop_index("ix_audit_record_subject", table_name="audit_record")
    op.drop_index("ix_audit_record_at", table_name="audit_record")
    op.drop_table("audit_record")
    op.drop_table("audit_head")
