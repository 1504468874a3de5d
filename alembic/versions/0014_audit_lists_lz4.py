"""Audit served and written lists compressed with lz4 on PostgreSQL.

A 1,000-object page's served list is about 60 KB of JSON, which PostgreSQL compresses before it
stores it (TOAST). Its default, pglz, took 2.4 ms of the record's transaction against 0.9 ms with
lz4, and every read waits for its record before its first byte. The stored text is the same, so the
chain's digests are unchanged. Only values written from now on use lz4; older rows stay as they are.

A server built without lz4 (or older than PostgreSQL 14) keeps pglz: the change is a speed-up, never
a reason for the migration to fail. SQLite stores the text as it is and is not touched.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_LISTS = (("audit_served", "pairs"), ("audit_written", "pairs"))


def _set_compression(method: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    statements = " ".join(
        f"ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION {method};" for table, column in _LISTS
    )
    # The exception block makes the statements one subtransaction: all of them apply, or none.
    op.execute(f"DO $$ BEGIN {statements} EXCEPTION WHEN feature_not_supported OR syntax_error THEN NULL; END $$")


def upgrade() -> None:
    _set_compression("lz4")


def downgrade() -> None:
    _set_compression("pglz")
