"""Property test: no TAXII read path serves a version the oracle of DESIGN.md section 2 withholds,
and every one it allows is served.

Each Hypothesis example builds a fresh collection (partners and analysts read and write) and
posts 1-4 objects of 1-3 versions each, every version with its own independently drawn label:
statement banners in canonical, NATO and national names, Tearline label marking definitions,
TLP 1.0 and 2.0, several markings at once, NOFORN, nothing at all; sometimes a granular marking
on ``description``; sometimes the object comes from a partner (all its versions pushed by that
partner). Versions are posted in random order, so ``date_added`` order differs from ``modified``.

Then every principal reads the collection: the home analyst (full and token-lowered clearance),
and each registered partner (full and token-lowered clearance); one partner also presents a token
claiming more than its agreement. For each, against :mod:`tests.policy.oracle`:

- objects (``match[version]=all``, ``first`` and the default ``last``) and manifest (``all``,
  ``last``), every page walked through ``next`` with a small ``limit``: exactly the visible
  (id, version) pairs; ``match[version]=<timestamp>`` and ``added_after`` see visible versions only;
- GET object by id: the newest visible version, or 404 (indistinguishable from an absent object,
  the id not named) when none is visible; the versions endpoint likewise;
- ``X-TAXII-Date-Added-First/Last`` on each page equal to the first/last ``date_added`` of what
  that page serves (the analyst's manifest gives every version's ``date_added``);
- served copies equal what was posted, except a ``description`` under a granular marking the
  principal may not see, which is absent;
- every marking definition a served object references is fetchable by id and listed under
  ``match[type]=marking-definition``; no other marking definition is listed (a definition never
  tells of the hidden versions it marks);
- a token claiming more clearance than the partner agreement is refused or held to the agreement.

Each (principal, version) pair is one decision; at least MIN_DECISIONS are checked per database
(``TEARLINE_LEAK_EXAMPLES`` raises the number of examples for a nightly run).
"""

from __future__ import annotations

import json
import math
import os
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.config.settings import REPO_ROOT
from app.items.identity import home_identity_id
from app.markings.labels import LabelSpec, label_marking_definition
from app.markings.mappings import load_mappings
from app.taxii import service as taxii_service
from tests.conftest import PARTNERS, TAXII
from tests.policy import oracle
from tests.policy.oracle import (
    CANONICAL_NAMES,
    CLASSIFICATION_NAMES,
    GROUPS,
    HOME,
    TLP_LEVELS,
    TRIGRAPHS,
    Marking,
    Principal,
    VersionSpec,
)
from tests.taxii.helpers import (
    DATE_ADDED_FIRST,
    DATE_ADDED_LAST,
    assert_taxii_error,
    check_taxii_200,
    manifest_url,
    objects_url,
    taxii_time,
    versions_url,
)

# Sized for CI (every request now also writes an audit record); nightly: TEARLINE_LEAK_EXAMPLES=200.
EXAMPLES = int(os.environ.get("TEARLINE_LEAK_EXAMPLES", "10"))
MIN_DECISIONS = int(os.environ.get("TEARLINE_LEAK_MIN_DECISIONS", "1200"))
OBJECT_TYPES = ("indicator", "malware")
TYPE_FILTER = ",".join(OBJECT_TYPES)
PARTNER_CLEARANCE = {nation: rank for nation, rank, _ in PARTNERS}
BASE = datetime(2021, 3, 1, tzinfo=UTC)


# ---------------------------------------------------------------- input builders


_MAPPINGS = None


def label_definition(rank: int, codes, caveats, originator: str) -> dict:
    """A Tearline label marking definition, built with the app's builder (input shaping only)."""
    global _MAPPINGS
    if _MAPPINGS is None:
        _MAPPINGS = load_mappings(REPO_ROOT / "stix_mappings")
    spec = LabelSpec(rank, frozenset(codes) - {originator}, frozenset(caveats), originator)
    return label_marking_definition(spec, _MAPPINGS)


def stix_ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class ObjectSpec:
    type: str
    poster: str  # HOME for an analyst, else the partner nation that pushes every version
    versions: tuple[VersionSpec, ...]


@dataclass(frozen=True)
class Scenario:
    objects: tuple[ObjectSpec, ...]
    post_order: tuple[int, ...]  # permutation of the flattened versions
    lowered: tuple[tuple[str, int], ...]  # (nation, lowered rank) for each partner and HOME
    limit: int
    raiser: tuple[str, int]  # a partner and the too-high rank its token claims
    probe: int = 0  # picks the version whose date_added / modified the added_after and match[version] probes use


# ---------------------------------------------------------------- strategies

rel_codes = st.lists(st.sampled_from(TRIGRAPHS + GROUPS + (HOME,)), unique=True, max_size=4).map(tuple)
sometimes = st.integers(0, 5).map(lambda n: n == 0)  # ~1 in 6


@st.composite
def markings(draw) -> Marking:
    form = draw(st.sampled_from(["statement", "statement", "label"]))
    rank = draw(st.integers(0, 4))
    name = draw(st.sampled_from(CLASSIFICATION_NAMES[rank])) if form == "statement" else CANONICAL_NAMES[rank]
    return Marking(form, rank, name, draw(rel_codes), draw(sometimes))


@st.composite
def version_specs(draw) -> VersionSpec:
    kind = draw(st.sampled_from(["unmarked", "tlp", "classified", "classified", "classified"]))
    granular = draw(st.one_of(st.none(), st.none(), markings()))
    if kind == "unmarked":
        return VersionSpec(granular=granular)
    if kind == "tlp":
        return VersionSpec(tlp=draw(st.sampled_from(TLP_LEVELS)), granular=granular)
    return VersionSpec(
        markings=tuple(draw(st.lists(markings(), min_size=1, max_size=2))),
        tlp=draw(st.one_of(st.none(), st.none(), st.sampled_from(TLP_LEVELS))),
        granular=granular,
    )


@st.composite
def scenarios(draw) -> Scenario:
    partner_nations = [nation for nation, _, _ in PARTNERS]
    # Sizes lean towards the larger end: more versions per example means more decisions per request.
    objects = tuple(
        ObjectSpec(
            type=draw(st.sampled_from(OBJECT_TYPES)),
            poster=draw(st.sampled_from([HOME] * 4 + partner_nations)),
            versions=tuple(draw(version_specs()) for _ in range(draw(st.sampled_from([3, 2, 3, 1, 3])))),
        )
        for _ in range(draw(st.sampled_from([6, 5, 6, 3, 6, 1])))
    )
    total = sum(len(o.versions) for o in objects)
    post_order = tuple(draw(st.permutations(range(total))))
    lowered = tuple((nation, draw(st.integers(0, rank - 1))) for nation, rank, _ in PARTNERS)
    lowered += ((HOME, draw(st.integers(0, 3))),)
    raiser = draw(st.sampled_from([n for n in partner_nations if PARTNER_CLEARANCE[n] < 4]))
    raise_to = draw(st.integers(PARTNER_CLEARANCE[raiser] + 1, 4))
    return Scenario(
        objects,
        post_order,
        lowered,
        draw(st.sampled_from([3, 4, 2, 3, 1])),
        (raiser, raise_to),
        draw(st.integers(0, total - 1)),
    )


# ---------------------------------------------------------------- one example, posted


@dataclass
class PostedVersion:
    object_id: str
    version: str  # TAXII form (microseconds)
    poster: str
    spec: VersionSpec
    body: dict
    refs: frozenset[str]  # every marking definition the posted version references
    markings: dict[str, Marking]  # non-TLP marking definition id -> the marking it defines

    def describe(self) -> str:
        label = oracle.label_of(self.spec, self.poster)
        parts = [m.banner() + f" [{m.form}]" for m in self.spec.markings]
        if self.spec.tlp:
            parts.append(f"TLP {self.spec.tlp}")
        granular = f" granular(description)={self.spec.granular.banner()}" if self.spec.granular else ""
        return (
            f"{self.object_id} v{self.version} by {self.poster}: {' + '.join(parts) or 'unmarked'} -> {label}{granular}"
        )


@dataclass
class Example:
    collection_id: str
    versions: list[PostedVersion]
    md_posters: dict[str, set[str]] = field(default_factory=dict)  # marking-definition id -> posting nations
    date_added: dict[tuple[str, str], str] = field(default_factory=dict)

    def by_key(self) -> dict[tuple[str, str], PostedVersion]:
        return {(v.object_id, v.version): v for v in self.versions}

    def visible_to(self, principal: Principal) -> set[tuple[str, str]]:
        """The (id, version) pairs the oracle lets ``principal`` see: its label allows it, and for a
        partner, no newer version of the object withdrew it (a tightening recalls older versions)."""
        agreement = Principal(principal.nation, PARTNER_CLEARANCE.get(principal.nation, 4), principal.is_home)
        return {
            (v.object_id, v.version)
            for v in self.versions
            if oracle.may_see_version(principal, v.spec, v.poster)
            and (
                principal.is_home
                or not oracle.withdrawn(
                    agreement,
                    v.spec,
                    [w.spec for w in self.versions if w.object_id == v.object_id and w.version > v.version],
                    v.poster,
                )
            )
        }

    def md_markings(self) -> list[tuple[str, Marking, str]]:
        """(marking-definition id, the marking it defines, its poster) of every non-TLP definition posted."""
        return [(md, marking, v.poster) for v in self.versions for md, marking in v.markings.items()]

    def object_ids(self) -> list[str]:
        return sorted({v.object_id for v in self.versions})


def build_object(
    spec: ObjectSpec, index: int, version_index: int, vspec: VersionSpec, object_id: str, built: oracle.Built
) -> dict:
    created = BASE + timedelta(hours=index)
    modified = created + timedelta(days=version_index, milliseconds=17 * version_index)
    body: dict = {
        "type": spec.type,
        "spec_version": "2.1",
        "id": object_id,
        "created": stix_ts(created),
        "modified": stix_ts(modified),
        "name": f"object {index} version {version_index}",
        "description": f"description of object {index} version {version_index}",
    }
    if spec.type == "indicator":
        body |= {
            "pattern": f"[ipv4-addr:value = '198.51.100.{index + 1}']",
            "pattern_type": "stix",
            "valid_from": stix_ts(created),
        }
    else:
        body["is_family"] = False
    if built.object_marking_refs:
        body["object_marking_refs"] = list(built.object_marking_refs)
    if built.granular_ref:
        body["granular_markings"] = [{"marking_ref": built.granular_ref, "selectors": ["description"]}]
    return body


class Harness:
    """Posting and reading one collection through the HTTP API, with the checks of every read."""

    def __init__(self, client, api: str, auth):
        self.client = client
        self.api = api
        self._auth = auth
        self._tokens: dict[tuple, dict] = {}
        self.decisions = 0
        self.requests = 0
        self.coverage: Counter[str] = Counter()  # what the decisions exercised, printed at the end
        self._absent: dict[tuple, tuple] = {}  # 404 of an absent object, per (collection, principal, endpoint)

    def headers(self, nation: str = HOME, clearance: str | None = None) -> dict:
        key = (nation, clearance)
        if key not in self._tokens:
            if nation == HOME:
                claims = {"subject": "leak-analyst", "nation": HOME, "roles": ("analyst",)}
            else:
                claims = {"subject": f"leak-{nation.lower()}", "nation": nation, "roles": ("partner",)}
            self._tokens[key] = self._auth(**claims, clearance=clearance, lifetime_s=3600)
        return dict(self._tokens[key])

    # -------------------------------------------------------- posting

    def post(self, collection_id: str, scenario: Scenario) -> Example:
        flat: list[tuple[int, int, ObjectSpec, VersionSpec, str]] = []
        for index, spec in enumerate(scenario.objects):
            object_id = f"{spec.type}--{uuid.uuid4()}"
            for version_index, vspec in enumerate(spec.versions):
                flat.append((index, version_index, spec, vspec, object_id))
        example = Example(collection_id, [])
        for position in scenario.post_order:
            index, version_index, spec, vspec, object_id = flat[position]
            built = oracle.build_markings(vspec, spec.poster, label_definition)
            body = build_object(spec, index, version_index, vspec, object_id, built)
            envelope = {"objects": [*built.definitions, body]}
            response = self.client.post(
                objects_url(self.api, collection_id),
                headers=self.headers(spec.poster) | {"Content-Type": TAXII},
                content=json.dumps(envelope).encode(),
            )
            assert response.status_code == 202, response.text
            status = response.json()
            assert status["failure_count"] == 0 and status["success_count"] == len(envelope["objects"]), (
                f"{spec.poster} could not post {vspec}: {status.get('failures')}"
            )
            for md in built.definitions:
                example.md_posters.setdefault(md["id"], set()).add(spec.poster)
            refs = set(built.object_marking_refs) | ({built.granular_ref} if built.granular_ref else set())
            if spec.poster != HOME and "created_by_ref" not in body:
                body = body | {"created_by_ref": home_identity_id(spec.poster)}  # a partner's object is attributed
            example.versions.append(
                PostedVersion(
                    object_id, taxii_time(body["modified"]), spec.poster, vspec, body, frozenset(refs), built.markings
                )
            )
        return example

    # -------------------------------------------------------- reading

    def get(self, url: str, headers: dict, params: dict | None = None):
        self.requests += 1
        return self.client.get(url, headers=headers, params=params)

    def walk(self, url: str, headers: dict, params: dict) -> list[tuple[dict, dict]]:
        """Every page (body, response headers) of a paged TAXII read, following ``next``."""
        pages = []
        query = dict(params)
        while True:
            response = self.get(url, headers, query)
            assert response.status_code == 200, (url, query, response.status_code, response.text)
            check_taxii_200(response)
            body = response.json()
            pages.append((body, response.headers))
            if not body.get("more"):
                return pages
            query = params | {"next": body["next"]}
            assert len(pages) < 500, "paging does not terminate"

    def check_dates(self, example: Example, pages, keys_of) -> None:
        """The date_added headers of each page match what the page serves, in date_added order."""
        for body, headers in pages:
            keys = keys_of(body)
            if not keys:
                assert DATE_ADDED_FIRST not in headers and DATE_ADDED_LAST not in headers
                continue
            dates = [example.date_added[key] for key in keys]
            assert (headers[DATE_ADDED_FIRST], headers[DATE_ADDED_LAST]) == (min(dates), max(dates)), (
                keys,
                dates,
                dict(headers),
            )

    # -------------------------------------------------------- the checks for one principal

    def check_principal(
        self, example: Example, principal: Principal, headers: dict, limit: int, probe: int = 0
    ) -> None:
        by_key = example.by_key()
        visible = example.visible_to(principal)
        newest: dict[str, str] = {}
        oldest: dict[str, str] = {}
        for object_id, version in visible:
            newest[object_id] = max(newest.get(object_id, version), version)
            oldest[object_id] = min(oldest.get(object_id, version), version)

        def mismatch(what: str, served: set, expected: set) -> str:
            lines = [f"{what} for {principal.name}:"]
            lines += [
                "  served, must not be: " + by_key[k].describe() if k in by_key else f"  served, unknown: {k}"
                for k in sorted(served - expected)
            ]
            lines += ["  withheld, must be served: " + by_key[k].describe() for k in sorted(expected - served)]
            lines += ["  all versions:"] + ["    " + v.describe() for v in example.versions]
            return "\n".join(lines)

        url = objects_url(self.api, example.collection_id)
        served_refs: set[str] = set()

        # objects, every version
        expected = visible
        pages = self.walk(url, headers, {"match[type]": TYPE_FILTER, "match[version]": "all", "limit": limit})
        served_objects = [obj for body, _ in pages for obj in body.get("objects", [])]
        keys = [(obj["id"], taxii_time(obj["modified"])) for obj in served_objects]
        assert len(keys) == len(set(keys)), f"a version served twice to {principal.name}: {keys}"
        assert set(keys) == expected, mismatch("objects?match[version]=all", set(keys), expected)
        obj_keys = lambda body: [(o["id"], taxii_time(o["modified"])) for o in body.get("objects", [])]  # noqa: E731
        man_keys = lambda body: [(r["id"], r["version"]) for r in body.get("objects", [])]  # noqa: E731
        self.check_dates(example, pages, obj_keys)
        all_dates = [example.date_added[key] for key in keys]
        assert all_dates == sorted(all_dates), f"objects not in date_added order for {principal.name}"
        for obj in served_objects:
            served_refs |= self.check_copy(by_key[(obj["id"], taxii_time(obj["modified"]))], obj, principal)

        # objects, latest visible version (the default)
        expected = set(newest.items())
        pages = self.walk(url, headers, {"match[type]": TYPE_FILTER, "limit": limit})
        keys = [key for body, _ in pages for key in obj_keys(body)]
        assert len(keys) == len(set(keys)) and set(keys) == expected, mismatch("objects (last)", set(keys), expected)
        self.check_dates(example, pages, obj_keys)

        # objects, the oldest visible version of each
        expected = set(oldest.items())
        pages = self.walk(url, headers, {"match[type]": TYPE_FILTER, "match[version]": "first", "limit": 200})
        keys = [key for body, _ in pages for key in obj_keys(body)]
        assert len(keys) == len(set(keys)) and set(keys) == expected, mismatch("objects (first)", set(keys), expected)

        # objects of one version timestamp, and added after one date_added: visible versions only
        probe_key = sorted(example.date_added, key=example.date_added.get)[probe % len(example.date_added)]
        expected = {key for key in visible if key[1] == probe_key[1]}
        pages = self.walk(url, headers, {"match[type]": TYPE_FILTER, "match[version]": probe_key[1], "limit": 200})
        keys = [key for body, _ in pages for key in obj_keys(body)]
        assert len(keys) == len(set(keys)) and set(keys) == expected, mismatch(
            f"objects?match[version]={probe_key[1]}", set(keys), expected
        )
        threshold = example.date_added[probe_key]
        expected = {key for key in visible if example.date_added[key] > threshold}
        pages = self.walk(
            manifest_url(self.api, example.collection_id),
            headers,
            {"match[type]": TYPE_FILTER, "match[version]": "all", "added_after": threshold, "limit": 200},
        )
        keys = [key for body, _ in pages for key in man_keys(body)]
        assert len(keys) == len(set(keys)) and set(keys) == expected, mismatch(
            f"manifest?added_after={threshold}", set(keys), expected
        )
        self.check_dates(example, pages, man_keys)

        # manifest, every version and the latest
        for version_filter, expected, size in (("all", visible, limit), ("last", set(newest.items()), 200)):
            pages = self.walk(
                manifest_url(self.api, example.collection_id),
                headers,
                {"match[type]": TYPE_FILTER, "match[version]": version_filter, "limit": size},
            )
            records = [r for body, _ in pages for r in body.get("objects", [])]
            keys = [(r["id"], r["version"]) for r in records]
            assert len(keys) == len(set(keys)) and set(keys) == expected, mismatch(
                f"manifest?match[version]={version_filter}", set(keys), expected
            )
            for record in records:
                assert record["date_added"] == example.date_added[(record["id"], record["version"])], record
            self.check_dates(example, pages, man_keys)

        # each object by id, and its versions
        for object_id in example.object_ids():
            object_url = objects_url(self.api, example.collection_id, object_id)
            mine = sorted(version for oid, version in visible if oid == object_id)
            if not mine:
                for hidden_url in (object_url, versions_url(self.api, example.collection_id, object_id)):
                    self.assert_hidden(hidden_url, headers, object_id, example, principal)
                continue
            response = self.get(object_url, headers)  # match[version]=last by default
            assert response.status_code == 200, (principal.name, object_id, response.text)
            check_taxii_200(response)
            got = [(o["id"], taxii_time(o["modified"])) for o in response.json().get("objects", [])]
            expected = {(object_id, newest[object_id])}
            assert got == [(object_id, newest[object_id])], mismatch("object by id", set(got), expected)
            self.check_dates(example, [(response.json(), response.headers)], obj_keys)
            for obj in response.json()["objects"]:
                served_refs |= self.check_copy(by_key[(object_id, newest[object_id])], obj, principal)
            pages = self.walk(versions_url(self.api, example.collection_id, object_id), headers, {"limit": 200})
            listed = [v for body, _ in pages for v in body.get("versions", [])]
            expected = {(object_id, v) for v in mine}
            assert sorted(listed) == mine, mismatch("versions", {(object_id, v) for v in listed}, expected)
            self.check_dates(
                example, pages, lambda body, object_id=object_id: [(object_id, v) for v in body.get("versions", [])]
            )

        # marking definitions: each one a served object references is served, and no unrelated one
        for ref in sorted(served_refs):
            response = self.get(objects_url(self.api, example.collection_id, ref), headers)
            assert response.status_code == 200, (
                f"{principal.name} cannot fetch {ref}, referenced by an object served to it: {response.text}"
            )
            check_taxii_200(response)
            assert [o["id"] for o in response.json()["objects"]] == [ref]
        pages = self.walk(url, headers, {"match[type]": "marking-definition", "match[version]": "all", "limit": 50})
        listed_mds = {o["id"] for body, _ in pages for o in body.get("objects", [])}
        assert served_refs <= listed_mds, (
            f"marking definitions referenced by objects served to {principal.name} are not listed: "
            f"{sorted(served_refs - listed_mds)}"
        )
        # A marking definition is served only while a version the principal may see references it.
        allowed = set().union(*(by_key[key].refs for key in visible)) if visible else set()
        assert listed_mds <= allowed, (
            f"marking definitions served to {principal.name} that no version it may see references: "
            f"{sorted(listed_mds - allowed)}\n" + "\n".join(v.describe() for v in example.versions)
        )

        self.decisions += len(by_key)
        for key, version in by_key.items():
            shown = key in visible
            self.coverage["shown" if shown else "withheld"] += 1
            if shown and not principal.is_home and version.poster not in (HOME, principal.nation):
                self.coverage["shown: third-party (partner-originated, to another partner)"] += 1
            if shown and len(version.spec.markings) > 1:
                self.coverage["shown: several classification markings"] += 1
            if shown and not principal.is_home and not version.spec.markings and version.spec.tlp:
                self.coverage["shown: TLP alone, to a partner"] += 1
            if shown and principal.token_clearance and not principal.is_home:
                self.coverage["shown: partner with a lowered token"] += 1
            if not shown and principal.is_home:
                self.coverage["withheld: home nation with a lowered token"] += 1

    def check_copy(self, posted: PostedVersion, served: dict, principal: Principal) -> set[str]:
        """The served copy is the posted version, minus a description the principal may not see."""
        if oracle.may_see_description(principal, posted.spec, posted.poster):
            assert served == posted.body, (principal.name, posted.describe(), served)
        else:
            self.coverage["shown without its granular-marked description"] += 1
            assert "description" not in served, (
                f"description under a granular marking served to {principal.name}: {posted.describe()}"
            )
            rest = lambda d: {k: v for k, v in d.items() if k not in ("description", "granular_markings")}  # noqa
            assert rest(served) == rest(posted.body), (principal.name, posted.describe(), served)
        refs = set(served.get("object_marking_refs", []))
        refs |= {g["marking_ref"] for g in served.get("granular_markings", []) if "marking_ref" in g}
        return refs

    def assert_hidden(self, url: str, headers: dict, object_id: str, example: Example, principal: Principal):
        """404 exactly as for an object that never existed, without naming the object."""
        self.coverage["404 for an object with no visible version"] += 1
        response = self.get(url, headers)
        assert response.status_code == 404, (
            f"{url} answered {response.status_code} to {principal.name}, who may see no version of it:\n"
            + "\n".join(v.describe() for v in example.versions if v.object_id == object_id)
        )
        body = assert_taxii_error(response, 404)
        assert object_id not in response.text and object_id.split("--")[1] not in response.text
        kind = (example.collection_id, principal, url.endswith("/versions/"), object_id.split("--")[0])
        if kind not in self._absent:
            absent_id = f"{object_id.split('--')[0]}--{uuid.uuid4()}"
            absent = self.get(url.replace(object_id, absent_id), headers)
            assert absent.status_code == 404
            self._absent[kind] = (absent.json(), sorted(k.lower() for k in absent.headers))
        absent_body, absent_headers = self._absent[kind]
        assert body == absent_body, (body, absent_body)
        assert sorted(k.lower() for k in response.headers) == absent_headers, (dict(response.headers), absent_headers)

    def check_raised_token(self, example: Example, nation: str, rank: int) -> None:
        """A token claiming more than the partner agreement: refused, or held to the agreement."""
        headers = self.headers(nation, CANONICAL_NAMES[rank])
        response = self.get(
            objects_url(self.api, example.collection_id), headers, {"match[type]": TYPE_FILTER, "match[version]": "all"}
        )
        if response.status_code in (401, 403):
            return
        assert response.status_code == 200, response.text
        agreement = Principal(nation, PARTNER_CLEARANCE[nation], False)
        pages = self.walk(
            objects_url(self.api, example.collection_id),
            headers,
            {"match[type]": TYPE_FILTER, "match[version]": "all", "limit": 50},
        )
        served = {(o["id"], taxii_time(o["modified"])) for body, _ in pages for o in body.get("objects", [])}
        allowed = {
            (v.object_id, v.version) for v in example.versions if oracle.may_see_version(agreement, v.spec, v.poster)
        }
        assert served <= allowed, f"a token claiming {CANONICAL_NAMES[rank]} raised {nation}'s clearance"


def principals_of(scenario: Scenario) -> list[Principal]:
    lowered = dict(scenario.lowered)
    people = [Principal(HOME, 4, True), Principal(HOME, lowered[HOME], True, CANONICAL_NAMES[lowered[HOME]])]
    for nation, rank, _ in PARTNERS:
        people.append(Principal(nation, rank, False))
        people.append(Principal(nation, lowered[nation], False, CANONICAL_NAMES[lowered[nation]]))
    return people


# ---------------------------------------------------------------- tests


def test_oracle_classification_names_mean_one_rank():
    """The oracle's banner names are read at the intended rank by every mapping table."""
    assert oracle.classification_name_problems() == []


def test_oracle_examples():
    """A few hand-checked decisions, so that the oracle itself is not wrong in the same way as the app."""
    usa, fra, can = (Principal("USA", 3, False), Principal("FRA", 2, False), Principal("CAN", 1, False))
    home = Principal(HOME, 4, True)
    secret_usa_gbr = VersionSpec((Marking("statement", 3, "SECRET", ("USA", "GBR"), False),))
    assert oracle.may_see_version(usa, secret_usa_gbr, HOME)
    assert not oracle.may_see_version(Principal("GBR", 2, False, "CONFIDENTIAL"), secret_usa_gbr, HOME)
    assert not oracle.may_see_version(fra, secret_usa_gbr, HOME)
    # groups expand; the most restrictive of two markings wins; TLP beside them widens nothing
    nato_fvey = VersionSpec(
        (Marking("statement", 1, "VS-NfD", ("NATO",), False), Marking("label", 0, "UNCLASSIFIED", ("FVEY",), False)),
        tlp="2.0:clear",
    )
    assert oracle.may_see_version(can, nato_fvey, HOME)
    assert not oracle.may_see_version(fra, nato_fvey, HOME)  # NATO but not FVEY
    assert not oracle.may_see_version(Principal("CAN", 0, False, "UNCLASSIFIED"), nato_fvey, HOME)
    noforn = VersionSpec((Marking("statement", 0, "U", ("USA",), True),))
    assert not oracle.may_see_version(usa, noforn, HOME) and oracle.may_see_version(home, noforn, HOME)
    assert not oracle.may_see_version(usa, noforn, "USA")  # NOFORN: home nation only, even for the originator
    # TLP alone; unmarked
    assert oracle.may_see_version(can, VersionSpec(tlp="1.0:green"), HOME)
    assert not oracle.may_see_version(can, VersionSpec(tlp="2.0:amber+strict"), HOME)
    assert not oracle.may_see_version(can, VersionSpec(), HOME)
    assert oracle.may_see_version(home, VersionSpec(), HOME)
    assert oracle.may_see_version(Principal(HOME, 0, True, "UNCLASSIFIED"), VersionSpec(), HOME)
    assert not oracle.may_see_version(Principal(HOME, 2, True, "CONFIDENTIAL"), secret_usa_gbr, HOME)
    # partner-originated: the originator is inside its own label; third parties need its release
    assert oracle.may_see_version(can, VersionSpec(), "CAN") and not oracle.may_see_version(usa, VersionSpec(), "CAN")
    from_fra = VersionSpec((Marking("statement", 2, "CONFIDENTIEL DÉFENSE", ("DEU",), False),))
    assert oracle.may_see_version(fra, from_fra, "FRA")
    assert oracle.may_see_version(Principal("DEU", 2, False), from_fra, "FRA")
    assert not oracle.may_see_version(usa, from_fra, "FRA")
    # granular: the description follows its own marking
    granular = VersionSpec(tlp="1.0:white", granular=Marking("statement", 3, "SECRET", ("USA",), False))
    assert oracle.may_see_version(can, granular, HOME) and not oracle.may_see_description(can, granular, HOME)
    assert oracle.may_see_description(usa, granular, HOME)


def test_releasability_property(client, api, auth, session):
    """The HTTP API serves each principal exactly the versions the oracle allows (see module docstring)."""
    harness = Harness(client, api, auth)
    started = time.monotonic()
    examples = 0

    def check(scenario: Scenario) -> None:
        nonlocal examples
        examples += 1
        collection = taxii_service.create_collection(
            session,
            title=f"leak {uuid.uuid4().hex[:8]}",
            read_roles={"partner", "analyst"},
            write_roles={"partner", "analyst"},
        )
        example = harness.post(collection.id, scenario)
        # Every version's date_added, from the analyst's manifest (the home nation at full clearance sees all).
        pages = harness.walk(
            manifest_url(api, collection.id),
            harness.headers(),
            {"match[type]": TYPE_FILTER, "match[version]": "all", "limit": 200},
        )
        for body, _ in pages:
            for record in body.get("objects", []):
                example.date_added[(record["id"], record["version"])] = record["date_added"]
        assert set(example.date_added) == set(example.by_key()), "the analyst does not see every version"
        for principal in principals_of(scenario):
            headers = harness.headers(principal.nation, principal.token_clearance)
            harness.check_principal(example, principal, headers, scenario.limit, scenario.probe)
        harness.check_raised_token(example, *scenario.raiser)

    def run(max_examples: int) -> None:
        settings(
            max_examples=max_examples,
            deadline=None,
            print_blob=True,
            suppress_health_check=[
                HealthCheck.function_scoped_fixture,
                HealthCheck.too_slow,
                HealthCheck.data_too_large,
            ],
        )(given(scenario=scenarios())(check))()

    run(EXAMPLES)
    # Example sizes vary: top up with more examples until the promised number of decisions is reached.
    for _ in range(3):
        if harness.decisions >= MIN_DECISIONS:
            break
        per_example = max(harness.decisions / max(examples, 1), 1)
        run(math.ceil((MIN_DECISIONS - harness.decisions) / per_example) + 2)
    elapsed = time.monotonic() - started
    print(
        f"\nleak property: {examples} examples, {harness.decisions} (principal, version) decisions, "
        f"{harness.requests} requests in {elapsed:.1f}s; coverage: {dict(sorted(harness.coverage.items()))}"
    )
    assert harness.decisions >= MIN_DECISIONS, (
        f"only {harness.decisions} decisions checked; raise TEARLINE_LEAK_EXAMPLES (now {EXAMPLES})"
    )


def test_unreferenced_marking_definitions_stay_home(client, api, auth, session):
    """A marking definition is an object like any other: posted without markings it is for the home
    nation only (DESIGN.md section 2), unless an object served to the principal references it.

    Here the only object referencing ``SECRET//REL TO USA`` is hidden from USA (its other marking
    releases to GBR only), so serving USA that definition would tell it that something labelled for
    it exists in the collection: an existence hint the contract rules out ("No existence oracle";
    "Default deny everywhere").
    """
    collection = taxii_service.create_collection(
        session, title=f"md {uuid.uuid4().hex[:8]}", read_roles={"partner", "analyst"}, write_roles={"analyst"}
    )
    to_usa, to_gbr = oracle.statement_md("SECRET//REL TO USA"), oracle.statement_md("SECRET//REL TO GBR")
    hidden = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--{uuid.uuid4()}",
        "created": "2021-03-01T00:00:00.000Z",
        "modified": "2021-03-01T00:00:00.000Z",
        "name": "hidden from USA",
        "pattern": "[ipv4-addr:value = '198.51.100.7']",
        "pattern_type": "stix",
        "valid_from": "2021-03-01T00:00:00.000Z",
        "object_marking_refs": [to_usa["id"], to_gbr["id"]],
    }
    analyst = auth(subject="md-analyst")
    response = client.post(
        objects_url(api, collection.id),
        headers=analyst | {"Content-Type": TAXII},
        content=json.dumps({"objects": [to_usa, to_gbr, hidden]}).encode(),
    )
    assert response.status_code == 202 and response.json()["success_count"] == 3, response.text
    usa = auth(subject="md-usa", nation="USA", roles=("partner",))
    assert client.get(objects_url(api, collection.id, hidden["id"]), headers=usa).status_code == 404
    listed = client.get(objects_url(api, collection.id), headers=usa, params={"match[version]": "all"})
    assert listed.status_code == 200
    assert [o["id"] for o in listed.json().get("objects", [])] == []
    assert client.get(objects_url(api, collection.id, to_usa["id"]), headers=usa).status_code == 404
