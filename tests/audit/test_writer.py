"""Group commit of read records (app.audit.writer): batches share a transaction, keep one valid chain,
and a record that fails fails alone."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import event, text

from app.audit.service import AuditUnavailable, RecordFields, record_fields
from app.audit.verify import verify_chain
from app.audit.writer import RecordWriter


def _record(i: int, **overrides) -> RecordFields:
    facts = {
        "request_id": f"w-{i}",
        "subject": f"reader-{i % 3}",
        "nation": "GBR",
        "roles": ["partner"],
        "method": "GET",
        "route": "/taxii2/",
        "status": 200,
        "decision": "allow",
        "served": [(f"indicator--{i:08d}-0000-4000-8000-000000000000", "2025-01-01T00:00:00.000Z")],
    }
    return record_fields(**(facts | overrides))


def _commits(engine) -> list[int]:
    commits: list[int] = []
    event.listen(engine, "commit", lambda _connection: commits.append(1))
    return commits


def _sequences(engine) -> list[int]:
    with engine.connect() as connection:
        return list(connection.execute(text("SELECT seq FROM audit_record ORDER BY seq")).scalars())


def test_records_waiting_together_share_one_transaction(fresh_engine, signer):
    writer = RecordWriter(fresh_engine)
    commits = _commits(fresh_engine)
    release = threading.Event()

    def held_first() -> RecordFields:
        release.wait(10)  # the writer is busy with this one while the others queue up
        return _record(0)

    first = writer.submit(held_first)
    time.sleep(0.05)
    rest = [writer.submit(lambda i=i: _record(i)) for i in range(1, 41)]
    release.set()
    seqs = [first.result(10)] + [future.result(10) for future in rest]
    assert seqs == list(range(1, 42))  # chained in the order submitted
    assert len(commits) == 2  # the first alone, then the 40 that waited, together
    report = verify_chain(fresh_engine, signer)
    assert report.ok and report.checked == 41 and report.checkpoints_checked == 41 // 5, report


def test_many_threads_keep_one_valid_chain(fresh_engine, signer):
    writer = RecordWriter(fresh_engine)
    with ThreadPoolExecutor(8) as pool:
        seqs = list(pool.map(lambda i: writer.write(lambda: _record(i)), range(200)))
    assert sorted(seqs) == list(range(1, 201))
    assert _sequences(fresh_engine) == list(range(1, 201))
    report = verify_chain(fresh_engine, signer)
    assert report.ok and report.checked == 200, report


def test_a_record_that_cannot_be_built_fails_alone(fresh_engine, signer):
    writer = RecordWriter(fresh_engine)
    release = threading.Event()
    blocker = writer.submit(lambda: (release.wait(10), _record(0))[1])
    time.sleep(0.05)
    good = [writer.submit(lambda i=i: _record(i)) for i in (1, 2)]
    bad = writer.submit(lambda: _record(3, decision="maybe"))  # refused before it reaches the database
    release.set()
    assert [blocker.result(10)] + [future.result(10) for future in good] == [1, 2, 3]
    with pytest.raises(ValueError):
        bad.result(10)
    assert verify_chain(fresh_engine, signer).ok


def test_a_record_the_database_refuses_fails_alone(fresh_engine, signer):
    writer = RecordWriter(fresh_engine)
    release = threading.Event()
    blocker = writer.submit(lambda: (release.wait(10), _record(0))[1])
    time.sleep(0.05)
    refused = _record(2)
    refused.fields["subject"] = None  # NOT NULL: the batch's insert fails in the database
    futures = [writer.submit(lambda: _record(1)), writer.submit(lambda: refused), writer.submit(lambda: _record(3))]
    release.set()
    assert blocker.result(10) == 1
    assert futures[0].result(10) == 2 and futures[2].result(10) == 3  # written again one by one
    with pytest.raises(AuditUnavailable):
        futures[1].result(10)
    assert _sequences(fresh_engine) == [1, 2, 3]  # the refused record took no place in the chain
    assert verify_chain(fresh_engine, signer).ok


def test_the_thread_ends_when_idle_and_comes_back(fresh_engine, monkeypatch):
    monkeypatch.setattr("app.audit.writer.IDLE_EXIT_S", 0.05)
    writer = RecordWriter(fresh_engine)
    assert writer.write(lambda: _record(1)) == 1
    deadline = time.monotonic() + 5
    while writer._thread is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert writer._thread is None
    assert writer.write(lambda: _record(2)) == 2


def test_a_request_that_went_away_still_gets_its_record_and_the_writer_goes_on(fresh_engine, signer):
    writer = RecordWriter(fresh_engine)
    release = threading.Event()
    blocker = writer.submit(lambda: (release.wait(10), _record(0))[1])
    time.sleep(0.05)
    gone = writer.submit(lambda: _record(1))
    assert gone.cancel()  # the client disconnected while its record waited (asyncio cancels the future)
    release.set()
    assert blocker.result(10) == 1
    assert writer.write(lambda: _record(2)) == 3  # the writer survived the cancelled future
    assert _sequences(fresh_engine) == [1, 2, 3]  # and the request that went away is on record
    assert verify_chain(fresh_engine, signer).ok
