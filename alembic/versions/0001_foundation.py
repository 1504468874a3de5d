"""Foundation schema: labels, partners, collections, object versions, status resources.

Hand-written and reviewed: every constraint and index has an explicit name so
later migrations can address it on SQLite and PostgreSQL alike. Seeds the
``UNRESTRICTED`` label and the default collection (partners read, analysts write).

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BIG_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "label",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(512), nullable=False),
        sa.Column("marking_ref", sa.String(80), nullable=True),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("releasable_to", sa.Text(), nullable=False),
        sa.Column("caveats", sa.Text(), nullable=False),
        sa.Column("originator", sa.String(3), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_label"),
        sa.UniqueConstraint("key", name="uq_label_key"),
    )
    op.create_table(
        "partner",
        sa.Column("nation", sa.String(3), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("clearance", sa.Integer(), nullable=False),
        sa.Column("groups", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("nation", name="pk_partner"),
        sa.CheckConstraint("clearance BETWEEN 0 AND 4", name="ck_partner_clearance_rank"),
    )
    op.create_table(
        "collection",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("alias", sa.String(100), nullable=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("read_roles", sa.Text(), nullable=False),
        sa.Column("write_roles", sa.Text(), nullable=False),
        sa.Column("date_added_hwm", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_collection"),
        sa.UniqueConstraint("alias", name="uq_collection_alias"),
    )
    op.create_table(
        "stix_object",
        sa.Column("pk", BIG_PK, autoincrement=True, nullable=False),
        sa.Column("collection_id", sa.String(36), nullable=False),
        sa.Column("object_id", sa.String(255), nullable=False),
        sa.Column("type", sa.String(250), nullable=False),
        sa.Column("spec_version", sa.String(10), nullable=False),
        sa.Column("version_us", sa.BigInteger(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=True),
        sa.Column("date_added_us", sa.BigInteger(), nullable=False),
        sa.Column("label_id", sa.Integer(), nullable=False),
        sa.Column("originator", sa.String(3), nullable=False),
        sa.Column("has_granular", sa.Boolean(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_stix_object"),
        sa.ForeignKeyConstraint(["collection_id"], ["collection.id"], name="fk_stix_object_collection"),
        sa.ForeignKeyConstraint(["label_id"], ["label.id"], name="fk_stix_object_label"),
        sa.UniqueConstraint(
            "collection_id", "object_id", "version_us", name="uq_stix_object_collection_object_version"
        ),
        sa.UniqueConstraint("collection_id", "date_added_us", name="uq_stix_object_collection_date_added"),
    )
    op.create_index(
        "ix_stix_object_collection_label_date_added",
        "stix_object",
        ["collection_id", "label_id", "date_added_us"],
    )
    op.create_index("ix_stix_object_object_id", "stix_object", ["object_id"])
    op.create_table(
        "taxii_status",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("collection_id", sa.String(36), nullable=False),
        sa.Column("owner_subject", sa.String(255), nullable=False),
        sa.Column("owner_nation", sa.String(3), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("request_timestamp_us", sa.BigInteger(), nullable=False),
        sa.Column("total_count", sa.Integer(), nullable=False),
        sa.Column("success_count", sa.Integer(), nullable=False),
        sa.Column("failure_count", sa.Integer(), nullable=False),
        sa.Column("pending_count", sa.Integer(), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_taxii_status"),
        sa.ForeignKeyConstraint(["collection_id"], ["collection.id"], name="fk_taxii_status_collection"),
    )
    op.create_index("ix_taxii_status_owner", "taxii_status", ["owner_subject", "owner_nation"])

    label = sa.table(
        "label",
        sa.column("id", sa.Integer),
        sa.column("key", sa.String),
        sa.column("rank", sa.Integer),
        sa.column("releasable_to", sa.Text),
        sa.column("caveats", sa.Text),
    )
    op.bulk_insert(label, [{"id": 1, "key": "UNRESTRICTED", "rank": 0, "releasable_to": "", "caveats": ""}])
    collection = sa.table(
        "collection",
        sa.column("id", sa.String),
        sa.column("alias", sa.String),
        sa.column("title", sa.String),
        sa.column("description", sa.Text),
        sa.column("read_roles", sa.Text),
        sa.column("write_roles", sa.Text),
        sa.column("date_added_hwm", sa.BigInteger),
    )
    op.bulk_insert(
        collection,
        [
            {
                "id": "365fed99-08fa-fdcd-a1b3-fb247eb41d01",
                "alias": "default",
                "title": "Default collection",
                "description": "Partners may read; analysts may write.",
                "read_roles": "partner,analyst",
                "write_roles": "analyst",
                "date_added_hwm": 0,
            }
        ],
    )


def downgrade() -> None:
    op.drop_index("ix_taxii_status_owner", table_name="taxii_status")
    op.drop_table("taxii_status")
    op.drop_index("ix_stix_object_object_id", table_name="stix_object")
    op.drop_index("ix_stix_object_collection_label_date_added", table_name="stix_object")
    op.drop_table("stix_object")
    op.drop_table("collection")
    op.drop_table("partner")
    op.drop_table("label")
