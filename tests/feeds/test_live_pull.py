"""Live pull: a pull feed from another Tearline follows its event stream; other servers are polled.

A post on the peer Tearline reaches the local collection within a couple of seconds although the
feed's poll interval is an hour (so no scheduled run could have brought it), through the normal
pull (the peer's TAXII filtering, this store's provenance and the feed's cursor). Medallion has no
event stream: its feed is polled on schedule. A lost stream is reopened with ``Last-Event-ID``.
"""

from __future__ import annotations

import time
import uuid

import pytest
import requests
from sqlalchemy import select
from sqlmodel import Session

from app.auth.principal import Principal
from app.feeds.models import Feed
from app.items.models import StixObject
from app.taxii import service as taxii_service
from tests.feeds.conftest import (
    MEDALLION_PARTNER,
    MEDALLION_PASSWORD,
    MEDALLION_ROOT,
    MEDALLION_USER,
    PEER_HOME,
    TLP_GREEN,
    indicator,
    statement,
)
from tests.feeds.live_support import add_feed, new_collection, own_database, running, wait_for

pytestmark = pytest.mark.e2e
ARRIVAL_S = 2.0
PEER_ANALYST = Principal("gbr-analyst", PEER_HOME, frozenset({"analyst"}), 4, frozenset(), is_home=True)


@pytest.fixture(scope="module")
def live_settings(settings, tmp_path_factory):
    """A database of this module's own; feed workers on, the scheduler looking for due feeds often."""
    with own_database(
        settings,
        tmp_path_factory,
        "live-pull",
        feed_scheduler=True,
        feed_scheduler_tick_s=0.2,
        feed_push_on_post=False,
        feed_retry_attempts=2,
        feed_retry_initial_s=0.5,  # a lost stream is reopened after half a second
        feed_retry_max_s=1,
        feed_timeout_s=10,
    ) as own:
        yield own


def peer_post(peer, collection_id: str, objects: list[dict]) -> None:
    with peer.session() as session:
        status = taxii_service.add_objects(
            session, collection_id, PEER_ANALYST, objects, mappings=peer.app.state.mappings, home_nation=PEER_HOME
        )
        assert status.failure_count == 0, status.details


def stored(app, collection_id: str) -> dict[str, str]:
    """Object id -> submitter of every version in the local collection."""
    with Session(app.state.engine) as session:
        rows = session.execute(
            select(StixObject.object_id, StixObject.submitter).where(StixObject.collection_id == collection_id)
        )
        return dict(rows.all())


def feed_row(app, name: str) -> Feed:
    with Session(app.state.engine) as session:
        feed = session.get(Feed, name)
        assert feed is not None
        return feed


def test_a_post_on_a_peer_tearline_arrives_at_once_and_medallion_is_still_polled(live_settings, peer, medallion):
    with peer.session() as session:
        shared = taxii_service.create_collection(
            session,
            title=f"GBR live {uuid.uuid4().hex[:8]}",
            read_roles={"partner", "analyst"},
            write_roles={"analyst"},
        ).id
    to_nld, to_usa = statement("CONFIDENTIAL//REL TO NLD"), statement("SECRET//REL TO USA")
    peer_post(peer, shared, [to_nld, to_usa, indicator("Before the stream", to_nld["id"])])
    source = medallion.take_push_collection()  # an empty medallion collection to poll
    suffix = uuid.uuid4().hex[:8]
    live, polled = f"live-{suffix}", f"polled-{suffix}"
    with running(live_settings.model_copy(update={"feed_scheduler": False})) as setup:
        local = new_collection(setup)
        add_feed(
            setup,
            name=live,
            partner=PEER_HOME,
            direction="pull",
            url=f"{peer.base_url}/taxii2/",
            collection_id=shared,
            local_collection_id=local,
            auth_kind="bearer",
            credential=peer.token(),
            poll_interval_s=3600,  # no scheduled run within the test after the first
        )
        add_feed(
            setup,
            name=polled,
            partner=MEDALLION_PARTNER,
            direction="pull",
            url=f"{medallion.base_url}/taxii2/",
            collection_id=source,
            local_collection_id=local,
            auth_kind="basic",
            username=MEDALLION_USER,
            credential=MEDALLION_PASSWORD,
            poll_interval_s=1,
        )

    with running(live_settings) as app:
        manager = app.state.feed_live_pull
        wait_for(lambda: manager.modes() == {live: "live", polled: "polled"}, 5)
        follower = manager.follower(live)
        assert follower is not None
        wait_for(lambda: stored(app, local).keys() >= {to_nld["id"]}, 3)  # the first pull, on opening

        # A post on the peer: only what NLD may see comes, within a couple of seconds.
        released, withheld = indicator("Live for NLD", to_nld["id"]), indicator("Live for USA", to_usa["id"])
        attempts_before = feed_row(app, live).last_attempt_us
        started = time.monotonic()
        peer_post(peer, shared, [released, withheld])
        wait_for(lambda: released["id"] in stored(app, local), ARRIVAL_S)
        print(f"live pull: post on the peer to stored here {(time.monotonic() - started) * 1000:.0f} ms")
        assert stored(app, local)[released["id"]] == PEER_HOME  # stored as the peer's submission
        assert withheld["id"] not in stored(app, local) and to_usa["id"] not in stored(app, local)
        feed = feed_row(app, live)
        assert feed.last_attempt_us != attempts_before and feed.objects_in >= 2 and feed.cursor_us is not None

        # The stream is cut; what is posted meanwhile comes as an event once it resumes by Last-Event-ID.
        assert follower.last_event_id is not None and follower.connections == 1
        events = follower.events
        follower.cut()
        meanwhile = indicator("Posted while cut off", to_nld["id"])
        peer_post(peer, shared, [meanwhile])
        wait_for(lambda: follower.connections == 2 and meanwhile["id"] in stored(app, local), 5)
        # Its event came after the reopening: only a resume from the cursor replays it (a fresh stream
        # starts after what the collection holds).
        wait_for(lambda: follower.events == events + 1, 2)

        # Medallion has no event stream (404): polled on its one-second schedule.
        polled_object = indicator("Green from DEU", TLP_GREEN)
        answer = requests.post(
            f"{medallion.base_url}/{MEDALLION_ROOT}/collections/{source}/objects/",
            json={"objects": [polled_object]},
            auth=(MEDALLION_USER, MEDALLION_PASSWORD),
            headers={
                "Accept": "application/taxii+json;version=2.1",
                "Content-Type": "application/taxii+json;version=2.1",
            },
            timeout=10,
        )
        assert answer.status_code == 202, answer.text
        wait_for(lambda: polled_object["id"] in stored(app, local), 4)
        assert manager.modes()[polled] == "polled"
