"""The reference dimension of the leak suite (issue 19): generated objects that name each other.

Targets of random labels, some ids never stored; relationships, sightings, reports, notes,
opinions and groupings of random labels naming them (and each other, two hops deep). For every
partner, and for a home analyst whose token lowers the clearance, an oracle written here from the
contract says which referring versions are served and which entries they keep; the server must
agree on objects (all pages), by id, versions, manifest and the analyst API.

The oracle: a principal sees a stored object when it may see its label (the table below, worked
out by hand from the partners of tests/conftest.py). A referring version is served when its own
label is seen and no required reference (relationship source/target, sighting_of_ref) names a
stored object not seen, and, for a list (object_refs), when at least one entry remains; the
served copy keeps the entries naming objects seen or never stored.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlmodel import Session

from app.taxii import service as taxii_service
from tests.conftest import memoised
from tests.taxii.helpers import get_ok, manifest_url, objects_url, post_ok, stix_time, versions_url
from tests.taxii.test_releasability import banner

CREATED = stix_time(2)
PARTNERS = ("USA", "GBR", "FRA", "DEU", "CAN")
LOWERED_ANALYST = "analyst@CONFIDENTIAL"
# banner -> who sees it (partners: clearance USA 3, GBR 3, FRA 2, DEU 2, CAN 1; FVEY USA GBR CAN;
# NATO all five; the home analyst whose token lowers the clearance to CONFIDENTIAL, rank 2).
SEES = {
    "UNCLASSIFIED//REL TO USA, GBR, FRA, DEU, CAN": {*PARTNERS, LOWERED_ANALYST},
    "SECRET//REL TO USA": {"USA"},
    "CONFIDENTIAL//REL TO FRA, DEU": {"FRA", "DEU", LOWERED_ANALYST},
    "RESTRICTED//REL TO NATO": {*PARTNERS, LOWERED_ANALYST},
    "SECRET//REL TO FVEY": {"USA", "GBR"},
    "CONFIDENTIAL//REL TO NATO": {"USA", "GBR", "FRA", "DEU", LOWERED_ANALYST},
    "UNCLASSIFIED": {LOWERED_ANALYST},  # no REL TO: the home nation only
}
LIST_TYPES = ("report", "note", "opinion", "grouping")
FUZZ = hsettings(
    max_examples=8,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@dataclass
class Stored:
    """One object of an example: its body, its label and which ids it names (in order)."""

    body: dict
    banner: str
    required: tuple[str, ...] = ()  # single required references
    listed: tuple[str, ...] = ()  # the entries of a required list
    optional: tuple[str, ...] = ()  # optional single references


@dataclass
class Example:
    objects: dict[str, Stored] = field(default_factory=dict)
    unstored: tuple[str, ...] = ()

    def served(self, viewer: str, object_id: str) -> bool:
        """Whether ``viewer`` is served a stored object (by the oracle of the module docstring)."""
        stored = self.objects[object_id]
        if viewer not in SEES[stored.banner]:
            return False
        if any(not self.named_ok(viewer, ref) for ref in stored.required):
            return False
        return not stored.listed or any(self.named_ok(viewer, ref) for ref in stored.listed)

    def named_ok(self, viewer: str, ref: str) -> bool:
        """An entry naming ``ref`` may be served to ``viewer``: never stored, or stored and served."""
        return ref not in self.objects or self.served(viewer, ref)

    def expected_copy(self, viewer: str, object_id: str) -> dict:
        stored = self.objects[object_id]
        body = dict(stored.body)
        if stored.listed:
            body["object_refs"] = [ref for ref in stored.listed if self.named_ok(viewer, ref)]
        for ref in stored.optional:
            prop = next(name for name, value in body.items() if value == ref)
            if not self.named_ok(viewer, ref):
                del body[prop]
        return body


def _common(kind: str, label: dict) -> dict:
    return {
        "type": kind,
        "spec_version": "2.1",
        "id": f"{kind}--{uuid.uuid4()}",
        "created": CREATED,
        "modified": CREATED,
        "object_marking_refs": [label["id"]],
    }


@st.composite
def examples(draw) -> tuple[Example, dict[str, dict]]:
    labels = {text: banner(text) for text in SEES}
    example = Example()
    banners = st.sampled_from(sorted(SEES))
    for n in range(draw(st.integers(2, 4))):
        text = draw(banners)
        kind = draw(st.sampled_from(["malware", "threat-actor", "identity"]))
        body = _common(kind, labels[text]) | {"name": f"target {n}"}
        if kind == "malware":
            body["is_family"] = True
        if kind == "identity":
            body["identity_class"] = "organization"
        example.objects[body["id"]] = Stored(body, text)
    example.unstored = (f"malware--{uuid.uuid4()}",)
    for n in range(draw(st.integers(2, 5))):
        pool = sorted(example.objects) + list(example.unstored)
        # source_ref, target_ref and sighting_of_ref name domain objects, never a relationship or sighting.
        domain = [ref for ref in pool if not ref.startswith(("relationship--", "sighting--"))]
        text = draw(banners)
        kind = draw(st.sampled_from(["relationship", "sighting", *LIST_TYPES]))
        body = _common(kind, labels[text])
        if kind == "relationship":
            source, target = draw(st.sampled_from(domain)), draw(st.sampled_from(domain))
            body |= {"relationship_type": "related-to", "source_ref": source, "target_ref": target}
            example.objects[body["id"]] = Stored(body, text, required=(source, target))
        elif kind == "sighting":
            sighted = draw(st.sampled_from(domain))
            body |= {"sighting_of_ref": sighted}
            example.objects[body["id"]] = Stored(body, text, required=(sighted,))
        else:
            entries = tuple(draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True)))
            body |= {"object_refs": list(entries)}
            body |= {
                "report": {"name": f"report {n}", "published": CREATED},
                "note": {"content": f"note {n}"},
                "opinion": {"opinion": "agree"},
                "grouping": {"context": "suspicious-activity"},
            }[kind]
            example.objects[body["id"]] = Stored(body, text, listed=entries)
    return example, labels


@pytest.fixture
def viewers(auth) -> dict[str, dict]:
    headers = memoised(auth)
    found = {
        nation: headers(subject=f"{nation.lower()}-feed", nation=nation, roles=("partner",)) for nation in PARTNERS
    }
    found[LOWERED_ANALYST] = headers(subject="analyst-lowered", clearance="CONFIDENTIAL")
    return found


def test_referring_objects_are_served_as_the_oracle_says(client, api, session: Session, auth, viewers):
    analyst = memoised(auth)()

    @FUZZ
    @given(drawn=examples())
    def check(drawn: tuple[Example, dict[str, dict]]) -> None:
        example, labels = drawn
        collection = taxii_service.create_collection(
            session, title=f"refs {uuid.uuid4().hex[:8]}", read_roles={"partner", "analyst"}, write_roles={"analyst"}
        )
        post_ok(client, api, collection.id, analyst, [*labels.values(), *(s.body for s in example.objects.values())])
        referring = [object_id for object_id, s in example.objects.items() if s.required or s.listed]
        for viewer, headers in viewers.items():
            # Small pages for one partner: no page that says "more" may be empty.
            served = _all_objects(client, api, collection.id, headers, page="2" if viewer == "FRA" else "200")
            manifest = {entry["id"] for entry in _all_manifest(client, api, collection.id, headers)}
            for object_id in example.objects:
                expected = example.served(viewer, object_id)
                assert (object_id in served) == expected, (viewer, example.objects[object_id])
                assert (object_id in manifest) == expected, (viewer, object_id)
            for object_id in referring:
                by_id = client.get(objects_url(api, collection.id, object_id), headers=headers)
                versions = client.get(versions_url(api, collection.id, object_id), headers=headers)
                if example.served(viewer, object_id):
                    copy = example.expected_copy(viewer, object_id)
                    assert served[object_id] == copy, (viewer, served[object_id], copy)
                    assert by_id.status_code == 200 and by_id.json()["objects"] == [copy]
                    assert versions.status_code == 200
                else:
                    assert (by_id.status_code, versions.status_code) == (404, 404), (viewer, object_id)
                    for other in served.values():  # named by nothing served either
                        assert object_id not in str(other), (viewer, object_id, other)
            if viewer == LOWERED_ANALYST:
                for object_id in referring:
                    item = client.get(f"/api/v1/items/{object_id}", headers=headers)
                    if example.served(viewer, object_id):
                        assert item.status_code == 200 and item.json()["object"] == example.expected_copy(
                            viewer, object_id
                        )
                    else:
                        assert item.status_code == 404, (object_id, item.text)

    check()


def _all_objects(client, api, collection_id, headers, page: str) -> dict[str, dict]:
    found, params = {}, {"limit": page}
    while True:
        body = get_ok(client, objects_url(api, collection_id), headers, params=params)
        found |= {obj["id"]: obj for obj in body.get("objects", [])}
        if not body.get("more"):
            return {k: v for k, v in found.items() if not k.startswith("marking-definition--")}
        assert body.get("objects"), "a page that says more must not be empty"
        params = {"limit": page, "next": body["next"]}


def _all_manifest(client, api, collection_id, headers) -> list[dict]:
    body = get_ok(client, manifest_url(api, collection_id), headers, params={"limit": "500"})
    return body.get("objects", [])
