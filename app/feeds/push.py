"""Push: deliver to a partner's collection exactly the versions releasable to it.

The versions are chosen by the code that serves TAXII: the partner's Principal
(nation, clearance, groups), its visible label ids from the VisibilityCache, the
store's visibility predicate and granular redaction (:func:`app.taxii.service.versions_page`).
Envelopes stay under the partner API root's ``max_content_length``; the cursor
is the local ``date_added`` of the last version read, saved after the
partner's status resource for the envelope has been checked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import orjson
from sqlmodel import Session

from app.db.timestamps import format_us
from app.feeds.client import FeedError, PermanentFeedError, Remote, connect
from app.feeds.context import (
    FeedContext,
    ProgressSink,
    SyncResult,
    audit,
    feed_secret,
    load,
)
from app.feeds.models import Feed
from app.feeds.service import partner_principal
from app.items.labeling import marking_refs
from app.items.store import VersionFilter
from app.taxii.models import Collection
from app.taxii.service import ServedVersion, collection_access, own_nation, readable_collections, versions_page

# Pages are read here with ``with_body=True``: every row's ``body`` is text (hence ``cast(str, row.body)``).
_ENVELOPE_OVERHEAD = len(b'{"objects":[]}')
STATUS_TIMEOUT_S = 60


def _context_definitions(
    session: Session, ctx: FeedContext, feed: Feed, visible: list[int], rows: list[ServedVersion]
) -> list[ServedVersion]:
    """Marking definitions the rows reference but do not carry, as the partner may see them.

    A definition is stored before the first version that references it, so it may lie behind the
    cursor although the partner has not received it yet (it was hidden until a version it may see
    referenced it); sending it again is harmless, since an exact duplicate is a success.
    """
    carried = {row.object_id for row in rows}
    wanted = sorted(
        {ref for row in rows for ref in marking_refs(orjson.loads(cast(str, row.body)))}
        - carried
        - ctx.mappings.tlp.keys()
    )
    if not wanted:
        return []
    page = versions_page(
        session,
        feed.local_collection_id,
        visible,
        VersionFilter(ids=tuple(wanted), versions=("all",)),
        after_us=None,
        limit=max(len(wanted) * 4, 10),
        with_body=True,
    )
    return page.rows


def _envelopes(rows: list[ServedVersion], limit: int) -> tuple[list[list[ServedVersion]], list[ServedVersion]]:
    """Split rows into envelopes whose JSON stays within ``limit`` bytes; rows too large alone are returned apart."""
    current: list[ServedVersion]
    envelopes, current, size, too_large = [], [], _ENVELOPE_OVERHEAD, []
    for row in rows:
        length = len(cast(str, row.body).encode()) + 1
        if _ENVELOPE_OVERHEAD + length > limit:
            too_large.append(row)
            continue
        if current and size + length > limit:
            envelopes.append(current)
            current, size = [], _ENVELOPE_OVERHEAD
        current.append(row)
        size += length
    if current:
        envelopes.append(current)
    return envelopes, too_large


def _body(rows: list[ServedVersion]) -> bytes:
    return b'{"objects":[' + b",".join(cast(str, row.body).encode() for row in rows) + b"]}"


def push(
    ctx: FeedContext, name: str, result: SyncResult, progress: ProgressSink, on_page: Callable[[int], None] | None
) -> None:
    """Send every releasable version added after the feed's cursor."""
    feed, partner = load(ctx, name)
    principal = partner_principal(partner, feed.name)
    with Session(ctx.engine) as session:
        local = session.get(Collection, feed.local_collection_id)
        if local is None or not collection_access(ctx.rights, principal, local).can_read:
            # What TAXII would not serve to this partner is not pushed to it either.
            raise PermanentFeedError(f"{partner.nation} may not read the local collection {feed.local_collection_id}")
    remote = connect(
        ctx.settings,
        url=feed.url,
        collection_id=feed.remote_collection_id,
        auth_kind=feed.auth_kind,
        username=feed.username,
        secret=feed_secret(ctx, feed),
    )
    add_objects = remote.retrying(remote.collection.add_objects)
    limit = int(remote.api_root.max_content_length or ctx.settings.max_content_length)
    cursor = feed.cursor_us
    counted = [0, 0]
    progress.start(name, None)
    try:
        while True:
            with Session(ctx.engine) as session:
                visible = ctx.visibility.visible_label_ids(session, principal)
                page = versions_page(
                    session,
                    feed.local_collection_id,
                    visible,
                    VersionFilter(versions=("all",)),
                    after_us=cursor,
                    limit=ctx.settings.feed_page_size,
                    with_body=True,
                    readable=readable_collections(session, ctx.rights, principal),
                    own_nation=own_nation(principal),
                )
                context = _context_definitions(session, ctx, feed, visible, page.rows)
            if page.last_read_us is None:
                break
            envelopes, too_large = _envelopes(page.rows, limit)
            for row in too_large:
                result.refused += 1
                result.refusals.append(f"{row.object_id}: larger than the partner's max_content_length ({limit})")
            in_page = {row.object_id for row in page.rows}
            for index, rows in enumerate(envelopes):
                # Definitions from behind the cursor go first, once per page.
                extra = [row for row in context if row.object_id not in in_page] if index == 0 else []
                fitted, _ = _envelopes(extra + rows, limit)
                for part in fitted:
                    _send(ctx, feed, remote, add_objects, part, {row.object_id for row in extra}, result)
                    progress.advance(len(part))
                # The cursor reaches the page's end only with its last envelope (withheld rows included).
                envelope_end = page.last_read_us if index == len(envelopes) - 1 else rows[-1].date_added_us
                _save_cursor(ctx, name, envelope_end, result, counted)
                cursor = envelope_end
            if not envelopes:
                _save_cursor(ctx, name, page.last_read_us, result, counted)
                cursor = page.last_read_us
            result.pages += 1
            if on_page is not None:
                on_page(result.pages)
            if not page.more:
                break
    finally:
        remote.close()


def _save_cursor(ctx: FeedContext, name: str, cursor: int, result: SyncResult, counted: list[int]) -> None:
    """Move the cursor and add the counts not yet saved (``counted`` holds the saved sent/refused)."""
    with Session(ctx.engine) as session:
        row = session.get(Feed, name)
        if row is None:  # removed while this run was in progress
            raise LookupError(name)
        if row.cursor_us is None or cursor > row.cursor_us:
            row.cursor_us = cursor
        row.objects_out += result.sent - counted[0]
        row.refused += result.refused - counted[1]
        counted[:] = [result.sent, result.refused]
        session.add(row)
        session.commit()


def _send(
    ctx: FeedContext,
    feed: Feed,
    remote: Remote,
    add_objects: Callable[..., Any],
    rows: list[ServedVersion],
    context_ids: set[str],
    result: SyncResult,
) -> None:
    """Add one envelope, check its status resource, and record what left in the audit log."""
    served = [(row.object_id, format_us(row.version_us)) for row in rows]
    # Recorded before anything leaves (fail closed: no record, no delivery); the outcome follows.
    audit(
        ctx,
        feed,
        method="PUSH",
        route=remote.collection.objects_url,
        status=0,
        served=served,
        reason=f"sending {len(rows)} object versions to {feed.partner}",
    )
    status = add_objects(_body(rows), wait_for_completion=True, poll_interval=1, timeout=STATUS_TIMEOUT_S)
    failures = [f for f in (status.failures or []) if isinstance(f, dict)]
    # A definition sent again only for context may be refused as a duplicate by servers that
    # treat duplicates as failures (medallion); it is not a failure of the feed.
    real = [f for f in failures if f.get("id") not in context_ids]
    result.sent += len([row for row in rows if row.object_id not in context_ids]) - len(real)
    result.refused += len(real)
    result.refusals.extend(f"{f.get('id')}: {f.get('message') or 'refused by the partner'}" for f in real)
    pending = int(getattr(status, "pending_count", 0) or 0)
    reason = (
        f"sent {len(rows)} object versions to {feed.partner}: status {status.id} {status.status}, "
        f"{status.success_count} succeeded, {len(failures)} failed, {pending} pending"
    )
    audit(ctx, feed, method="PUSH", route=remote.collection.objects_url, status=202, reason=reason, served=[])
    if status.status != "complete":
        raise FeedError(f"the partner's status {status.id} is still {status.status} after {STATUS_TIMEOUT_S}s")
