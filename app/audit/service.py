"""Writing the audit log: one hash-chained record per request, its served list, checkpoints.

Every write is one short transaction on its own connection:

1. ``UPDATE audit_head SET seq = seq + 1`` takes the write lock first (a row lock on
   PostgreSQL, the database write lock on SQLite), so concurrent writers in any
   thread or process queue up there and never deadlock on a read-then-upgrade;
2. the record is inserted with ``prev_hash`` = the head's hash, and the served
   versions as ONE row (``audit_served``: the canonical JSON of the sorted list);
3. the head gets the new hash and an HMAC of (seq, hash); every N records a
   checkpoint row stores another HMAC of the same pair.

The record hash is ``sha256(prev_hash + canonical JSON of the fields)``, where the
fields include the SHA-256 of that served list's JSON, so the chain covers it too.
Which nations received an object is answered by an index derived from the served
lists after the response (``app.audit.index``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import orjson
from sqlalchemy import Connection, Engine, insert, text, update
from sqlalchemy.exc import SQLAlchemyError

from app.audit.models import AuditCheckpoint, AuditHead, AuditRecord, AuditServed, AuditWritten
from app.config.keyfiles import persistent_key
from app.db.columns import STIX_ID_LENGTH

if TYPE_CHECKING:
    from app.config.settings import Settings

KEY_FILE_NAME = "audit-hmac.key"
DECISIONS = ("allow", "deny")
# Fields a record's hash covers, in this order (the order does not matter to the
# canonical JSON, which sorts keys; the list documents what is covered).
HASHED_FIELDS = (
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
)
# Covered too when a record describes a write (its written_count is not None).
WRITTEN_FIELDS = ("written_count", "written_digest")


class AuditUnavailable(RuntimeError):
    """The audit record could not be written; the request it describes must fail."""

    @classmethod
    def of(cls, error: BaseException) -> AuditUnavailable:
        """``error`` as the failure to write a record: named by its class only, since a database
        error's text may hold SQL and parameters (an AuditUnavailable is returned as it is)."""
        return error if isinstance(error, AuditUnavailable) else cls(f"audit write failed: {error.__class__.__name__}")


@dataclass(frozen=True)
class AuditSigner:
    """The HMAC key for the head and checkpoints, and how often to checkpoint."""

    key: bytes
    checkpoint_interval: int = 1000

    def mac(self, seq: int, chain_hash: str) -> str:
        """HMAC-SHA256 of a chain position, hex."""
        return hmac.new(self.key, f"{seq}:{chain_hash}".encode(), hashlib.sha256).hexdigest()

    def valid(self, seq: int, chain_hash: str, mac: str) -> bool:
        """Whether ``mac`` was made with this key for (seq, hash)."""
        return hmac.compare_digest(self.mac(seq, chain_hash), mac or "")

    @classmethod
    def from_settings(cls, settings: Settings) -> AuditSigner:
        """The configured key (``TEARLINE_AUDIT_KEY``), or in development a key file under data_dir."""
        return cls(key=audit_key(settings), checkpoint_interval=settings.audit_checkpoint_interval)


def audit_key(settings: Settings) -> bytes:
    """The audit HMAC key: configured, else (development only) a persistent file, created once.

    Never a per-process random key: checkpoints must verify after a restart.
    """
    if settings.audit_key:
        return settings.audit_key.encode()
    if settings.is_production:
        raise AuditUnavailable("TEARLINE_AUDIT_KEY is required in production")
    return persistent_key(Path(settings.data_dir) / "keys" / KEY_FILE_NAME, lambda: secrets.token_hex(32).encode())


_SIGNERS: weakref.WeakKeyDictionary[Engine, AuditSigner] = weakref.WeakKeyDictionary()


def bind_signer(engine: Engine, signer: AuditSigner) -> None:
    """Use ``signer`` for records written through ``engine`` (the app and CLI call this once)."""
    _SIGNERS[engine] = signer


def signer_for(engine: Engine) -> AuditSigner:
    """The signer bound to ``engine``, else one from the environment's settings."""
    signer = _SIGNERS.get(engine)
    if signer is None:
        from app.config.settings import Settings

        signer = AuditSigner.from_settings(Settings())
        _SIGNERS[engine] = signer
    return signer


@overload
def clean(value: str, limit: int | None = None) -> str: ...
@overload
def clean(value: None, limit: int | None = None) -> None: ...
@overload
def clean(value: str | None, limit: int | None = None) -> str | None: ...


def clean(value: str | None, limit: int | None = None) -> str | None:
    """Text any database stores as given: NUL and undecodable characters become visible escapes.

    A request path may carry a NUL or lone surrogates; the record must still be written
    (PostgreSQL refuses NUL in text), and must show what was asked.
    """
    if value is None:
        return None
    if not (value.isascii() and "\x00" not in value):  # the common case (ids, versions) needs no escaping
        value = value.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    return value[:limit] if limit else value


def now_text() -> str:
    """Current UTC time as the fixed-width text stored in ``at``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(value: object) -> bytes:
    """Canonical JSON: sorted keys, no whitespace, UTF-8."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def normalise_served(served: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Distinct (id, version) pairs in sorted order: what the served list holds and its digest hashes."""
    return sorted({(clean(str(object_id), STIX_ID_LENGTH), clean(str(version), 64)) for object_id, version in served})


def served_digest(served_json: bytes) -> str:
    """The record's ``served_digest``: SHA-256 of its served list's canonical JSON, as stored."""
    return hashlib.sha256(served_json).hexdigest()


def record_hash(prev_hash: str, fields: Mapping[str, object]) -> str:
    """The chain hash of one record given its predecessor's hash.

    A write's record also covers the versions it changed (``written_count``, ``written_digest``);
    records without them (reads, and every record older than migration 0008) hash as before.
    """
    covered = {name: fields.get(name) for name in HASHED_FIELDS}
    if fields.get("written_count") is not None:
        covered |= {name: fields.get(name) for name in WRITTEN_FIELDS}
    return hashlib.sha256(prev_hash.encode() + canonical(covered)).hexdigest()


def record_event(engine: Engine, **facts: Any) -> int:
    """Append one record in a transaction of its own (returns its sequence number).

    ``facts`` are :func:`append_record`'s keyword arguments; raises AuditUnavailable when the
    record cannot be written.
    """
    try:
        with engine.begin() as connection:
            return append_record(connection, signer_for(engine), **facts)
    except SQLAlchemyError as exc:
        raise AuditUnavailable.of(exc) from exc


def append_record(connection: Connection, signer: AuditSigner, **facts: Any) -> int:
    """Append one record on ``connection``, inside the caller's transaction; returns its sequence number.

    ``facts`` are :func:`record_fields`' keyword arguments. Database errors propagate (the caller's
    transaction fails whole).
    """
    return append_records(connection, signer, [record_fields(**facts)])[0]


def record_fields(
    *,
    request_id: str,
    subject: str,
    nation: str,
    roles: Iterable[str],
    method: str,
    route: str,
    status: int,
    decision: str,
    reason: str | None = None,
    collection_id: str | None = None,
    served: Sequence[tuple[str, str]] = (),
    written: Sequence[tuple[str, str]] | None = None,
    recipient_nation: str | None = None,
    client: str | None = None,
) -> RecordFields:
    """One record's fields, cleaned and digested, ready for :func:`append_records` to chain.

    ``written`` is given for writes only: the object versions the write stored or deleted, committed
    with the record or not at all.
    """
    if decision not in DECISIONS:
        raise ValueError(f"decision must be one of {DECISIONS}, got {decision!r}")
    pairs = normalise_served(served)
    served_json = canonical(pairs)  # orjson writes each tuple as a JSON array
    written_pairs = None if written is None else normalise_served(written)
    written_json = None if written_pairs is None else canonical(written_pairs)
    recipient = recipient_nation or nation
    fields: dict[str, Any] = {
        "at": now_text(),
        "request_id": clean(request_id or "", 64),
        "subject": clean(subject or "", 255),
        "nation": clean(nation or "", 3),
        "roles": clean(",".join(sorted(set(roles or ()))), 255),
        "client": clean(client or "", 255),
        "method": clean(method or "", 16),
        "route": clean(route or "", 1024),
        "collection_id": clean(collection_id, 255) if collection_id else None,
        "decision": decision,
        "reason": clean(reason),
        "status": int(status),
        "recipient_nation": clean(recipient or "", 3),
        "served_count": len(pairs),
        "served_digest": served_digest(served_json),
        "written_count": None if written_pairs is None else len(written_pairs),
        "written_digest": None if written_json is None else served_digest(written_json),
    }
    return RecordFields(
        fields,
        served_json.decode() if pairs else None,
        written_json.decode() if written_pairs and written_json is not None else None,
    )


@dataclass(frozen=True)
class RecordFields:
    """A record before it is chained: its hashed fields and its served and written lists as stored."""

    fields: dict[str, Any]
    served_json: str | None
    written_json: str | None


def append_records(connection: Connection, signer: AuditSigner, records: Sequence[RecordFields]) -> list[int]:
    """Chain ``records`` in order after the head, inside the caller's transaction; returns their sequence numbers.

    The head lock is taken once for all of them, and each table gets one statement: a batch costs
    about what one record does, which is what lets concurrent requests share a transaction.
    """
    if not records:
        return []
    head = AuditHead.__table__
    # Write lock first: the increment serialises every writer on the head row.
    row = connection.execute(
        update(head).where(head.c.id == 1).values(seq=head.c.seq + len(records)).returning(head.c.seq, head.c.hash)
    ).first()
    if row is None:
        raise AuditUnavailable("the audit head row is missing")
    last_seq, chain_hash = int(row[0]), row[1]
    seqs = list(range(last_seq - len(records) + 1, last_seq + 1))
    record_rows, served_rows, written_rows, checkpoints = [], [], [], []
    for seq, record in zip(seqs, records, strict=True):
        fields = record.fields | {"seq": seq}
        prev_hash, chain_hash = chain_hash, record_hash(chain_hash, fields)
        record_rows.append(fields | {"prev_hash": prev_hash, "hash": chain_hash})
        if record.served_json is not None:
            # One row, appended: the recipients index is built from it after the response.
            served_rows.append({"record_seq": seq, "pairs": record.served_json})
        if record.written_json is not None:
            written_rows.append({"record_seq": seq, "pairs": record.written_json})
        if signer.checkpoint_interval and seq % signer.checkpoint_interval == 0:
            checkpoints.append({"seq": seq, "hash": chain_hash, "at": fields["at"], "mac": signer.mac(seq, chain_hash)})
    connection.execute(insert(AuditRecord.__table__), record_rows)
    for table, rows in ((AuditServed, served_rows), (AuditWritten, written_rows), (AuditCheckpoint, checkpoints)):
        if rows:
            connection.execute(insert(table.__table__), rows)
    connection.execute(update(head).where(head.c.id == 1).values(hash=chain_hash, mac=signer.mac(last_seq, chain_hash)))
    return seqs


def write_checkpoint(engine: Engine) -> int | None:
    """Checkpoint the current head now (an operator does this before archiving); returns its seq."""
    signer = signer_for(engine)
    try:
        with engine.begin() as connection:
            connection.execute(text("UPDATE audit_head SET seq = seq WHERE id = 1"))
            seq, chain_hash = connection.execute(text("SELECT seq, hash FROM audit_head WHERE id = 1")).one()
            if seq == 0:
                return None
            exists = connection.execute(text("SELECT 1 FROM audit_checkpoint WHERE seq = :s"), {"s": seq}).first()
            if not exists:
                connection.execute(
                    insert(AuditCheckpoint.__table__).values(
                        seq=seq, hash=chain_hash, at=now_text(), mac=signer.mac(seq, chain_hash)
                    )
                )
            return int(seq)
    except SQLAlchemyError as exc:
        raise AuditUnavailable(f"audit checkpoint failed: {exc.__class__.__name__}") from exc
