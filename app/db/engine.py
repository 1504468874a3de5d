"""Database engine and sessions for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel import Session, create_engine

if TYPE_CHECKING:
    import sqlite3

    import psycopg

SQLITE_BUSY_TIMEOUT_S = 30
PG_CONNECT_TIMEOUT_S = 5
PG_RECYCLE_S = 1800


def make_engine(
    database_url: str, *, pool_size: int = 10, max_overflow: int = 10, sqlite_cache_mib: int = 64
) -> Engine:
    """Create the engine; SQLite gets WAL mode, foreign keys, a busy timeout and a page cache of
    ``sqlite_cache_mib`` per connection.

    The pool sizes apply to PostgreSQL; SQLite keeps SQLAlchemy's own pool.
    """
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        # A bounded connect: an unreachable host must fail /readyz and requests with a 503, not hang them.
        # No pre-ping: it cost a round trip on every checkout (9% of a loaded server's time on PostgreSQL).
        # A connection found dead answers its request 503 and invalidates the whole pool (SQLAlchemy's
        # default on a disconnect), so after a database restart the next requests reconnect; the
        # recycle bounds how long an idle connection a network device may have dropped is kept.
        engine = create_engine(
            url,
            pool_recycle=PG_RECYCLE_S,
            pool_size=pool_size,
            max_overflow=max_overflow,
            connect_args={"connect_timeout": PG_CONNECT_TIMEOUT_S},
        )

        @event.listens_for(engine, "connect")
        def _custom_plans(dbapi_connection: psycopg.Connection[Any], _record: ConnectionPoolEntry) -> None:
            # psycopg prepares a statement run five times, and PostgreSQL then settled on a generic
            # plan for the page query, blind to the cursor and the limit: 23 ms a page instead of
            # 16 ms with a plan made for the values. Planning each time costs far less than that.
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SET plan_cache_mode = force_custom_plan")
                # The page query's estimated cost (its visibility and reference-closure subqueries)
                # passes jit_above_cost, and PostgreSQL then compiled it on every execution: 60 of the
                # 73 ms of a 1,000-object page at 10,000 objects went to JIT, 13 ms to the query.
                cursor.execute("SET jit = off")
            dbapi_connection.commit()

        return engine

    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA cache_size=-{int(sqlite_cache_mib) * 1024}")  # negative: KiB, not pages
        cursor.close()

    return engine


def dialect_insert(session: Session) -> Callable[..., Any]:
    """The ``insert`` of the session's database dialect, the one with ``on_conflict_do_*`` (PostgreSQL
    and SQLite spell upserts alike, but each dialect has its own construct)."""
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
