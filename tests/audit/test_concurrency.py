"""Concurrent writers keep one linear chain: threads on both databases, two processes on PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import text

from app.audit.service import record_event
from app.audit.verify import verify_chain
from app.config.settings import REPO_ROOT
from tests.audit.conftest import TEST_KEY

THREADS, PER_THREAD = 6, 15
PROCESSES, PER_PROCESS = 2, 30


def _sequences(engine) -> list[int]:
    with engine.connect() as connection:
        return list(connection.execute(text("SELECT seq FROM audit_record ORDER BY seq")).scalars())


def test_threads_keep_one_valid_chain(fresh_engine, signer):
    def writer(worker: int) -> list[int]:
        return [
            record_event(
                fresh_engine,
                request_id=f"t{worker}-{i}",
                subject=f"worker-{worker}",
                nation="GBR",
                roles=["partner"],
                method="GET",
                route="/taxii2/",
                status=200,
                decision="allow",
                served=[(f"indicator--{worker}-{i}", "2025-01-01T00:00:00.000Z")],
            )
            for i in range(PER_THREAD)
        ]

    with ThreadPoolExecutor(THREADS) as pool:
        returned = [seq for seqs in pool.map(writer, range(THREADS)) for seq in seqs]
    total = THREADS * PER_THREAD
    assert sorted(returned) == list(range(1, total + 1))  # every writer got a distinct place
    assert _sequences(fresh_engine) == list(range(1, total + 1))
    report = verify_chain(fresh_engine, signer)
    assert report.ok and report.checked == total, report


_WRITER = textwrap.dedent("""
    import sys
    from app.audit.service import AuditSigner, bind_signer, record_event
    from app.db.engine import make_engine
    url, worker, count, key = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    engine = make_engine(url)
    bind_signer(engine, AuditSigner(key=key.encode(), checkpoint_interval=5))
    print("ready", flush=True)
    sys.stdin.readline()  # start together
    for i in range(count):
        record_event(engine, request_id=f"p{worker}-{i}", subject=f"process-{worker}", nation="DEU",
                     roles=["partner"], method="GET", route="/taxii2/", status=200, decision="allow",
                     served=[(f"indicator--p{worker}-{i}", "2025-01-01T00:00:00.000Z")])
""")


def test_two_processes_keep_one_valid_chain(fresh_url, fresh_engine, signer):
    if not fresh_url.startswith("postgresql"):
        pytest.skip("several app instances share a database only on PostgreSQL")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, fresh_url, str(w), str(PER_PROCESS), TEST_KEY],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO_ROOT,
        )
        for w in range(PROCESSES)
    ]
    for process in processes:
        assert process.stdout.readline().strip() == "ready"
    for process in processes:
        process.stdin.write("go\n")
        process.stdin.flush()
    for process in processes:
        assert process.wait(timeout=120) == 0
    total = PROCESSES * PER_PROCESS
    assert _sequences(fresh_engine) == list(range(1, total + 1))
    with fresh_engine.connect() as connection:
        subjects = set(connection.execute(text("SELECT DISTINCT subject FROM audit_record")).scalars())
    assert subjects == {"process-0", "process-1"}
    report = verify_chain(fresh_engine, signer)
    assert report.ok and report.checked == total and report.checkpoints_checked == total // 5, report
