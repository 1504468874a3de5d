"""Concurrent writers and readers of one collection.

``date_added`` must be unique and strictly increasing in commit order per
collection (app/items/ingest.py serialises writers with a collection lock), so
that keyset paging and ``added_after`` never skip an object committed late
with a lower ``date_added``.

Commit order is observed exactly with a ``before_commit`` hook: it runs while
the committing transaction still holds the collection lock, so the next writer
cannot reach its own hook until this one has committed.
"""

from __future__ import annotations

import itertools
import json
import random
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import event, select, text
from sqlmodel import Session

from app.auth.principal import Principal
from app.config.settings import REPO_ROOT
from app.items.models import StixObject
from app.items.store import VersionFilter
from app.markings.classification import TOP_RANK
from app.markings.mappings import load_mappings
from app.taxii import service
from app.taxii.models import Collection
from tests.conftest import HOME

MAPPINGS = load_mappings(REPO_ROOT / "stix_mappings")
ANALYST = Principal("analyst-1", HOME, frozenset({"analyst"}), TOP_RANK, frozenset(), is_home=True)
TIMESTAMP = "2025-03-01T12:00:00.000Z"


def indicator() -> dict:
    """A valid STIX 2.1 indicator with a fresh id (plain dict: building via stix2 is slower)."""
    address = uuid.uuid4().int
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--{uuid.uuid4()}",
        "created": TIMESTAMP,
        "modified": TIMESTAMP,
        "pattern": f"[ipv4-addr:value = '10.{address % 256}.{address // 256 % 256}.{address // 65536 % 256}']",
        "pattern_type": "stix",
        "valid_from": TIMESTAMP,
    }


def stored_rows(engine, collection_id: str) -> list[tuple[str, int]]:
    """(object_id, date_added_us) of every stored version in the collection, in date_added order."""
    with Session(engine) as session:
        rows = session.execute(
            select(StixObject.object_id, StixObject.date_added_us)
            .where(StixObject.collection_id == collection_id)
            .order_by(StixObject.date_added_us)
        ).all()
    return [(row.object_id, row.date_added_us) for row in rows]


def add_recording_commit_order(
    session: Session, collection_id: str, objects: list, next_ticket, linger_s: float = 0.004
) -> dict:
    """Add one envelope; return its status counts and the ticket its commit drew under the lock.

    A random pause of up to ``linger_s`` between assigning date_added and committing only makes
    other writers wait while the lock is held; without the lock, it widens the race so that
    commits would often land out of date_added order.
    """
    tickets: list[int] = []

    def before_commit(committing: Session) -> None:
        time.sleep(random.uniform(0, linger_s))
        tickets.append(next_ticket(committing))

    event.listen(session, "before_commit", before_commit)
    status = service.add_objects(session, collection_id, ANALYST, objects, mappings=MAPPINGS, home_nation=HOME)
    return {
        "tickets": tickets,
        "ids": [o["id"] for o in objects],
        "success": status.success_count,
        "failure": status.failure_count,
    }


def assert_commit_order_is_date_added_order(envelopes: list[dict], rows: list[tuple[str, int]]) -> None:
    """Every envelope stored exactly once, and date_added strictly increasing in commit order."""
    submitted = [object_id for envelope in envelopes for object_id in envelope["ids"]]
    assert all(e["success"] == len(e["ids"]) and e["failure"] == 0 for e in envelopes)
    assert all(len(e["tickets"]) == 1 for e in envelopes), "each envelope commits exactly once"
    assert len({e["tickets"][0] for e in envelopes}) == len(envelopes)

    stored_ids = [object_id for object_id, _ in rows]
    assert len(stored_ids) == len(submitted) == len(set(submitted)), "every object stored exactly once"
    assert set(stored_ids) == set(submitted)
    date_added = dict(rows)
    assert len(set(date_added.values())) == len(rows), "date_added is unique"

    in_commit_order = [
        date_added[object_id]
        for envelope in sorted(envelopes, key=lambda e: e["tickets"][0])
        for object_id in envelope["ids"]
    ]
    assert in_commit_order == sorted(in_commit_order)
    assert all(a < b for a, b in itertools.pairwise(in_commit_order)), "strictly increasing in commit order"


def test_concurrent_writers_get_unique_date_added_in_commit_order(app, collection):
    threads, envelopes_each, objects_each = 4, 10, 5
    engine = app.state.engine
    counter = itertools.count()  # next() on a count is atomic in CPython
    start = threading.Barrier(threads)

    def writer(_: int) -> list[dict]:
        envelopes = [[indicator() for _ in range(objects_each)] for _ in range(envelopes_each)]
        start.wait()
        results = []
        for objects in envelopes:
            with Session(engine) as session:
                results.append(
                    add_recording_commit_order(session, collection.id, objects, lambda _session: next(counter))
                )
        return results

    with ThreadPoolExecutor(threads) as pool:
        envelopes = [e for result in pool.map(writer, range(threads)) for e in result]

    rows = stored_rows(engine, collection.id)
    assert len(envelopes) == threads * envelopes_each
    assert_commit_order_is_date_added_order(envelopes, rows)
    with Session(engine) as session:
        assert session.get(Collection, collection.id).date_added_hwm == rows[-1][1]


def test_reader_paging_while_writers_insert_skips_nothing(app, collection):
    """A keyset reader racing writers sees every object exactly once, in date_added order.

    Writer envelope k waits until the reader has read k pages, so writes land while the
    reader is still paging through older objects; the reader then keeps paging at the head
    of the collection, right behind each commit, until the writers are done. (The wait's
    timeout only guards against a hang; no assertion depends on timing.)
    """
    writers, envelopes_each, objects_each, page_size = 3, 8, 3, 5
    engine = app.state.engine
    with Session(engine) as session:
        for _ in range(4):
            service.add_objects(
                session, collection.id, ANALYST, [indicator() for _ in range(15)], mappings=MAPPINGS, home_nation=HOME
            )
        visible = app.state.visibility.visible_label_ids(session, ANALYST)
    preloaded = [object_id for object_id, _ in stored_rows(engine, collection.id)]
    assert len(preloaded) == 60

    state = {"writers_done": 0, "pages": 0}
    counter = itertools.count()
    changed = threading.Condition()

    def writer(_: int) -> None:
        try:
            for k in range(envelopes_each):
                with changed:
                    changed.wait_for(lambda k=k: state["pages"] >= k, timeout=30)
                with Session(engine) as session:
                    result = add_recording_commit_order(
                        session,
                        collection.id,
                        [indicator() for _ in range(objects_each)],
                        lambda _session: next(counter),
                    )
                assert result["success"] == objects_each
        finally:
            with changed:
                state["writers_done"] += 1
                changed.notify_all()

    seen: list[tuple[str, int]] = []
    pages_read_while_writing = 0
    with ThreadPoolExecutor(writers) as pool:
        futures = [pool.submit(writer, w) for w in range(writers)]
        after_us = None
        while True:
            with changed:
                writers_finished = state["writers_done"] == writers
            with Session(engine) as session:  # one session per page, like one HTTP request per page
                page = service.versions_page(
                    session, collection.id, visible, VersionFilter(), after_us=after_us, limit=page_size, with_body=True
                )
            seen.extend((json.loads(row.body)["id"], row.date_added_us) for row in page.rows)
            if page.rows:
                after_us = page.last_read_us
            pages_read_while_writing += not writers_finished
            if writers_finished and not page.more:
                break
            with changed:
                state["pages"] += 1
                changed.notify_all()
            if not page.more:
                time.sleep(0.001)  # at the head: give the writers the CPU between polls
        for future in futures:
            future.result()

    final = stored_rows(engine, collection.id)
    assert len(final) == 60 + writers * envelopes_each * objects_each
    seen_dates = [date_added for _, date_added in seen]
    assert all(a < b for a, b in itertools.pairwise(seen_dates)), "pages never repeat or go back"
    preloaded_set = set(preloaded)
    assert sorted(o for o, _ in seen if o in preloaded_set) == sorted(preloaded), (
        "every object committed before the reader started is seen exactly once"
    )
    # Nothing skipped: the reader, which kept paging until the writers were done, saw exactly
    # what is stored, in date_added order. An object committed late with a date_added below one
    # already served would be missing here.
    assert seen == final
    assert pages_read_while_writing > 1


_PROCESS_WRITER = """
import json, random, sys, time
from sqlalchemy import text
from sqlmodel import Session
from app.db.engine import make_engine
from app.items import ingest
from tests.items.test_concurrency import add_recording_commit_order, indicator

def now_us_then_pause(clock=ingest.now_us):
    # Jitter between reading the clock for date_added and writing: harmless under the collection
    # lock, while without it the two processes would often commit out of date_added order.
    value = clock()
    time.sleep(random.uniform(0, 0.004))
    return value

ingest.now_us = now_us_then_pause
url, collection_id, sequence, envelopes, objects_each = sys.argv[1:6]
engine = make_engine(url)
print("ready", flush=True)
sys.stdin.readline()
draw = lambda session: session.execute(text(f"SELECT nextval('{sequence}')")).scalar_one()
for _ in range(int(envelopes)):
    with Session(engine) as session:
        result = add_recording_commit_order(session, collection_id,
                                            [indicator() for _ in range(int(objects_each))], draw)
    print(json.dumps(result), flush=True)
engine.dispose()
"""


def test_writer_processes_get_unique_date_added_in_commit_order(app, settings, collection):
    """Two OS processes (two engines, as two app instances would have) write one collection."""
    if settings.is_sqlite:
        pytest.skip("PostgreSQL only: several app instances share a PostgreSQL database")
    processes, envelopes_each, objects_each = 2, 12, 4
    sequence = f"tl_test_commit_order_{uuid.uuid4().hex[:8]}"
    engine = app.state.engine
    with engine.begin() as connection:
        # nextval is not transactional, so tickets drawn under the collection lock follow commit order.
        connection.execute(text(f"CREATE SEQUENCE {sequence}"))
    children = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _PROCESS_WRITER,
                settings.database_url,
                collection.id,
                sequence,
                str(envelopes_each),
                str(objects_each),
            ],
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    try:
        for child in children:
            assert child.stdout.readline().strip() == "ready"
        for child in children:  # start both together
            child.stdin.write("go\n")
            child.stdin.flush()
        outputs = [child.communicate(timeout=120)[0] for child in children]
        assert [child.returncode for child in children] == [0] * processes
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
        with engine.begin() as connection:
            connection.execute(text(f"DROP SEQUENCE IF EXISTS {sequence}"))

    envelopes = [json.loads(line) for output in outputs for line in output.splitlines() if line.strip()]
    assert len(envelopes) == processes * envelopes_each
    assert_commit_order_is_date_added_order(envelopes, stored_rows(engine, collection.id))
