"""End to end with the reference TAXII 2.1 client (taxii2-client) against a live server process.

An analyst pushes ~250 STIX objects built with the stix2 library; a partner discovers the
collection and pulls every page of objects and of the manifest, and gets back exactly the
latest version of everything pushed, each object valid STIX 2.1.
"""

from __future__ import annotations

import itertools
import json
import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import requests
import stix2
from sqlmodel import Session
from stix2validator import ValidationOptions, validate_instance
from taxii2client.common import TokenAuth
from taxii2client.v21 import ApiRoot, Collection, Server, Status, as_pages

from app.auth.keys import generate_key_pair
from app.auth.tokens import issue_token
from app.db.timestamps import parse_us

# The analyst authenticates with Bearer, the partner with taxii2-client's own TokenAuth ("Token"),
# so both schemes are covered.
from app.feeds.client import BearerAuth
from app.items.identity import home_identity_id
from app.taxii import service as taxii_service

pytestmark = pytest.mark.e2e

TAXII = "application/taxii+json;version=2.1"
CREATED = datetime(2025, 2, 1, 9, 30, tzinfo=UTC)


@dataclass(frozen=True)
class Pushed:
    collection_id: str
    objects: list[dict]  # every version pushed, in push order
    latest: dict[str, dict]  # id -> latest version
    multi_version_id: str  # an object pushed in three versions
    status: Status


def _corpus() -> tuple[list[dict], dict[str, dict], str]:
    """~250 TLP:GREEN objects from one identity: indicators, malware, relationships, new versions."""
    green = [stix2.TLP_GREEN]
    # The analyst authors as the home nation's identity (attribution: created_by_ref names the originator).
    identity = stix2.Identity(
        id=home_identity_id("NLD"),
        name="NLD national CERT",
        identity_class="organization",
        created=CREATED,
        modified=CREATED,
        object_marking_refs=green,
    )
    common = {"created_by_ref": identity, "created": CREATED, "modified": CREATED, "object_marking_refs": green}
    indicators = [
        stix2.Indicator(
            name=f"C2 address {n}",
            pattern=f"[ipv4-addr:value = '198.51.{n // 250}.{n % 250}']",
            pattern_type="stix",
            valid_from=CREATED,
            indicator_types=["malicious-activity"],
            **common,
        )
        for n in range(80)
    ]
    malware = [
        stix2.Malware(name=f"family-{n}", is_family=True, malware_types=["remote-access-trojan"], **common)
        for n in range(40)
    ]
    relationships = [
        stix2.Relationship(indicator, "indicates", malware[n % len(malware)], **common)
        for n, indicator in enumerate(indicators)
    ]
    later = [CREATED + timedelta(days=1), CREATED + timedelta(days=2, milliseconds=250)]
    newer_indicators = [i.new_version(modified=later[0], confidence=80) for i in indicators[:20]]
    malware_v2 = [m.new_version(modified=later[0], description="seen again") for m in malware[:10]]
    malware_v3 = [m.new_version(modified=later[1], aliases=[f"alias-{n}"]) for n, m in enumerate(malware_v2)]

    pushed = [identity, *indicators, *malware, *relationships, *newer_indicators, *malware_v2, *malware_v3]
    objects = [json.loads(o.serialize()) for o in pushed]
    latest: dict[str, dict] = {}
    for obj in objects:
        if obj["id"] not in latest or parse_us(obj["modified"]) > parse_us(latest[obj["id"]]["modified"]):
            latest[obj["id"]] = obj
    return objects, latest, malware[0].id


@pytest.fixture(scope="module")
def taxii_root(live_server: str, settings) -> str:
    return f"{live_server}/taxii2/{settings.api_root}/"


@pytest.fixture(scope="module")
def analyst_token(make_token) -> str:
    return make_token(subject="analyst-e2e")


@pytest.fixture(scope="module")
def partner_token(make_token) -> str:
    return make_token(subject="usa-e2e", nation="USA", roles=("partner",))


@pytest.fixture(scope="module")
def pushed(app, taxii_root: str, analyst_token: str) -> Pushed:
    """A fresh collection, filled by an analyst through taxii2-client in one envelope."""
    with Session(app.state.engine) as session:
        collection_id = taxii_service.create_collection(
            session, title=f"e2e {uuid.uuid4().hex[:8]}", read_roles={"partner", "analyst"}, write_roles={"analyst"}
        ).id
    objects, latest, multi_version_id = _corpus()
    with ApiRoot(taxii_root, auth=BearerAuth(analyst_token)) as api_root:
        collection = next(c for c in api_root.collections if c.id == collection_id)
        assert collection.can_write is True
        status = collection.add_objects({"objects": objects}, wait_for_completion=True)
    return Pushed(collection_id, objects, latest, multi_version_id, status)


def _partner_collection(live_server: str, token: str, collection_id: str) -> Collection:
    """Discovery -> API roots -> collections, as a partner's client finds a collection."""
    server = Server(f"{live_server}/taxii2/", auth=TokenAuth(token))
    assert server.title
    found = [c for root in server.api_roots for c in root.collections if c.id == collection_id]
    assert len(found) == 1
    collection = found[0]
    assert (collection.can_read, collection.can_write) == (True, False)
    return collection


def _assert_valid_stix(obj: dict) -> None:
    result = validate_instance(obj, ValidationOptions(version="2.1"))
    assert result.is_valid, (obj["id"], [str(error) for error in result.errors])


def test_analyst_push_completes(pushed: Pushed, taxii_root: str, analyst_token: str):
    assert 240 <= len(pushed.objects) <= 260
    assert len(pushed.latest) < len(pushed.objects)  # some objects came in several versions
    status = pushed.status
    assert status.status == "complete"
    assert (status.total_count, status.success_count, status.failure_count, status.pending_count) == (
        len(pushed.objects),
        len(pushed.objects),
        0,
        0,
    )
    assert sorted((s["id"], parse_us(s["version"])) for s in status.successes) == sorted(
        (o["id"], parse_us(o["modified"])) for o in pushed.objects
    )
    assert status.failures == [] and status.pendings == []

    # Polling the status resource, as the client does for a pending request.
    with ApiRoot(taxii_root, auth=BearerAuth(analyst_token)) as api_root:
        polled = api_root.get_status(status.id)
    assert (polled.id, polled.status, polled.success_count) == (status.id, "complete", len(pushed.objects))
    refreshed = Status(status.url, auth=BearerAuth(analyst_token))
    refreshed.wait_until_final(poll_interval=0, timeout=5)
    assert bool(refreshed) and refreshed.total_count == len(pushed.objects)


def test_partner_cannot_read_the_analysts_status(pushed: Pushed, taxii_root: str, partner_token: str):
    with pytest.raises(requests.HTTPError) as refused:
        Status(pushed.status.url, auth=TokenAuth(partner_token))
    assert refused.value.response.status_code == 404


def _pull_objects(collection: Collection, per_request: int) -> tuple[list[dict], list[dict]]:
    pages = list(as_pages(collection.get_objects, per_request=per_request))
    return pages, [obj for page in pages for obj in page.get("objects", [])]


def _assert_exactly_latest(received: list[dict], pushed: Pushed) -> None:
    # The TLP:GREEN definition the objects reference is stored beside them and served too.
    definitions = [obj for obj in received if obj["type"] == "marking-definition"]
    assert [d["id"] for d in definitions] == [stix2.TLP_GREEN.id]
    received = [obj for obj in received if obj["type"] != "marking-definition"]
    ids = [obj["id"] for obj in received]
    assert len(ids) == len(set(ids)), "no object is served twice"
    assert set(ids) == set(pushed.latest)
    assert {obj["id"]: obj for obj in received} == pushed.latest  # latest version, content unchanged


def test_partner_pulls_every_page_of_objects(pushed: Pushed, live_server: str, partner_token: str):
    collection = _partner_collection(live_server, partner_token, pushed.collection_id)
    pages, received = _pull_objects(collection, per_request=17)

    _assert_exactly_latest(received, pushed)
    assert len(pages) == math.ceil(len(pushed.latest) / 17)
    assert [page["more"] for page in pages] == [True] * (len(pages) - 1) + [False]
    assert all(len(page["objects"]) == 17 for page in pages[:-1])
    for obj in received:
        _assert_valid_stix(obj)


def test_partner_pulls_everything_when_the_server_lowers_the_page_size(
    pushed: Pushed, live_server: str, partner_token: str, settings
):
    """A limit above max_page_size is lowered; as_pages follows the smaller pages to the end."""
    assert settings.max_page_size < len(pushed.latest)
    collection = _partner_collection(live_server, partner_token, pushed.collection_id)
    pages, received = _pull_objects(collection, per_request=settings.max_page_size + 100)

    _assert_exactly_latest(received, pushed)
    assert [len(page["objects"]) for page in pages] == [
        settings.max_page_size,
        len(pushed.latest) + 1 - settings.max_page_size,
    ]  # + the TLP definition


def test_partner_pulls_every_page_of_the_manifest(pushed: Pushed, live_server: str, partner_token: str):
    collection = _partner_collection(live_server, partner_token, pushed.collection_id)
    pages = list(as_pages(collection.get_manifest, per_request=23))

    records = [record for page in pages for record in page.get("objects", [])]
    assert len(pages) == math.ceil((len(pushed.latest) + 1) / 23)  # + the TLP:GREEN definition
    assert stix2.TLP_GREEN.id in {r["id"] for r in records}
    date_added = [parse_us(r["date_added"]) for r in records]
    assert all(a < b for a, b in itertools.pairwise(date_added)), "date_added unique and increasing"
    records = [r for r in records if r["id"] != stix2.TLP_GREEN.id]
    assert len(records) == len(pushed.latest) == len({r["id"] for r in records})
    assert {r["id"]: parse_us(r["version"]) for r in records} == {
        object_id: parse_us(obj["modified"]) for object_id, obj in pushed.latest.items()
    }
    assert {r["media_type"] for r in records} == {"application/stix+json;version=2.1"}


def test_partner_gets_one_object_and_its_versions(pushed: Pushed, live_server: str, partner_token: str):
    collection = _partner_collection(live_server, partner_token, pushed.collection_id)
    object_id = pushed.multi_version_id
    pushed_versions = sorted((o for o in pushed.objects if o["id"] == object_id), key=lambda o: parse_us(o["modified"]))
    assert len(pushed_versions) == 3

    latest = collection.get_object(object_id)
    assert latest["objects"] == [pushed.latest[object_id]]
    assert collection.get_object(object_id, version="first")["objects"] == [pushed_versions[0]]
    every_version = collection.get_object(object_id, version="all")["objects"]
    assert sorted(every_version, key=lambda o: parse_us(o["modified"])) == pushed_versions

    versions = collection.object_versions(object_id)
    assert versions["more"] is False
    assert sorted(parse_us(v) for v in versions["versions"]) == [parse_us(o["modified"]) for o in pushed_versions]

    with pytest.raises(requests.HTTPError) as missing:
        collection.get_object(f"malware--{uuid.uuid4()}")
    assert missing.value.response.status_code == 404


def _assert_unauthorized(refused: pytest.ExceptionInfo) -> None:
    response = refused.value.response
    assert response.status_code == 401
    assert response.headers["Content-Type"] == TAXII
    assert response.json()["http_status"] == "401"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_bad_tokens_get_401(live_server: str, settings, tmp_path):
    generate_key_pair(tmp_path / "other-private.pem", tmp_path / "other-public.pem")
    forged = issue_token(
        key=(tmp_path / "other-private.pem").read_text(),
        algorithm="RS256",
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        subject="usa-e2e",
        nation="USA",
        roles=["partner"],
        lifetime_s=600,
    )
    for auth in (TokenAuth("not-a-token"), BearerAuth("not-a-token"), TokenAuth(forged), BearerAuth(forged), None):
        server = Server(f"{live_server}/taxii2/", auth=auth) if auth else Server(f"{live_server}/taxii2/")
        with pytest.raises(requests.HTTPError) as refused:
            server.refresh()
        _assert_unauthorized(refused)


def test_expired_token_gets_401_on_a_collection(pushed: Pushed, taxii_root: str, make_token):
    expired = make_token(subject="usa-e2e", nation="USA", roles=("partner",), lifetime_s=-60)
    collection = Collection(f"{taxii_root}collections/{pushed.collection_id}/", auth=TokenAuth(expired))
    with pytest.raises(requests.HTTPError) as refused:
        collection.refresh()
    _assert_unauthorized(refused)
