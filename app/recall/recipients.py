"""Who received which versions of some objects, and through which collection: the recall's recipients.

Read in the storing transaction from the audit's dissemination records: the recipients index
for the records it already covers, and the served lists of the records it has not indexed yet
(the index is brought up to date by a background thread; a writer holding the collection's lock
cannot wait for it). TAXII pulls, live streams and push feeds all leave served lists, so all count.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import orjson
from sqlalchemy import bindparam, text
from sqlmodel import Session

from app.db.timestamps import parse_us

# One statement, so one snapshot: read as two, an index batch committed between them (PostgreSQL)
# would be in neither the index nor the un-indexed served lists.
_RECEIPTS = text(
    "SELECT a.object_id, d.version, d.nation, r.collection_id, NULL AS pairs FROM audit_object a "
    "JOIN audit_dissemination d ON d.object_key = a.key JOIN audit_record r ON r.seq = d.record_seq "
    "WHERE a.object_id IN :ids "
    "UNION ALL "
    "SELECT NULL, NULL, r.recipient_nation, r.collection_id, s.pairs FROM audit_served s "
    "JOIN audit_record r ON r.seq = s.record_seq "
    "WHERE s.record_seq > (SELECT h.seq FROM audit_index_head h WHERE h.id = 1)"
).bindparams(bindparam("ids", expanding=True))


@dataclass(frozen=True)
class Receipt:
    """One version of one object that left for one nation, through one collection."""

    object_id: str
    version_us: int
    nation: str
    collection_id: str | None


def receipts(session: Session, object_ids: Collection[str], home_nation: str) -> set[Receipt]:
    """Every (object, version, nation, collection) that left for a nation other than the home nation."""
    if not object_ids:
        return set()
    wanted = set(object_ids)
    found: set[Receipt] = set()
    for object_id, version, nation, collection_id, pairs in session.connection().execute(
        _RECEIPTS, {"ids": sorted(wanted)}
    ):
        if nation == home_nation:
            continue
        if pairs is None:
            found.add(Receipt(object_id, parse_us(version), nation, collection_id))
            continue
        found.update(
            Receipt(served_id, parse_us(served_version), nation, collection_id)
            for served_id, served_version in orjson.loads(pairs)
            if served_id in wanted
        )
    return found
