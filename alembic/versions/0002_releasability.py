"""Releasability: policy epoch, operator group edits, granular markings, marking references.

Hand-written. The foundation's ``UNRESTRICTED`` label (id 1) stays as a legacy
label: no originator and no releasable-to, so under the section 2 rule it is
visible to the home nation only (default deny for anything stored before labels).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BIG_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # 0001 seeded label 1 with an explicit id; move the sequence past it.
        op.execute("SELECT setval(pg_get_serial_sequence('label', 'id'), (SELECT MAX(id) FROM label))")
    op.create_table(
        "policy_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_policy_state"),
    )
    op.bulk_insert(
        sa.table("policy_state", sa.column("id", sa.Integer), sa.column("epoch", sa.BigInteger)),
        [{"id": 1, "epoch": 0}],
    )
    op.create_table(
        "partner_group",
        sa.Column("code", sa.String(10), nullable=False),
        sa.Column("members", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code", name="pk_partner_group"),
    )
    with op.batch_alter_table("stix_object") as batch:
        batch.add_column(sa.Column("granular", sa.Text(), nullable=True))
        # Versions stored before this migration were submitted by their originator.
        batch.add_column(sa.Column("submitter", sa.String(3), nullable=False, server_default=""))
    op.execute("UPDATE stix_object SET submitter = originator")
    with op.batch_alter_table("stix_object") as batch:
        batch.alter_column("submitter", server_default=None)
    op.create_table(
        "object_withhold",
        sa.Column("object_pk", BIG_PK, nullable=False),
        sa.Column("label_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("object_pk", "label_id", name="pk_object_withhold"),
        sa.ForeignKeyConstraint(
            ["object_pk"], ["stix_object.pk"], name="fk_object_withhold_object", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["label_id"], ["label.id"], name="fk_object_withhold_label"),
    )
    op.create_table(
        "object_marking_ref",
        sa.Column("object_pk", BIG_PK, nullable=False),
        sa.Column("marking_id", sa.String(255), nullable=False),
        sa.Column("collection_id", sa.String(36), nullable=False),
        sa.Column("label_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("object_pk", "marking_id", name="pk_object_marking_ref"),
        sa.ForeignKeyConstraint(
            ["object_pk"], ["stix_object.pk"], name="fk_object_marking_ref_object", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_object_marking_ref_lookup", "object_marking_ref", ["collection_id", "marking_id", "label_id"])


def downgrade() -> None:
    op.drop_index("ix_object_marking_ref_lookup", table_name="object_marking_ref")
    op.drop_table("object_marking_ref")
    op.drop_table("object_withhold")
    with op.batch_alter_table("stix_object") as batch:
        batch.drop_column("submitter")
        batch.drop_column("granular")
    op.drop_table("partner_group")
    op.drop_table("policy_state")
