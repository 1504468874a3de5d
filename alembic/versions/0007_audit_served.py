"""Audit: each record's served list as one row; the recipients index is built from it afterwards.

Before, a record's transaction also wrote one ``audit_dissemination`` row per served version,
each at a random place of an index keyed by object, so the cost of serving a page grew with the
log. Now the record's transaction writes ``audit_served`` (one row, the canonical JSON whose
digest the chain already covers), and ``audit_object``/``audit_dissemination`` become an index
derived from it, with ``audit_index_head`` marking how far it goes.

Upgrade: every existing record's rows become its served list, byte for byte what its digest
hashed, and the index is marked complete. Downgrade: served lists not yet indexed are indexed
first, so no dissemination fact is lost.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from __future__ import annotations

import orjson
import sqlalchemy as sa

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BIG_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
BATCH = 500  # records per step of the data copy


def upgrade() -> None:
    op.create_table(
        "audit_served",
        sa.Column("record_seq", BIG_PK, nullable=False, autoincrement=False),
        sa.Column("pairs", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("record_seq", name="pk_audit_served"),
    )
    op.create_table(
        "audit_index_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_index_head"),
    )
    connection = op.get_bind()
    _copy_served_lists(connection)
    head = connection.execute(sa.text("SELECT seq FROM audit_head WHERE id = 1")).scalar() or 0
    connection.execute(sa.text("INSERT INTO audit_index_head (id, seq) VALUES (1, :seq)"), {"seq": head})


def _copy_served_lists(connection) -> None:
    """One served row per record that has dissemination rows: the sorted pairs, as the digest hashed them."""
    after = 0
    while True:
        seqs = [
            row[0]
            for row in connection.execute(
                sa.text(
                    "SELECT DISTINCT record_seq FROM audit_dissemination WHERE record_seq > :after "
                    "ORDER BY record_seq LIMIT :limit"
                ),
                {"after": after, "limit": BATCH},
            )
        ]
        if not seqs:
            return
        served: dict[int, list[tuple[str, str]]] = {seq: [] for seq in seqs}
        for seq, object_id, version in connection.execute(
            sa.text(
                "SELECT d.record_seq, o.object_id, d.version FROM audit_dissemination d "
                "JOIN audit_object o ON o.key = d.object_key WHERE d.record_seq >= :lo AND d.record_seq <= :hi"
            ),
            {"lo": seqs[0], "hi": seqs[-1]},
        ):
            served[seq].append((object_id, version))
        connection.execute(
            sa.text("INSERT INTO audit_served (record_seq, pairs) VALUES (:seq, :pairs)"),
            [{"seq": seq, "pairs": orjson.dumps(sorted(pairs)).decode()} for seq, pairs in served.items()],
        )
        after = seqs[-1]


def downgrade() -> None:
    connection = op.get_bind()
    _index_the_rest(connection)
    op.drop_table("audit_index_head")
    op.drop_table("audit_served")


def _index_the_rest(connection) -> None:
    """Dissemination rows for the served lists the index has not reached yet."""
    indexed = connection.execute(sa.text("SELECT seq FROM audit_index_head WHERE id = 1")).scalar() or 0
    rows = connection.execute(
        sa.text(
            "SELECT s.record_seq, r.recipient_nation, s.pairs FROM audit_served s "
            "JOIN audit_record r ON r.seq = s.record_seq WHERE s.record_seq > :w ORDER BY s.record_seq"
        ),
        {"w": indexed},
    ).all()
    for seq, nation, text in rows:
        pairs = orjson.loads(text)
        for object_id in dict.fromkeys(object_id for object_id, _ in pairs):
            connection.execute(
                sa.text(
                    "INSERT INTO audit_object (object_id) SELECT CAST(:o AS VARCHAR(255)) WHERE NOT EXISTS "
                    "(SELECT 1 FROM audit_object WHERE object_id = CAST(:o AS VARCHAR(255)))"
                ),
                {"o": object_id},
            )
        connection.execute(
            sa.text(
                "INSERT INTO audit_dissemination (object_key, version, nation, record_seq) "
                "SELECT key, :v, :n, :s FROM audit_object WHERE object_id = :o"
            ),
            [{"o": object_id, "v": version, "n": nation, "s": seq} for object_id, version in pairs],
        )
