"""A release reaches live subscribers at once; a held item produces no event."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.config.settings import Settings
from tests.disclosure.helpers import post_marked_http
from tests.live.conftest import Instance, open_stream, serve


@pytest.fixture(scope="module")
def reviewed(settings: Settings, review_policies: Path, app) -> Iterator[Instance]:
    """The review rules' app, served, with quick re-checks (``app`` first: it registers the partners)."""
    changes = {"policies_dir": review_policies, "live_recheck_seconds": 0.5, "live_keepalive_seconds": 0.3}
    with serve(settings.model_copy(update=changes)) as served:
        yield served


def test_a_release_reaches_an_open_stream_and_a_held_post_sends_nothing(reviewed, collection, who):
    analyst, officer, usa = who("analyst"), who("officer", "officer-live"), who("partner", "usa-live", nation="USA")
    with open_stream(reviewed.events_url(collection.id), usa) as stream:
        assert stream.status == 200, stream.error_body
        item = post_marked_http(reviewed, collection.id, analyst, "CONFIDENTIAL//REL TO USA")
        assert stream.none_within(1.0), "a held item produced an event"
        queue = httpx.get(f"{reviewed.base_url}/api/v1/disclosure/queue", headers=officer).json()
        (review,) = [r for r in queue["reviews"] if r["object_id"] == item["id"]]
        answer = httpx.post(
            f"{reviewed.base_url}/api/v1/disclosure/decisions",
            headers=officer,
            json={"reviews": [review["id"]], "action": "release", "reason": "cleared"},
        )
        assert answer.status_code == 200, answer.text
        event = stream.next(timeout=3)
        assert item["id"] in {o["id"] for o in json.loads(event.data)["objects"]}
