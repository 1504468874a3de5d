"""The recipients index: built from the served lists in batches, by readers and by the server's thread."""

from __future__ import annotations

import threading
import time

from sqlalchemy import text

from app.audit import index
from app.audit.index import RecipientsIndexer, index_batch, index_pending
from app.audit.query import RecordFilter, count_records, recipients
from app.audit.service import record_event
from app.audit.verify import verify_chain
from tests.audit.conftest import labelled_indicator, post_objects, records_for


def _write(engine, seq_tag: int, served, nation: str = "USA") -> int:
    return record_event(
        engine,
        request_id=f"req-{seq_tag}",
        subject="feed",
        nation=nation,
        roles=["partner"],
        method="GET",
        route="/r",
        status=200,
        decision="allow",
        served=served,
    )


def _index_head(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(text("SELECT seq FROM audit_index_head")).scalar_one()


def _index_rows(engine) -> list[tuple]:
    with engine.connect() as connection:
        return sorted(
            connection.execute(
                text(
                    "SELECT d.record_seq, o.object_id, d.version, d.nation FROM audit_dissemination d "
                    "JOIN audit_object o ON o.key = d.object_key"
                )
            ).all()
        )


def test_a_record_is_not_indexed_until_something_asks(fresh_engine):
    seq = _write(fresh_engine, 1, [("indicator--x", "v1")])
    assert _index_rows(fresh_engine) == [] and _index_head(fresh_engine) == 0
    # A reader indexes first, so the answer already includes the record.
    assert [(r["version"], r["nation"], r["times"]) for r in recipients(fresh_engine, "indicator--x")] == [
        ("v1", "USA", 1)
    ]
    assert _index_rows(fresh_engine) == [(seq, "indicator--x", "v1", "USA")] and _index_head(fresh_engine) == seq


def test_the_object_filter_counts_unindexed_records(fresh_engine):
    _write(fresh_engine, 1, [("indicator--x", "v1")])
    _write(fresh_engine, 2, [("indicator--y", "v1")])
    assert count_records(fresh_engine, RecordFilter(object_id="indicator--y")) == 1


def test_batches_split_by_versions_and_records_and_match_the_served_lists(fresh_engine, signer, monkeypatch):
    monkeypatch.setattr(index, "BATCH_VERSIONS", 5)
    monkeypatch.setattr(index, "BATCH_RECORDS", 3)
    expected = []
    for tag in range(7):
        served = [(f"indicator--{tag % 4}-{i}", f"v{tag}") for i in range(tag % 4)]  # 0 to 3 versions
        nation = ("USA", "GBR")[tag % 2]
        seq = _write(fresh_engine, tag, served, nation)
        expected += [(seq, o, v, nation) for o, v in served]
    # Seqs 1..7; those with versions are tags 1, 2, 3, 5 and 6 (1, 2, 3, 1 and 2 versions).
    sizes = []
    while done := index_batch(fresh_engine):
        sizes.append(done)
    assert sizes == [3, 2]  # 1+2+3 = 6 >= 5 versions; then 1+2 (tags 5, 6) in the last batch
    assert _index_rows(fresh_engine) == sorted(expected)
    assert _index_head(fresh_engine) == 7
    assert verify_chain(fresh_engine, signer).ok


def test_concurrent_indexers_index_each_record_once(fresh_engine, signer, monkeypatch):
    monkeypatch.setattr(index, "BATCH_RECORDS", 1)
    for tag in range(20):
        _write(fresh_engine, tag, [(f"indicator--{tag % 5}", f"v{tag}"), ("indicator--shared", f"v{tag}")])
    errors = []

    def run() -> None:
        try:
            index_pending(fresh_engine)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(_index_rows(fresh_engine)) == 40 and _index_head(fresh_engine) == 20
    assert verify_chain(fresh_engine, signer).ok


def _wait_for(condition, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_the_thread_indexes_after_a_notice_and_stops(fresh_engine, monkeypatch):
    monkeypatch.setattr(index, "IDLE_WAKE_S", 60.0)  # only the notice can wake it within the wait below
    indexer = RecipientsIndexer(fresh_engine)
    indexer.start()
    try:
        seq = _write(fresh_engine, 1, [("indicator--x", "v1")])
        indexer.notify()
        assert _wait_for(lambda: _index_head(fresh_engine) == seq)
    finally:
        indexer.stop()
    assert not indexer._thread.is_alive()


def test_the_server_indexes_what_it_served(app, client, analyst, partner_usa, api, collection, rid):
    """A pull through the app: the served list is in the record at once, the index follows it unasked."""
    post_objects(client, analyst, api, collection.id, labelled_indicator("UNCLASSIFIED//REL TO FVEY, NATO"))
    request_id = rid()
    response = client.get(
        f"{api}/collections/{collection.id}/objects/", headers={**partner_usa, "X-Request-ID": request_id}
    )
    assert response.status_code == 200
    (record,) = records_for(app.state.engine, request_id)
    served = record["served"]
    assert {object_id for object_id, _ in served} == {o["id"] for o in response.json()["objects"]}
    engine = app.state.audit_engine
    assert _wait_for(lambda: _index_head(engine) >= record["seq"])  # no reader asked: the thread did it
    with engine.connect() as connection:
        indexed = set(
            connection.execute(
                text(
                    "SELECT o.object_id, d.version FROM audit_dissemination d JOIN audit_object o ON o.key = d.object_key "
                    "WHERE d.record_seq = :s AND d.nation = 'USA'"
                ),
                {"s": record["seq"]},
            ).all()
        )
    assert indexed == served
