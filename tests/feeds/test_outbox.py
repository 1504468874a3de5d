"""Push on post: versions stored locally reach the partner's TAXII server at once, from the outbox.

The outbox row is written in the storing transaction; the worker pushes the releasable subset
(exactly what ``versions_page`` serves the partner's principal), retries a partner that is down or
whose status is not final, deletes a row only once delivered, and after a restart or kill -9
delivers what was pending. No scheduled run takes part: the scheduler's tick is an hour here.
"""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest
from sqlalchemy import select
from sqlmodel import Session
from taxii2client.v21 import Collection as TaxiiCollection
from taxii2client.v21 import Status

from app.feeds.models import Feed
from app.feeds.sync import feed_lock
from app.items import ingest
from app.items.models import StixObject, StoredChange
from tests.conftest import HOME, TAXII
from tests.feeds.conftest import MEDALLION_PARTNER, MEDALLION_PASSWORD, MEDALLION_USER, PEER_HOME, indicator
from tests.feeds.live_support import (
    add_feed,
    mixed_batch,
    new_collection,
    outbox_rows,
    own_database,
    partner_may_see,
    post,
    running,
    version_keys,
    wait_for,
)
from tests.hardening.conftest import ServerProcess

pytestmark = pytest.mark.e2e
ARRIVAL_S = 2.0  # post to arrival at the partner, without any scheduled run


@pytest.fixture(scope="module")
def outbox_settings(settings, tmp_path_factory):
    """A database of this module's own, and settings with the feed workers on (no scheduled run within
    the test: the scheduler's tick is an hour) and quick retries."""
    with own_database(
        settings,
        tmp_path_factory,
        "outbox",
        feed_scheduler=True,
        feed_scheduler_tick_s=3600,
        feed_live_pull=False,
        feed_outbox_sweep_s=3600,  # every delivery here is woken by a commit or a retry, never by the sweep
        feed_retry_attempts=2,
        feed_retry_initial_s=0.02,
        feed_retry_max_s=0.1,
        feed_timeout_s=10,
    ) as own:
        yield own


def push_to_peer(app, peer, collection_id: str) -> tuple[str, str]:
    """A push feed from ``collection_id`` into a fresh inbox of the peer (partner GBR); (name, inbox)."""
    name, inbox = f"push-{uuid.uuid4().hex[:8]}", peer.new_inbox()
    add_feed(
        app,
        name=name,
        partner=PEER_HOME,
        direction="push",
        url=f"{peer.base_url}/taxii2/",
        collection_id=inbox,
        local_collection_id=collection_id,
        auth_kind="bearer",
        credential=peer.token(),
    )
    return name, inbox


def push_to_medallion(app, medallion, collection_id: str) -> tuple[str, str]:
    """A push feed from ``collection_id`` into a fresh medallion collection (partner DEU); (name, target)."""
    name, target = f"push-{uuid.uuid4().hex[:8]}", medallion.take_push_collection()
    add_feed(
        app,
        name=name,
        partner=MEDALLION_PARTNER,
        direction="push",
        url=f"{medallion.base_url}/taxii2/",
        collection_id=target,
        local_collection_id=collection_id,
        auth_kind="basic",
        username=MEDALLION_USER,
        credential=MEDALLION_PASSWORD,
    )
    return name, target


def feed_row(app, name: str) -> Feed:
    with Session(app.state.engine) as session:
        feed = session.get(Feed, name)
        assert feed is not None
        return feed


def test_a_post_reaches_the_partner_at_once_with_only_what_it_may_see(outbox_settings, peer):
    with running(outbox_settings) as app:
        source, quiet = new_collection(app), new_collection(app)
        name, inbox = push_to_peer(app, peer, source)
        objects, releasable = mixed_batch()
        started = time.monotonic()
        post(app, source, objects)
        post(app, quiet, [indicator("No feed reads this collection")])
        # What the peer holds is exactly what TAXII would serve GBR: never the DEU, USA or home-only ones.
        expected = partner_may_see(app, source, PEER_HOME)
        assert expected == releasable["GBR"]
        wait_for(lambda: version_keys(peer.stored(inbox)) >= expected, ARRIVAL_S)
        latency = time.monotonic() - started
        print(f"push on post: post to arrival at the peer {latency * 1000:.0f} ms")
        assert version_keys(peer.stored(inbox)) == expected
        # Delivered rows go; so do the rows of a collection no push feed reads.
        wait_for(lambda: outbox_rows(app, source) == 0 and outbox_rows(app, quiet) == 0, 2)
        feed = feed_row(app, name)
        assert feed.objects_out >= len(expected) and feed.last_error is None
        # A second post goes out alone, as soon.
        later = indicator("Later green", "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da")
        post(app, source, [later])
        wait_for(lambda: version_keys(peer.stored(inbox)) == expected | version_keys([later]), ARRIVAL_S)


def test_a_partner_down_then_back_gets_every_version_once(outbox_settings, medallion):
    with running(outbox_settings) as app:
        source = new_collection(app)
        name, target = push_to_medallion(app, medallion, source)
        medallion.failer.arm(10**6, status=503)  # the partner is down
        try:
            first, releasable_first = mixed_batch()
            post(app, source, first)
            # The worker tries, fails, backs off and tries again; nothing is dropped meanwhile.
            wait_for(lambda: medallion.failer.failed >= 3 * outbox_settings.feed_retry_attempts, 5)
            second, releasable_second = mixed_batch()
            post(app, source, second)
            assert outbox_rows(app, source) == 2
            assert "503" in (feed_row(app, name).last_error or "")
        finally:
            medallion.failer.arm(0)  # back up
        expected = releasable_first["DEU"] | releasable_second["DEU"]
        assert partner_may_see(app, source, MEDALLION_PARTNER) == expected
        wait_for(lambda: version_keys(medallion.objects(target)) >= expected, 5, step=0.1)
        received = medallion.objects(target)
        assert version_keys(received) == expected
        assert len(received) == len({(o["id"], o.get("modified")) for o in received})  # nothing twice
        wait_for(lambda: outbox_rows(app, source) == 0, 2)


def test_a_status_that_is_not_final_is_tried_again(outbox_settings, peer, monkeypatch):
    """The partner accepts the envelope but its status stays pending: the versions are sent again."""
    answered: list[str] = []
    real_add = TaxiiCollection.add_objects

    def pending_first(self, envelope, **kwargs):
        if not answered:
            answered.append("pending")
            count = len(json.loads(envelope)["objects"])
            info = {"id": "stuck", "status": "pending", "total_count": count, "success_count": 0, "failure_count": 0}
            return Status(
                f"{self.url}../../status/stuck/", conn=self._conn, status_info=info | {"pending_count": count}
            )
        answered.append("sent")
        return real_add(self, envelope, **kwargs)

    monkeypatch.setattr(TaxiiCollection, "add_objects", pending_first)
    with running(outbox_settings) as app:
        source = new_collection(app)
        name, inbox = push_to_peer(app, peer, source)
        objects, releasable = mixed_batch()
        post(app, source, objects)
        wait_for(lambda: version_keys(peer.stored(inbox)) >= releasable["GBR"], 5)
        assert answered[0] == "pending" and "sent" in answered
        assert "pending" in (feed_row(app, name).last_error or "")
        assert version_keys(peer.stored(inbox)) == releasable["GBR"]
        wait_for(lambda: outbox_rows(app, source) == 0, 2)


def test_the_scheduler_holding_a_feed_delays_its_push_but_loses_nothing(outbox_settings, peer):
    """The worker and the scheduler never push one feed at once; a busy feed is tried again, not skipped."""
    with running(outbox_settings) as app:
        source = new_collection(app)
        name, inbox = push_to_peer(app, peer, source)
        objects, releasable = mixed_batch()
        with feed_lock(app.state.engine, name) as acquired:
            assert acquired
            post(app, source, objects)
            time.sleep(0.5)
            assert peer.stored(inbox) == [] and outbox_rows(app, source) == 1
        wait_for(lambda: version_keys(peer.stored(inbox)) == releasable["GBR"], ARRIVAL_S)
        wait_for(lambda: outbox_rows(app, source) == 0, 2)


def test_the_outbox_row_commits_with_the_versions_or_not_at_all(app, collection):
    """Written in the storing transaction: a rolled-back ingest leaves neither versions nor a row."""
    valid, failures = ingest.validate_all([indicator("Rolled back"), indicator("Rolled back too")])
    assert not failures

    def store(session: Session) -> None:
        ingest.store(session, collection.id, valid, submitter=HOME, mappings=app.state.mappings, home_nation=HOME)

    with Session(app.state.engine) as session:
        store(session)
        assert outbox_rows(app, collection.id) == 0  # not visible before the commit
        session.rollback()
    assert outbox_rows(app, collection.id) == 0
    with Session(app.state.engine) as session:
        assert session.execute(select(StixObject).where(StixObject.collection_id == collection.id)).first() is None
        store(session)
        session.commit()
        last_added = max(
            session.execute(select(StixObject.date_added_us).where(StixObject.collection_id == collection.id)).scalars()
        )
        rows = session.execute(select(StoredChange).where(StoredChange.collection_id == collection.id)).scalars().all()
    assert [row.date_added_us for row in rows] == [last_added]


def test_a_restart_delivers_what_was_pending(outbox_settings, peer):
    idle = outbox_settings.model_copy(update={"feed_scheduler": False})  # an app that stops before it pushes
    with running(idle) as before:
        source = new_collection(before)
        _name, inbox = push_to_peer(before, peer, source)
        objects, releasable = mixed_batch()
        post(before, source, objects)
        time.sleep(0.3)
        assert peer.stored(inbox) == [] and outbox_rows(before, source) == 1
    with running(outbox_settings) as after:  # a new app on the same database: its worker starts with the row
        wait_for(lambda: version_keys(peer.stored(inbox)) == releasable["GBR"], ARRIVAL_S)
        wait_for(lambda: outbox_rows(after, source) == 0, 2)


def test_kill_9_between_commit_and_push_loses_nothing(outbox_settings, medallion, make_token, tmp_path):
    """A server process stores a post while the partner is down, is killed with SIGKILL mid-retry, and
    the restarted server delivers every releasable version."""
    environment = {"TEARLINE_FEED_SCHEDULER": "true"}  # the hardening servers default it to false
    with running(outbox_settings.model_copy(update={"feed_scheduler": False})) as setup:
        source = new_collection(setup)
        _name, target = push_to_medallion(setup, medallion, source)
        objects, releasable = mixed_batch()
        medallion.failer.arm(10**6, status=503)
        server = ServerProcess(outbox_settings, tmp_path / "server.log", environment).start()
        try:
            headers = {"Authorization": f"Bearer {make_token()}", "Accept": TAXII, "Content-Type": TAXII}
            url = f"{server.base_url}/taxii2/{outbox_settings.api_root}/collections/{source}/objects/"
            answer = httpx.post(url, content=json.dumps({"objects": objects}), headers=headers, timeout=30)
            assert answer.status_code == 202 and answer.json()["success_count"] == len(objects), answer.text
            failed_before = medallion.failer.failed
            wait_for(lambda: medallion.failer.failed > failed_before, 5)  # the push has begun, and fails
            server.kill()
        finally:
            server.stop()
            medallion.failer.arm(0)
        assert outbox_rows(setup, source) == 1 and medallion.objects(target) == []
    restarted = ServerProcess(outbox_settings, tmp_path / "restarted.log", environment).start()
    try:
        with running(outbox_settings.model_copy(update={"feed_scheduler": False})) as check:
            wait_for(lambda: version_keys(medallion.objects(target)) == releasable["DEU"], 5, step=0.1)
            assert partner_may_see(check, source, MEDALLION_PARTNER) == releasable["DEU"]
            wait_for(lambda: outbox_rows(check, source) == 0, 2)
    finally:
        restarted.stop()


def test_kill_9_mid_push_loses_nothing(outbox_settings, medallion, make_token, tmp_path):
    """The server is killed with SIGKILL while its push is in flight (the partner holds the POST
    unanswered): the version is not taken as delivered, and the restarted server delivers every
    releasable version (at least once: the partner may also store the one in flight)."""
    environment = {"TEARLINE_FEED_SCHEDULER": "true"}
    with running(outbox_settings.model_copy(update={"feed_scheduler": False})) as setup:
        source = new_collection(setup)
        _name, target = push_to_medallion(setup, medallion, source)
        objects, releasable = mixed_batch()
        release = medallion.failer.stall_next_post()
        server = ServerProcess(outbox_settings, tmp_path / "server.log", environment).start()
        try:
            headers = {"Authorization": f"Bearer {make_token()}", "Accept": TAXII, "Content-Type": TAXII}
            url = f"{server.base_url}/taxii2/{outbox_settings.api_root}/collections/{source}/objects/"
            answer = httpx.post(url, content=json.dumps({"objects": objects}), headers=headers, timeout=30)
            assert answer.status_code == 202 and answer.json()["success_count"] == len(objects), answer.text
            assert medallion.failer.stalled.wait(10), "the push did not start"
            server.kill()
        finally:
            server.stop()
            release.set()
        assert outbox_rows(setup, source) == 1  # not acknowledged: still owed
    restarted = ServerProcess(outbox_settings, tmp_path / "restarted.log", environment).start()
    try:
        with running(outbox_settings.model_copy(update={"feed_scheduler": False})) as check:
            wait_for(lambda: version_keys(medallion.objects(target)) == releasable["DEU"], 5, step=0.1)
            wait_for(lambda: outbox_rows(check, source) == 0, 2)
    finally:
        restarted.stop()
