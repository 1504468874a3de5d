"""The audit log's own records-per-second ceiling, without HTTP (issue 22).

Through HTTP (bench/load.py) the ceiling is the server's CPU per request on 2 cores. This measures
what the head row allows: ``--threads`` threads append records of ``--served`` served versions each
for ``--seconds``, first each in its own transaction (``record_event``, how reads were recorded
before the group commit, and how writes still are), then through one ``RecordWriter`` (group
commit, how reads are recorded now), alternating ``--rounds`` times. The chain is verified at the
end. Writes ``bench/results/audit-ceiling.json``.

    .venv/bin/python bench/audit_ceiling.py
    .venv/bin/python bench/audit_ceiling.py --databases postgresql --threads 64
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from app.audit.service import AuditSigner, bind_signer, record_event, record_fields
from app.audit.verify import verify_chain
from app.audit.writer import RecordWriter
from app.db import migrations
from app.db.engine import make_engine
from bench.releasability import DEFAULT_PG_ADMIN_URL, database

DEFAULT_OUT = REPO_ROOT / "bench" / "results" / "audit-ceiling.json"
GOAL = 2000.0


def _facts(served: int) -> dict:
    pairs = [(f"indicator--{i:08d}-0000-4000-8000-000000000000", "2025-01-01T00:00:00.000Z") for i in range(served)]
    return {
        "request_id": "ceiling",
        "subject": "usa-feed",
        "nation": "USA",
        "roles": ["partner"],
        "method": "GET",
        "route": "/taxii2/api1/collections/c/objects/",
        "status": 200,
        "decision": "allow",
        "served": pairs,
    }


def _rate(append: Callable[[], object], threads: int, seconds: float) -> float:
    """Records per second that ``threads`` threads calling ``append`` achieve."""
    counts = [0] * threads
    deadline = time.monotonic() + seconds

    def work(slot: int) -> None:
        while time.monotonic() < deadline:
            append()
            counts[slot] += 1

    workers = [threading.Thread(target=work, args=(slot,)) for slot in range(threads)]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(counts) / (time.monotonic() - started)


def measure(kind: str, args: argparse.Namespace, work: Path) -> dict:
    """One store: the two ways of appending, alternated, and the chain verified after."""
    with database(kind, work, "ceiling", args.pg_admin_url) as url:
        migrations.upgrade(url)
        engine = make_engine(url, pool_size=args.threads, max_overflow=8)
        signer = AuditSigner(key=b"bench-audit-ceiling-key-0123456789")
        bind_signer(engine, signer)
        facts = _facts(args.served)
        writer = RecordWriter(engine)
        each, grouped = [], []
        try:
            for _ in range(args.rounds):
                each.append(_rate(lambda: record_event(engine, **facts), args.threads, args.seconds))
                grouped.append(_rate(lambda: writer.write(lambda: record_fields(**facts)), args.threads, args.seconds))
            report = verify_chain(engine, signer)
        finally:
            engine.dispose()
        one, batch = statistics.median(each), statistics.median(grouped)
        return {
            "database": kind,
            "threads": args.threads,
            "served_per_record": args.served,
            "one_transaction_each_records_per_s": round(one, 1),
            "group_commit_records_per_s": round(batch, 1),
            "group_commit_gain": round(batch / one, 2),
            "rounds": {"one_each": [round(r, 1) for r in each], "group": [round(r, 1) for r in grouped]},
            "chain_verified": report.ok,
            "records_checked": report.checked,
        }


def main(argv: list[str] | None = None) -> int:
    """Run both stores and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--threads", type=int, default=32, help="concurrent writers (requests being recorded)")
    parser.add_argument("--served", type=int, default=50, help="versions each record served (a page of 50)")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each timed phase")
    parser.add_argument("--rounds", type=int, default=3, help="alternations of the two ways")
    parser.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN_URL)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    runs = []
    with tempfile.TemporaryDirectory(prefix="tearline-ceiling-") as tmp:
        for kind in args.databases.split(","):
            runs.append(measure(kind, args, Path(tmp)))
            run = runs[-1]
            print(
                f"{kind}: {run['one_transaction_each_records_per_s']:,.0f} records/s one transaction each, "
                f"{run['group_commit_records_per_s']:,.0f} with group commit (x{run['group_commit_gain']}); "
                f"chain {'ok' if run['chain_verified'] else 'BROKEN'} ({run['records_checked']:,} records)"
            )
    document = {"command": " ".join(["python", "bench/audit_ceiling.py", *(argv or sys.argv[1:])]), "goal": GOAL}
    document["runs"] = runs
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    return 0 if all(run["chain_verified"] for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
