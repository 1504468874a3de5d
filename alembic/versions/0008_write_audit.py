"""Writes audited in their own transaction; partners' identities; STIX ids of 288 characters.

- ``audit_record`` gains ``written_count`` and ``written_digest`` (NULL on reads and on every
  record before this migration, whose hashes therefore do not change), and ``audit_written``
  holds each write's list of the versions it stored or deleted.
- ``partner.identities``: the STIX identities a partner's objects may name in ``created_by_ref``.
- Columns holding STIX ids widen to 288 characters (a 250-character type, ``--`` and a UUID). On
  SQLite, which cannot alter a column, each such table is rebuilt (Alembic's batch mode): the
  upgrade copies ``stix_object`` once, so allow for it on a large store.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BIG_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
STIX_ID_COLUMNS = [
    ("stix_object", "object_id"),
    ("object_marking_ref", "marking_id"),
    ("item_derivation", "derived_id"),
    ("item_derivation", "source_id"),
    ("audit_object", "object_id"),
]


def upgrade() -> None:
    with op.batch_alter_table("audit_record") as batch:
        batch.add_column(sa.Column("written_count", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("written_digest", sa.String(64), nullable=True))
    op.create_table(
        "audit_written",
        sa.Column("record_seq", BIG_PK, nullable=False, autoincrement=False),
        sa.Column("pairs", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("record_seq", name="pk_audit_written"),
    )
    with op.batch_alter_table("partner") as batch:
        batch.add_column(sa.Column("identities", sa.Text(), nullable=False, server_default=sa.text("''")))
    _retype(sa.String(255), sa.String(288))


def downgrade() -> None:
    _retype(sa.String(288), sa.String(255))
    with op.batch_alter_table("partner") as batch:
        batch.drop_column("identities")
    op.drop_table("audit_written")
    with op.batch_alter_table("audit_record") as batch:
        batch.drop_column("written_digest")
        batch.drop_column("written_count")


def _retype(old: sa.String, new: sa.String) -> None:
    tables: dict[str, list[str]] = {}
    for table, column in STIX_ID_COLUMNS:
        tables.setdefault(table, []).append(column)
    for table, columns in tables.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.alter_column(column, type_=new, existing_type=old, existing_nullable=False)
