"""Records beyond the signed head (issue 19, item 3): verification finds them, the auditor API never serves them.

The forger has write access to the database but not the HMAC key: it can append a record with a
correct hash and link (the hash needs no key) anywhere above the head, but cannot move the head
with a valid HMAC. Such a record is not covered by the chain: verify reports it as broken, and
the auditor API treats it as absent.
"""

from __future__ import annotations

import csv
import io

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from app.audit.index import index_pending
from app.audit.service import canonical, record_event, record_hash, served_digest
from app.audit.verify import verify_chain

FORGED_OBJECT = "indicator--f0f0f0f0-0000-4000-8000-000000000000"
VERSION = "2025-01-01T00:00:00.000000Z"


def _write(engine, count: int) -> None:
    for index in range(count):
        record_event(
            engine,
            request_id=f"honest-{index}",
            subject="usa-feed",
            nation="USA",
            roles=["partner"],
            method="GET",
            route="/taxii2/api1/collections/c/objects/",
            status=200,
            decision="allow",
            collection_id="c",
            served=[(f"indicator--{index}", VERSION)],
        )


def _head(engine) -> tuple[int, str]:
    with engine.connect() as connection:
        seq, chain_hash = connection.execute(text("SELECT seq, hash FROM audit_head WHERE id = 1")).one()
    return int(seq), chain_hash


def _forge(engine, seq: int, *, served: bool = True) -> None:
    """Insert a well-formed record at ``seq`` linked to the head's hash, as a forger without the key would."""
    _, prev_hash = _head(engine)
    pairs = canonical([[FORGED_OBJECT, VERSION]] if served else [])
    fields = {
        "seq": seq,
        "at": "2025-06-01T00:00:00.000000Z",
        "request_id": "forged",
        "subject": "usa-feed",
        "nation": "USA",
        "roles": "partner",
        "client": "",
        "method": "GET",
        "route": "/taxii2/api1/collections/c/objects/",
        "collection_id": "c",
        "decision": "allow",
        "reason": None,
        "status": 200,
        "recipient_nation": "USA",
        "served_count": 1 if served else 0,
        "served_digest": served_digest(pairs),
    }
    with engine.begin() as connection:
        columns = ", ".join(fields) + ", prev_hash, hash"
        values = ", ".join(f":{name}" for name in fields) + ", :prev_hash, :hash"
        connection.execute(
            text(f"INSERT INTO audit_record ({columns}) VALUES ({values})"),
            {**fields, "prev_hash": prev_hash, "hash": record_hash(prev_hash, fields)},
        )
        if served:
            connection.execute(
                text("INSERT INTO audit_served (record_seq, pairs) VALUES (:s, :p)"), {"s": seq, "p": pairs.decode()}
            )


@pytest.mark.parametrize("offset", [1, 1_000_000], ids=["head+1", "head+1e6"])
@pytest.mark.parametrize("served", [True, False], ids=["serving", "serving-nothing"])
def test_a_record_beyond_the_head_is_reported(fresh_engine, signer, offset, served):
    _write(fresh_engine, 7)
    forged = 7 + offset
    _forge(fresh_engine, forged, served=served)
    report = verify_chain(fresh_engine, signer)
    assert (report.ok, report.broken_seq, report.head_seq) == (False, forged, 7)
    assert report.problem.startswith(f"found a record {forged} beyond the head")
    assert verify_chain(fresh_engine, signer, start=3, end=10**9).ok is False  # a range up to the tail too


def test_an_earlier_fault_is_still_the_one_reported(fresh_engine, signer):
    _write(fresh_engine, 7)
    _forge(fresh_engine, 1_000_007)
    with fresh_engine.begin() as connection:
        connection.execute(text("UPDATE audit_record SET subject = 'someone else' WHERE seq = 4"))
    assert verify_chain(fresh_engine, signer).broken_seq == 4


def test_a_head_rewound_to_zero_does_not_hide_the_records(fresh_engine, signer):
    """Records that served nothing leave no served list: with the head reset to its initial state,
    only the records themselves show that the chain is longer than the head."""
    for index in range(3):
        record_event(
            fresh_engine,
            request_id=f"refused-{index}",
            subject="x",
            nation="FRA",
            roles=["partner"],
            method="GET",
            route="/taxii2/",
            status=403,
            decision="deny",
            reason="no right: taxii read",
        )
    with fresh_engine.begin() as connection:
        connection.execute(text(f"UPDATE audit_head SET seq = 0, hash = '{'0' * 64}', mac = '' WHERE id = 1"))
    report = verify_chain(fresh_engine, signer)
    assert (report.ok, report.broken_seq) == (False, 1)
    assert report.problem.startswith("found a record 1 beyond the head")


def test_all_archived_then_a_record_beyond_the_head_is_reported(fresh_engine, signer):
    """Every record archived below the head's checkpoint: a record inserted later is still found."""
    from app.audit.service import write_checkpoint

    _write(fresh_engine, 3)
    assert write_checkpoint(fresh_engine) == 3
    with fresh_engine.begin() as connection:
        for table, column in (("audit_served", "record_seq"), ("audit_record", "seq")):
            connection.execute(text(f"DELETE FROM {table} WHERE {column} <= 3"))
    assert verify_chain(fresh_engine, signer).ok  # archiving is fine
    _forge(fresh_engine, 50)
    report = verify_chain(fresh_engine, signer)
    assert (report.ok, report.broken_seq) == (False, 50)
    assert report.problem.startswith("found a record 50 beyond the head")


@pytest.fixture
def forged_app(fresh_app):
    """The app's own log with honest records, and one forged record a million seqs beyond the head."""
    engine = fresh_app.state.engine
    _write(engine, 5)
    head, _ = _head(engine)
    forged = head + 1_000_000
    _forge(engine, forged)
    index_pending(engine)  # as the background indexer would
    return fresh_app, forged


def test_the_auditor_api_never_serves_a_record_beyond_the_head(forged_app, auth):
    app, forged = forged_app
    auditor = auth(subject="auditor-1", roles=("auditor",))
    with TestClient(app) as client:
        listed = client.get("/api/v1/audit/records", params={"limit": 1000}, headers=auditor).json()
        assert listed["records"] and forged not in [r["seq"] for r in listed["records"]]
        assert client.get("/api/v1/audit/records", params={"after": forged - 1}, headers=auditor).json() == {
            "records": [],
            "next": None,
        }
        by_object = client.get("/api/v1/audit/records", params={"object_id": FORGED_OBJECT}, headers=auditor)
        assert by_object.json()["records"] == []
        by_request = client.get("/api/v1/audit/records", params={"subject": "usa-feed"}, headers=auditor).json()
        assert [r["request_id"] for r in by_request["records"]] == [f"honest-{i}" for i in range(5)]

        one = client.get(f"/api/v1/audit/records/{forged}", headers=auditor)
        assert one.status_code == 404
        assert one.headers["content-type"].startswith("application/problem+json")

        export = client.get("/api/v1/audit/export", headers=auditor)
        assert export.status_code == 200
        exported = [orjson.loads(line) for line in export.text.splitlines()]
        assert exported and forged not in [d["seq"] for d in exported]
        assert not [d for d in exported if FORGED_OBJECT in [o for o, _ in d["served"]]]
        csv_export = client.get("/api/v1/audit/export", params={"format": "csv"}, headers=auditor)
        rows = list(csv.DictReader(io.StringIO(csv_export.text)))
        assert "honest-0" in [r["request_id"] for r in rows]
        assert not [r for r in rows if r["seq"] == str(forged) or FORGED_OBJECT in r["served"]]

        recipients = client.get(f"/api/v1/audit/recipients/{FORGED_OBJECT}", headers=auditor).json()
        assert recipients == {"object_id": FORGED_OBJECT, "recipients": []}
        honest = client.get("/api/v1/audit/recipients/indicator--0", headers=auditor).json()
        assert [r["nation"] for r in honest["recipients"]] == ["USA"]

        report = client.get("/api/v1/audit/verify", headers=auditor).json()
    assert report["ok"] is False and report["broken_seq"] == forged
