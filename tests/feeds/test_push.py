"""Push feeds into live peers: medallion (partner DEU) and a second Tearline (partner GBR).

The receiver must hold exactly the versions releasable to it, granular markings redacted, and
every envelope must be in the audit log with the versions that left.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select
from sqlmodel import Session

from app.audit import query as audit_query
from app.audit.models import AuditRecord
from app.auth.principal import Principal
from app.feeds import service
from app.feeds.models import Feed
from app.feeds.service import FeedSpec
from app.feeds.sync import run_feed
from app.taxii import service as taxii_service
from tests.conftest import HOME
from tests.feeds.conftest import (
    MEDALLION_PARTNER,
    MEDALLION_PASSWORD,
    MEDALLION_USER,
    PEER_HOME,
    TLP_GREEN,
    indicator,
    statement,
)

pytestmark = pytest.mark.e2e

ANALYST = Principal("analyst-1", HOME, frozenset({"analyst"}), 4, frozenset(), is_home=True)


def corpus() -> tuple[list[dict], dict[str, set[str]]]:
    """Objects an analyst posts, and the keys of the versions each partner may receive."""
    defs = {
        name: statement(text)
        for name, text in {
            "deu": "CONFIDENTIAL//REL TO DEU",
            "gbr": "SECRET//REL TO GBR",
            "secret_deu": "SECRET//REL TO DEU",
            "nato": "RESTRICTED//REL TO NATO",
            "fra": "CONFIDENTIAL//REL TO FRA",
            "usa": "SECRET//REL TO USA",
            "deu_gbr": "RESTRICTED//REL TO DEU, GBR",
        }.items()
    }
    versioned = f"indicator--{uuid.uuid4()}"
    objects = {
        "deu": indicator("For DEU", defs["deu"]["id"]),
        "gbr": indicator("For GBR", defs["gbr"]["id"]),
        "secret_deu": indicator("Secret for DEU", defs["secret_deu"]["id"]),
        "nato": indicator("For NATO", defs["nato"]["id"]),
        "unmarked": indicator("Home only"),
        "green": indicator("Green", TLP_GREEN),
        "fra": indicator("For FRA", defs["fra"]["id"]),
        "granular": indicator(
            "Green with a secret description",
            TLP_GREEN,
            description="USA eyes only",
            granular_markings=[{"marking_ref": defs["usa"]["id"], "selectors": ["description"]}],
        ),
        "v1": indicator("Versioned", defs["deu_gbr"]["id"], object_id=versioned),
        "v2": indicator("Versioned", defs["fra"]["id"], object_id=versioned, modified="2026-11-03T10:00:00.000Z"),
    }
    # v2, for FRA only, withdraws v1 from DEU and GBR (docs/design.md section 7b): neither receives it.
    releasable = {"DEU": {"deu", "nato", "green", "granular"}, "GBR": {"gbr", "nato", "green", "granular"}}
    return [*defs.values(), *objects.values()], {
        n: {objects[k]["id"] + "|" + objects[k]["modified"] for k in keys} for n, keys in releasable.items()
    }


def post(session: Session, app, collection_id: str, objects: list[dict]) -> None:
    status = taxii_service.add_objects(
        session, collection_id, ANALYST, objects, mappings=app.state.mappings, home_nation=HOME
    )
    assert status.failure_count == 0, status.details


def add_medallion_push(session: Session, ctx, medallion, name: str, local_collection_id: str) -> str:
    """A push feed from ``local_collection_id`` into a fresh medallion collection (DEU, Basic auth); its id."""
    target = medallion.take_push_collection()
    service.add_feed(
        session,
        ctx.settings,
        ctx.mappings,
        FeedSpec(
            name=name,
            partner=MEDALLION_PARTNER,
            direction="push",
            url=f"{medallion.base_url}/taxii2/",
            collection_id=target,
            local_collection_id=local_collection_id,
            auth_kind="basic",
            username=MEDALLION_USER,
            credential=MEDALLION_PASSWORD,
        ),
    )
    return target


def version_keys(objects: list[dict]) -> set[str]:
    return {o["id"] + "|" + o["modified"] for o in objects if o["type"] != "marking-definition"}


def check_received(received: list[dict], expected: set[str], sent_objects: list[dict]) -> None:
    assert version_keys(received) == expected
    granular = next(o for o in received if o.get("name") == "Green with a secret description")
    assert "description" not in granular
    # Marking definitions arrive only for what the partner may see (never the SECRET//REL TO USA one).
    needed = {ref for o in received for ref in o.get("object_marking_refs", [])}
    definitions = {o["id"] for o in received if o["type"] == "marking-definition"}
    assert needed - {TLP_GREEN} <= definitions
    hidden_definitions = {
        o["id"]
        for o in sent_objects
        if o["type"] == "marking-definition"
        and o["definition"]["statement"] in ("SECRET//REL TO USA", "CONFIDENTIAL//REL TO FRA")
    }
    assert not definitions & hidden_definitions


def test_push_into_medallion_sends_exactly_the_releasable_set(medallion, app, ctx, session, collection, feed_name):
    objects, releasable = corpus()
    post(session, app, collection.id, objects)
    target = add_medallion_push(session, ctx, medallion, feed_name, collection.id)
    assert service.push_backlog(session, session.get(Feed, feed_name), ctx.visibility) > len(releasable["DEU"])

    result = run_feed(ctx, feed_name)
    assert result.status == "ok", result.message
    assert result.refused == 0, result.refusals
    assert result.sent == len(releasable["DEU"]) + len(
        [o for o in medallion.objects(target) if o["type"] == "marking-definition"]
    )
    received = medallion.objects(target)
    check_received(received, releasable["DEU"], objects)

    session.expire_all()
    feed = session.get(Feed, feed_name)
    assert feed.objects_out == result.sent and feed.cursor_us is not None
    assert service.push_backlog(session, feed, ctx.visibility) == 0

    # Audit: one record per envelope (several: medallion's max_content_length is small), and the
    # dissemination rows name exactly what left, for DEU.
    records = session.execute(select(AuditRecord).where(AuditRecord.subject == f"feed:{feed_name}")).scalars().all()
    envelopes = [r for r in records if r.served_count > 0]
    assert len(envelopes) >= 2 and {r.method for r in records} == {"PUSH"}
    assert len(records) == 2 * len(envelopes)  # each envelope: what leaves, before; the partner's answer, after
    assert {r.recipient_nation for r in records} == {MEDALLION_PARTNER}
    left = {
        served["id"]
        for record in envelopes
        for served in audit_query.record_with_served(ctx.engine, record.seq)["served"]
    }
    assert {o["id"] for o in received} == left
    assert {n["nation"] for n in audit_query.recipients(ctx.engine, received[-1]["id"])} == {MEDALLION_PARTNER}

    # The cursor holds: nothing is sent twice; a new releasable version goes out alone.
    assert run_feed(ctx, feed_name).sent == 0
    extra = indicator(
        "Later for NATO",
        next(o["id"] for o in objects if o.get("definition", {}).get("statement") == "RESTRICTED//REL TO NATO"),
    )
    post(session, app, collection.id, [extra])
    later = run_feed(ctx, feed_name)
    assert later.status == "ok" and later.sent == 1
    assert later.refused == 0, later.refusals  # its definition, sent again for context, is no failure
    assert version_keys(medallion.objects(target)) == releasable["DEU"] | version_keys([extra])


def test_push_into_tearline_peer_sends_exactly_the_releasable_set(peer, app, ctx, session, collection, feed_name):
    objects, releasable = corpus()
    post(session, app, collection.id, objects)
    inbox = peer.new_inbox()
    service.add_feed(
        session,
        ctx.settings,
        ctx.mappings,
        FeedSpec(
            name=feed_name,
            partner=PEER_HOME,
            direction="push",
            url=f"{peer.base_url}/taxii2/api1/",
            collection_id=inbox,
            local_collection_id=collection.id,
            auth_kind="bearer",
            credential=peer.token(),
        ),
    )
    result = run_feed(ctx, feed_name)
    assert result.status == "ok", result.message
    assert result.refused == 0, result.refusals
    received = peer.stored(inbox)
    check_received(received, releasable["GBR"], objects)
    assert run_feed(ctx, feed_name).sent == 0


def test_push_to_a_partner_refusing_us_stops_the_feed(peer, ctx, session, collection, feed_name):
    inbox = peer.new_inbox()
    service.add_feed(
        session,
        ctx.settings,
        ctx.mappings,
        FeedSpec(
            name=feed_name,
            partner=PEER_HOME,
            direction="push",
            url=f"{peer.base_url}/taxii2/",
            collection_id=inbox,
            local_collection_id=collection.id,
            auth_kind="bearer",
            credential="not-a-token-the-peer-signed",
        ),
    )
    result = run_feed(ctx, feed_name)
    assert result.status == "stopped"
    session.expire_all()
    feed = session.get(Feed, feed_name)
    assert not feed.enabled and "401" in feed.stopped_reason and "not-a-token" not in feed.stopped_reason


def test_partner_refusals_in_the_status_resource_are_counted_and_reported(
    peer, app, ctx, session, collection, feed_name
):
    objects, releasable = corpus()
    post(session, app, collection.id, objects)
    inbox = peer.new_inbox()
    # The peer already holds a different object under one version's id and timestamp: it must refuse ours.
    nato = next(o for o in objects if o.get("name") == "For NATO")
    conflicting = {k: v for k, v in nato.items() if k != "object_marking_refs"} | {"name": "Something else"}
    with peer.session() as peer_session:
        peer_analyst = Principal("gbr-analyst", PEER_HOME, frozenset({"analyst"}), 4, frozenset(), is_home=True)
        status = taxii_service.add_objects(
            peer_session, inbox, peer_analyst, [conflicting], mappings=peer.app.state.mappings, home_nation=PEER_HOME
        )
        assert status.success_count == 1
    service.add_feed(
        session,
        ctx.settings,
        ctx.mappings,
        FeedSpec(
            name=feed_name,
            partner=PEER_HOME,
            direction="push",
            url=f"{peer.base_url}/taxii2/",
            collection_id=inbox,
            local_collection_id=collection.id,
            auth_kind="bearer",
            credential=peer.token(),
        ),
    )
    result = run_feed(ctx, feed_name)
    assert result.status == "ok"
    assert result.refused == 1 and nato["id"] in result.refusals[0]
    session.expire_all()
    feed = session.get(Feed, feed_name)
    assert feed.refused == 1 and nato["id"] in feed.last_error
    assert version_keys(peer.stored(inbox)) == releasable["GBR"]  # theirs stays, ours was refused


def test_no_push_from_a_collection_the_partner_may_not_read(peer, app, ctx, session, feed_name):
    analysts_only = taxii_service.create_collection(
        session, title=f"internal {uuid.uuid4().hex[:8]}", read_roles={"analyst"}, write_roles={"analyst"}
    )
    post(session, app, analysts_only.id, [indicator("Green but internal", TLP_GREEN)])
    service.add_feed(
        session,
        ctx.settings,
        ctx.mappings,
        FeedSpec(
            name=feed_name,
            partner=PEER_HOME,
            direction="push",
            url=f"{peer.base_url}/taxii2/",
            collection_id=peer.new_inbox(),
            local_collection_id=analysts_only.id,
            auth_kind="bearer",
            credential=peer.token(),
        ),
    )
    result = run_feed(ctx, feed_name)
    assert result.status == "stopped" and "may not read" in result.message
    assert result.sent == 0


def test_push_recovers_from_transient_failures_without_duplicates(medallion, app, ctx, session, collection, feed_name):
    objects, releasable = corpus()
    post(session, app, collection.id, objects)
    target = add_medallion_push(session, ctx, medallion, feed_name, collection.id)
    medallion.failer.arm(3, status=503)
    result = run_feed(ctx, feed_name)
    assert result.status == "ok", result.message
    assert medallion.failer.failed == 3 and result.refused == 0
    received = medallion.objects(target)
    assert version_keys(received) == releasable["DEU"]
    assert len(received) == len({(o["id"], o.get("modified")) for o in received})  # nothing twice


def test_pulled_objects_are_pushed_on_only_as_their_originator_released_them(
    peer, medallion, ctx, session, collection, feed_name
):
    """GBR's objects, pulled in, go on to DEU only where GBR released them to DEU (third-party rule)."""
    service.add_feed(
        session,
        ctx.settings,
        ctx.mappings,
        FeedSpec(
            name=f"{feed_name}-in",
            partner=PEER_HOME,
            direction="pull",
            url=f"{peer.base_url}/taxii2/",
            collection_id=peer.outbox,
            local_collection_id=collection.id,
            auth_kind="bearer",
            credential=peer.token(),
        ),
    )
    assert run_feed(ctx, f"{feed_name}-in").status == "ok"
    target = add_medallion_push(session, ctx, medallion, f"{feed_name}-out", collection.id)
    pushed = run_feed(ctx, f"{feed_name}-out")
    assert pushed.status == "ok", pushed.message
    received = {o["id"] for o in medallion.objects(target) if o["type"] != "marking-definition"}
    assert received == {peer.published["nato"]["id"], peer.published["green"]["id"]}
