"""Push feeds and disclosure review: a held item is never pushed; released, it goes with the next run."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session

from app.feeds.sync import run_feed
from app.taxii import service as taxii_service
from tests.conftest import HOME
from tests.disclosure.conftest import review_app, review_policies
from tests.feeds.conftest import statement
from tests.feeds.test_push import ANALYST, add_medallion_push
from tests.taxii.helpers import indicator

__all__ = ["review_app", "review_policies"]


def test_a_held_item_is_pushed_only_once_released(medallion, review_app, ctx, collection, feed_name, auth):
    definition = statement("UNCLASSIFIED//REL TO DEU")
    held = indicator() | {"object_marking_refs": [definition["id"]]}
    with Session(review_app.state.engine) as session:
        status = taxii_service.add_objects(
            session, collection.id, ANALYST, [definition, held], mappings=review_app.state.mappings, home_nation=HOME
        )
        assert status.failure_count == 0, status.details
        target = add_medallion_push(session, ctx, medallion, feed_name, collection.id)
    assert run_feed(ctx, feed_name).status == "ok"
    assert held["id"] not in {o["id"] for o in medallion.objects(target)}

    officer = auth(subject="officer-push", roles=("officer",))
    with TestClient(review_app) as client:
        queue = client.get("/api/v1/disclosure/queue", headers=officer, params={"collection": collection.id}).json()
        (review,) = [r for r in queue["reviews"] if r["object_id"] == held["id"]]
        answer = client.post(
            "/api/v1/disclosure/decisions",
            headers=officer,
            json={"reviews": [review["id"]], "action": "release", "reason": "cleared for DEU"},
        )
        assert answer.status_code == 200, answer.text
    assert run_feed(ctx, feed_name).status == "ok"
    assert held["id"] in {o["id"] for o in medallion.objects(target)}
