"""Three partners pull one collection with taxii2-client and each gets exactly what is releasable to it.

An analyst pushes ~30 objects (some in several versions) whose labels cover the cases of DESIGN.md
sections 2 and 3: unmarked, TLP 1.0 and 2.0 alone, banners in canonical, NATO and national names,
groups, NOFORN, Tearline label marking definitions, several markings at once, TLP beside a banner,
granular markings on ``description``, and versions labelled differently from each other. USA
(SECRET), FRA (CONFIDENTIAL) and CAN (RESTRICTED) then page through the objects and the manifest
with ``as_pages`` against a live server. The expected sets come from :mod:`tests.policy.oracle`;
a few of them are also spelled out by hand.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from sqlmodel import Session
from taxii2client.common import TokenAuth
from taxii2client.v21 import ApiRoot, Server, as_pages

from app.config.settings import REPO_ROOT
from app.db.timestamps import parse_us
from app.feeds.client import BearerAuth
from app.markings.labels import LabelSpec, label_marking_definition
from app.markings.mappings import load_mappings
from app.taxii import service as taxii_service
from tests.policy import oracle
from tests.policy.oracle import HOME, Marking, Principal, VersionSpec

pytestmark = pytest.mark.e2e

PULLERS = (Principal("USA", 3, False), Principal("FRA", 2, False), Principal("CAN", 1, False))


def banner(name: str, *codes: str, noforn: bool = False, rank: int) -> Marking:
    return Marking("statement", rank, name, codes, noforn)


def label(rank: int, *codes: str, noforn: bool = False) -> Marking:
    return Marking("label", rank, oracle.CANONICAL_NAMES[rank], codes, noforn)


# Each entry is one object: the labels of its versions, oldest first.
CORPUS: list[tuple[VersionSpec, ...]] = [
    (VersionSpec(),),
    *((VersionSpec(tlp=level),) for level in oracle.TLP_LEVELS),  # 9 TLP levels alone
    (VersionSpec((banner("SECRET", "USA", "GBR", rank=3),)),),
    (VersionSpec((banner("S", "FVEY", rank=3),)),),
    (VersionSpec((banner("NATO CONFIDENTIAL", "NATO", rank=2),)),),
    (VersionSpec((banner("RESTRICTED", "FVEY", "NATO", rank=1),)),),
    (VersionSpec((banner("UNCLASSIFIED", "EU", rank=0),)),),
    (VersionSpec((banner("GEHEIM", "DEU", "FRA", rank=3),)),),
    (VersionSpec((banner("CONFIDENTIEL DÉFENSE", "FRA", rank=2),)),),
    (VersionSpec((banner("PROTECTED B", "CAN", rank=1),)),),
    (VersionSpec((banner("NATO RESTRICTED", "NATO", rank=1),), tlp="1.0:green"),),
    (VersionSpec((banner("TOP SECRET", "USA", rank=4),)),),
    (VersionSpec((banner("SECRET", rank=3, noforn=True),)),),
    (VersionSpec((banner("U", "FVEY", rank=0, noforn=True),)),),
    (VersionSpec((label(2, "FRA", "CAN"),)),),
    (VersionSpec((label(1, "NATO"),)),),
    (VersionSpec((banner("RESTRICTED", "NATO", rank=1), banner("UNCLASSIFIED", "FVEY", rank=0))),),
    (VersionSpec((banner("CONFIDENTIAL", "EU", rank=2), banner("SECRET", "FRA", "USA", rank=3))),),
    (VersionSpec((banner("C", "FRA", "CAN", rank=2), label(1, "NATO"))),),
    (VersionSpec((banner("OFFICIAL", "CAN", rank=0),), tlp="2.0:amber"),),
    (VersionSpec((banner("DIFFUSION RESTREINTE", "FRA", "CAN", rank=1),), tlp="1.0:red"),),
    (VersionSpec(tlp="2.0:green", granular=banner("SECRET", "USA", rank=3)),),
    (VersionSpec((banner("RESTRICTED", "NATO", rank=1),), granular=label(2, "FRA")),),
    (VersionSpec((banner("UNCLASSIFIED", "FVEY", "NATO", rank=0),)), VersionSpec((banner("SECRET", "USA", rank=3),))),
    (VersionSpec(tlp="2.0:clear"), VersionSpec()),
    (
        VersionSpec((banner("SECRET", "USA", rank=3),)),
        VersionSpec((banner("CONFIDENTIAL", "FRA", rank=2),)),
        VersionSpec((banner("RESTRICTED", "CAN", rank=1),)),
    ),
    (
        VersionSpec((label(0, "NATO"),)),
        VersionSpec((label(0, "FRA"),), tlp="2.0:red"),
        VersionSpec((banner("TOP SECRET", "FVEY", rank=4),)),
    ),
]


@dataclass(frozen=True)
class Posted:
    collection_id: str
    versions: list[tuple[dict, VersionSpec]]  # every object version pushed, with its label spec


def _label_definition(rank, codes, caveats, originator):
    mappings = load_mappings(REPO_ROOT / "stix_mappings")
    return label_marking_definition(
        LabelSpec(rank, frozenset(codes) - {originator}, frozenset(caveats), originator), mappings
    )


def _corpus() -> tuple[list[dict], list[tuple[dict, VersionSpec]]]:
    """Every marking definition and object version to push, oldest version first."""
    definitions: dict[str, dict] = {}
    versions = []
    for index, specs in enumerate(CORPUS):
        object_id = f"indicator--{uuid.uuid4()}"
        for version_index, spec in enumerate(specs):
            built = oracle.build_markings(spec, HOME, _label_definition)
            for md in built.definitions:
                definitions.setdefault(md["id"], md)
            obj = {
                "type": "indicator",
                "spec_version": "2.1",
                "id": object_id,
                "created": "2025-02-01T09:30:00.000Z",
                "modified": f"2025-02-0{1 + version_index}T09:30:00.000Z",
                "name": f"labelled indicator {index}",
                "description": f"object {index} version {version_index}",
                "pattern": f"[ipv4-addr:value = '203.0.113.{index + 1}']",
                "pattern_type": "stix",
                "valid_from": "2025-02-01T09:30:00.000Z",
            }
            if built.object_marking_refs:
                obj["object_marking_refs"] = built.object_marking_refs
            if built.granular_ref:
                obj["granular_markings"] = [{"marking_ref": built.granular_ref, "selectors": ["description"]}]
            versions.append((obj, spec))
    return list(definitions.values()), versions


@pytest.fixture(scope="module")
def posted(app, live_server: str, settings, make_token) -> Posted:
    with Session(app.state.engine) as session:
        collection_id = taxii_service.create_collection(
            session,
            title=f"three partners {uuid.uuid4().hex[:8]}",
            read_roles={"partner", "analyst"},
            write_roles={"analyst"},
        ).id
    definitions, versions = _corpus()
    objects = definitions + [obj for obj, _ in versions]
    with ApiRoot(
        f"{live_server}/taxii2/{settings.api_root}/", auth=BearerAuth(make_token(subject="analyst-3p"))
    ) as root:
        collection = next(c for c in root.collections if c.id == collection_id)
        status = collection.add_objects({"objects": objects}, wait_for_completion=True)
    assert (status.status, status.success_count, status.failure_count) == ("complete", len(objects), 0), status.failures
    return Posted(collection_id, versions)


def _expected(posted: Posted, principal: Principal) -> dict[str, tuple[dict, VersionSpec]]:
    """Object id -> the newest version ``principal`` may see (and its spec): its label allows it, and no
    newer version withdrew it (docs/design.md section 7b; the pullers hold their agreements' clearance)."""
    latest: dict[str, tuple[dict, VersionSpec]] = {}
    for obj, spec in posted.versions:
        newer = [
            later
            for other, later in posted.versions
            if other["id"] == obj["id"] and parse_us(other["modified"]) > parse_us(obj["modified"])
        ]
        if oracle.may_see_version(principal, spec, HOME) and not oracle.withdrawn(principal, spec, newer, HOME):
            held = latest.get(obj["id"])
            if held is None or parse_us(obj["modified"]) > parse_us(held[0]["modified"]):
                latest[obj["id"]] = (obj, spec)
    return latest


def _served_copy(principal: Principal, obj: dict, spec: VersionSpec) -> dict:
    """What the principal must receive of ``obj``: without a description it may not see."""
    if oracle.may_see_description(principal, spec, HOME):
        return obj
    return {k: v for k, v in obj.items() if k not in ("description", "granular_markings")}


def _pull(live_server: str, token: str, collection_id: str, per_request: int):
    server = Server(f"{live_server}/taxii2/", auth=TokenAuth(token))
    collection = next(c for root in server.api_roots for c in root.collections if c.id == collection_id)
    assert collection.can_read is True
    objects = [o for page in as_pages(collection.get_objects, per_request=per_request) for o in page.get("objects", [])]
    manifest = [
        r for page in as_pages(collection.get_manifest, per_request=per_request) for r in page.get("objects", [])
    ]
    return objects, manifest


@pytest.mark.parametrize("principal", PULLERS, ids=lambda p: p.nation)
def test_partner_receives_exactly_its_releasable_set(posted: Posted, live_server: str, make_token, principal):
    token = make_token(subject=f"{principal.nation.lower()}-3p", nation=principal.nation, roles=("partner",))
    objects, manifest = _pull(live_server, token, posted.collection_id, per_request=7)
    expected = _expected(posted, principal)

    received = [o for o in objects if o["type"] != "marking-definition"]
    ids = [o["id"] for o in received]
    assert len(ids) == len(set(ids)), "an object served twice"
    describe = {obj["id"]: f"{obj['name']} {obj['modified']}: {spec}" for obj, spec in posted.versions}
    assert set(ids) - set(expected) == set(), [describe[i] for i in set(ids) - set(expected)]
    assert set(expected) - set(ids) == set(), [describe[i] for i in set(expected) - set(ids)]
    for obj in received:
        want, spec = expected[obj["id"]]
        strip = lambda d: {k: v for k, v in d.items() if k != "granular_markings"}  # noqa: E731
        copy = _served_copy(principal, want, spec)
        assert (strip(obj) if "description" not in copy else obj) == copy, (principal.name, describe[obj["id"]])

    # every marking definition a received object references came along
    definitions = {o["id"] for o in objects if o["type"] == "marking-definition"}
    refs = {ref for o in received for ref in o.get("object_marking_refs", [])}
    refs |= {g["marking_ref"] for o in received for g in o.get("granular_markings", [])}
    assert refs <= definitions, sorted(refs - definitions)

    records = {(r["id"], parse_us(r["version"])) for r in manifest if not r["id"].startswith("marking-definition--")}
    assert records == {(object_id, parse_us(obj["modified"])) for object_id, (obj, _) in expected.items()}


def test_the_three_sets_differ_as_worked_out_by_hand(posted: Posted):
    """Hand-checked sets, so that the oracle is not the only judge of the expectations."""
    names = {
        principal.nation: {obj["name"]: obj["modified"][:10] for obj, _ in _expected(posted, principal).values()}
        for principal in PULLERS
    }
    # Each newer version withdraws older ones from the nations it excludes (docs/design.md section 7b).
    # The three-version object (SECRET USA, then CONFIDENTIAL FRA, then RESTRICTED CAN): only CAN, the
    # newest; USA's and FRA's versions were withdrawn by the ones after them.
    last = f"labelled indicator {len(CORPUS) - 2}"
    assert (last in names["USA"], last in names["FRA"], names["CAN"][last]) == (False, False, "2025-02-03")
    # TLP alone: CLEAR/WHITE/GREEN (4 of 9 levels) for everyone; unmarked for nobody
    tlp_only_open = {f"labelled indicator {i}" for i in (1, 2, 5, 6)}  # 1.0 white, green; 2.0 clear, green
    # The last object: NATO, then FRA (TLP:RED beside it), then TOP SECRET FVEY, which nobody may see:
    # every earlier version is withdrawn from everyone.
    last = f"labelled indicator {len(CORPUS) - 1}"
    assert not any(last in names[nation] for nation in names)
    # 31 (FVEY and NATO, then SECRET USA): USA only. 32 (TLP:CLEAR, then unmarked): nobody.
    by_hand = {
        "USA": {10, 11, 12, 13, 18, 23, 24, 29, 30, 31},
        "FRA": {12, 13, 14, 16, 18, 22, 23, 26, 28, 29, 30},
        "CAN": {13, 17, 18, 23, 24, 27, 28, 29, 30, 33},
    }
    for nation, indices in by_hand.items():
        assert set(names[nation]) == tlp_only_open | {f"labelled indicator {i}" for i in indices}, nation
