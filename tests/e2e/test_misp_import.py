"""MISP's own STIX 2.1 importer (misp-stix) on what two partner nations pull from Tearline over TAXII.

USA and FRA pull the workload of :mod:`tests.e2e.partner_workload` (every object type Tearline
stores, and a recall notice each) with taxii2-client from a live server. Each view is checked to be
exactly what the nation may see, then converted as MISP converts an uploaded bundle
(``POST /events/upload_stix/2``): misp-stix's ``ExternalSTIX2toMISPParser``, driven in memory as its
``stix_2_to_misp`` does (load the bundle, record the classification, parse with the default
arguments).

What misp-stix 2026.10.12 does with Tearline's markings (its ``_parse_marking_definition``): a
statement marking becomes the tag ``statement:<statement>``, case kept; a Tearline label marking
definition, which has a ``name`` and no ``definition_type``, is read by its name as if it were a
TLP 2.0 definition and becomes the *lowercased* banner (``restricted//rel to nld, fra, usa``); the
label extension itself is never read. Tags go on the attribute an indicator becomes, or on the event
(the report) when they are the event's; malware, threat actors, relationships, sightings and notes
become galaxies, sightings and analyst notes, which have no tags of their own in MISP and are
handled under the tags of the attribute or event they are attached to. Known gaps are strict xfails
below: the recall notice (a note outside any report) is an error, the exact banner is lost to the
lowercasing, and granular markings are ignored.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse
from misp_stix_converter import ExternalSTIX2toMISPParser
from misp_stix_converter.tools import is_stix2_from_misp, load_stix2_content

from tests.e2e.partner_workload import (
    FRA,
    PULLERS,
    USA,
    USA_ONLY,
    Workload,
    assert_exact_view,
    expected_view,
    notices,
    partner_token,
    post_workload,
)
from tests.policy.oracle import HOME

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def workload(app, live_server: str, settings, make_token) -> Workload:
    return post_workload(app, live_server, settings, make_token)


def misp_import(objects: list[dict]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(diagnostics, the MISP event as a dict) of misp-stix's import of ``objects`` as one bundle."""
    bundle = load_stix2_content(json.dumps({"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": objects}))
    parser = ExternalSTIX2toMISPParser()
    parser.load_stix_bundle(bundle)
    parser.record_classification(is_stix2_from_misp(bundle.objects))
    parser.parse_stix_bundle()
    events = parser.misp_events if isinstance(parser.misp_events, list) else [parser.misp_events]
    assert len(events) == 1, "one report: one event"
    return parser.diagnostics(), events[0].to_dict()


def banners(objects: list[dict]) -> dict[str, str]:
    """Object id -> the banner its served classification marking states (TLP-only objects left out)."""
    definitions = {o["id"]: o for o in objects if o["type"] == "marking-definition"}
    found = {}
    for obj in objects:
        for ref in obj.get("object_marking_refs", []):
            definition = definitions[ref]
            if definition.get("definition_type") == "statement":
                found[obj["id"]] = definition["definition"]["statement"]
            elif any("banner" in ext for ext in definition.get("extensions", {}).values()):
                (found[obj["id"]],) = [e["banner"] for e in definition["extensions"].values() if "banner" in e]
    return found


def _uuid(stix_id: str) -> str:
    return stix_id.split("--", 1)[1]


def _tags(record: dict) -> set[str]:
    return {tag["name"] for tag in record.get("Tag", [])}


def governing_tags(event: dict, obj: dict, objects: dict[str, dict]) -> set[str]:
    """The tags MISP handles what ``obj`` became under: the event's, plus those of the attribute it became
    or is attached to (a galaxy, a sighting, an analyst note). Fails when ``obj`` was not converted."""
    attributes = {a["uuid"]: a for a in event.get("Attribute", [])}
    kind = obj["type"]
    if kind == "report":
        assert event["uuid"] == _uuid(obj["id"])
        return _tags(event)
    if kind == "indicator":
        holders = [attributes[_uuid(obj["id"])]]
    elif kind == "sighting":
        holders = [attributes[_uuid(obj["sighting_of_ref"])]]
        assert holders[0].get("Sighting"), obj["id"]
    elif kind == "note":
        holders = [a for a in attributes.values() if any(n["note"] == obj["content"] for n in a.get("Note", []))]
    elif kind in ("malware", "threat-actor"):
        clusters = lambda record: {c["value"] for g in record.get("Galaxy", []) for c in g["GalaxyCluster"]}  # noqa: E731
        holders = [a for a in attributes.values() if obj["name"] in clusters(a)]
        holders += [event] if obj["name"] in clusters(event) else []
    elif kind == "relationship":
        # An indicator's relationship to malware becomes the malware galaxy on the indicator's attribute;
        # one between galaxy objects (a threat actor uses malware) is kept between the event's clusters.
        source = objects[obj["source_ref"]]
        holders = [attributes[_uuid(source["id"])]] if source["type"] == "indicator" else [event]
    else:
        raise AssertionError(f"no MISP record rule for {kind}")
    assert holders, f"{obj['id']} was not converted"
    return _tags(event).union(*(_tags(holder) for holder in holders))


def _folded(tags: set[str]) -> set[str]:
    return {tag.removeprefix("statement:").casefold() for tag in tags}


@pytest.mark.parametrize("principal", PULLERS, ids=lambda p: p.nation)
def test_each_partner_pulls_exactly_its_releasable_view(workload: Workload, principal):
    received = workload.views[principal.nation]
    assert_exact_view(principal, workload, received)
    ids = {o["id"] for o in received}
    other = FRA if principal is USA else USA
    # Objects only the other nation may see never reach this one (nor the TOP SECRET one, either of them).
    theirs = set(expected_view(other, workload)) - set(expected_view(principal, workload))
    assert theirs and not theirs & ids
    assert workload.item("Source host").obj["id"] not in ids
    # FRA gets the C2 indicator without the description marked for USA, and not that marking definition.
    c2 = next(o for o in received if o["id"] == workload.item("C2 address").obj["id"])
    usa_only_definitions = {md["id"] for md in workload.item("Staging host").definitions}
    if principal is FRA:
        assert "description" not in c2 and not usa_only_definitions & ids
    else:
        assert "description" in c2 and usa_only_definitions <= ids


@pytest.mark.parametrize("principal", PULLERS, ids=lambda p: p.nation)
def test_misp_imports_the_pull_before_the_recall_with_each_banner(workload: Workload, principal):
    received = workload.first_views[principal.nation]
    content = [o for o in received if o["type"] not in ("marking-definition", "identity")]
    assert {o["type"] for o in content} == {
        "indicator", "malware", "threat-actor", "relationship", "report", "sighting", "note",
    }  # fmt: skip
    assert_imported_with_banners(received)


def test_misp_imports_what_a_live_stream_delivered(workload: Workload, live_server: str, settings, make_token):
    """USA's event stream, replayed from the start: each event is a TAXII envelope; their objects, the
    recall notice taken out as docs/partners.md says, import like a pull."""
    url = f"{live_server}/taxii2/{settings.api_root}/collections/{workload.collection_id}/events/"
    headers = {"Authorization": f"Bearer {partner_token(make_token, USA)}", "Accept": "text/event-stream"}
    streamed: list[dict] = []
    # The stream never ends: it is read until it has been idle for two seconds (caught up).
    with httpx.Client(timeout=httpx.Timeout(30, read=2.0)) as client:
        try:
            with connect_sse(
                client, "GET", url, headers=headers, params={"added_after": "2000-01-01T00:00:00Z"}
            ) as source:
                assert source.response.status_code == 200
                for event in source.iter_sse():
                    if event.data:
                        streamed += json.loads(event.data)["objects"]
        except httpx.ReadTimeout:
            pass
    pulled = workload.views[USA.nation]
    assert {(o["id"], o.get("modified")) for o in streamed} == {(o["id"], o.get("modified")) for o in pulled}
    # docs/partners.md: recall notices (and the definitions only they reference) are acted on, not imported.
    kept = [o for o in streamed if o not in notices(streamed)]
    referenced = {ref for o in kept for ref in o.get("object_marking_refs", [])}
    referenced |= {m["marking_ref"] for o in kept for m in o.get("granular_markings", [])}
    assert_imported_with_banners([o for o in kept if o["type"] != "marking-definition" or o["id"] in referenced])


def assert_imported_with_banners(received: list[dict]) -> None:
    """misp-stix imports ``received`` with no error or warning, each object under its banner's tag."""
    diagnostics, event = misp_import(received)
    assert diagnostics["errors"] == {} and diagnostics["warnings"] == {}, diagnostics
    objects = {o["id"]: o for o in received}
    stated = banners(received)
    content = [o for o in received if o["type"] not in ("marking-definition", "identity")]
    assert content
    for obj in content:
        # Case aside: Tearline label definitions come out lowercased (see the module docstring).
        assert stated[obj["id"]].casefold() in _folded(governing_tags(event, obj, objects)), obj["id"]
    # Tags are the banners the nation was served, never another nation's.
    assert _folded(_tags(event)).union(*(_folded(_tags(a)) for a in event["Attribute"])) <= {
        banner.casefold() for banner in stated.values()
    } | {"tlp:white"}


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="misp-stix's External parser reports a note outside any report's object_refs (every recall "
    "notice) as 'Unknown STIX object type: note'",
)
@pytest.mark.parametrize("principal", PULLERS, ids=lambda p: p.nation)
def test_misp_imports_the_view_with_its_recall_notice_without_errors(workload: Workload, principal):
    received = workload.views[principal.nation]
    assert notices(received)
    diagnostics, _ = misp_import(received)
    assert diagnostics["errors"] == {}, diagnostics


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="misp-stix reads a Tearline label marking definition by its name and lowercases it; only a "
    "change of app/markings/labels.py label_marking_definition (e.g. a statement beside the extension) "
    "would keep the banner as written",
)
def test_misp_tags_carry_the_banner_as_written(workload: Workload):
    received = workload.first_views[USA.nation]
    _, event = misp_import(received)
    tags = _tags(event).union(*(_tags(a) for a in event["Attribute"]))
    written = {tag.removeprefix("statement:") for tag in tags}
    assert set(banners(received).values()) <= written


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="misp-stix ignores granular markings: a description under a higher banner is imported as the "
    "attribute's comment under the object's banner only",
)
def test_misp_keeps_the_banner_of_a_granular_marked_description(workload: Workload):
    received = workload.first_views[USA.nation]
    _, event = misp_import(received)
    c2 = workload.item("C2 address").obj
    (attribute,) = [a for a in event["Attribute"] if a["uuid"] == _uuid(c2["id"])]
    assert attribute["comment"] == c2["description"]  # the SECRET description is there ...
    granular = [md for md in workload.item("C2 address").definitions if md["name"].startswith(USA_ONLY.name)]
    assert granular and HOME in granular[0]["name"]
    # ... but nothing in MISP says it is more restricted than the attribute it sits in.
    assert granular[0]["name"].casefold() in _folded(_tags(attribute) | _tags(event))
