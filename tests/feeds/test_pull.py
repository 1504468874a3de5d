"""Pull feeds against live peers: a second Tearline (home GBR) and an OASIS medallion server (DEU).

Asserts exactly-once storage, resume after a crash between pages, originator and markings kept,
the third-party rule at our side, and the handling of unmarked and unknown-marked objects.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.audit.models import AuditRecord
from app.feeds import service
from app.feeds.models import Feed
from app.feeds.pull import UNMAPPED_PROPERTY
from app.feeds.service import FeedSpec
from app.feeds.sync import run_feed
from app.items.models import StixObject
from app.markings.models import Label
from tests.feeds.conftest import (
    MEDALLION_PARTNER,
    MEDALLION_PASSWORD,
    MEDALLION_PULL_COLLECTION,
    MEDALLION_USER,
    PEER_HOME,
    TLP_GREEN,
)

pytestmark = pytest.mark.e2e


class Crash(RuntimeError):
    """Stands for the process dying between two pages."""


def add_pull(session, ctx, name, local_id, **overrides):
    spec = {
        "name": name,
        "partner": MEDALLION_PARTNER,
        "direction": "pull",
        "url": "",
        "collection_id": MEDALLION_PULL_COLLECTION,
        "local_collection_id": local_id,
        "auth_kind": "basic",
        "username": MEDALLION_USER,
        "credential": MEDALLION_PASSWORD,
    }
    spec.update(overrides)
    return service.add_feed(session, ctx.settings, ctx.mappings, FeedSpec(**spec))


def stored_rows(session, collection_id):
    return session.execute(
        select(StixObject.object_id, StixObject.version_us, StixObject.originator, StixObject.body, Label)
        .join(Label, Label.id == StixObject.label_id)
        .where(StixObject.collection_id == collection_id)
    ).all()


def served_ids(client, api, collection_id, headers) -> set[str]:
    answer = client.get(
        f"{api}/collections/{collection_id}/objects/", params={"match[version]": "all"}, headers=headers
    )
    assert answer.status_code == 200, answer.text
    return {obj["id"] for obj in answer.json().get("objects", [])}


def test_pull_from_tearline_peer_keeps_originator_and_third_party_rule(
    peer, ctx, session, collection, feed_name, client, api, auth
):
    service.add_feed(
        session,
        ctx.settings,
        ctx.mappings,
        FeedSpec(
            name=feed_name,
            partner=PEER_HOME,
            direction="pull",
            url=f"{peer.base_url}/taxii2/",
            collection_id=peer.outbox,
            local_collection_id=collection.id,
            auth_kind="bearer",
            credential=peer.token(),
        ),
    )

    result = run_feed(ctx, feed_name)
    assert result.status == "ok", result.message

    published = peer.published
    rows = stored_rows(session, collection.id)
    got = {row.object_id for row in rows}
    released_to_nld = {
        published[k]["id"] for k in ("nld_usa", "nld_only", "nato", "green", "def_nld_usa", "def_nld", "def_nato")
    } | {TLP_GREEN}
    assert got == released_to_nld
    # (TLP definitions are shared by every collection; whoever stored one first is its originator.)
    assert {row.originator for row in rows if row.object_id != TLP_GREEN} == {PEER_HOME}
    nld_usa = next(row for row in rows if row.object_id == published["nld_usa"]["id"])
    assert (nld_usa.Label.rank, nld_usa.Label.releasable_to, nld_usa.Label.originator) == (3, "NLD,USA", PEER_HOME)

    # Third-party rule at our side: USA gets only what GBR released to USA; FRA only what GBR released to NATO/all.
    usa = served_ids(client, api, collection.id, auth(subject="usa-feed", nation="USA", roles=("partner",)))
    fra = served_ids(client, api, collection.id, auth(subject="fra-feed", nation="FRA", roles=("partner",)))
    objects_of = lambda ids: {i for i in ids if not i.startswith("marking-definition--")}  # noqa: E731
    assert objects_of(usa) == {published[k]["id"] for k in ("nld_usa", "nato", "green")}
    assert objects_of(fra) == {published[k]["id"] for k in ("nato", "green")}
    assert published["def_nld_usa"]["id"] not in fra

    # Every page that came in is in the audit log, recorded for the partner it came from.
    records = session.execute(select(AuditRecord).where(AuditRecord.subject == f"feed:{feed_name}")).scalars().all()
    assert len(records) == result.pages and {(r.method, r.nation) for r in records} == {("PULL", PEER_HOME)}
    assert sum(int(r.reason.split()[1]) for r in records) == result.received == len(rows)

    # A re-run finds nothing new and stores nothing twice.
    again = run_feed(ctx, feed_name)
    assert again.status == "ok" and again.received == 0 and again.stored == 0  # the cursor holds
    assert len(stored_rows(session, collection.id)) == len(rows)
    session.expire_all()
    feed = session.get(Feed, feed_name)
    assert feed.objects_in == len(rows) and feed.last_success_us is not None and feed.cursor_us is not None


def test_pull_from_medallion_crash_between_pages_resumes_exactly_once(medallion, ctx, session, collection, feed_name):
    add_pull(session, ctx, feed_name, collection.id, url=f"{medallion.base_url}/taxii2/")

    def crash_after_second_page(page: int) -> None:
        if page == 2:
            raise Crash()

    with pytest.raises(Crash):
        run_feed(ctx, feed_name, on_page=crash_after_second_page)
    session.expire_all()
    after_crash = session.get(Feed, feed_name)
    assert after_crash.cursor_us is not None
    stored_before = len(stored_rows(session, collection.id))
    assert 0 < stored_before < len(medallion.pull_objects)

    result = run_feed(ctx, feed_name)
    assert result.status == "ok", result.message
    counts = session.execute(
        select(StixObject.object_id, StixObject.version_us, func.count())
        .where(StixObject.collection_id == collection.id)
        .group_by(StixObject.object_id, StixObject.version_us)
    ).all()
    assert all(count == 1 for *_, count in counts)
    ids = {object_id for object_id, _, _ in counts}
    expected = {o["id"] for o in medallion.pull_objects} - {medallion.definitions["unknown"]["id"]} | {TLP_GREEN}
    assert ids == expected
    versions = [v for object_id, v, _ in counts if object_id == medallion.pull_objects[1]["id"]]
    assert len(versions) == 2  # both versions of the re-published indicator

    rerun = run_feed(ctx, feed_name)
    assert rerun.status == "ok" and rerun.stored == 0
    assert len(stored_rows(session, collection.id)) == len(counts)


def test_pull_from_medallion_maps_markings_and_counts_unknown_ones(
    medallion, ctx, session, collection, feed_name, client, api, auth
):
    add_pull(session, ctx, feed_name, collection.id, url=f"{medallion.base_url}/{'feeds'}/")
    result = run_feed(ctx, feed_name)
    assert result.status == "ok", result.message
    assert result.unknown_markings == 2  # the unreadable definition and the object marked with it

    rows = {row.object_id: row for row in stored_rows(session, collection.id)}
    assert {row.originator for row in rows.values() if row.object_id != TLP_GREEN} == {MEDALLION_PARTNER}
    by_name = {row_body_name(row): row for row in rows.values() if row.object_id.startswith("indicator--")}
    assert by_name["Unmarked"].Label.releasable_to == "" and by_name["Unmarked"].Label.originator == "DEU"
    unknown = by_name["Unknown marking"]
    assert unknown.Label.releasable_to == "" and unknown.Label.rank == 0
    assert UNMAPPED_PROPERTY in row_body(unknown) and "object_marking_refs" not in row_body(unknown)
    assert by_name["Green for all"].Label.releasable_to == "ALL"
    assert by_name["Released to FRA"].Label.rank == 2

    session.expire_all()
    feed = session.get(Feed, feed_name)
    assert feed.unknown_markings == 2

    fra = served_ids(client, api, collection.id, auth(subject="fra-feed", nation="FRA", roles=("partner",)))
    usa = served_ids(client, api, collection.id, auth(subject="usa-feed", nation="USA", roles=("partner",)))
    deu = served_ids(client, api, collection.id, auth(subject="deu-feed", nation="DEU", roles=("partner",)))
    first = medallion.pull_objects[1]["id"]
    assert first in fra and first not in usa
    assert by_name["Unmarked"].object_id not in fra | usa and by_name["Unmarked"].object_id in deu
    assert unknown.object_id not in fra | usa
    assert by_name["Green for all"].object_id in fra & usa


def row_body(row) -> dict:
    import json

    return json.loads(row.body)


def row_body_name(row) -> str:
    return row_body(row)["name"]


def test_default_label_marks_unmarked_objects(medallion, ctx, session, collection, feed_name):
    add_pull(
        session,
        ctx,
        feed_name,
        collection.id,
        url=f"{medallion.base_url}/taxii2/",
        default_label="RESTRICTED//REL TO FRA",
    )
    assert run_feed(ctx, feed_name).status == "ok"
    rows = [row for row in stored_rows(session, collection.id) if row.object_id.startswith("indicator--")]
    unmarked = [row for row in rows if row_body(row)["name"].startswith("Unmarked")]
    assert unmarked and all((row.Label.rank, row.Label.releasable_to) == (1, "FRA") for row in unmarked)
    unknown = next(row for row in rows if row_body(row)["name"] == "Unknown marking")
    assert unknown.Label.releasable_to == ""  # unknown markings stay originator-only, never the default


def test_transient_failures_recover(medallion, ctx, session, collection, feed_name):
    add_pull(session, ctx, feed_name, collection.id, url=f"{medallion.base_url}/taxii2/")
    medallion.failer.arm(2, status=503)
    result = run_feed(ctx, feed_name)
    assert result.status == "ok", result.message
    assert medallion.failer.failed == 2
    medallion.failer.arm(1, status=429)
    assert run_feed(ctx, feed_name).status == "ok"
    assert medallion.failer.failed == 1
    assert result.stored > 0


def test_transient_failures_beyond_the_retries_are_recorded_not_fatal(medallion, ctx, session, collection, feed_name):
    add_pull(session, ctx, feed_name, collection.id, url=f"{medallion.base_url}/taxii2/")
    medallion.failer.arm(1000, status=502)
    try:
        result = run_feed(ctx, feed_name)
    finally:
        failed = medallion.failer.failed
        medallion.failer.arm(0)
    assert result.status == "error" and "502" in result.message
    assert failed == ctx.settings.feed_retry_attempts
    session.expire_all()
    feed = session.get(Feed, feed_name)
    assert feed.enabled and "502" in feed.last_error and feed.cursor_us is None
    assert run_feed(ctx, feed_name).status == "ok"


@pytest.mark.parametrize("problem", ["password", "collection"])
def test_permanent_failures_stop_the_feed(medallion, ctx, session, collection, feed_name, problem):
    overrides = {"credential": "wrong-password"} if problem == "password" else {"collection_id": "no-such-collection"}
    add_pull(session, ctx, feed_name, collection.id, url=f"{medallion.base_url}/taxii2/", **overrides)
    result = run_feed(ctx, feed_name)
    assert result.status == "stopped"
    session.expire_all()
    feed = session.get(Feed, feed_name)
    assert not feed.enabled
    assert ("401" if problem == "password" else "404") in feed.stopped_reason
    assert MEDALLION_PASSWORD not in feed.stopped_reason and "wrong-password" not in feed.stopped_reason
    assert run_feed(ctx, feed_name).status == "disabled"  # the scheduler leaves it alone
    assert len(stored_rows(session, collection.id)) == 0


def test_resume_inside_a_group_added_at_one_instant_skips_nothing(medallion, ctx, session, collection, feed_name):
    """Five objects posted in one request share a date_added; a crash after the first page of two must
    not lose the other three (added_after alone would), and the resumed run must not repeat the two."""
    import requests

    from tests.feeds.conftest import indicator

    source = medallion.take_push_collection()
    batch = [indicator(f"Same instant {n}", TLP_GREEN) for n in range(5)]
    posted = requests.post(
        f"{medallion.root_url}collections/{source}/objects/",
        json={"objects": batch},
        auth=(MEDALLION_USER, MEDALLION_PASSWORD),
        timeout=10,
        headers={"Accept": "application/taxii+json;version=2.1", "Content-Type": "application/taxii+json;version=2.1"},
    )
    assert posted.status_code == 202 and posted.json()["success_count"] == 5
    add_pull(session, ctx, feed_name, collection.id, url=f"{medallion.base_url}/taxii2/", collection_id=source)

    def crash_after_first_page(page: int) -> None:
        if page == 1:
            raise Crash()

    with pytest.raises(Crash):
        run_feed(ctx, feed_name, on_page=crash_after_first_page)
    resumed = run_feed(ctx, feed_name)
    assert resumed.status == "ok", resumed.message
    assert resumed.received == 3 and resumed.stored == 3 and resumed.duplicates == 0
    ids = [row.object_id for row in stored_rows(session, collection.id) if row.object_id != TLP_GREEN]
    assert sorted(ids) == sorted(o["id"] for o in batch)
    assert run_feed(ctx, feed_name).received == 0
