"""Verification catches every kind of tampering and names the first broken record."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from app.audit.index import index_pending
from app.audit.service import AuditSigner, record_event, write_checkpoint
from app.audit.verify import verify_chain

RECORDS = 12  # checkpoints (every 5) at 5 and 10


def _write(engine, count: int = RECORDS, indexed: bool = True) -> None:
    """Records 1..count, each serving two versions; by default their recipients index is built too."""
    for index in range(count):
        record_event(
            engine,
            request_id=f"req-{index}",
            subject=f"user-{index % 3}",
            nation="USA",
            roles=["partner"],
            method="GET",
            route="/taxii2/api1/collections/c/objects/",
            status=200,
            decision="allow",
            collection_id="c",
            served=[
                (f"indicator--{index}", "2025-01-01T00:00:00.000Z"),
                ("indicator--shared", f"2025-01-0{1 + index % 9}T00:00:00.000Z"),
            ],
        )
    if indexed:
        index_pending(engine)


def _sql(engine, statement: str, **params) -> None:
    with engine.begin() as connection:
        connection.execute(text(statement), params)


def _delete_record(engine, seq: int) -> None:
    _sql(engine, "DELETE FROM audit_dissemination WHERE record_seq = :s", s=seq)
    _sql(engine, "DELETE FROM audit_served WHERE record_seq = :s", s=seq)
    _sql(engine, "DELETE FROM audit_record WHERE seq = :s", s=seq)


@pytest.mark.parametrize("indexed", [True, False], ids=["indexed", "index-behind"])
def test_an_untouched_chain_verifies(fresh_engine, signer, indexed):
    _write(fresh_engine, indexed=indexed)
    report = verify_chain(fresh_engine, signer)
    assert report.ok, report
    assert (report.checked, report.head_seq, report.checkpoints_checked) == (RECORDS, RECORDS, 2)


def test_an_edited_field_is_found(fresh_engine, signer):
    _write(fresh_engine)
    _sql(fresh_engine, "UPDATE audit_record SET decision = 'deny' WHERE seq = 7")
    report = verify_chain(fresh_engine, signer)
    assert (report.ok, report.broken_seq) == (False, 7)
    assert "edited" in report.problem


def test_a_deleted_record_is_found(fresh_engine, signer):
    _write(fresh_engine)
    _delete_record(fresh_engine, 4)
    report = verify_chain(fresh_engine, signer)
    assert (report.ok, report.broken_seq) == (False, 4)


def test_a_deleted_record_with_renumbered_successors_is_found(fresh_engine, signer):
    _write(fresh_engine, 4)
    _sql(fresh_engine, "DELETE FROM audit_dissemination WHERE record_seq >= 2")
    _sql(fresh_engine, "DELETE FROM audit_served WHERE record_seq >= 2")
    _sql(fresh_engine, "DELETE FROM audit_record WHERE seq = 2")
    for seq in (3, 4):  # close the gap
        _sql(fresh_engine, "UPDATE audit_record SET seq = :n WHERE seq = :s", n=seq - 1, s=seq)
    report = verify_chain(fresh_engine, signer)
    assert report.ok is False and report.broken_seq == 2


def test_two_swapped_records_are_found(fresh_engine, signer):
    _write(fresh_engine)
    columns = ("at", "request_id", "subject", "prev_hash", "hash", "served_digest")
    with fresh_engine.begin() as connection:
        three, four = (
            dict(connection.execute(text("SELECT * FROM audit_record WHERE seq = :s"), {"s": s}).one()._mapping)
            for s in (3, 4)
        )
        for target, source in ((3, four), (4, three)):
            assignments = ", ".join(f"{c} = :{c}" for c in columns)
            connection.execute(
                text(f"UPDATE audit_record SET {assignments} WHERE seq = :seq"),
                {**{c: source[c] for c in columns}, "seq": target},
            )
    report = verify_chain(fresh_engine, signer)
    assert (report.ok, report.broken_seq) == (False, 3)


def test_a_truncated_tail_is_found_even_when_the_head_is_rewound(fresh_engine, signer):
    _write(fresh_engine)
    for seq in (12, 11):
        _delete_record(fresh_engine, seq)
    report = verify_chain(fresh_engine, signer)
    assert report.ok is False and report.broken_seq == 11 and "truncated" in report.problem

    # The tamperer also rewinds the head to the last remaining record: its HMAC gives it away.
    _sql(fresh_engine, "UPDATE audit_head SET seq = 10, hash = (SELECT hash FROM audit_record WHERE seq = 10)")
    report = verify_chain(fresh_engine, signer)
    assert report.ok is False and "HMAC" in report.problem


def test_a_cut_beyond_the_last_checkpoint_is_found(fresh_engine, signer):
    _write(fresh_engine)
    for seq in range(12, 8, -1):
        _delete_record(fresh_engine, seq)
    _sql(
        fresh_engine,
        "UPDATE audit_head SET seq = 8, hash = (SELECT hash FROM audit_record WHERE seq = 8), mac = 'forged'",
    )
    report = verify_chain(fresh_engine, signer)
    assert report.ok is False


def test_a_forged_checkpoint_is_found(fresh_engine, signer):
    _write(fresh_engine)
    _sql(
        fresh_engine,
        "UPDATE audit_checkpoint SET mac = :m WHERE seq = 5",
        m=AuditSigner(key=b"another key").mac(5, "0" * 64),
    )
    report = verify_chain(fresh_engine, signer)
    assert (report.ok, report.broken_seq) == (False, 5)
    assert "checkpoint" in report.problem


def test_a_checkpoint_moved_to_another_hash_is_found(fresh_engine, signer):
    _write(fresh_engine)
    with fresh_engine.begin() as connection:
        other = connection.execute(text("SELECT hash FROM audit_record WHERE seq = 4")).scalar_one()
        connection.execute(
            text("UPDATE audit_checkpoint SET hash = :h, mac = :m WHERE seq = 5"), {"h": other, "m": "0" * 64}
        )
    assert verify_chain(fresh_engine, signer).broken_seq == 5


@pytest.mark.parametrize(
    "forgery",
    [
        "INSERT INTO audit_dissemination (object_key, version, nation, record_seq) "
        "SELECT key, 'v', 'USA', 99 FROM audit_object WHERE object_id = 'indicator--0'",
        'INSERT INTO audit_served (record_seq, pairs) VALUES (99, \'[["indicator--0","v"]]\')',
        "UPDATE audit_index_head SET seq = 99",
    ],
    ids=["index-row", "served-list", "index-head"],
)
def test_audit_rows_beyond_the_head_are_found(fresh_engine, signer, forgery):
    _write(fresh_engine)
    _sql(fresh_engine, forgery)
    report = verify_chain(fresh_engine, signer)
    assert (report.ok, report.broken_seq) == (False, 99)
    assert "beyond the head" in report.problem


def test_a_verification_key_other_than_the_writer_s_fails(fresh_engine):
    _write(fresh_engine)
    assert verify_chain(fresh_engine, AuditSigner(key=b"wrong")).ok is False


@pytest.mark.parametrize(
    "change",
    [
        "DELETE FROM audit_dissemination WHERE record_seq = 6 AND object_key = "
        "(SELECT key FROM audit_object WHERE object_id = 'indicator--5')",
        "UPDATE audit_dissemination SET nation = 'FRA' WHERE record_seq = 6",
        "INSERT INTO audit_dissemination (object_key, version, nation, record_seq) "
        "SELECT key, 'v', 'USA', 6 FROM audit_object WHERE object_id = 'indicator--0'",
        "UPDATE audit_object SET object_id = 'indicator--elsewhere' WHERE object_id = 'indicator--5'",
        "UPDATE audit_dissemination SET record_seq = 7 WHERE record_seq = 6",
        "UPDATE audit_index_head SET seq = 5",  # record 6's rows now lie past the index head
    ],
)
def test_an_altered_recipients_index_is_found(fresh_engine, signer, change):
    _write(fresh_engine)
    _sql(fresh_engine, change)
    report = verify_chain(fresh_engine, signer)
    assert (report.ok, report.broken_seq) == (False, 6)
    assert "recipients index" in report.problem


@pytest.mark.parametrize(
    "change, problem",
    [
        (
            'UPDATE audit_served SET pairs = \'[["indicator--5","2025-01-01T00:00:00.000Z"]]\' WHERE record_seq = 6',
            "served digest",
        ),
        (
            "UPDATE audit_served SET pairs = REPLACE(pairs, 'indicator--5', 'indicator--6') WHERE record_seq = 6",
            "served digest",
        ),
        ("DELETE FROM audit_served WHERE record_seq = 6", "missing"),
        ("UPDATE audit_served SET record_seq = 99 WHERE record_seq = 6", "missing"),
    ],
)
@pytest.mark.parametrize("indexed", [True, False], ids=["indexed", "index-behind"])
def test_an_altered_served_list_is_found(fresh_engine, signer, change, problem, indexed):
    _write(fresh_engine, indexed=indexed)
    _sql(fresh_engine, change)
    report = verify_chain(fresh_engine, signer, end=RECORDS - 1)  # not to the tail: record 6 is the fault
    assert (report.ok, report.broken_seq) == (False, 6)
    assert problem in report.problem


def test_a_range_is_anchored_on_a_checkpoint_and_reports_within_it(fresh_engine, signer):
    _write(fresh_engine)
    assert verify_chain(fresh_engine, signer, start=7, end=9).ok
    _sql(fresh_engine, "UPDATE audit_record SET subject = 'someone else' WHERE seq = 8")
    report = verify_chain(fresh_engine, signer, start=7, end=9)
    assert (report.ok, report.broken_seq) == (False, 8)
    assert verify_chain(fresh_engine, signer, start=1, end=7).ok  # the damage lies outside this range


def test_archiving_below_a_checkpoint_keeps_the_rest_verifiable(fresh_engine, signer):
    _write(fresh_engine)
    assert write_checkpoint(fresh_engine) == RECORDS
    for seq in range(1, 6):  # the operator archives records 1..5 (checkpoint at 5)
        _delete_record(fresh_engine, seq)
    report = verify_chain(fresh_engine, signer)
    assert report.ok, report
    assert report.first_seq == 6 and report.checked == RECORDS - 5

    _delete_record(fresh_engine, 6)  # a cut that no checkpoint anchors
    report = verify_chain(fresh_engine, signer)
    assert (report.ok, report.broken_seq) == (False, 7)


def test_dissemination_rows_for_new_known_and_repeated_ids(fresh_engine, signer):
    """Each record's rows are exactly its distinct served pairs, whichever ids were known before;
    every id is interned once, and the new ids of one record get neighbouring keys."""
    first = [("indicator--a", "v1"), ("indicator--b", "v1"), ("indicator--a", "v2"), ("indicator--a", "v1")]
    second = [("indicator--b", "v2"), ("indicator--c", "v1"), ("indicator--a", "v1"), ("indicator--d", "v1")]
    seqs = [
        record_event(
            fresh_engine,
            request_id=f"req-{i}",
            subject="usa-feed",
            nation=nation,
            roles=["partner"],
            method="GET",
            route="/r",
            status=200,
            decision="allow",
            served=served,
        )
        for i, (nation, served) in enumerate([("USA", first), ("GBR", second)])
    ]
    assert index_pending(fresh_engine) == 2 and index_pending(fresh_engine) == 0
    with fresh_engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT d.record_seq, o.object_id, d.version, d.nation FROM audit_dissemination d "
                "JOIN audit_object o ON o.key = d.object_key"
            )
        ).all()
        keys = dict(connection.execute(text("SELECT object_id, key FROM audit_object")).all())
    assert sorted(rows) == sorted(
        [(seqs[0], o, v, "USA") for o, v in set(first)] + [(seqs[1], o, v, "GBR") for o, v in set(second)]
    )
    assert sorted(keys) == ["indicator--a", "indicator--b", "indicator--c", "indicator--d"]
    assert max(keys["indicator--a"], keys["indicator--b"]) < min(keys["indicator--c"], keys["indicator--d"])
    assert (
        abs(keys["indicator--c"] - keys["indicator--d"]) == 1 and abs(keys["indicator--a"] - keys["indicator--b"]) == 1
    )
    assert verify_chain(fresh_engine, signer).ok
