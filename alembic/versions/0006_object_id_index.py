"""One index on stix_object's object id instead of two.

``uq_stix_object_collection_object_version`` (collection, object id, version) and
``ix_stix_object_object_id`` (object id) both indexed every version by its random object id,
so every insert updated two B-trees at a random place, which is what slows a bulk load as
the store grows. A single unique index led by the object id serves both: lookups by id alone
(ingest, labelling, the analyst API) use its prefix, and (collection, id, version) lookups
and the uniqueness rule use all of it.

On SQLite the table is rebuilt (a constraint declared in CREATE TABLE cannot be dropped in
place), which takes about as long as loading the table's rows once.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_stix_object_object_id", table_name="stix_object")
    with op.batch_alter_table("stix_object") as batch:
        batch.drop_constraint("uq_stix_object_collection_object_version", type_="unique")
        batch.create_unique_constraint(
            "uq_stix_object_object_collection_version", ["object_id", "collection_id", "version_us"]
        )


def downgrade() -> None:
    with op.batch_alter_table("stix_object") as batch:
        batch.drop_constraint("uq_stix_object_object_collection_version", type_="unique")
        batch.create_unique_constraint(
            "uq_stix_object_collection_object_version", ["collection_id", "object_id", "version_us"]
        )
    op.create_index("ix_stix_object_object_id", "stix_object", ["object_id"])
