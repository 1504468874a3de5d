"""The auditor's live view, ``GET /api/v1/audit/live``: records as they are written, to auditors only.

A served app instance on the session database (event streams need a real server); every check
reads the stream as a client would, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from app.config.settings import Settings
from tests.conftest import TAXII
from tests.live.conftest import EVENT_STREAM, Instance, open_stream, serve
from tests.taxii.helpers import envelope, indicator
from tests.taxii.test_releasability import banner, marked

LATENCY_S = 1.0  # the auditor sees what went to whom within a second


@pytest.fixture(scope="module")
def served(app, settings: Settings) -> Iterator[Instance]:
    """An instance of its own (its commits wake its views), with a quick token re-check."""
    with serve(settings.model_copy(update={"live_recheck_seconds": 0.5, "live_keepalive_seconds": 0.5})) as instance:
        yield instance


def _live_url(instance: Instance) -> str:
    return f"{instance.base_url}/api/v1/audit/live"


def _auditor(auth, **claims) -> dict[str, str]:
    return auth(subject="auditor-live", roles=("auditor",), **claims) | {"Accept": EVENT_STREAM}


def _post(instance: Instance, auth, collection_id: str, objects: list[dict]) -> None:
    response = httpx.post(
        instance.objects_url(collection_id),
        headers=auth() | {"Content-Type": TAXII},
        content=envelope(objects),
        timeout=30,
    )
    assert response.status_code == 202 and response.json()["failure_count"] == 0, response.text


def _pull(instance: Instance, headers: dict, collection_id: str) -> httpx.Response:
    response = httpx.get(instance.objects_url(collection_id), headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    return response


def test_auditor_sees_what_went_to_whom_within_a_second(served, auth, collection):
    rel_usa = banner("SECRET//REL TO USA")
    shown = marked(indicator(), rel_usa)
    _post(served, auth, collection.id, [rel_usa, shown])
    subject = f"usa-{uuid.uuid4().hex[:6]}"
    usa = auth(subject=subject, nation="USA", roles=("partner",))
    with open_stream(_live_url(served), _auditor(auth), params={"nation": "USA"}) as stream:
        assert stream.status == 200
        pulled = _pull(served, usa, collection.id)
        arrived = time.monotonic()
        event = stream.next(timeout=5)
        latency = time.monotonic() - arrived
    assert latency < LATENCY_S, f"record after {latency:.2f} s"
    record = event.json()
    assert event.event == "record" and event.id == str(record["seq"])
    assert (record["subject"], record["nation"], record["decision"]) == (subject, "USA", "allow")
    assert record["route"] == f"/taxii2/{served.settings.api_root}/collections/{collection.id}/objects/"
    assert record["collection_id"] == collection.id and record["recipient_nation"] == "USA"
    assert {item["id"] for item in record["served"]} == {o["id"] for o in pulled.json()["objects"]}
    assert {shown["id"], rel_usa["id"]} <= {item["id"] for item in record["served"]}


@pytest.mark.parametrize(
    "claims",
    [{"nation": "USA", "roles": ("partner",), "subject": "usa-live"}, {"roles": ("analyst",)}],
    ids=["partner", "analyst"],
)
def test_only_auditors_may_watch(served, auth, claims):
    refused = httpx.get(_live_url(served), headers=auth(**claims) | {"Accept": EVENT_STREAM}, timeout=10)
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["detail"] == "This requires the right to read audit."
    assert httpx.get(_live_url(served), headers={"Accept": EVENT_STREAM}, timeout=10).status_code == 401


def test_resume_by_last_event_id_loses_nothing_and_repeats_nothing(served, auth, collection):
    watch = {"subject": f"gbr-{uuid.uuid4().hex[:6]}"}
    gbr = auth(subject=watch["subject"], nation="GBR", roles=("partner",))
    with open_stream(_live_url(served), _auditor(auth), params=watch) as stream:
        _pull(served, gbr, collection.id)
        first = stream.next()
    for _ in range(3):  # while nobody watches
        _pull(served, gbr, collection.id)
    resumed_from = _auditor(auth) | {"Last-Event-ID": first.id}
    with open_stream(_live_url(served), resumed_from, params=watch) as stream:
        caught_up = [stream.next() for _ in range(3)]
        assert stream.none_within(0.5)
        _pull(served, gbr, collection.id)
        later = stream.next()
    seqs = [int(e.id) for e in [first, *caught_up, later]]
    assert seqs == sorted(set(seqs)), seqs
    assert {e.json()["subject"] for e in caught_up} == {watch["subject"]}

    bad = httpx.get(_live_url(served), headers=_auditor(auth) | {"Last-Event-ID": "seven"}, timeout=10)
    assert bad.status_code == 400 and bad.headers["content-type"].startswith("application/problem+json")


def test_a_client_that_does_not_ask_for_a_stream_is_not_left_waiting(served, auth):
    # An endless answer to `Accept: */*` (a JSON client sent here by mistake) would never return.
    for accept in ("*/*", "application/json", "text/*"):
        refused = httpx.get(_live_url(served), headers=_auditor(auth) | {"Accept": accept}, timeout=10)
        assert refused.status_code == 406, accept
        assert refused.headers["content-type"].startswith("application/problem+json")


def test_the_view_closes_when_the_token_expires(served, auth):
    with open_stream(_live_url(served), _auditor(auth, lifetime_s=2), params={"nation": "ZZZ"}) as stream:
        closing = stream.next(timeout=6)
    assert closing.event == "close" and closing.json() == {"reason": "the token is no longer valid"}
