"""Feeds against a live EclecticIQ OpenTAXII (partner DEU), started by tests/feeds/opentaxii_peer.py.

Pull: objects DEU published into its OpenTAXII collection (its own TAXII POST) come in with DEU as
originator and their markings kept, the cursor moves and a re-run adds nothing. Push: OpenTAXII ends
up holding exactly the versions releasable to DEU, read back with its own GET objects. One test per
OpenTAXII quirk the feed adapter works around (docs/partners.md, "OpenTAXII").
"""

from __future__ import annotations

import json
import sqlite3

import pytest
from sqlalchemy import select

from app.audit.models import AuditRecord
from app.db.timestamps import parse_us
from app.feeds import service
from app.feeds.client import connect
from app.feeds.models import Feed
from app.feeds.pull import UNMAPPED_PROPERTY
from app.feeds.service import FeedSpec
from app.feeds.sync import run_feed
from app.items.models import StixObject
from app.markings.models import Label
from tests.feeds.conftest import TLP_GREEN, indicator
from tests.feeds.opentaxii_peer import FEED_PASSWORD, FEED_USER, PARTNER, TAXII
from tests.feeds.test_push import check_received, corpus, post, version_keys

pytestmark = pytest.mark.e2e


def add_feed(session, ctx, name: str, direction: str, url: str, remote: str, local: str) -> None:
    service.add_feed(
        session,
        ctx.settings,
        ctx.mappings,
        FeedSpec(
            name=name,
            partner=PARTNER,
            direction=direction,
            url=url,
            collection_id=remote,
            local_collection_id=local,
            auth_kind="basic",
            username=FEED_USER,
            credential=FEED_PASSWORD,
        ),
    )


def stored(session, collection_id: str) -> dict[tuple[str, int], tuple]:
    rows = session.execute(
        select(StixObject.object_id, StixObject.version_us, StixObject.originator, StixObject.body, Label)
        .join(Label, Label.id == StixObject.label_id)
        .where(StixObject.collection_id == collection_id)
    ).all()
    return {(row.object_id, row.version_us): row for row in rows}


def test_pull_from_opentaxii_keeps_provenance_and_markings(opentaxii, ctx, session, collection, feed_name):
    # The discovery URL: OpenTAXII names its API roots by relative path, resolved by the feed.
    add_feed(session, ctx, feed_name, "pull", opentaxii.discovery_url, opentaxii.pull_collection, collection.id)
    result = run_feed(ctx, feed_name)
    assert result.status == "ok", result.message
    assert result.pages >= 4  # pages of 2 (fast_settings), followed with OpenTAXII's `next`

    published = opentaxii.pull_objects
    rows = stored(session, collection.id)
    unknown_definition = opentaxii.definitions["unknown"]["id"]
    assert {object_id for object_id, _ in rows} == {o["id"] for o in published} - {unknown_definition} | {TLP_GREEN}
    assert len([key for key in rows if key[0] == published[1]["id"]]) == 2  # both versions of the first
    assert {json.loads(row.body)["spec_version"] for row in rows.values()} == {"2.1"}

    # Provenance (docs/design.md 7): DEU is the originator; markings are kept and become labels.
    assert {row.originator for row in rows.values() if row.object_id != TLP_GREEN} == {PARTNER}
    by_name = {json.loads(r.body)["name"]: r for r in rows.values() if r.object_id.startswith("indicator--")}
    released = opentaxii.definitions["released"]["id"]
    first = by_name["Released to FRA"]
    assert json.loads(first.body)["object_marking_refs"] == [released]
    assert first.Label.rank == 2 and "FRA" in first.Label.releasable_to and first.Label.originator == PARTNER
    assert by_name["Green for all"].Label.releasable_to == "ALL"
    assert (by_name["Unmarked"].Label.releasable_to, by_name["Unmarked"].Label.originator) == ("", PARTNER)
    unknown = json.loads(by_name["Unknown marking"].body)
    assert "object_marking_refs" not in unknown and unknown[UNMAPPED_PROPERTY]["object_marking_refs"]
    assert by_name["Unknown marking"].Label.releasable_to == ""  # originator-only
    assert result.unknown_markings == 2

    # The cursor is OpenTAXII's date_added of the last object, as its own pages report it.
    session.expire_all()
    feed = session.get(Feed, feed_name)
    newest = max(parse_us(o["date_added"]) for o in opentaxii.manifest(opentaxii.pull_collection))
    assert feed.cursor_us == newest and feed.objects_in == result.stored

    # A re-run adds nothing; every page that came in is in the audit log for DEU.
    again = run_feed(ctx, feed_name)
    assert again.status == "ok" and again.received == 0 and again.stored == 0
    assert len(stored(session, collection.id)) == len(rows)
    records = session.execute(select(AuditRecord).where(AuditRecord.subject == f"feed:{feed_name}")).scalars().all()
    assert {(r.method, r.nation) for r in records} == {("PULL", PARTNER)}


def test_push_into_opentaxii_sends_exactly_the_releasable_set(opentaxii, app, ctx, session, collection, feed_name):
    objects, releasable = corpus()
    post(session, app, collection.id, objects)
    target = opentaxii.take_collection()
    add_feed(session, ctx, feed_name, "push", opentaxii.discovery_url, target, collection.id)

    result = run_feed(ctx, feed_name)
    assert result.status == "ok", result.message
    assert result.refused == 0, result.refusals
    received = opentaxii.objects(target)
    check_received(received, releasable["DEU"], objects)
    assert result.sent == len(received)  # nothing else arrived: no hidden object, no second copy

    # OpenTAXII's max_content_length is small: several envelopes, each recorded before it left.
    records = session.execute(select(AuditRecord).where(AuditRecord.subject == f"feed:{feed_name}")).scalars().all()
    assert len([r for r in records if r.served_count > 0]) >= 2

    assert run_feed(ctx, feed_name).sent == 0  # the cursor holds
    assert version_keys(opentaxii.objects(target)) == releasable["DEU"]


def test_whole_second_timestamps_reach_opentaxii(opentaxii, app, ctx, session, collection, feed_name):
    """Quirk: OpenTAXII parses `modified` only with a fraction of a second and answers 500 to the whole
    envelope otherwise. Tearline stores created/modified at millisecond precision (STIX 2.1 asks for
    it), so what it pushes always has the fraction, even when the analyst posted whole seconds."""
    whole = indicator("Whole seconds", TLP_GREEN, modified="2026-11-05T10:00:00Z", created="2026-11-05T10:00:00Z")
    target = opentaxii.take_collection()
    assert opentaxii.post(target, [whole]).status_code == 500  # the quirk itself
    post(session, app, collection.id, [whole])
    add_feed(session, ctx, feed_name, "push", opentaxii.discovery_url, target, collection.id)
    result = run_feed(ctx, feed_name)
    assert result.status == "ok" and result.refused == 0, result.message
    assert version_keys(opentaxii.objects(target)) == {f"{whole['id']}|2026-11-05T10:00:00.000Z"}


def test_api_root_named_by_relative_path_is_resolved(opentaxii, fast_settings):
    """Quirk: OpenTAXII's discovery resource lists "/taxii2/<id>/", not a URL."""
    remote = connect(
        fast_settings,
        url=opentaxii.discovery_url,
        collection_id=opentaxii.pull_collection,
        auth_kind="basic",
        username=FEED_USER,
        secret=FEED_PASSWORD,
    )
    try:
        assert remote.api_root.url == opentaxii.root_url
        assert remote.collection.can_read and not remote.collection.can_write  # its per-collection rights
    finally:
        remote.close()


def test_unreadable_next_token_resumes_from_the_cursor(opentaxii, ctx, session, collection, feed_name):
    """Quirk: OpenTAXII writes `next` from the page's last date_added without its fraction when that
    falls on a whole second, then refuses it (400). The feed goes on from its committed cursor."""
    import requests

    batch = [indicator(f"Paged {n}", TLP_GREEN) for n in range(5)]
    source = opentaxii.take_collection()
    for obj in batch:
        assert opentaxii.post(source, [obj]).status_code == 202
    # Place the objects' date_added (OpenTAXII's SQLite file is ours): the second, the last of the
    # feed's first page of two, on a whole second.
    with sqlite3.connect(opentaxii.data_db) as db:
        for n, obj in enumerate(batch):
            added = f"2026-01-01 10:00:0{n}.{0 if n == 1 else 500000:06d}"
            db.execute("UPDATE opentaxii_stixobject SET date_added = ? WHERE id = ?", (added, obj["id"]))
    url = f"{opentaxii.root_url}collections/{source}/objects/"
    auth, accept = (FEED_USER, FEED_PASSWORD), {"Accept": TAXII}
    first = requests.get(url, params={"limit": 2}, auth=auth, headers=accept, timeout=10).json()
    refused = requests.get(url, params={"limit": 2, "next": first["next"]}, auth=auth, headers=accept, timeout=10)
    assert refused.status_code == 400  # the quirk itself

    add_feed(session, ctx, feed_name, "pull", opentaxii.discovery_url, source, collection.id)
    result = run_feed(ctx, feed_name)
    assert result.status == "ok", result.message
    assert result.stored == 5 and result.received == 5 and result.duplicates == 0
    ids = [object_id for object_id, _ in stored(session, collection.id) if object_id != TLP_GREEN]
    assert sorted(ids) == sorted(o["id"] for o in batch)
    session.expire_all()
    assert session.get(Feed, feed_name).cursor_us == parse_us("2026-01-01T10:00:04.500000Z")
    assert run_feed(ctx, feed_name).received == 0
