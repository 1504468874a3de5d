"""What an event stream sends: the versions a TAXII ``GET .../objects/`` would serve, as they arrive.

A stream is a sequence of reads after a cursor, each exactly the objects endpoint's page with
``added_after`` at the cursor and the default ``match[version]=last``
(:func:`app.taxii.service.versions_page`): releasability, clearance, granular redaction and
reference closure are the same SQL and code as every TAXII read. The cursor is the objects
endpoint's encrypted keyset cursor (:mod:`app.taxii.paging`), bound to this principal and
collection, sent as the event id; it moves only with an event, so a subscriber never learns of
versions it may not see, not even how many there were.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, select
from sqlmodel import Session, col

from app.audit.service import RecordFields, record_fields
from app.audit.writer import RecordWriter
from app.auth.principal import Principal
from app.auth.tokens import TokenError, TokenVerifier
from app.config.settings import Settings
from app.db.timestamps import format_us
from app.http.dependencies import principal_from_claims
from app.http.errors import ApiError
from app.items.store import VersionFilter
from app.markings.mappings import Mappings
from app.policy.enforcer import RoleRights
from app.policy.visibility import VisibilityCache
from app.taxii import service as taxii_service
from app.taxii.models import Collection
from app.taxii.paging import CursorBinding, make_cursor, read_cursor
from app.taxii.service import ServedPage

ENDPOINT = "events"
STREAM_FILTER = VersionFilter()
"""The stream's filter: every type, the newest visible version of each object (TAXII's default)."""


@dataclass(frozen=True)
class Event:
    """One event of a stream: the envelope's bytes, the versions it names, and the cursor after it."""

    envelope: bytes
    served: list[tuple[str, str]]
    after_us: int


@dataclass(frozen=True)
class Reader:
    """What a stream needs to read and re-check its principal, without the request."""

    engine: Engine
    audit_writer: RecordWriter
    settings: Settings
    rights: RoleRights
    visibility: VisibilityCache
    mappings: Mappings
    verifier: TokenVerifier


def binding(collection_id: str, principal: Principal) -> CursorBinding:
    """What a stream's cursors are bound to: this collection's stream, this principal."""
    return {
        "collection_id": collection_id,
        "endpoint": ENDPOINT,
        "query": STREAM_FILTER.digest_parts(),
        "principal": principal,
    }


def start_cursor(
    session: Session,
    settings: Settings,
    collection_id: str,
    principal: Principal,
    last_event_id: str | None,
    added_after_us: int | None,
) -> int:
    """Where a new stream starts: after its ``Last-Event-ID``, after ``added_after``, or after what the
    collection holds now. A cursor not made for this principal and collection is refused (400)."""
    if last_event_id is not None:
        try:
            return read_cursor(settings.cursor_secret, last_event_id, **binding(collection_id, principal))
        except ApiError:
            raise ApiError(400, "The Last-Event-ID is not a cursor of this stream.") from None
    if added_after_us is not None:
        return added_after_us
    # The collection's high-water mark: every version committed so far has a date_added at or
    # below it, and one being stored now will get a later one (writers hold the collection lock).
    return int(
        session.execute(select(col(Collection.date_added_hwm)).where(col(Collection.id) == collection_id)).scalar_one()
    )


def visibility_key(reader: Reader, principal: Principal) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """The labels and collections the principal may see now: what a read's result depends on besides the cursor.

    Read afresh for each wake-up: labels first stored after the stream opened are judged here
    (cached per label, so no policy evaluation once warm).
    """
    with Session(reader.engine) as session:
        visible = reader.visibility.visible_label_ids(session, principal)
        readable = taxii_service.readable_collections(session, reader.rights, principal)
    return tuple(visible), readable


def read_after(
    reader: Reader,
    collection_id: str,
    visible: tuple[int, ...],
    readable: tuple[str, ...],
    after_us: int,
    own_nation: str | None = None,
) -> ServedPage:
    """The objects endpoint's page after ``after_us`` for this visibility (shared by every stream holding it)."""
    flt = VersionFilter(added_after_us=after_us)
    with Session(reader.engine) as session:
        return taxii_service.versions_page(
            session,
            collection_id,
            list(visible),
            flt,
            after_us=after_us,
            limit=reader.settings.max_page_size,
            with_body=True,
            readable=readable,
            own_nation=own_nation,
        )


def to_event(page: ServedPage) -> Event | None:
    """The event for a page that serves something; None for a page that serves nothing (no event,
    and the cursor stays: what was read but withheld is read again on the next wake-up)."""
    if not page.rows:
        return None
    bodies = ",".join(row.body or "" for row in page.rows)
    served = [(row.object_id, format_us(row.version_us)) for row in page.rows]
    assert page.last_read_us is not None  # a page with rows read some
    return Event(b'{"objects":[' + bodies.encode() + b"]}", served, page.last_read_us)


def event_id(settings: Settings, collection_id: str, principal: Principal, after_us: int) -> str:
    """The opaque, encrypted cursor sent as an event's id."""
    return make_cursor(settings.cursor_secret, after_us=after_us, **binding(collection_id, principal))


def still_valid(reader: Reader, token: str, principal: Principal) -> str | None:
    """None while the stream's token and principal hold as they did when it opened; else why not.

    Closes streams of expired tokens, deactivated partners, and principals whose agreement changed
    (their visibility would no longer be what the stream's cursor was bound to).
    """
    try:
        claims = reader.verifier.verify(token)
    except TokenError:
        return "the token is no longer valid"
    try:
        with Session(reader.engine) as session:
            now = principal_from_claims(claims, session, reader.settings, reader.mappings)
    except ApiError:
        return "the principal is no longer admitted"
    if now != principal:
        return "the partner agreement changed; reconnect"
    return None


def event_record(
    principal: Principal,
    *,
    request_id: str,
    route: str,
    collection_id: str,
    served: list[tuple[str, str]],
    client: str | None,
) -> RecordFields:
    """The record of what an event sent, like a page's: its served list feeds "who received X".

    Streams woken by one commit append their records together (:mod:`app.audit.writer`)."""
    return record_fields(
        request_id=request_id,
        subject=principal.subject,
        nation=principal.nation,
        roles=sorted(principal.roles),
        method="GET",
        route=route,
        status=200,
        decision="allow",
        reason="live event",
        collection_id=collection_id,
        served=served,
        client=client,
    )
