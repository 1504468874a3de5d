"""Reading the audit log: filtered records with keyset paging, recipients of an object, exports.

Nothing here writes a record: the API offers no other path. The one write is to the derived
recipients index: a question about an object first indexes the served lists written since the
index last moved (``app.audit.index.index_pending``), so the answer includes every record.

Only records the chain covers are read: a row above the HMAC'd head (written straight into the
database, past the chain) is absent here, whatever the filters; verification reports it.
Filter values are checked by :func:`record_filter` before any query runs (:class:`FilterError`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Engine, exists, func, select

from app.audit.index import index_pending
from app.audit.models import AuditDissemination, AuditHead, AuditObject, AuditRecord, AuditServed

R = AuditRecord.__table__.c
D = AuditDissemination.__table__.c
OBJ = AuditObject.__table__.c
S = AuditServed.__table__.c
SERVED = AuditDissemination.__table__.join(AuditObject.__table__, OBJ.key == D.object_key)
H = AuditHead.__table__.c
# The records the chain covers: none above the head, whose HMAC no one without the key can forge.
COVERED = R.seq <= select(H.seq).where(H.id == 1).scalar_subquery()
MAX_SEQ = 2**63 - 1  # the largest BIGINT (PostgreSQL) and INTEGER (SQLite): no seq lies beyond it
EXPORT_BATCH = 1000
COLUMNS = (
    "seq",
    "at",
    "request_id",
    "subject",
    "nation",
    "roles",
    "client",
    "method",
    "route",
    "collection_id",
    "decision",
    "reason",
    "status",
    "recipient_nation",
    "served_count",
    "served_digest",
    "prev_hash",
    "hash",
)
CSV_COLUMNS = (*COLUMNS, "served")
# A spreadsheet runs a cell that starts with one of these as a formula.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class FilterError(ValueError):
    """A filter value no record can match and no query should carry: refused input (400, exit 2)."""


def in_utc(moment: datetime, name: str) -> datetime:
    """``moment`` in UTC (naive means UTC); FilterError when its offset takes it outside years 1-9999."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise FilterError(f"{name} is out of range: in UTC it falls outside the years 1 to 9999.") from None


def time_text(moment: datetime) -> str:
    """A datetime as the fixed-width UTC text records store (naive means UTC)."""
    # isoformat, not strftime: strftime writes year 999 as "999", which sorts after "2025" as text.
    return in_utc(moment, "time").replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


@dataclass(frozen=True)
class RecordFilter:
    """Filters an auditor may combine; all optional, all ANDed."""

    since: datetime | None = None
    until: datetime | None = None
    subject: str | None = None
    nation: str | None = None
    decision: str | None = None
    route: str | None = None  # prefix of the recorded path
    collection_id: str | None = None
    object_id: str | None = None

    def where(self) -> list[ColumnElement[bool]]:
        """The SQL conditions of the filters that are set, and that the chain covers the record."""
        clauses: list[ColumnElement[bool]] = [COVERED]
        if self.since is not None:
            clauses.append(R.at >= time_text(self.since))
        if self.until is not None:
            clauses.append(R.at < time_text(self.until))
        if self.subject is not None:
            clauses.append(R.subject == self.subject)
        if self.nation is not None:
            clauses.append(R.nation == self.nation)
        if self.decision is not None:
            clauses.append(R.decision == self.decision)
        if self.route is not None:
            escaped = self.route.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            clauses.append(R.route.like(f"{escaped}%", escape="\\"))
        if self.collection_id is not None:
            clauses.append(R.collection_id == self.collection_id)
        if self.object_id is not None:
            clauses.append(exists().select_from(SERVED).where(D.record_seq == R.seq, OBJ.object_id == self.object_id))
        return clauses


def record_filter(
    since: datetime | None = None,
    until: datetime | None = None,
    subject: str | None = None,
    nation: str | None = None,
    decision: str | None = None,
    route: str | None = None,
    collection_id: str | None = None,
    object_id: str | None = None,
) -> RecordFilter:
    """A checked filter: times in UTC and ordered, no NUL in text; raises FilterError naming the value."""
    texts = {"subject": subject, "route": route, "collection_id": collection_id, "object_id": object_id}
    for name, value in texts.items():
        # Records store a NUL as the text \x00 (app.audit.service.clean), and PostgreSQL refuses it in a query.
        if value is not None and "\x00" in value:
            raise FilterError(f"{name} must not contain a NUL character.")
    since = None if since is None else in_utc(since, "since")
    until = None if until is None else in_utc(until, "until")
    if since and until and since >= until:
        raise FilterError("since must be before until.")
    return RecordFilter(since, until, subject, nation, decision, route, collection_id, object_id)


def _index_for(engine: Engine, flt: RecordFilter) -> None:
    if flt.object_id is not None:
        index_pending(engine)


def records_page(
    engine: Engine, flt: RecordFilter, *, after: int | None, limit: int, descending: bool = False
) -> tuple[list[dict[str, Any]], int | None]:
    """Records in sequence order (newest first if ``descending``) past the cursor ``after``; the page and the next cursor."""
    _index_for(engine, flt)
    return _records_page(engine, flt, after=after, limit=limit, descending=descending)


def _records_page(
    engine: Engine, flt: RecordFilter, *, after: int | None, limit: int, descending: bool = False
) -> tuple[list[dict[str, Any]], int | None]:
    query = select(*[R[c] for c in COLUMNS]).where(*flt.where())
    if after is not None:
        query = query.where(R.seq < after if descending else R.seq > after)
    order = R.seq.desc() if descending else R.seq
    with engine.connect() as connection:
        rows = [dict(r._mapping) for r in connection.execute(query.order_by(order).limit(limit + 1))]
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1]["seq"] if more else None)


def record_with_served(engine: Engine, seq: int) -> dict[str, Any] | None:
    """One record and the exact versions it served."""
    with engine.connect() as connection:
        row = connection.execute(select(*[R[c] for c in COLUMNS]).where(R.seq == seq, COVERED)).first()
        if row is None:
            return None
        served = connection.execute(select(S.pairs).where(S.record_seq == seq)).scalar()
    pairs = orjson.loads(served) if served else []
    return {**dict(row._mapping), "served": [{"id": o, "version": v} for o, v in pairs]}


def recipients(engine: Engine, object_id: str) -> list[dict[str, Any]]:
    """Every (version, nation) that received ``object_id``: first and last time, how many responses."""
    index_pending(engine)
    key = select(OBJ.key).where(OBJ.object_id == object_id).scalar_subquery()
    query = (
        select(D.version, D.nation, func.min(R.at), func.max(R.at), func.count())
        .select_from(AuditDissemination.__table__.join(AuditRecord.__table__, R.seq == D.record_seq))
        .where(D.object_key == key, COVERED)
        .group_by(D.version, D.nation)
        .order_by(D.version, D.nation)
    )
    with engine.connect() as connection:
        return [
            {"version": v, "nation": n, "first_received": first, "last_received": last, "times": count}
            for v, n, first, last, count in connection.execute(query)
        ]


def iter_records(engine: Engine, flt: RecordFilter) -> Iterator[dict[str, Any]]:
    """Every matching record with its served versions, in batches (for exports)."""
    _index_for(engine, flt)  # once: records written during the export are not part of it anyway
    after = None
    while True:
        rows, _ = _records_page(engine, flt, after=after, limit=EXPORT_BATCH)
        if not rows:
            return
        with engine.connect() as connection:
            served = dict(
                connection.execute(
                    select(S.record_seq, S.pairs).where(S.record_seq >= rows[0]["seq"], S.record_seq <= rows[-1]["seq"])
                ).all()
            )
        for row in rows:
            pairs = served.get(row["seq"])
            yield {**row, "served": orjson.loads(pairs) if pairs else []}
        after = rows[-1]["seq"]
        if len(rows) < EXPORT_BATCH:
            return


def count_records(engine: Engine, flt: RecordFilter) -> int:
    """How many records match (for progress bars)."""
    _index_for(engine, flt)
    with engine.connect() as connection:
        return int(
            connection.execute(select(func.count()).select_from(AuditRecord.__table__).where(*flt.where())).scalar_one()
        )


def ndjson_lines(records: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    """One JSON document per line."""
    for record in records:
        yield orjson.dumps(record) + b"\n"


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def csv_lines(records: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    """CSV with a header; cells that a spreadsheet would run as formulas are quoted with a leading '."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for record in records:
        served = " ".join(f"{o}@{v}" for o, v in record["served"])
        writer.writerow([_cell(record[c]) for c in COLUMNS] + [_cell(served)])
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()
