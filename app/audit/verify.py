"""Verifying the audit chain: every record's hash, links, served list, index rows, checkpoints and head.

Detects an edited field (hash mismatch), a deleted record (a gap in ``seq`` or a
broken link), reordered records (hash covers ``seq``), a truncated tail (the HMAC'd
head and the checkpoints name records that are gone) and a forged checkpoint or
head (HMAC mismatch). Reports the first broken record.

A range is verified from the nearest checkpoint at or before it (or from the
genesis), so a range check trusts nothing it did not recompute or authenticate.
Records archived away below a checkpoint are fine: the chain then starts at a
checkpoint's successor and is anchored on that checkpoint's HMAC.

A record's served list must hash to its ``served_digest``. The recipients index is derived
data, checked against the served lists: up to the index head it must hold exactly each
record's versions and nation, and beyond it nothing.

Nothing may lie beyond the head: a record, served list or index row with a higher seq was not
written by the chain (whose head would have moved, with an HMAC only the key can make), so a
verification that reaches the head reports it. Together with the walk, which requires every
seq from its anchor (a checkpoint, or the genesis) to the head, every row is accounted for.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, Row, func, select

from app.audit.models import (
    GENESIS_HASH,
    AuditCheckpoint,
    AuditDissemination,
    AuditHead,
    AuditIndexHead,
    AuditObject,
    AuditRecord,
    AuditServed,
    AuditWritten,
)
from app.audit.service import AuditSigner, record_hash, served_digest

BATCH = 2000
R = AuditRecord.__table__.c
D = AuditDissemination.__table__.c
C = AuditCheckpoint.__table__.c
OBJ = AuditObject.__table__.c
S = AuditServed.__table__.c
W = AuditWritten.__table__.c


@dataclass
class VerifyReport:
    """Outcome of a verification; ``broken_seq``/``problem`` name the first fault found."""

    ok: bool
    checked: int
    first_seq: int | None
    last_seq: int | None
    head_seq: int
    checkpoints_checked: int
    broken_seq: int | None = None
    problem: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The report as a JSON object."""
        return asdict(self)


class _Broken(Exception):
    def __init__(self, seq: int | None, problem: str):
        super().__init__(problem)
        self.seq, self.problem = seq, problem


def _record_fields(row: Row[*tuple[Any, ...]]) -> dict[str, Any]:
    return dict(row._mapping)


def _check_served(
    row: Row[*tuple[Any, ...]], served_json: str | None, index_rows: list[tuple[str, str, str]], indexed: bool
) -> None:
    """The record's served list against its digest, and its index rows against the list."""
    seq = int(row.seq)
    if served_json is None:
        pairs = []
        if row.served_count:
            raise _Broken(seq, "the record's served list is missing")
    else:
        if served_digest(served_json.encode()) != row.served_digest:
            raise _Broken(seq, "the served list does not match the record's served digest")
        pairs = orjson.loads(served_json)
        if len(pairs) != row.served_count:
            raise _Broken(seq, "the served list does not match the record's served count")
    if not indexed:
        if index_rows:
            raise _Broken(seq, "recipients index rows name a record the index has not reached")
        return
    if sorted((o, v) for o, v, _ in index_rows) != [tuple(pair) for pair in pairs] or any(
        n != row.recipient_nation for _, _, n in index_rows
    ):
        raise _Broken(seq, "the recipients index does not match the record's served list")


def _check_written(row: Row[*tuple[Any, ...]], written_json: str | None) -> None:
    """A write's list of stored or deleted versions against its digest (reads and older records have none)."""
    seq = int(row.seq)
    if row.written_count is None:
        if written_json is not None:
            raise _Broken(seq, "a written list names a record that is not a write")
        return
    if written_json is None:
        if row.written_count:
            raise _Broken(seq, "the record's written list is missing")
        return
    if served_digest(written_json.encode()) != row.written_digest:
        raise _Broken(seq, "the written list does not match the record's written digest")
    if len(orjson.loads(written_json)) != row.written_count:
        raise _Broken(seq, "the written list does not match the record's written count")


def _check_beyond_head(connection: Connection, head_seq: int) -> None:
    """No record, served list or index row may carry a seq above the head; names the lowest that does."""
    found = []
    for rank, (what, column) in enumerate(
        (
            ("record", R.seq),
            ("served list of record", S.record_seq),
            ("written list of record", W.record_seq),
            ("recipients index row of record", D.record_seq),
        )
    ):
        seq = connection.execute(select(func.min(column)).where(column > head_seq)).scalar()
        if seq is not None:
            found.append((int(seq), rank, what))
    if found:
        seq, _, what = min(found)  # the lowest seq; at a tie, the record itself
        raise _Broken(seq, f"found a {what} {seq} beyond the head (seq {head_seq}): the chain does not cover it")


def _one_snapshot(connection: Connection) -> None:
    """Read everything the verification compares in one snapshot of the database.

    Statement by statement, a recipients indexer committing between the read of the index head and
    the read of a record's index rows made rows appear for records the head had not reached: a
    tampering alarm on an intact log (seen on PostgreSQL under the suite's load). Writers go on; the
    verification sees the log as it was when it began.
    """
    if connection.dialect.name == "postgresql":
        connection.execution_options(isolation_level="REPEATABLE READ")
    else:
        connection.exec_driver_sql("BEGIN")  # pysqlite begins no transaction for reads by itself


def verify_chain(
    engine: Engine,
    signer: AuditSigner,
    start: int | None = None,
    end: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> VerifyReport:
    """Verify records ``start``..``end`` (default: all, up to the head)."""
    with engine.connect() as connection:
        _one_snapshot(connection)
        head = connection.execute(select(AuditHead.__table__).where(AuditHead.__table__.c.id == 1)).first()
        head_seq, head_hash, head_mac = (int(head.seq), head.hash, head.mac) if head else (0, GENESIS_HASH, "")
        first, last = connection.execute(select(func.min(R.seq), func.max(R.seq))).one()
        index_seq = connection.execute(select(AuditIndexHead.__table__.c.seq)).scalar() or 0
        checkpoints = {int(c.seq): c for c in connection.execute(select(C.seq, C.hash, C.mac).order_by(C.seq))}
        report = VerifyReport(
            ok=True, checked=0, first_seq=first, last_seq=last, head_seq=head_seq, checkpoints_checked=0
        )
        to_tail = end is None or end >= head_seq
        stop = head_seq if end is None else min(end, head_seq)
        try:
            if head is None:
                raise _Broken(None, "the audit head row is missing")
            if head_seq > 0 and not signer.valid(head_seq, head_hash, head_mac):
                raise _Broken(head_seq, "the head's HMAC is invalid (head edited or forged)")
            if index_seq > head_seq:
                raise _Broken(index_seq, f"the recipients index claims seq {index_seq}, beyond the head")
            cp: Row[*tuple[Any, ...]] | None
            for seq, cp in checkpoints.items():
                if not signer.valid(seq, cp.hash, cp.mac):
                    raise _Broken(seq, f"checkpoint at seq {seq} has an invalid HMAC (forged or edited)")
                if seq > head_seq:
                    raise _Broken(seq, f"checkpoint at seq {seq} lies beyond the head (seq {head_seq})")
            if first is None or first > head_seq:
                # Nothing up to the head: every record archived below its checkpoint, or removed.
                if head_seq and head_seq not in checkpoints:
                    raise _Broken(1, f"no records up to the head at seq {head_seq}: records were removed")
                _check_beyond_head(connection, head_seq)
                return report
            begin = max(start or first, first)
            # Anchor: the genesis, or the latest checkpoint at or before the range whose successor exists.
            anchors = [s for s in checkpoints if first - 1 <= s < begin]
            if first == 1 and not anchors:
                walk_from, prev_hash = 0, GENESIS_HASH
            elif anchors:
                walk_from = max(anchors)
                prev_hash = checkpoints[walk_from].hash
            else:
                raise _Broken(
                    first,
                    f"the chain starts at seq {first} with no checkpoint at seq {first - 1} "
                    "to anchor it (records before it removed without a checkpoint)",
                )
            total = max(stop - walk_from, 0)
            expected = walk_from + 1
            while expected <= stop:
                rows = connection.execute(
                    select(AuditRecord.__table__).where(R.seq >= expected, R.seq <= stop).order_by(R.seq).limit(BATCH)
                ).all()
                if not rows:
                    raise _Broken(expected, f"records {expected}..{stop} are missing (tail truncated)")
                served = dict(
                    connection.execute(
                        select(S.record_seq, S.pairs).where(S.record_seq >= rows[0].seq, S.record_seq <= rows[-1].seq)
                    ).all()
                )
                written = dict(
                    connection.execute(
                        select(W.record_seq, W.pairs).where(W.record_seq >= rows[0].seq, W.record_seq <= rows[-1].seq)
                    ).all()
                )
                index = defaultdict(list)
                for d in connection.execute(
                    select(D.record_seq, OBJ.object_id, D.version, D.nation)
                    .select_from(AuditDissemination.__table__.join(AuditObject.__table__, OBJ.key == D.object_key))
                    .where(D.record_seq >= rows[0].seq, D.record_seq <= rows[-1].seq)
                ):
                    index[int(d.record_seq)].append((d.object_id, d.version, d.nation))
                for row in rows:
                    seq = int(row.seq)
                    if seq != expected:
                        raise _Broken(expected, f"record {expected} is missing (deleted)")
                    if row.prev_hash != prev_hash:
                        raise _Broken(seq, "prev_hash does not match the previous record (removed or reordered)")
                    fields = _record_fields(row)
                    if record_hash(prev_hash, fields) != row.hash:
                        raise _Broken(seq, "content does not match its hash (edited)")
                    _check_served(row, served.get(seq), index.get(seq, []), seq <= index_seq)
                    _check_written(row, written.get(seq))
                    cp = checkpoints.get(seq)
                    if cp is not None:
                        if cp.hash != row.hash:
                            raise _Broken(seq, f"checkpoint at seq {seq} does not match the record")
                        report.checkpoints_checked += 1
                    if seq >= begin:
                        report.checked += 1
                    prev_hash, expected = row.hash, seq + 1
                if progress:
                    progress(expected - 1 - walk_from, total)
            if to_tail and head_seq and prev_hash != head_hash:
                raise _Broken(head_seq, "the last record does not match the head (tail altered)")
            if to_tail:
                _check_beyond_head(connection, head_seq)
        except _Broken as broken:
            report.ok, report.broken_seq, report.problem = False, broken.seq, broken.problem
        return report
