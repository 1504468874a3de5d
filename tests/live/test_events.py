"""The events endpoint as partners use it: what arrives, how fast, what never does, and resuming.

Every check compares the stream with what ``GET .../objects/`` serves the same principal, so the
stream can serve neither more nor less than TAXII.
"""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest
from sqlalchemy import text
from sqlmodel import Session

from app.partners.models import Partner
from tests.conftest import TAXII
from tests.live.conftest import EVENT_STREAM, Instance, open_stream, serve
from tests.taxii.helpers import envelope, indicator, malware, stix_time, taxii_time
from tests.taxii.test_releasability import banner, marked

LATENCY_S = 1.0  # the promise: a partner learns of what it may see within a second


def _headers(auth, **claims) -> dict[str, str]:
    return auth(**claims) | {"Accept": EVENT_STREAM}


def _post(instance: Instance, auth, collection_id: str, objects: list[dict]) -> None:
    response = httpx.post(
        instance.objects_url(collection_id),
        headers=auth() | {"Content-Type": TAXII},
        content=envelope(objects),
        timeout=30,
    )
    assert response.status_code == 202, response.text
    assert response.json()["failure_count"] == 0, response.text


def _objects(instance: Instance, headers: dict, collection_id: str, **params: str) -> list[dict]:
    """What a TAXII pull serves this principal (every page)."""
    served, query = [], dict(params)
    while True:
        response = httpx.get(
            instance.objects_url(collection_id), headers=headers | {"Accept": TAXII}, params=query, timeout=30
        )
        assert response.status_code == 200, response.text
        body = response.json()
        served += body.get("objects", [])
        if not body.get("more"):
            return served
        query = params | {"next": body["next"]}


def _received(stream, count: int, timeout: float = 3.0) -> list[dict]:
    objects: list[dict] = []
    while len(objects) < count:
        event = stream.next(timeout)
        assert event.event == "objects", (event.event, event.data)
        objects += event.json()["objects"]
    return objects


@pytest.fixture
def fra(auth) -> dict[str, str]:
    return _headers(auth, subject="fra-live", nation="FRA", roles=("partner",))


def test_partner_receives_what_it_may_see_within_a_second_and_nothing_else(instance, auth, collection, fra):
    rel_fra, rel_usa = banner("CONFIDENTIAL//REL TO USA, FRA"), banner("SECRET//REL TO USA")
    with open_stream(instance.events_url(collection.id), fra) as stream:
        assert stream.status == 200
        hidden = marked(indicator(), rel_usa)
        _post(instance, auth, collection.id, [rel_usa, hidden])
        assert stream.none_within(0.8), "a version FRA may not see produced an event"
        shown = marked(indicator(), rel_fra)
        posted = time.monotonic()
        _post(instance, auth, collection.id, [rel_fra, shown])
        event = stream.next(timeout=5)
        latency = time.monotonic() - posted
    assert latency < LATENCY_S, f"event after {latency:.2f} s"
    streamed = event.json()["objects"]
    pulled = _objects(instance, fra, collection.id)
    assert {o["id"] for o in streamed} == {shown["id"], rel_fra["id"]} == {o["id"] for o in pulled}
    assert sorted(streamed, key=lambda o: o["id"]) == sorted(pulled, key=lambda o: o["id"])
    assert hidden["id"] not in event.data and rel_usa["id"] not in event.data


def test_granular_redaction_and_reference_closure_apply_as_on_taxii(instance, auth, collection, fra):
    rel_fra, rel_usa = banner("CONFIDENTIAL//REL TO USA, FRA"), banner("SECRET//REL TO USA")
    secret_malware = marked(malware(), rel_usa)
    redacted = indicator(
        object_marking_refs=[rel_fra["id"]],
        granular_markings=[{"marking_ref": rel_usa["id"], "selectors": ["description"]}],
    )
    report = {
        "type": "report",
        "spec_version": "2.1",
        "id": f"report--{uuid.uuid4()}",
        "created": stix_time(),
        "modified": stix_time(),
        "name": "two findings",
        "published": stix_time(),
        "object_refs": [redacted["id"], secret_malware["id"]],
        "object_marking_refs": [rel_fra["id"]],
    }
    with open_stream(instance.events_url(collection.id), fra) as stream:
        _post(instance, auth, collection.id, [rel_fra, rel_usa, secret_malware, redacted, report])
        streamed = _received(stream, 3)
    pulled = _objects(instance, fra, collection.id)
    assert sorted(streamed, key=lambda o: o["id"]) == sorted(pulled, key=lambda o: o["id"])
    by_id = {o["id"]: o for o in streamed}
    assert "description" not in by_id[redacted["id"]]
    assert by_id[report["id"]]["object_refs"] == [redacted["id"]]
    assert secret_malware["id"] not in str(streamed)


def test_resume_with_last_event_id_loses_nothing_and_repeats_nothing(instance, auth, collection, fra):
    rel_fra = banner("CONFIDENTIAL//REL TO FRA")
    first = marked(indicator(), rel_fra)
    with open_stream(instance.events_url(collection.id), fra) as stream:
        _post(instance, auth, collection.id, [rel_fra, first])
        event = stream.next()
    missed = [marked(indicator(), rel_fra) for _ in range(3)]
    _post(instance, auth, collection.id, missed[:2])
    _post(instance, auth, collection.id, missed[2:])
    with open_stream(instance.events_url(collection.id), fra | {"Last-Event-ID": event.id}) as stream:
        resumed = _received(stream, 3)
        assert stream.none_within(0.5)
    assert [o["id"] for o in resumed] == [o["id"] for o in missed]


def test_added_after_goes_from_a_pull_to_the_stream_without_a_hole(instance, auth, collection, fra):
    rel_fra = banner("CONFIDENTIAL//REL TO FRA")
    early = [rel_fra, marked(indicator(), rel_fra)]
    _post(instance, auth, collection.id, early)
    pull = httpx.get(instance.objects_url(collection.id), headers=fra | {"Accept": TAXII}, timeout=30)
    last = pull.headers["X-TAXII-Date-Added-Last"]
    late = [marked(indicator(), rel_fra) for _ in range(2)]
    _post(instance, auth, collection.id, late)  # between the pull and the stream
    with open_stream(instance.events_url(collection.id), fra, params={"added_after": last}) as stream:
        caught_up = _received(stream, 2)
        later = marked(indicator(), rel_fra)
        _post(instance, auth, collection.id, [later])
        live = _received(stream, 1)
    assert [o["id"] for o in caught_up + live] == [o["id"] for o in [*late, later]]


def test_a_cursor_serves_only_the_principal_and_collection_it_was_made_for(instance, auth, collection, fra):
    rel = banner("CONFIDENTIAL//REL TO FRA, DEU")
    with open_stream(instance.events_url(collection.id), fra) as stream:
        _post(instance, auth, collection.id, [rel, marked(indicator(), rel)])
        cursor = stream.next().id
    deu = _headers(auth, subject="deu-live", nation="DEU", roles=("partner",))
    response = httpx.get(instance.events_url(collection.id), headers=deu | {"Last-Event-ID": cursor}, timeout=10)
    assert response.status_code == 400 and response.headers["content-type"].startswith("application/taxii+json")
    tampered = cursor[:-4] + ("AAAA" if not cursor.endswith("AAAA") else "BBBB")
    response = httpx.get(instance.events_url(collection.id), headers=fra | {"Last-Event-ID": tampered}, timeout=10)
    assert response.status_code == 400


def test_refusals_read_the_same_for_hidden_and_absent_collections(instance, auth, session: Session, fra):
    from app.taxii import service as taxii_service

    analysts_only = taxii_service.create_collection(
        session, title=f"home only {uuid.uuid4().hex[:6]}", read_roles={"analyst"}, write_roles={"analyst"}
    )
    hidden = httpx.get(instance.events_url(analysts_only.id), headers=fra, timeout=10)
    absent = httpx.get(instance.events_url(str(uuid.uuid4())), headers=fra, timeout=10)
    assert hidden.status_code == absent.status_code == 404
    assert hidden.json()["description"] == absent.json()["description"]
    assert analysts_only.id not in hidden.text
    no_token = httpx.get(instance.events_url(analysts_only.id), headers={"Accept": EVENT_STREAM}, timeout=10)
    assert no_token.status_code == 401
    wrong_accept = httpx.get(instance.events_url(analysts_only.id), headers=fra | {"Accept": "image/png"}, timeout=10)
    assert wrong_accept.status_code == 406


def test_each_event_is_audited_with_what_it_served(instance, auth, collection, fra):
    rel_fra = banner("CONFIDENTIAL//REL TO FRA")
    shown = marked(indicator(), rel_fra)
    with open_stream(instance.events_url(collection.id), fra) as stream:
        _post(instance, auth, collection.id, [rel_fra, shown])
        stream.next()
    with Session(instance.app.state.audit_engine) as session:
        rows = session.execute(
            text(
                "SELECT r.subject, r.nation, s.pairs FROM audit_record r "
                "JOIN audit_served s ON s.record_seq = r.seq WHERE r.collection_id = :c AND r.reason = 'live event'"
            ),
            {"c": collection.id},
        ).all()
    received = {(subject, nation, pair[0]) for subject, nation, pairs in rows for pair in json.loads(pairs)}
    assert received == {("fra-live", "FRA", shown["id"]), ("fra-live", "FRA", rel_fra["id"])}


def _comments_within(url: str, headers: dict[str, str], seconds: float = 3, wanted: int = 2) -> int:
    """Comment lines an idle stream sends within ``seconds`` (stopping at ``wanted``)."""
    with (
        httpx.Client(timeout=httpx.Timeout(10, read=5)) as client,
        client.stream("GET", url, headers=headers) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(EVENT_STREAM)
        started, comments = time.monotonic(), 0
        for line in response.iter_lines():
            if line.startswith(":"):
                comments += 1
            if comments >= wanted or time.monotonic() - started > seconds:
                break
    return comments


def test_keep_alive_comments_flow_on_an_idle_stream(instance, collection, fra):
    assert _comments_within(instance.events_url(collection.id), fra) >= 2


def test_keep_alives_flow_when_they_are_rarer_than_the_rechecks(live_settings, collection, fra):
    """Production defaults keep alive every 15 s and re-check every 5 s: the comments must not wait for
    an idle period longer than the re-check, which never comes."""
    faster_rechecks = live_settings.model_copy(update={"live_recheck_seconds": 0.1, "live_keepalive_seconds": 0.35})
    with serve(faster_rechecks) as served:
        assert _comments_within(served.events_url(collection.id), fra) >= 2


def test_deactivating_a_partner_closes_its_streams_within_seconds(instance, auth, collection, session: Session):
    headers = _headers(auth, subject="can-live", nation="CAN", roles=("partner",))
    with open_stream(instance.events_url(collection.id), headers) as stream:
        partner = session.get(Partner, "CAN")
        partner.active = False
        session.add(partner)
        session.commit()
        try:
            closing = stream.next(timeout=5)
            assert closing.event == "close" and "no longer admitted" in closing.json()["reason"]
            assert stream.ended.wait(5)
        finally:
            partner.active = True
            session.add(partner)
            session.commit()


def test_revoking_a_token_closes_its_streams_within_seconds(instance, auth, collection, session: Session):
    from app.auth.revocation import revoke_subject

    subject = f"fra-revoked-{uuid.uuid4().hex[:6]}"
    with open_stream(
        instance.events_url(collection.id), _headers(auth, subject=subject, nation="FRA", roles=("partner",))
    ) as stream:
        revoke_subject(session, subject, revoked_by="test")
        session.commit()
        closing = stream.next(timeout=5)
        assert closing.event == "close" and "no longer admitted" in closing.json()["reason"]
        assert stream.ended.wait(5)


def test_streams_per_principal_are_limited(live_settings, auth, collection):
    from tests.live.conftest import serve

    settings = live_settings.model_copy(update={"live_max_streams_per_principal": 1})
    headers = _headers(auth, subject="gbr-live", nation="GBR", roles=("partner",))
    with serve(settings) as limited, open_stream(limited.events_url(collection.id), headers) as first:
        assert first.status == 200
        second = httpx.get(limited.events_url(collection.id), headers=headers, timeout=10)
        assert second.status_code == 429 and "Retry-After" in second.headers
        other = _headers(auth, subject="gbr-other", nation="GBR", roles=("partner",))
        with open_stream(limited.events_url(collection.id), other) as third:
            assert third.status == 200


def test_a_post_on_one_instance_reaches_a_stream_on_another(instance, live_settings, auth, collection, fra):
    if not live_settings.database_url.startswith("postgresql"):
        pytest.skip("instances share a database only on PostgreSQL (SQLite wakes streams in-process)")
    from tests.live.conftest import serve

    slow = live_settings.model_copy(update={"live_recheck_seconds": 30})  # only a notification can wake it in time
    rel_fra = banner("CONFIDENTIAL//REL TO FRA")
    shown = marked(indicator(), rel_fra)
    with serve(slow) as other, open_stream(other.events_url(collection.id), fra) as stream:
        time.sleep(0.5)  # the first stream starts the instance's listener; let it connect
        posted = time.monotonic()
        _post(instance, auth, collection.id, [rel_fra, shown])
        event = stream.next(timeout=5)
        latency = time.monotonic() - posted
    assert shown["id"] in event.data
    assert latency < LATENCY_S, f"event on the other instance after {latency:.2f} s"


def test_unknown_parameters_are_refused(instance, collection, fra):
    response = httpx.get(instance.events_url(collection.id), headers=fra, params={"match[type]": "x"}, timeout=10)
    assert response.status_code == 400
    response = httpx.get(
        instance.events_url(collection.id), headers=fra, params={"added_after": "yesterday"}, timeout=10
    )
    assert response.status_code == 400


def test_times_are_taxii_times(instance, auth, collection, fra):
    """The stream's objects carry the posted timestamps (a sanity check that the envelope is the stored JSON)."""
    rel_fra = banner("CONFIDENTIAL//REL TO FRA")
    shown = marked(indicator(), rel_fra)
    with open_stream(instance.events_url(collection.id), fra) as stream:
        _post(instance, auth, collection.id, [rel_fra, shown])
        objects = _received(stream, 2)
    streamed = {o["id"]: o for o in objects}[shown["id"]]
    assert taxii_time(streamed["modified"]) == taxii_time(shown["modified"])
