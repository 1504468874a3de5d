"""Reference closure and withholding sets: what a version names, and what withholds it.

- ``object_reference``: each reference entry of a stored version, once per required group it
  belongs to (``group_no``; -1 for none), indexed by the id named; ``stix_object.has_refs``.
- ``object_withhold`` gains ``set_no``: a version is withheld when every label of one set is
  hidden (a pair of granular markings may together remove what STIX requires). Existing rows
  become sets of one label each, as they were.

Upgrade also fills both for the versions already stored, with the code that fills them at
ingest (``app.items.side_tables``, ``app.items.labeling.withholding_sets``), in batches.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

import orjson
import sqlalchemy as sa

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

BIG_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
BATCH = 1000


def upgrade() -> None:
    with op.batch_alter_table("stix_object") as batch:
        batch.add_column(sa.Column("has_refs", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "object_reference",
        sa.Column("object_pk", BIG_PK, nullable=False),
        sa.Column("prop", sa.String(250), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("group_no", sa.Integer(), nullable=False),
        sa.Column("ref_id", sa.String(288), nullable=False),
        sa.PrimaryKeyConstraint("object_pk", "prop", "position", "group_no", name="pk_object_reference"),
        sa.ForeignKeyConstraint(
            ["object_pk"], ["stix_object.pk"], name="fk_object_reference_object", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_object_reference_ref", "object_reference", ["ref_id"])
    with op.batch_alter_table("object_withhold") as batch:
        batch.add_column(sa.Column("set_no", sa.Integer(), nullable=False, server_default="0"))
        batch.drop_constraint("pk_object_withhold", type_="primary")
        batch.create_primary_key("pk_object_withhold", ["object_pk", "set_no", "label_id"])
    connection = op.get_bind()
    connection.execute(sa.text("UPDATE object_withhold SET set_no = label_id"))  # one set per label, as before
    with op.batch_alter_table("object_withhold") as batch:
        batch.alter_column("set_no", server_default=None, existing_type=sa.Integer(), existing_nullable=False)
    _fill(connection)


def _fill(connection: sa.Connection) -> None:
    """References and withholding sets of the versions already stored, a batch at a time."""
    from app.items.labeling import withholding_sets
    from app.items.side_tables import object_references

    after = 0
    while True:
        rows = connection.execute(
            sa.text("SELECT pk, body, granular FROM stix_object WHERE pk > :after ORDER BY pk LIMIT :batch"),
            {"after": after, "batch": BATCH},
        ).all()
        if not rows:
            return
        after = rows[-1][0]
        references, referencing, withhold, withholding = [], [], [], []
        for pk, body, granular in rows:
            obj = orjson.loads(body)
            entries = object_references(obj)
            if entries:
                referencing.append(pk)
                references += [
                    {"object_pk": pk, "prop": e.prop, "position": e.position, "group_no": e.group, "ref_id": e.ref_id}
                    for e in entries
                ]
            if granular:
                sets = withholding_sets(obj, {ref: int(label) for ref, label in orjson.loads(granular).items()})
                withholding.append(pk)
                withhold += [
                    {"object_pk": pk, "set_no": set_no, "label_id": label}
                    for set_no, labels in enumerate(sets)
                    for label in sorted(labels)
                ]
        if references:
            connection.execute(
                sa.text(
                    "INSERT INTO object_reference (object_pk, prop, position, group_no, ref_id) "
                    "VALUES (:object_pk, :prop, :position, :group_no, :ref_id)"
                ),
                references,
            )
            connection.execute(
                sa.text("UPDATE stix_object SET has_refs = :yes WHERE pk = :pk"),
                [{"yes": True, "pk": pk} for pk in referencing],
            )
        if withholding:
            connection.execute(
                sa.text("DELETE FROM object_withhold WHERE object_pk = :pk"), [{"pk": pk} for pk in withholding]
            )
            if withhold:
                connection.execute(
                    sa.text(
                        "INSERT INTO object_withhold (object_pk, set_no, label_id) "
                        "VALUES (:object_pk, :set_no, :label_id)"
                    ),
                    withhold,
                )


def downgrade() -> None:
    connection = op.get_bind()
    # Back to one row per label: a label in any set withholds alone (stricter, never a leak).
    keep = connection.execute(sa.text("SELECT DISTINCT object_pk, label_id FROM object_withhold")).all()
    connection.execute(sa.text("DELETE FROM object_withhold"))
    with op.batch_alter_table("object_withhold") as batch:
        batch.drop_constraint("pk_object_withhold", type_="primary")
        batch.drop_column("set_no")
        batch.create_primary_key("pk_object_withhold", ["object_pk", "label_id"])
    if keep:
        connection.execute(
            sa.text("INSERT INTO object_withhold (object_pk, label_id) VALUES (:object_pk, :label_id)"),
            [{"object_pk": pk, "label_id": label} for pk, label in keep],
        )
    op.drop_index("ix_object_reference_ref", table_name="object_reference")
    op.drop_table("object_reference")
    with op.batch_alter_table("stix_object") as batch:
        batch.drop_column("has_refs")
