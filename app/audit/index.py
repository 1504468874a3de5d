"""The recipients index: which nation received which object version, derived from the served lists.

A record's transaction stores its served list as one row (``audit_served``), before the
response's first byte. This module turns those rows into the index an auditor's question
"who received object X" reads (``audit_object`` and ``audit_dissemination``), after the
response and many records at a time, and advances ``audit_index_head`` in the same transaction.

- :class:`RecipientsIndexer` does it in a background thread of the server, woken after each
  record that served something (and every few seconds, for records other processes wrote).
- Readers that use the index call :func:`index_pending` first, so their answers include every
  record written so far, whether or not the thread has caught up (or runs at all).

The index is never the only copy of a fact: verification checks it against the served lists,
whose digests the chain covers.
"""

from __future__ import annotations

import threading

import orjson
from fastapi import FastAPI
from sqlalchemy import Connection, Engine, text

from app.http.background import BackgroundWorker, run_with_app

# One transaction indexes records until it holds this many served versions: large enough to
# share a commit and neighbouring index pages among pages of a pull, small enough that the
# SQLite write lock (which record writers wait for) is held for milliseconds.
BATCH_VERSIONS = 8000
BATCH_RECORDS = 64
IDLE_WAKE_S = 2.0  # for records other processes wrote, which send this thread no notice
# The thread waits for the served lists' notices to pause (the end of a pull: pages follow each other
# within milliseconds) before it indexes, and never longer than the lag. Indexed page by page during
# a pull, each page's rows cost a transaction that held SQLite's write lock while the next page's
# audit record waited for it, and a core the pull wanted: about 4 ms of each 1,000-object page. In
# bulk after the pull, the same 10,000 rows took 17 ms in all. Readers never wait for the thread
# (index_pending, and recall reads the served lists not yet indexed), so the lag costs no freshness.
SETTLE_S = 0.1
MAX_LAG_S = 2.0

_LOCK_HEAD = "UPDATE audit_index_head SET seq = seq WHERE id = 1 RETURNING seq"
_PENDING = (
    "SELECT s.record_seq, r.recipient_nation, s.pairs FROM audit_served s "
    "JOIN audit_record r ON r.seq = s.record_seq WHERE s.record_seq > :after "
    "ORDER BY s.record_seq LIMIT :limit"
)
_ADVANCE = "UPDATE audit_index_head SET seq = :seq WHERE id = 1"
# Read first: an idle wake or an auditor's query must not take the write lock (the database's, on
# SQLite) or write a new head row version when there is nothing to index.
_ANY_PENDING = (
    "SELECT EXISTS (SELECT 1 FROM audit_served s WHERE s.record_seq > h.seq) FROM audit_index_head h WHERE h.id = 1"
)
_MISSING_HEAD = "the audit index head row is missing"

# The rows travel as one JSON text of [id, version, nation, record seq] and the database unpacks
# them: no per-row statement or parameter binding. Ids never indexed before get a key, in order
# of first receipt, so a page's ids get neighbouring keys and later lookups of them share index
# pages. Known ids are found by a per-row probe of the unique index (a scalar subquery, so that
# the planner cannot turn it into a scan of the whole table). No ON CONFLICT: indexers hold the
# index head's row lock, so no other transaction interns an id between the probe and the insert.
_PG_INDEX = (
    "WITH rows AS (SELECT e.p ->> 0 AS o, e.p ->> 1 AS v, e.p ->> 2 AS nation, (e.p ->> 3)::bigint AS seq, e.n "
    "FROM json_array_elements(%(rows)s::json) WITH ORDINALITY AS e(p, n)), "
    "known AS (SELECT t.*, (SELECT a.key FROM audit_object a WHERE a.object_id = t.o) AS key FROM rows t), "
    "fresh AS (INSERT INTO audit_object (object_id) SELECT o FROM known WHERE key IS NULL "
    "GROUP BY o ORDER BY MIN(n) RETURNING key, object_id) "
    "INSERT INTO audit_dissemination (object_key, version, nation, record_seq) "
    "SELECT COALESCE(known.key, fresh.key), known.v, known.nation, known.seq "
    "FROM known LEFT JOIN fresh ON known.key IS NULL AND fresh.object_id = known.o ORDER BY 1, 2, 3, 4"
)
_SQLITE_ROWS = (
    "(SELECT json_extract(value, '$[0]') AS o, json_extract(value, '$[1]') AS v, "
    "json_extract(value, '$[2]') AS nation, json_extract(value, '$[3]') AS seq, key AS n "
    "FROM json_each(:rows)) AS t"
)
_SQLITE_INTERN = (
    f"INSERT INTO audit_object (object_id) SELECT t.o FROM {_SQLITE_ROWS} "
    "WHERE NOT EXISTS (SELECT 1 FROM audit_object a WHERE a.object_id = t.o) "
    "GROUP BY t.o ORDER BY MIN(t.n) ON CONFLICT (object_id) DO NOTHING"
)
_SQLITE_INDEX = (
    "INSERT INTO audit_dissemination (object_key, version, nation, record_seq) "
    f"SELECT a.key, t.v, t.nation, t.seq FROM {_SQLITE_ROWS} JOIN audit_object a ON a.object_id = t.o "
    "ORDER BY a.key, t.v, t.nation, t.seq"
)


def _index_rows(connection: Connection, rows: list[list[str | int]]) -> None:
    """Intern the ids of ``rows`` ([id, version, nation, seq]) and insert their dissemination rows."""
    params = {"rows": orjson.dumps(rows).decode()}
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(_PG_INDEX, params)
        return
    connection.execute(text(_SQLITE_INTERN), params)
    connection.execute(text(_SQLITE_INDEX), params)


def index_batch(engine: Engine) -> int:
    """Index the next batch of served lists in one transaction; returns how many records it indexed."""
    with engine.connect() as connection:
        pending = connection.execute(text(_ANY_PENDING)).first()
    if pending is None:
        raise RuntimeError(_MISSING_HEAD)
    if not pending[0]:
        return 0
    with engine.begin() as connection:
        indexed = connection.execute(text(_LOCK_HEAD)).scalar()
        if indexed is None:
            raise RuntimeError(_MISSING_HEAD)
        rows: list[list[str | int]]
        rows, last, records = [], indexed, 0
        for seq, nation, pairs in connection.execute(text(_PENDING), {"after": indexed, "limit": BATCH_RECORDS}):
            rows.extend([object_id, version, nation, seq] for object_id, version in orjson.loads(pairs))
            last, records = seq, records + 1
            if len(rows) >= BATCH_VERSIONS:
                break
        if records:
            _index_rows(connection, rows)
            connection.execute(text(_ADVANCE), {"seq": last})
        return records


def index_pending(engine: Engine) -> int:
    """Index every served list written so far; returns how many records it indexed."""
    total = 0
    while done := index_batch(engine):
        total += done
    return total


class RecipientsIndexer(BackgroundWorker):
    """A daemon thread that indexes served lists soon after their records are written."""

    def __init__(self, engine: Engine) -> None:
        super().__init__("tearline-audit-index", self._index_all, IDLE_WAKE_S, settle_s=SETTLE_S, max_lag_s=MAX_LAG_S)
        self.engine = engine

    def _index_all(self, stop: threading.Event) -> None:
        while not stop.is_set() and index_batch(self.engine):
            pass


def install_indexer(app: FastAPI) -> None:
    """Run a :class:`RecipientsIndexer` on the app's audit engine for the app's lifetime."""
    run_with_app(app, "audit_indexer", lambda application: RecipientsIndexer(application.state.audit_engine))
