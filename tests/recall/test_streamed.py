"""A recall notice reaches a partner's open event stream at once, and nothing of the tightening does."""

from __future__ import annotations

import time

import httpx

from tests.conftest import TAXII
from tests.live.conftest import EVENT_STREAM, open_stream
from tests.recall.helpers import RECALL_EXTENSION
from tests.taxii.helpers import envelope, indicator, new_version
from tests.taxii.test_releasability import banner, marked

LATENCY_S = 1.0


def _post(instance, auth, collection_id: str, objects: list[dict]) -> None:
    response = httpx.post(
        instance.objects_url(collection_id),
        headers=auth() | {"Content-Type": TAXII},
        content=envelope(objects),
        timeout=30,
    )
    assert response.status_code == 202 and response.json()["failure_count"] == 0, response.text


def test_notice_is_streamed_within_a_second(instance, auth, collection):
    fra = auth(subject="fra-recall-live", nation="FRA", roles=("partner",)) | {"Accept": EVENT_STREAM}
    wide, home_only = banner("UNCLASSIFIED//REL TO FRA"), banner("UNCLASSIFIED")
    item = marked(indicator(), wide)
    with open_stream(instance.events_url(collection.id), fra) as stream:
        _post(instance, auth, collection.id, [wide, item])
        received = [o["id"] for o in stream.next().json()["objects"]]
        assert item["id"] in received
        posted = time.monotonic()
        _post(instance, auth, collection.id, [home_only, marked(new_version(item, 1, name="tightened"), home_only)])
        event = stream.next(timeout=5)
        elapsed = time.monotonic() - posted
        objects = event.json()["objects"]
        notices = [o for o in objects if o["type"] == "note"]
        assert len(notices) == 1 and notices[0]["extensions"][RECALL_EXTENSION]["recalled_object"] == item["id"]
        assert {o["type"] for o in objects} <= {"note", "marking-definition"}  # nothing of the new version
        assert "tightened" not in event.data
        assert elapsed < LATENCY_S, f"the notice took {elapsed:.2f} s"
