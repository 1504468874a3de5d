"""Outside probes of the faster ingest (issue 22, commit d6a1046).

COPY / raw executemany for stix_object and side tables, the skip of referenced definitions a
collection already holds, the yes/no validator used for references and redactions, bodies parsed
once. Every test asserts the secure behaviour: a failing test is a finding.
"""

from __future__ import annotations

import uuid

import orjson
import pytest
from sqlalchemy import text

from app.db.timestamps import format_us
from app.items import stix_validation
from app.markings.labels import label_marking_definition, parse_banner
from tests.conftest import HOME, TAXII
from tests.integrity.conftest import API, TLP_WHITE, indicator, statement, table_counts


@pytest.fixture
def analyst(headers_for) -> dict:
    return headers_for()


@pytest.fixture
def auditor(headers_for) -> dict:
    return headers_for(subject="auditor-1", roles=("auditor",))


def post(client, headers: dict, collection_id: str, objects: list[dict]):
    return client.post(
        f"{API}/collections/{collection_id}/objects/",
        headers=headers | {"Accept": TAXII, "Content-Type": TAXII},
        content=orjson.dumps({"objects": objects}),
    )


def push(client, headers: dict, collection_id: str, objects: list[dict]) -> dict:
    response = post(client, headers, collection_id, objects)
    assert response.status_code == 202, response.text
    return response.json()


def get_all(client, headers: dict, collection_id: str, object_id: str):
    return client.get(
        f"{API}/collections/{collection_id}/objects/{object_id}/",
        headers=headers | {"Accept": TAXII},
        params={"match[version]": "all"},
    )


def bodies(app, collection_id: str, object_id: str) -> list[dict]:
    with app.state.engine.connect() as connection:
        return [
            orjson.loads(body)
            for (body,) in connection.execute(
                text("SELECT body FROM stix_object WHERE collection_id = :c AND object_id = :o ORDER BY pk"),
                {"c": collection_id, "o": object_id},
            )
        ]


def all_bodies(app, object_id: str) -> list[dict]:
    with app.state.engine.connect() as connection:
        return [
            orjson.loads(body)
            for (body,) in connection.execute(
                text("SELECT body FROM stix_object WHERE object_id = :o ORDER BY pk"), {"o": object_id}
            )
        ]


def label_definition(app, banner: str) -> dict:
    return label_marking_definition(
        parse_banner(banner, originator=HOME, mappings=app.state.mappings), app.state.mappings
    )


def new_collection(session, **grants):
    from app.taxii import service as taxii_service

    return taxii_service.create_collection(
        session,
        title=f"ingest22 {uuid.uuid4().hex[:8]}",
        read_roles={"partner", "analyst"},
        write_roles={"partner", "analyst"},
        **grants,
    )


def scrub(message: str | None, *ids: str) -> str | None:
    if message is None:
        return None
    for i, value in enumerate(ids):
        message = message.replace(value, f"<id{i}>")
    return message


# 1. The skip of already-held definitions -------------------------------------------------------


@pytest.mark.parametrize("carry", ["definition only", "definition and a referencing object"])
def test_a_partner_cannot_replace_a_definition_held_here_with_other_content(
    app, client, analyst, fra, gbr, writable, carry
):
    """Home stores a statement D releasable to GBR; FRA posts D' under D's id and version with other
    content (alone, or with an indicator naming it). D' is refused; D stays the only body, in every row."""
    original = statement("UNCLASSIFIED//REL TO GBR")
    assert push(client, analyst, writable.id, [original])["success_count"] == 1
    forged = original | {"definition": {"statement": "UNCLASSIFIED//REL TO FRA"}}
    objects = [forged] if carry == "definition only" else [forged, indicator("fra", forged["id"])]
    status = push(client, fra, writable.id, objects)
    outcomes = {s["id"]: True for s in status.get("successes", [])} | {
        f["id"]: False for f in status.get("failures", [])
    }
    assert outcomes.get(original["id"]) is False, status
    assert all(body == original for body in all_bodies(app, original["id"])), all_bodies(app, original["id"])


def test_a_partner_cannot_replace_a_definition_held_in_another_collection(app, client, session, analyst, fra):
    """D is held in collection A only; FRA posts D' (same id and version, other content) to B, with
    and without an indicator naming it: refused, and no row of D' anywhere."""
    a, b = new_collection(session), new_collection(session)
    original = statement("UNCLASSIFIED//REL TO FRA, GBR")
    assert push(client, analyst, a.id, [original])["success_count"] == 1
    forged = original | {"definition": {"statement": "UNCLASSIFIED"}}
    for objects in ([forged], [forged, indicator("fra b", forged["id"])], [indicator("fra c", forged["id"]), forged]):
        status = push(client, fra, b.id, objects)
        assert any(f["id"] == original["id"] for f in status.get("failures", [])), status
    assert all(body == original for body in all_bodies(app, original["id"])), all_bodies(app, original["id"])


def test_a_referenced_definition_held_here_is_not_stored_twice(app, client, session, analyst, fra):
    """An indicator naming a definition the collection already holds (the skipped path) stores the
    indicator only; naming one held only elsewhere copies it here once."""
    a, b = new_collection(session), new_collection(session)
    definition = statement("UNCLASSIFIED//REL TO FRA")
    assert push(client, analyst, a.id, [definition])["success_count"] == 1
    status = push(client, analyst, a.id, [indicator("here", definition["id"])])
    assert status["success_count"] == 1 and status["failure_count"] == 0, status
    assert len(bodies(app, a.id, definition["id"])) == 1
    status = push(
        client, analyst, b.id, [indicator("elsewhere", definition["id"]), indicator("again", definition["id"])]
    )
    assert status["success_count"] == 2, status
    assert bodies(app, b.id, definition["id"]) == [definition]
    # FRA sees the copied definition and the indicators naming it.
    served = client.get(f"{API}/collections/{b.id}/objects/{definition['id']}/", headers=fra | {"Accept": TAXII})
    assert served.status_code == 200 and served.json()["objects"] == [definition]


def test_a_partner_cannot_take_over_a_hidden_object_by_naming_it_as_a_definition(app, client, analyst, fra, writable):
    """FRA submits, under the id of a home indicator hidden from it, objects of every shape; nothing lands."""
    hidden_label = label_definition(app, "SECRET//REL TO GBR")
    original = indicator("home secret", hidden_label["id"])
    assert push(client, analyst, writable.id, [hidden_label, original])["success_count"] == 2
    before = bodies(app, writable.id, original["id"])
    takeover = original | {"modified": "2026-11-25T09:00:00.000Z", "object_marking_refs": [TLP_WHITE], "name": "FRA"}
    status = push(client, fra, writable.id, [takeover])
    assert status["failure_count"] == 1, status
    status = push(client, fra, writable.id, [takeover | {"object_marking_refs": [hidden_label["id"]]}])
    assert status["failure_count"] == 1, status
    assert bodies(app, writable.id, original["id"]) == before
    assert get_all(client, fra, writable.id, original["id"]).status_code == 404


@pytest.mark.parametrize("held", [False, True])
def test_a_partner_cannot_forge_a_tlp_definition(app, client, analyst, fra, gbr, writable, held):
    """FRA posts a definition under TLP:WHITE's id with other content (releasing nothing), with an
    indicator naming it, whether or not the collection already holds TLP:WHITE (the skipped path)."""
    if held:
        assert push(client, analyst, writable.id, [indicator("tlp", TLP_WHITE)])["success_count"] == 1
    tlp = app.state.mappings.tlp[TLP_WHITE][1]
    forged = tlp | {"name": "TLP:RED", "definition": {"tlp": "red"}}
    status = push(client, fra, writable.id, [forged, indicator("fra", TLP_WHITE)])
    assert any(f["id"] == TLP_WHITE for f in status.get("failures", [])), status
    assert all(body == tlp for body in all_bodies(app, TLP_WHITE)), all_bodies(app, TLP_WHITE)


# 2. Existence oracles -------------------------------------------------------------------------------


def test_a_reference_to_a_hidden_definition_reads_like_one_to_an_absent_definition(app, client, analyst, fra, writable):
    """FRA names, in its indicator, (a) a home definition it may not see, held in this collection;
    (b) one held only in another collection; (c) an id stored nowhere. The answers must be alike."""
    hidden = statement("SECRET//REL TO GBR")
    assert push(client, analyst, writable.id, [hidden, indicator("uses it", hidden["id"])])["success_count"] == 2
    absent = f"marking-definition--{uuid.uuid4()}"
    answers = []
    for ref in (hidden["id"], absent):
        obj = indicator("probe", ref)
        status = push(client, fra, writable.id, [obj])
        answers.append(
            (
                status["success_count"],
                status["failure_count"],
                [scrub(f.get("message"), ref, obj["id"]) for f in status.get("failures", [])],
            )
        )
    assert answers[0] == answers[1], answers


def test_a_reference_to_a_hidden_definition_elsewhere_reads_like_an_absent_one(app, client, session, analyst, fra):
    a, b = new_collection(session), new_collection(session)
    hidden = statement("SECRET//REL TO GBR")
    assert push(client, analyst, a.id, [hidden])["success_count"] == 1
    absent = f"marking-definition--{uuid.uuid4()}"
    answers = []
    for ref in (hidden["id"], absent):
        obj = indicator("probe", ref)
        status = push(client, fra, b.id, [obj])
        answers.append(
            (status["success_count"], [scrub(f.get("message"), ref, obj["id"]) for f in status.get("failures", [])])
        )
    assert answers[0] == answers[1], answers
    assert bodies(app, b.id, hidden["id"]) == []


def test_a_hidden_definitions_id_with_new_content_reads_like_a_visible_ones(app, client, analyst, fra, writable):
    """FRA posts a different definition under the id of (a) a definition hidden from it and (b) one it
    sees: both refused alike (the answer must not depend on visibility)."""
    hidden = statement("SECRET//REL TO GBR")
    visible = statement("UNCLASSIFIED//REL TO FRA")
    assert push(client, analyst, writable.id, [hidden, visible])["success_count"] == 2
    answers = []
    for held in (hidden, visible):
        forged = held | {"definition": {"statement": "UNCLASSIFIED//REL TO FRA, DEU"}}
        status = push(client, fra, writable.id, [forged])
        answers.append(
            (status["success_count"], [scrub(f.get("message"), held["id"]) for f in status.get("failures", [])])
        )
    assert answers[0] == answers[1], answers
    assert answers[0][0] == 0


def test_a_duplicate_of_a_hidden_definition_reads_like_a_new_definition(app, client, analyst, fra, writable):
    """An exact copy of a definition FRA cannot see, posted by FRA, reads like a new success."""
    hidden = statement("SECRET//REL TO GBR")
    assert push(client, analyst, writable.id, [hidden])["success_count"] == 1
    fresh = statement("SECRET//REL TO GBR")
    answers = []
    for obj in (hidden, fresh):
        status = push(client, fra, writable.id, [obj])
        answers.append(
            (
                status["success_count"],
                status["failure_count"],
                [scrub(s.get("message"), obj["id"]) for s in status.get("successes", [])],
            )
        )
    assert answers[0] == answers[1], answers


# 3. is_valid against check, redactions and references ------------------------------------------


MUTANTS = [
    lambda o: {k: v for k, v in o.items() if k != "pattern"},
    lambda o: o | {"pattern": "[not a pattern"},
    lambda o: o | {"modified": "2020-01-01T00:00:00.000Z"},
    lambda o: o | {"valid_until": "2020-01-01T00:00:00Z"},
    lambda o: o | {"created_by_ref": "indicator--7b9f5f8f-7e9f-4d3c-9a33-4c1f2d3b4a59"},
    lambda o: o | {"object_marking_refs": ["identity--7b9f5f8f-7e9f-4d3c-9a33-4c1f2d3b4a59"]},
    lambda o: o | {"granular_markings": [{"marking_ref": TLP_WHITE, "selectors": ["nope"]}]},
    lambda o: o | {"granular_markings": [{"marking_ref": TLP_WHITE, "lang": "en", "selectors": ["name"]}]},
    lambda o: o | {"spec_version": "2.0"},
    lambda o: o | {"confidence": 101},
    lambda o: o | {"x_custom": "\\N\t\n"},
    lambda o: o,
]


@pytest.mark.parametrize("mutant", range(len(MUTANTS)))
def test_is_valid_agrees_with_check(mutant):
    obj = MUTANTS[mutant](indicator("mutant"))
    try:
        stix_validation.check(obj)
        checked = True
    except stix_validation.StixInvalid:
        checked = False
    assert stix_validation.is_valid(obj) is checked
    # twice: the cached verdicts (reference refusals, compiled validators) give the same answer
    assert stix_validation.is_valid(obj) is checked


def test_a_redaction_that_would_leave_an_invalid_object_withholds_it(app, client, analyst, fra, gbr, writable):
    """A relationship whose source_ref (required) sits under a marking FRA may not see is withheld
    from FRA; GBR gets it whole; an optional property under it is only removed."""
    secret = label_definition(app, "SECRET//REL TO GBR")
    open_ = label_definition(app, "UNCLASSIFIED//REL TO FRA, GBR")
    target = indicator("target", open_["id"])
    relationship = {
        "type": "relationship",
        "spec_version": "2.1",
        "id": f"relationship--{uuid.uuid4()}",
        "created": "2026-11-20T09:00:00.000Z",
        "modified": "2026-11-20T09:00:00.000Z",
        "relationship_type": "indicates",
        "source_ref": target["id"],
        "target_ref": f"malware--{uuid.uuid4()}",
        "description": "secret words",
        "object_marking_refs": [open_["id"]],
        "granular_markings": [{"marking_ref": secret["id"], "selectors": ["source_ref"]}],
    }
    optional = indicator(
        "optional",
        open_["id"],
        granular_markings=[{"marking_ref": secret["id"], "selectors": ["description"]}],
        description="secret words",
    )
    status = push(client, analyst, writable.id, [secret, open_, target, relationship, optional])
    assert status["success_count"] == 5, status
    assert get_all(client, fra, writable.id, relationship["id"]).status_code == 404
    assert get_all(client, gbr, writable.id, relationship["id"]).status_code == 200
    served = get_all(client, fra, writable.id, optional["id"])
    assert served.status_code == 200
    (copy,) = served.json()["objects"]
    assert "description" not in copy and "secret words" not in served.text
    stix_validation.check(copy)


def test_a_report_naming_only_hidden_objects_is_withheld(app, client, analyst, fra, writable):
    """object_refs is a required group: a report all of whose refs FRA cannot see is withheld; one
    that keeps a visible ref is served without the hidden ones."""
    secret = label_definition(app, "SECRET//REL TO GBR")
    open_ = label_definition(app, "UNCLASSIFIED//REL TO FRA, GBR")
    hidden = indicator("hidden", secret["id"])
    shown = indicator("shown", open_["id"])

    def report(*refs: str) -> dict:
        return {
            "type": "report",
            "spec_version": "2.1",
            "id": f"report--{uuid.uuid4()}",
            "created": "2026-11-20T09:00:00.000Z",
            "modified": "2026-11-20T09:00:00.000Z",
            "name": "r",
            "published": "2026-11-20T09:00:00Z",
            "object_refs": list(refs),
            "object_marking_refs": [open_["id"]],
        }

    only_hidden, mixed = report(hidden["id"]), report(hidden["id"], shown["id"])
    status = push(client, analyst, writable.id, [secret, open_, hidden, shown, only_hidden, mixed])
    assert status["success_count"] == 6, status
    assert get_all(client, fra, writable.id, only_hidden["id"]).status_code == 404
    served = get_all(client, fra, writable.id, mixed["id"])
    assert served.status_code == 200
    assert served.json()["objects"][0]["object_refs"] == [shown["id"]]
    assert hidden["id"] not in served.text


# 4. Text COPY could mangle -----------------------------------------------------------------------

AWKWARD = [
    "back\\slash",
    "tab\there",
    "new\nline\r\n",
    "\\N",
    "\\.",
    "\\.\n",
    "\\\\N\t\\t",
    "nul\u0000byte",
    "unicodé ☃ 𝄞 \u2028\u2029",
    "quote\" and ' and ,;|",
    "\x7f\x1b[31m",
]


@pytest.mark.parametrize("value", AWKWARD, ids=range(len(AWKWARD)))
def test_awkward_text_is_served_back_as_stored(app, client, analyst, fra, writable, value):
    definition = statement("UNCLASSIFIED//REL TO FRA")
    obj = indicator(
        value,
        definition["id"],
        description=value,
        labels=[value, "x"],
        x_awkward={value: value, "list": [value]},
        external_references=[{"source_name": value, "description": value}],
    )
    status = push(client, analyst, writable.id, [definition, obj])
    assert status["success_count"] == 2, status
    for headers in (analyst, fra):
        served = get_all(client, headers, writable.id, obj["id"])
        assert served.status_code == 200, served.text
        (copy,) = served.json()["objects"]
        for key in ("name", "description", "labels", "x_awkward", "external_references"):
            assert copy[key] == obj[key], key
    assert bodies(app, writable.id, obj["id"])[0]["x_awkward"] == obj["x_awkward"]


@pytest.mark.parametrize("value", AWKWARD, ids=range(len(AWKWARD)))
def test_awkward_marking_text_is_served_back_as_stored(app, client, analyst, fra, writable, value):
    """A statement marking with awkward text (it labels nothing a partner is refused by) and a TLP
    object naming it: the definition served is the one stored."""
    definition = statement(f"note {value}")
    obj = indicator("awkward marking", TLP_WHITE)
    status = push(client, analyst, writable.id, [definition, obj])
    outcomes = {s["id"] for s in status.get("successes", [])}
    if definition["id"] in outcomes:
        served = client.get(
            f"{API}/collections/{writable.id}/objects/{definition['id']}/", headers=analyst | {"Accept": TAXII}
        )
        assert served.status_code == 200
        assert served.json()["objects"] == [definition]


REFERENCE_VARIANTS = {
    "tab and \\N in a ref id": lambda t: {"x_tab_ref": t + "\t\\N"},
    "\\N in a refs list": lambda t: {"x_list_refs": [t, "indicator--\\N"]},
    "tab in a ref property name": lambda t: {"x_ta\tb_ref": t},
    "NUL in a ref property name": lambda t: {"x_nu\u0000l_ref": t},
    "NUL in a ref id": lambda t: {"x_nul_ref": "indicator--\u0000"},
    "NUL in a refs list": lambda t: {"x_nul_refs": [t, "indicator--\u0000"]},
    "overlong ref property name": lambda t: {"x_" + "a" * 300 + "_ref": t},
}


@pytest.mark.parametrize("variant", list(REFERENCE_VARIANTS))
def test_awkward_reference_text_does_not_break_the_envelope(app, client, analyst, writable, variant):
    """Custom reference properties carrying awkward text go into the side table object_reference
    (COPY on PostgreSQL): the object is stored and served as sent, or refused alone (a failure in
    the status resource), on both stores; never a 5xx that loses the envelope's other objects."""
    target = indicator("target")
    awkward = indicator("awkward", **REFERENCE_VARIANTS[variant](target["id"]))
    plain = indicator("plain")
    before = table_counts(app.state.engine)
    try:
        response = post(client, analyst, writable.id, [target, awkward, plain])
    except Exception as exc:  # noqa: BLE001 - the TestClient re-raises an unhandled server error
        after = table_counts(app.state.engine)
        partial = {
            k: (before[k], after[k])
            for k in ("stix_object", "object_marking_ref", "audit_written")
            if before[k] != after[k]
        }
        pytest.fail(f"unhandled server error (500), partial rows {partial}: {exc!r:.300}")
    assert response.status_code == 202, response.text
    status = response.json()
    stored = {s["id"] for s in status.get("successes", [])}
    assert {target["id"], plain["id"]} <= stored, status
    if awkward["id"] in stored:
        served = get_all(client, analyst, writable.id, awkward["id"])
        assert served.status_code == 200
        assert served.json()["objects"] == [awkward]
    after = table_counts(app.state.engine)
    assert after["stix_object"] - before["stix_object"] == len(stored)


# 5. Audit ------------------------------------------------------------------------------------------


def test_every_stored_version_is_named_by_its_write_record(app, client, session, analyst, fra, auditor):
    """Envelopes with TLP and stored definitions copied in, skipped held definitions, duplicates,
    refusals and SCOs: the versions stored are exactly those the write records name, and the chain verifies."""
    a, b = new_collection(session), new_collection(session)
    definition = statement("UNCLASSIFIED//REL TO FRA")
    sco = {"type": "domain-name", "spec_version": "2.1", "id": f"domain-name--{uuid.uuid4()}", "value": "x.example"}
    first = indicator("one", definition["id"], TLP_WHITE)
    posts = [
        (analyst, a.id, [definition, first]),
        (analyst, b.id, [indicator("copied", definition["id"]), sco]),  # definition copied in, unreported
        (analyst, b.id, [indicator("skip", definition["id"]), sco]),  # definition held: skipped
        (fra, b.id, [indicator("fra", definition["id"], TLP_WHITE), sco]),
        (fra, a.id, [definition | {"definition": {"statement": "UNCLASSIFIED"}}, first]),
        (analyst, a.id, [first, first | {"modified": "2026-11-21T09:00:00.000Z"}]),
    ]
    for headers, collection_id, objects in posts:
        assert post(client, headers, collection_id, objects).status_code == 202
    with app.state.engine.connect() as connection:
        for collection_id in (a.id, b.id):
            stored = {
                (o, format_us(v))
                for o, v in connection.execute(
                    text("SELECT object_id, version_us FROM stix_object WHERE collection_id = :c"),
                    {"c": collection_id},
                )
            }
            named: set[tuple[str, str]] = set()
            for (pairs,) in connection.execute(
                text(
                    "SELECT w.pairs FROM audit_record r JOIN audit_written w ON w.record_seq = r.seq "
                    "WHERE r.collection_id = :c"
                ),
                {"c": collection_id},
            ):
                listed = [tuple(pair) for pair in orjson.loads(pairs)]
                assert len(listed) == len(set(listed)), listed
                named |= set(listed)
            assert stored == named, (stored - named, named - stored)
    report = client.get("/api/v1/audit/verify", headers=auditor).json()
    assert report["ok"] is True, str(report)


# 6. Failure mid-envelope ---------------------------------------------------------------------------


def test_a_failing_insert_mid_envelope_leaves_nothing(app, client, analyst, writable, monkeypatch):
    """A database error in the side tables (after stix_object rows went in by COPY) rolls back the
    whole envelope, its audit record included."""
    from app.db import bulk

    real = bulk.insert_rows
    calls = {"n": 0}

    def failing(connection, table, rows):
        calls["n"] += 1
        if table.name != "stix_object" and rows:
            # a row the database refuses (NULL in a NOT NULL column): a genuine driver error
            bad = [dict(row) for row in rows]
            first = next(iter(bad[0]))
            bad[0][first] = None
            return real(connection, table, bad)
        return real(connection, table, rows)

    monkeypatch.setattr("app.items.side_tables.insert_rows", failing)
    definition = statement("UNCLASSIFIED//REL TO FRA")
    before = table_counts(app.state.engine)
    with pytest.raises(Exception):  # noqa: B017 - the TestClient re-raises server errors, or answers 5xx
        response = post(client, analyst, writable.id, [definition, indicator("x", definition["id"])])
        assert response.status_code >= 500
        raise RuntimeError(response.status_code)
    monkeypatch.setattr("app.items.side_tables.insert_rows", real)
    assert calls["n"] >= 1
    after = table_counts(app.state.engine)
    # The failed request's own record (a refusal, naming nothing written) is the only new row.
    before.pop("audit_record"), after.pop("audit_record")
    assert after == before, {k: (before[k], after[k]) for k in before if before[k] != after[k]}


def test_a_partners_copy_of_a_hidden_observable_reads_like_a_new_one(app, client, analyst, fra, writable):
    """Home holds a domain-name hidden from FRA; FRA's copy of it (same computed id) and of a value
    nobody holds read alike, and FRA is served only its own copy."""
    secret = label_definition(app, "SECRET//REL TO GBR")
    value = f"{uuid.uuid4().hex}.example"
    sco_id = f"domain-name--{uuid.uuid5(uuid.NAMESPACE_URL, value)}"
    home_copy = {
        "type": "domain-name",
        "spec_version": "2.1",
        "id": sco_id,
        "value": value,
        "object_marking_refs": [secret["id"]],
    }
    assert push(client, analyst, writable.id, [secret, home_copy])["success_count"] == 2
    fresh_value = f"{uuid.uuid4().hex}.example"
    fresh_id = f"domain-name--{uuid.uuid5(uuid.NAMESPACE_URL, fresh_value)}"
    answers = []
    for object_id, val in ((sco_id, value), (fresh_id, fresh_value)):
        obj = {
            "type": "domain-name",
            "spec_version": "2.1",
            "id": object_id,
            "value": val,
            "object_marking_refs": [TLP_WHITE],
        }
        status = push(client, fra, writable.id, [obj])
        answers.append(
            (
                status["success_count"],
                status["failure_count"],
                [scrub(s.get("message"), object_id) for s in status.get("successes", [])],
            )
        )
    assert answers[0] == answers[1], answers
    served = get_all(client, fra, writable.id, sco_id)
    assert served.status_code == 200
    assert [o.get("object_marking_refs") for o in served.json()["objects"]] == [[TLP_WHITE]]


@pytest.mark.parametrize("value", ["back\\slash \\N \\.", "tab\tnew\nline", "nul\u0000", "unicodé ☃ 𝄞"])
def test_an_analyst_api_write_with_awkward_text_is_served_and_audited(app, client, analyst, auditor, writable, value):
    response = client.post(
        "/api/v1/items",
        headers=analyst,
        json={
            "collection": writable.id,
            "type": "indicator",
            "name": value,
            "description": value,
            "banner": "UNCLASSIFIED//REL TO FRA",
            "pattern": "[domain-name:value = 'awkward.example']",
        },
    )
    assert response.status_code == 201, response.text
    item = response.json()["stored"][-1]["id"]
    served = get_all(client, analyst, writable.id, item)
    assert served.status_code == 200
    (copy,) = [o for o in served.json()["objects"] if o["id"] == item]
    assert copy["name"] == value and copy["description"] == value
    with app.state.engine.connect() as connection:
        stored = {
            (o, format_us(v))
            for o, v in connection.execute(
                text("SELECT object_id, version_us FROM stix_object WHERE collection_id = :c"), {"c": writable.id}
            )
        }
        named = set()
        for (pairs,) in connection.execute(
            text(
                "SELECT w.pairs FROM audit_record r JOIN audit_written w ON w.record_seq = r.seq "
                "WHERE r.collection_id = :c"
            ),
            {"c": writable.id},
        ):
            named |= {tuple(p) for p in orjson.loads(pairs)}
    assert stored == named, (stored - named, named - stored)
    report = client.get("/api/v1/audit/verify", headers=auditor).json()
    assert report["ok"] is True, str(report)
