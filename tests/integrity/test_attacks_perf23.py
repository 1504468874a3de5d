"""Outside probes of the performance changes after 92a7b9e (in_list, async session, index lag,
parsed-once Casbin matcher, lz4 audit lists).

Every test asserts the secure (or contract) behaviour: a failing test is a finding.
"""

from __future__ import annotations

import random
import threading
import time
import uuid

import anyio
import httpx
import orjson
import pytest
from sqlalchemy import select, text

from app.auth.principal import Principal
from app.db.bulk import insert_rows
from app.db.lists import in_list
from app.items.models import ItemDerivation
from app.markings.labels import parse_banner
from tests.conftest import HOME, TAXII
from tests.integrity.conftest import API, indicator
from tests.integrity.test_attacks_ingest22 import bodies, get_all, label_definition, push

SHOWN = "UNCLASSIFIED//REL TO FRA, GBR"  # FRA and GBR see it
HIDDEN = "SECRET//REL TO GBR"  # GBR sees it, FRA does not
CREATED = "2026-11-20T09:00:00.000Z"


@pytest.fixture
def fra(headers_for) -> dict:
    return headers_for(subject="fra-perf23", nation="FRA", roles=("partner",))


@pytest.fixture
def gbr(headers_for) -> dict:
    return headers_for(subject="gbr-perf23", nation="GBR", roles=("partner",))


@pytest.fixture
def analyst(headers_for) -> dict:
    return headers_for()


@pytest.fixture
def auditor(headers_for) -> dict:
    return headers_for(subject="auditor-perf23", roles=("auditor",))


def report(name: str, refs: list[str], marking: str, **extra) -> dict:
    return {
        "type": "report",
        "spec_version": "2.1",
        "id": f"report--{uuid.uuid4()}",
        "created": CREATED,
        "modified": CREATED,
        "name": name,
        "published": "2026-11-20T09:00:00Z",
        "object_refs": refs,
        "object_marking_refs": [marking],
        **extra,
    }


def served(client, headers: dict, collection_id: str) -> dict[str, dict]:
    """Every object the principal is served from the collection, paging with limit=7 (cursors)."""
    objects, params = {}, {"limit": 7}
    while True:
        page = client.get(
            f"{API}/collections/{collection_id}/objects/", headers=headers | {"Accept": TAXII}, params=params
        )
        assert page.status_code == 200, page.text
        body = page.json()
        objects.update({o["id"]: o for o in body.get("objects", [])})
        if not body.get("more"):
            return objects
        params = {"limit": 7, "next": body["next"]}


def named_ids(obj: dict) -> set[str]:
    found = set()
    for key, value in obj.items():
        if key.endswith("_ref") and isinstance(value, str):
            found.add(value)
        elif key.endswith("_refs") and isinstance(value, list):
            found.update(v for v in value if isinstance(v, str))
    return found


# 1. in_list: exactly the rows IN matched -------------------------------------------------------

AWKWARD = [
    "NULL", "null", "{a,b}", 'a"b', "it's", "back\\slash", "naïve ✓ 日本 😀", "", " lead", "trail ",
    "1", "01", "1.0", "true", "[1]", '{"a":1}', "\u2028\t\n", "%s", ":ids", "x" * 288,
]  # fmt: skip


def test_in_list_matches_what_in_matched_for_awkward_values(connection):
    """Text quirks of both encodings (PostgreSQL array literal: NULL, braces, quotes; SQLite JSON:
    numbers, escapes, type affinity of '1' vs 1): in_list must select exactly the rows IN selects,
    for subsets, duplicates and values stored or not."""
    table, dialect = ItemDerivation.__table__, connection.dialect.name
    insert_rows(connection, table, [{"derived_id": f"d{i}", "source_id": value} for i, value in enumerate(AWKWARD)])
    rng = random.Random(23)
    probes = [AWKWARD, [], AWKWARD * 3, ["NULL"], ["Null", "nul", "x" * 287, "1 ", "1e0"]]
    probes += [[*rng.sample(AWKWARD, k), "absent"] for k in (1, 3, 7, 12)]
    for wanted in probes:
        new = set(
            connection.execute(select(table.c.source_id).where(in_list(table.c.source_id, dialect, wanted))).scalars()
        )
        old = set(connection.execute(select(table.c.source_id).where(table.c.source_id.in_(wanted))).scalars())
        assert new == old == set(wanted) & set(AWKWARD), (wanted, new, old)


def test_in_list_does_not_match_a_value_longer_than_the_column(connection):
    """FINDING (latent on PostgreSQL): in_list casts the array to the column's own type (VARCHAR(288)[] for
    object ids, used by ingest's held lookup and derived_bounds), and an explicit cast to varchar(n)
    truncates: an id of 289+ characters then matches the stored id of its first 288. IN did not."""
    table, dialect = ItemDerivation.__table__, connection.dialect.name
    stored = "x-" + "a" * 248 + f"--{uuid.uuid4()}"
    assert len(stored) == 288
    insert_rows(connection, table, [{"derived_id": stored, "source_id": "s"}])
    longer = f"{stored}-b--{uuid.uuid4()}"  # a valid id of an x- object: the validator accepts it
    found = connection.execute(select(table.c.derived_id).where(in_list(table.c.derived_id, dialect, [longer]))).all()
    assert found == [], f"{dialect}: {longer[:20]}... (len {len(longer)}) matched the stored id {stored[:20]}..."


# 2. Reference closure through the one-parameter lists -----------------------------------------


def test_closure_removes_hidden_entries_from_a_report_naming_thousands(app, client, analyst, fra, gbr, writable):
    """A report naming 2,400 ids (hidden, visible, unstored, duplicated, an upper-case twin of a
    hidden id): FRA's copy keeps exactly the entries not naming a hidden object; a relationship
    whose source is hidden is withheld from FRA (404 and absent from every page)."""
    shown, hidden = label_definition(app, SHOWN), label_definition(app, HIDDEN)
    secrets = [indicator(f"h{i}", hidden["id"]) for i in range(3)]
    visible = [indicator(f"v{i}", shown["id"]) for i in range(3)]
    assert push(client, analyst, writable.id, [shown, hidden, *secrets, *visible])["success_count"] == 8
    hidden_ids = {o["id"] for o in secrets}
    twin = "indicator--" + secrets[0]["id"].split("--")[1].upper()
    unstored = [f"indicator--{uuid.uuid4()}" for _ in range(2390)]
    refs = [secrets[0]["id"], *unstored[:1000], *(o["id"] for o in visible), secrets[1]["id"], twin]
    refs += [*unstored[1000:], secrets[2]["id"], secrets[0]["id"]]
    big = report("big", refs, shown["id"])
    rel = {
        "type": "relationship", "spec_version": "2.1", "id": f"relationship--{uuid.uuid4()}",
        "created": CREATED, "modified": CREATED, "relationship_type": "indicates",
        "source_ref": secrets[0]["id"], "target_ref": visible[0]["id"], "object_marking_refs": [shown["id"]],
    }  # fmt: skip
    assert push(client, analyst, writable.id, [big, rel])["success_count"] == 2
    by_id = get_all(client, fra, writable.id, big["id"])
    assert by_id.status_code == 200, by_id.text
    [copy] = by_id.json()["objects"]
    assert copy["object_refs"] == [r for r in refs if r not in hidden_ids]
    assert get_all(client, gbr, writable.id, big["id"]).json()["objects"][0]["object_refs"] == refs
    assert get_all(client, fra, writable.id, rel["id"]).status_code == 404
    seen = served(client, fra, writable.id)
    assert rel["id"] not in seen and not hidden_ids & seen.keys()
    assert not any(named_ids(o) & hidden_ids for o in seen.values())


def test_closure_along_chains_across_pages(app, client, analyst, fra, writable):
    """Chains R0 -> hidden, R1 -> R0, R2 -> R1 (+ visible), repeated 6 times, read 7 per page with
    cursors: FRA is served no R0 or R1, and no served object names an object FRA is not served."""
    shown, hidden = label_definition(app, SHOWN), label_definition(app, HIDDEN)
    objects, withheld, kept = [shown, hidden], set(), set()
    for i in range(6):
        secret, plain = indicator(f"h{i}", hidden["id"]), indicator(f"v{i}", shown["id"])
        r0 = report("r0", [secret["id"]], shown["id"])
        r1 = report("r1", [r0["id"]], shown["id"])
        r2 = report("r2", [r1["id"], plain["id"]], shown["id"])
        objects += [secret, plain, r0, r1, r2]
        withheld |= {secret["id"], r0["id"], r1["id"]}
        kept.add(r2["id"])
    assert push(client, analyst, writable.id, objects)["success_count"] == len(objects)
    seen = served(client, fra, writable.id)
    assert not withheld & seen.keys()
    assert kept <= seen.keys()
    stored = {o["id"] for o in objects}
    for obj in seen.values():
        assert named_ids(obj) & stored <= seen.keys(), obj


# 3. Ingest's held lookup through in_list -------------------------------------------------------


def test_a_takeover_hidden_in_a_large_envelope_with_duplicates_is_refused(app, client, analyst, fra, writable):
    """FRA posts 300 new indicators, an indicator twice, and a new version of a home indicator hidden
    from it (the held lookup's list holds ~300 ids): the new version is refused, the home body is
    unchanged, FRA still gets 404 for it."""
    hidden = label_definition(app, HIDDEN)
    original = indicator("home secret", hidden["id"])
    assert push(client, analyst, writable.id, [hidden, original])["success_count"] == 2
    mine = [indicator(f"fra {i}", "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9") for i in range(300)]
    takeover = original | {
        "modified": "2026-11-25T09:00:00.000Z",
        "name": "FRA",
        "object_marking_refs": mine[0]["object_marking_refs"],
    }
    status = push(client, fra, writable.id, [*mine[:150], takeover, mine[7], *mine[150:]])
    refused = {f["id"] for f in status.get("failures", [])}
    assert original["id"] in refused, status
    assert bodies(app, writable.id, original["id"]) == [original]
    assert get_all(client, fra, writable.id, original["id"]).status_code == 404


# 4. The session opened in the event loop -------------------------------------------------------


def test_cancelled_requests_leak_no_connection_and_write_all_or_nothing(app, client, analyst, writable):
    """Requests cancelled at random moments by an anyio cancel scope (as Starlette cancels a task
    group): afterwards no more pooled connections are checked out than before, the server still
    answers, and each cancelled write is either stored with a write record naming it, or not at all."""
    engine = app.state.engine
    before = engine.pool.checkedout()
    posted: list[str] = []

    async def hammer() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as ac:
            rng = random.Random(5)
            for i in range(40):
                obj = indicator(f"cancel {i}")
                posted.append(obj["id"])
                headers = analyst | {"Accept": TAXII, "Content-Type": TAXII}
                for method, body in (("POST", orjson.dumps({"objects": [obj]})), ("GET", None)):
                    with anyio.move_on_after(rng.choice([0.0005, 0.002, 0.005, 0.02])):
                        await ac.request(
                            method, f"{API}/collections/{writable.id}/objects/", headers=headers, content=body
                        )

    anyio.run(hammer)
    deadline = time.monotonic() + 10
    while engine.pool.checkedout() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert engine.pool.checkedout() <= before, engine.pool.status()
    after = client.get(f"{API}/collections/{writable.id}/objects/", headers=analyst | {"Accept": TAXII})
    assert after.status_code == 200, after.text
    with engine.connect() as conn:
        stored = set(
            conn.execute(
                text("SELECT object_id FROM stix_object WHERE collection_id = :c"), {"c": writable.id}
            ).scalars()
        )
        written = {
            p[0] for (pairs,) in conn.execute(text("SELECT pairs FROM audit_written")) for p in orjson.loads(pairs)
        }
    assert stored, "no write got through: the probe cancelled too early to test anything"
    for object_id in posted:
        assert (object_id in stored) <= (object_id in written), object_id


# 5. Recipients index lag -----------------------------------------------------------------------


def test_an_auditor_asking_right_after_a_pull_sees_the_recipient(app, client, analyst, fra, auditor, writable):
    """FRA pulls an object; at once (inside the indexer's settle time) the auditor asks who received
    it: FRA is named, every time. And the chain (lz4 lists on PostgreSQL) still verifies."""
    shown = label_definition(app, SHOWN)
    for i in range(5):
        obj = indicator(f"lag {i}", shown["id"])
        assert push(client, analyst, writable.id, [shown, obj] if i == 0 else [obj])["failure_count"] == 0
        assert get_all(client, fra, writable.id, obj["id"]).status_code == 200
        answer = client.get(f"/api/v1/audit/recipients/{obj['id']}", headers=auditor)
        assert answer.status_code == 200, answer.text
        assert "FRA" in {r["nation"] for r in answer.json()["recipients"]}, answer.json()
    verified = client.get("/api/v1/audit/verify", headers=auditor)
    assert verified.status_code == 200 and verified.json().get("ok") is True, verified.text


def test_audit_lists_are_lz4_on_postgresql(app):
    """Migration 0014: both list columns are set to lz4 where the server has it (else left as pglz)."""
    engine = app.state.engine
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    with engine.connect() as conn:
        methods = dict(conn.execute(text(
            "SELECT c.relname, a.attcompression FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "WHERE c.relname IN ('audit_served', 'audit_written') AND a.attname = 'pairs'"
        )).all())  # fmt: skip
        lz4 = conn.execute(
            text("SELECT count(*) FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)")
        ).scalar()
    assert methods == (
        {"audit_served": "l", "audit_written": "l"} if lz4 else {"audit_served": "", "audit_written": ""}
    )


# 6. The parsed-once matcher ----------------------------------------------------------------------


def test_the_reused_matcher_decides_each_pair_alone(app, session):
    """8 threads interleave decisions over alternating principals and labels, with a decision that
    raises mid-evaluation between them: each answer equals the clauses of section 2 for its own pair."""
    policy, _ = app.state.visibility.current_policy(session)
    mappings = app.state.mappings
    nations = {"USA": 3, "GBR": 3, "FRA": 2, "DEU": 2, "CAN": 1}
    principals = [
        Principal(f"s-{n}", n, frozenset({"partner"}), c, frozenset(), is_home=False) for n, c in nations.items()
    ]
    principals.append(Principal("a", HOME, frozenset({"analyst"}), 2, frozenset(), is_home=True))
    banners = [SHOWN, HIDDEN, "UNCLASSIFIED//REL TO NATO", "CONFIDENTIAL//REL TO FRA, DEU", "TOP SECRET//REL TO USA"]
    labels = [parse_banner(b, originator=o, mappings=mappings) for b in banners for o in (HOME, "GBR", "FRA")]
    expected = {
        (i, j): all(ok for _, ok in policy.explain(p, lab))
        for i, p in enumerate(principals)
        for j, lab in enumerate(labels)
    }
    assert any(expected.values()) and not all(expected.values())

    class Exploding:
        """A label whose rank, read by the matcher's first clause for every principal, raises."""

        originator, caveats, releasable_to = "GBR", frozenset(), frozenset()

        @property
        def rank(self):
            raise RuntimeError("mid-evaluation")

    wrong: list[tuple] = []
    failures: list[BaseException] = []

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(300):
                i, j = rng.randrange(len(principals)), rng.randrange(len(labels))
                if rng.random() < 0.05:
                    with pytest.raises(RuntimeError, match="mid-evaluation"):
                        policy.allows(principals[i], Exploding())
                if policy.allows(principals[i], labels[j]) != expected[(i, j)]:
                    wrong.append((principals[i].nation, banners[j // 3]))
        except BaseException as exc:  # noqa: BLE001 - a thread's failure must fail the test, not only warn
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures[:3]
    assert not wrong, wrong[:5]
