"""A workload of every object type Tearline stores, shared by the interoperability tests of this package.

An analyst posts it with taxii2-client into a fresh collection of a live server: indicators,
malware, a threat actor, relationships, a report, sightings, an analyst's note, marking
definitions in both accepted forms (Tearline label definitions and a statement banner), an object
with a granular marking on its description, and an item the analyst recalls after USA and FRA
pulled it, so that each of them receives a recall notice. Labels give each partner a different
view: some objects for both, some for one, one for neither, and references that reach across
(docs/design.md section 2, reference closure).

What each partner should see is derived here from the labels with the independent oracle of
:mod:`tests.policy.oracle` and the closure rule, not from the server; the tests compare the server
and the third-party libraries against it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import requests
from sqlmodel import Session
from taxii2client.common import TokenAuth
from taxii2client.v21 import ApiRoot, Collection, Server, as_pages

from app.config.settings import REPO_ROOT
from app.feeds.client import BearerAuth
from app.items.identity import home_identity
from app.markings.labels import LabelSpec, label_marking_definition
from app.markings.mappings import load_mappings
from app.taxii import service as taxii_service
from tests.policy import oracle
from tests.policy.oracle import HOME, Marking, Principal, VersionSpec

RECALL_EXTENSION = "extension-definition--f26d88c0-42b3-4104-b413-3eb488ceba1e"
CREATED = "2025-03-01T08:00:00.000Z"
# The two partner nations pulling, at their agreements' clearance (tests/conftest.py PARTNERS):
# USA is cleared SECRET and in FVEY and NATO, FRA CONFIDENTIAL and in NATO and EU.
USA = Principal("USA", 3, False)
FRA = Principal("FRA", 2, False)
PULLERS = (USA, FRA)


def _label(rank: int, *codes: str) -> Marking:
    return Marking("label", rank, oracle.CANONICAL_NAMES[rank], codes, False)


# The labels of the workload: what each partner may see follows from these and the pullers' agreements.
SHARED = _label(1, "USA", "FRA")
USA_ONLY = _label(3, "USA", "GBR")
FRA_ONLY = _label(2, "FRA")
NOBODY = _label(4, "USA")  # TOP SECRET: above both partners' clearance
NATO_STATEMENT = Marking("statement", 2, "CONFIDENTIAL", ("NATO",), False)


@dataclass
class Item:
    """One posted object and the labels it was posted with."""

    obj: dict
    spec: VersionSpec
    definitions: list[dict]  # the marking definitions posted with it
    recalled: bool = False


@dataclass
class Workload:
    """What was posted, where, and what each partner holds at the end."""

    collection_id: str
    items: dict[str, Item]  # object id -> item
    recalled_id: str
    views: dict[str, list[dict]] = field(default_factory=dict)  # nation -> its full pull after the recall
    first_views: dict[str, list[dict]] = field(default_factory=dict)  # nation -> its pull before the recall

    def item(self, name: str) -> Item:
        """The item whose STIX ``name`` (or, for SROs, description) is ``name``."""
        (found,) = [i for i in self.items.values() if name in (i.obj.get("name"), i.obj.get("description"))]
        return found


def _label_definition(rank: int, codes: Iterable[str], caveats: Iterable[str], originator: str) -> dict:
    mappings = load_mappings(REPO_ROOT / "stix_mappings")
    return label_marking_definition(
        LabelSpec(rank, frozenset(codes) - {originator}, frozenset(caveats), originator), mappings
    )


def _stix_id(kind: str) -> str:
    return f"{kind}--{uuid.uuid4()}"


def _build() -> list[Item]:
    """The workload's objects, each with its labels (granular ``description`` markings included)."""
    items: list[Item] = []

    def add(kind: str, spec: VersionSpec, **properties) -> dict:
        built = oracle.build_markings(spec, HOME, _label_definition)
        obj = {"type": kind, "spec_version": "2.1", "id": _stix_id(kind), "created": CREATED, "modified": CREATED}
        obj |= properties | {"object_marking_refs": built.object_marking_refs}
        if built.granular_ref:
            obj["granular_markings"] = [{"marking_ref": built.granular_ref, "selectors": ["description"]}]
        items.append(Item(obj, spec, built.definitions))
        return obj

    def indicator(name: str, spec: VersionSpec, pattern: str) -> dict:
        return add(
            "indicator",
            spec,
            name=name,
            description=f"{name}, seen by a liaison source",
            indicator_types=["malicious-activity"],
            pattern=pattern,
            pattern_type="stix",
            valid_from=CREATED,
        )

    def relationship(spec: VersionSpec, kind: str, source: dict, target: dict) -> dict:
        description = f"{source['name']} {kind} {target['name']}"
        return add("relationship", spec, relationship_type=kind, source_ref=source["id"], target_ref=target["id"],
                   description=description)  # fmt: skip

    shared, usa_only, fra_only = VersionSpec((SHARED,)), VersionSpec((USA_ONLY,)), VersionSpec((FRA_ONLY,))
    # The home nation's identity as Tearline writes it (TLP:WHITE: every partner), where sightings were
    # made: MISP records a sighting only with the organisation that saw it.
    cert = home_identity(HOME)
    items.append(Item(cert, VersionSpec(tlp="1.0:white"), [oracle.tlp_md("1.0:white")]))
    # For both partners, with a description only USA may see (a granular marking).
    c2 = indicator("C2 address", VersionSpec((SHARED,), granular=USA_ONLY), "[ipv4-addr:value = '198.51.100.7']")
    usa_host = indicator("Staging host", usa_only, "[domain-name:value = 'staging.lantern-mirror.example']")
    fra_url = indicator("Drop URL", fra_only, "[url:value = 'https://drop.lantern-mirror.example/u']")
    nato_hash = indicator(
        "Dropper hash",
        VersionSpec((NATO_STATEMENT,)),
        "[file:hashes.'SHA-256' = '0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0']",
    )
    hidden = indicator("Source host", VersionSpec((NOBODY,)), "[ipv4-addr:value = '203.0.113.77']")
    recalled = indicator("Phishing sender", shared, "[email-addr:value = 'billing@invoice-portal.example']")
    items[-1].recalled = True
    family = add("malware", shared, name="LanternRAT", is_family=True, malware_types=["remote-access-trojan"])
    actor = add("threat-actor", shared, name="Lantern Group", threat_actor_types=["nation-state"])
    relationships = [
        relationship(shared, "indicates", c2, family),
        relationship(shared, "uses", actor, family),
        relationship(usa_only, "indicates", usa_host, family),
        relationship(fra_only, "indicates", fra_url, family),
        # Visible label, but its source is the TOP SECRET indicator: withheld from both (closure).
        relationship(shared, "indicates", hidden, family),
    ]
    note = add("note", shared, abstract="Analyst comment", content="Infrastructure reused from 2024.",
               object_refs=[c2["id"], family["id"]])  # fmt: skip
    seen_at = {"first_seen": CREATED, "last_seen": CREATED, "where_sighted_refs": [cert["id"]]}
    add("sighting", shared, sighting_of_ref=c2["id"], count=3, **seen_at)
    add("sighting", usa_only, sighting_of_ref=usa_host["id"], count=1, **seen_at)
    content = [c2, usa_host, fra_url, nato_hash, hidden, family, actor, *relationships, note]
    add("report", shared, name="Lantern campaign", published=CREATED, report_types=["campaign"],
        object_refs=[o["id"] for o in content])  # fmt: skip
    assert recalled  # posted like the rest; recalled later
    return items


def _seen(principal: Principal, items: dict[str, Item]) -> dict[str, Item]:
    """The items ``principal`` is served (their newest and only version): label first, then references.

    The closure rule of docs/design.md section 2: a relationship needs its source and target, a
    sighting what it sights, a report or note one of its ``object_refs``; the recalled item is
    withdrawn. Iterated to a fixed point, as references may name objects withheld themselves.
    """
    seen = {i: item for i, item in items.items() if oracle.may_see_version(principal, item.spec, HOME)}
    seen = {i: item for i, item in seen.items() if not item.recalled}
    while True:
        kept = {}
        for object_id, item in seen.items():
            obj = item.obj
            if obj["type"] == "relationship":
                ok = obj["source_ref"] in seen and obj["target_ref"] in seen
            elif obj["type"] == "sighting":
                ok = obj["sighting_of_ref"] in seen
            elif obj["type"] in ("report", "note"):
                ok = any(ref in seen for ref in obj["object_refs"])
            else:
                ok = True
            if ok:
                kept[object_id] = item
        if kept.keys() == seen.keys():
            return kept
        seen = kept


def expected_copy(principal: Principal, item: Item, seen: dict[str, Item]) -> dict:
    """The copy of ``item`` the principal must receive: without a description it may not see, and
    with references to objects it does not see removed."""
    obj = dict(item.obj)
    if not oracle.may_see_description(principal, item.spec, HOME):
        obj.pop("description")
        obj.pop("granular_markings")
    if "object_refs" in obj:
        obj["object_refs"] = [ref for ref in obj["object_refs"] if ref in seen]
    return obj


def expected_view(principal: Principal, workload: Workload) -> dict[str, dict]:
    """Object id -> the copy ``principal`` must hold after the recall (notices and definitions aside)."""
    seen = _seen(principal, workload.items)
    return {object_id: expected_copy(principal, item, seen) for object_id, item in seen.items()}


def partner_token(make_token: Callable[..., str], principal: Principal) -> str:
    """A partner token of ``principal``'s nation."""
    return make_token(subject=f"{principal.nation.lower()}-interop", nation=principal.nation, roles=("partner",))


def partner_collection(live_server: str, token: str, collection_id: str) -> Collection:
    """The collection as a partner's client finds it: discovery, API roots, collections."""
    server = Server(f"{live_server}/taxii2/", auth=TokenAuth(token))
    (collection,) = [c for root in server.api_roots for c in root.collections if c.id == collection_id]
    return collection


def pull(collection: Collection, per_request: int = 7) -> list[dict]:
    """Every object of every page (a small page size, so that paging is exercised)."""
    return [
        obj for page in as_pages(collection.get_objects, per_request=per_request) for obj in page.get("objects", [])
    ]


def post_workload(app, live_server: str, settings, make_token: Callable[..., str]) -> Workload:
    """Post the workload, let both partners pull it, recall one item, and pull again."""
    with Session(app.state.engine) as session:
        collection_id = taxii_service.create_collection(
            session, title=f"interop {uuid.uuid4().hex[:8]}", read_roles={"partner", "analyst"}, write_roles={"analyst"}
        ).id
    items = _build()
    definitions = {md["id"]: md for item in items for md in item.definitions}
    objects = [*definitions.values(), *(item.obj for item in items)]
    analyst = make_token(subject="analyst-interop")
    with ApiRoot(f"{live_server}/taxii2/{settings.api_root}/", auth=BearerAuth(analyst)) as root:
        (collection,) = [c for c in root.collections if c.id == collection_id]
        status = collection.add_objects({"objects": objects}, wait_for_completion=True)
    assert (status.status, status.success_count, status.failure_count) == ("complete", len(objects), 0), status.failures

    (recalled,) = [item for item in items if item.recalled]
    workload = Workload(collection_id, {item.obj["id"]: item for item in items}, recalled.obj["id"])
    collections = {
        p.nation: partner_collection(live_server, partner_token(make_token, p), collection_id) for p in PULLERS
    }
    for nation, partner_view in collections.items():
        workload.first_views[nation] = pull(partner_view)
    answer = requests.post(
        f"{live_server}/api/v1/items/{recalled.obj['id']}/recall",
        headers={"Authorization": f"Bearer {analyst}"},
        json={"reason": "Source compromised.", "collection": collection_id},
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    assert sorted(answer.json()["notified"]) == sorted(collections), answer.json()
    for nation, partner_view in collections.items():
        workload.views[nation] = pull(partner_view)
    return workload


def notices(objects: list[dict]) -> list[dict]:
    """The recall notices among ``objects``."""
    return [o for o in objects if o["type"] == "note" and RECALL_EXTENSION in o.get("extensions", {})]


def assert_exact_view(principal: Principal, workload: Workload, received: list[dict]) -> None:
    """``received`` is exactly what ``principal`` may hold: the expected copies, its own recall notice,
    and the marking definitions those reference, nothing else."""
    expected = expected_view(principal, workload)
    by_id = {o["id"]: o for o in received}
    assert len(by_id) == len(received), "an object served twice"
    (notice,) = notices(received)
    assert notice["extensions"][RECALL_EXTENSION]["recalled_object"] == workload.recalled_id
    content = {i: o for i, o in by_id.items() if o["type"] != "marking-definition" and i != notice["id"]}
    assert content == expected, principal.nation
    referenced = {ref for o in [*content.values(), notice] for ref in o.get("object_marking_refs", [])}
    referenced |= {g["marking_ref"] for o in content.values() for g in o.get("granular_markings", [])}
    definitions = {i for i, o in by_id.items() if o["type"] == "marking-definition"}
    assert definitions == referenced, principal.nation
