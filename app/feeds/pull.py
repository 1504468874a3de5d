"""Pull: page through a partner's collection with taxii2-client and store what arrives.

Each page is stored in one transaction together with the feed's cursor (the
partner's ``X-TAXII-Date-Added-Last`` for that page), so a crash between pages
never skips objects and a re-run never duplicates them (an exact duplicate is a
success). Objects are stored as submitted by the partner, so the partner is
their originator and their markings become labels exactly as when the partner
posts them itself. An object whose markings cannot be read is stored with the
originator-only label instead (its original markings kept in a custom
property), counted and reported; unmarked objects get the feed's default label.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import orjson
import requests
from sqlmodel import Session
from taxii2client.v21 import as_pages

from app.audit.service import AuditUnavailable
from app.audit.transaction import audit_writes
from app.db.timestamps import format_us, parse_us
from app.feeds.client import FeedError, connect
from app.feeds.context import FeedContext, ProgressSink, SyncResult, feed_secret, load, page_facts
from app.feeds.models import Feed
from app.feeds.service import partner_principal
from app.items import ingest
from app.items.labeling import MARKING_DEFINITION
from app.markings.labels import label_marking_definition, parse_banner
from app.partners.models import Partner

UNMAPPED_PROPERTY = "x_tearline_unmapped_markings"
_MARKINGS_REFUSAL = "markings:"


def version_key(obj: object) -> str:
    """``id|version`` of an incoming object, to recognise one already handled."""
    if not isinstance(obj, dict):
        return ""
    return f"{obj.get('id')}|{obj.get('modified') or obj.get('created') or ''}"


def _unmarked(obj: object) -> bool:
    return (
        isinstance(obj, dict)
        and obj.get("type") != MARKING_DEFINITION
        and not obj.get("object_marking_refs")
        and not obj.get("granular_markings")
    )


def with_default_label(objects: list[Any], feed: Feed, ctx: FeedContext) -> list[Any]:
    """Mark unmarked objects with the feed's default label (originator-only needs no marking)."""
    if not feed.default_label or not any(_unmarked(o) for o in objects):
        return objects
    spec = parse_banner(feed.default_label, originator=feed.partner, mappings=ctx.mappings)
    definition = label_marking_definition(spec, ctx.mappings)
    marked = [o | {"object_marking_refs": [definition["id"]]} if _unmarked(o) else o for o in objects]
    return [definition, *marked]


def originator_only(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` without markings (so: the originator-only label), its original markings kept aside."""
    kept = {key: obj[key] for key in ("object_marking_refs", "granular_markings") if key in obj}
    stripped = {key: value for key, value in obj.items() if key not in kept}
    return stripped | {UNMAPPED_PROPERTY: kept}


def store_page(
    session: Session, ctx: FeedContext, feed: Feed, partner: Partner, objects: list[Any], result: SyncResult
) -> None:
    """Store one page as the partner's submission and count the outcome. No commit."""
    principal = partner_principal(partner, feed.name)
    visible = ctx.visibility.visible_label_ids(session, principal)
    settings = ctx.settings

    def store(batch: list[Any]) -> list[tuple[ingest.ValidObject | None, ingest.Outcome]]:
        valid, failures = ingest.validate_all(batch)
        outcomes = ingest.store(
            session,
            feed.local_collection_id,
            valid,
            submitter=partner.nation,
            mappings=ctx.mappings,
            home_nation=settings.home_nation,
            visible_label_ids=visible,
        )
        return list(zip(valid, outcomes)) + [(None, failure) for failure in failures]

    retry: list[dict[str, Any]] = []
    for obj, outcome in store(with_default_label(objects, feed, ctx)):
        if outcome.ok:
            result.duplicates += bool(outcome.message)
            result.stored += not outcome.message
        elif obj is not None and (outcome.message or "").startswith(_MARKINGS_REFUSAL):
            result.unknown_markings += 1
            if obj.type == MARKING_DEFINITION:
                # A definition Tearline cannot read labels nothing; objects that use it are handled below.
                result.refusals.append(f"{outcome.object_id}: {outcome.message}")
            else:
                retry.append(originator_only(obj.content))
        else:
            result.refused += 1
            result.refusals.append(f"{outcome.object_id}: {outcome.message}")
    for _obj, outcome in store(retry) if retry else []:
        if outcome.ok:
            result.duplicates += bool(outcome.message)
            result.stored += not outcome.message
        else:
            result.refused += 1
            result.refusals.append(f"{outcome.object_id}: {outcome.message}")


def _bad_request(exc: FeedError) -> bool:
    """Whether the partner answered 400 (the request itself was refused)."""
    cause = exc.__cause__
    return isinstance(cause, requests.HTTPError) and cause.response is not None and cause.response.status_code == 400


def pull(
    ctx: FeedContext, name: str, result: SyncResult, progress: ProgressSink, on_page: Callable[[int], None] | None
) -> None:
    """Pull every object the partner added after the feed's cursor."""
    feed, partner = load(ctx, name)
    remote = connect(
        ctx.settings,
        url=feed.url,
        collection_id=feed.remote_collection_id,
        auth_kind=feed.auth_kind,
        username=feed.username,
        secret=feed_secret(ctx, feed),
    )
    progress.start(name, None)
    try:
        filters = {"version": "all"}
        seen = set(orjson.loads(feed.cursor_seen)) if feed.cursor_seen else set()
        if feed.cursor_us is not None:
            # From just before the cursor: objects added later in the same instant (or second, on
            # servers with coarse timestamps) would otherwise be skipped; the seen ones are left out.
            filters["added_after"] = format_us(feed.cursor_us - 1)
        page_size = ctx.settings.feed_page_size
        get_objects = remote.retrying(remote.collection.get_objects)
        committed: list[int | None] = [feed.cursor_us]  # the cursor as last committed
        resumed_at: set[int] = set()

        def fetch(**kwargs: Any) -> Any:
            # as_pages lowers `limit` to the size of a short page, down to 0 after a page whose
            # versions were all withheld from us; ask for full pages throughout.
            request = kwargs | {"limit": page_size}
            try:
                return get_objects(**request)
            except FeedError as exc:
                cursor_us = committed[0]
                if "next" not in kwargs or not _bad_request(exc) or cursor_us is None or cursor_us in resumed_at:
                    raise
                # OpenTAXII (0.10) cannot read back its own `next` token when the page's last object was
                # added on a whole second (400): go on from the committed cursor as a new run would, once
                # per cursor; what was stored at the cursor's instant is in `seen` and skipped.
                resumed_at.add(cursor_us)
                del request["next"]
                return get_objects(**(request | {"added_after": format_us(cursor_us - 1)}))

        for envelope in as_pages(fetch, per_request=page_size, **filters):
            objects = envelope.get("objects", []) if isinstance(envelope, dict) else None
            if not isinstance(objects, list):
                raise FeedError("the partner's answer is not a TAXII envelope")
            if envelope.get("more") and not envelope.get("next"):
                raise FeedError("the partner says more objects follow but gives no `next` to fetch them")
            last_added = remote.last_headers.get("X-TAXII-Date-Added-Last")
            try:
                cursor = parse_us(last_added) if last_added else None
            except ValueError:
                assert last_added is not None  # parse_us ran: the header was there
                raise FeedError(
                    f"the partner's X-TAXII-Date-Added-Last is not a timestamp: {last_added[:40]!r}"
                ) from None
            page_keys = [version_key(o) for o in objects]
            objects = [o for o, key in zip(objects, page_keys) if key not in seen]
            reason = f"received {len(objects)} objects from {feed.partner}" + (
                f" added up to {last_added}" if last_added else ""
            )
            before = (result.stored, result.unknown_markings, result.refused)
            with Session(ctx.engine) as session:
                # The page commits with its audit record, which names every version it stored, or not at all.
                audit_writes(session, partial(page_facts, feed, route=remote.collection.objects_url, reason=reason))
                store_page(session, ctx, feed, partner, objects, result)
                row = session.get(Feed, name)
                if row is None:  # removed while this run was in progress
                    raise LookupError(name)
                if cursor is not None and (row.cursor_us is None or cursor > row.cursor_us):
                    row.cursor_us, seen = cursor, set(page_keys)
                    row.cursor_seen = orjson.dumps(sorted(seen)).decode()
                elif cursor is not None and cursor == row.cursor_us:
                    seen |= set(page_keys)  # a page entirely at the cursor's instant
                    row.cursor_seen = orjson.dumps(sorted(seen)).decode()
                row.objects_in += result.stored - before[0]
                row.unknown_markings += result.unknown_markings - before[1]
                row.refused += result.refused - before[2]
                session.add(row)
                try:
                    session.commit()
                except AuditUnavailable as exc:
                    raise FeedError(f"audit log unavailable: {exc}") from exc
                committed[0] = row.cursor_us
            result.pages += 1
            result.received += len(objects)
            progress.advance(len(objects))
            if on_page is not None:
                on_page(result.pages)
    finally:
        remote.close()
