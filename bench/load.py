"""Concurrency and scale-out benchmark (issue 22): the suite's load on SQLite and PostgreSQL, 1 and 2
app instances, and the audit log's records-per-second ceiling.

For each store and instance count, in a fresh database (SQLite file, or PostgreSQL database dropped at
the end) built by ``bench/load_setup.py`` (migrations, the suite's 5 partner nations, one collection,
``--preload`` indicators), ``tearline serve`` runs as real processes on free ports of 127.0.0.1, and:

1. **load**: the suite's load test (``tests.hardening.load.run_load``: 20 partner clients, 4 per
   nation, walk the collection's indicators in pages of 50 while 2 analysts post 5 indicators at a
   time, every received object checked against the oracle) for ``--seconds``; clients are spread
   round-robin over the instances. Reported: pages/s, p50/p95 page latency, posts, errors, leaks;
2. **audit ceiling**: ``--ceiling-clients`` keep-alive connections GET ``/taxii2/`` (discovery, the
   cheapest audited request: one record each) as fast as answers come for ``--ceiling-seconds``.
   Reported: 200 answers per second = records per second. After the servers stopped, the records of
   the ceiling's subjects are counted in ``audit_record`` (every 200 answer must have one) and the
   whole chain is verified with ``tearline audit verify``.

SQLite runs one instance; PostgreSQL each count of ``--instances``. Speed is reported as ratios to a
baseline of the same run (PostgreSQL against SQLite; 2 instances against 1) and asserted nowhere; the
exit status is 1 only for errors, leaks, a missing audit record, a broken chain or a killed server. Writes
``bench/results/load.json`` and ``load.md`` (``--out``). See bench/README.md.

    .venv/bin/python bench/load.py                      # both stores, 30 s a phase; ~4 min on 2 cores
    .venv/bin/python bench/load.py --databases sqlite --seconds 2 --preload 100 --ceiling-clients 4 --out /tmp/load.json
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from app.auth.keys import generate_key_pair
from bench.load_measure import (
    Usage,
    audit_ceiling,
    audit_histogram,
    ceiling_records,
    histogram_mean_ms,
    percentiles,
    verify_chain,
)
from bench.load_report import markdown, verdicts
from bench.load_setup import Tokens, build_store, make_settings, start_instances
from bench.releasability import DEFAULT_PG_ADMIN_URL, database
from tests.hardening.load import LoadResult, run_load

DEFAULT_OUT = REPO_ROOT / "bench" / "results" / "load.json"
SAMPLES = 5  # error and leak messages kept per run


def _load_figures(result: LoadResult) -> dict[str, Any]:
    p50, p95 = percentiles(result.latencies_ms)
    return {
        "duration_s": round(result.duration_s, 1),
        "pages": result.pages,
        "pages_per_s": round(result.pages / max(result.duration_s, 1e-9), 1),
        "p50_ms": p50,
        "p95_ms": p95,
        "objects_received": result.objects_received,
        "posted": result.posted,
        "reconnects": result.reconnects,
        "errors": len(result.errors),
        "error_samples": result.errors[:SAMPLES],
        "leaks": len(result.leaks),
        "leak_samples": result.leaks[:SAMPLES],
    }


def run(kind: str, count: int, args: argparse.Namespace, work: Path, tokens: Tokens, log: Any) -> dict[str, Any]:
    """One store with ``count`` instances: build, load, ceiling, stop, count records, verify."""
    label = f"{kind}-{count}"
    with database(kind, work, f"load{count}", args.pg_admin_url) as url:
        settings = make_settings(url, work)
        started = time.monotonic()
        collection_id, known = build_store(settings, args.preload, args.seed)
        setup_s = round(time.monotonic() - started, 1)
        log(f"{label}: store built in {setup_s} s ({args.preload} indicators); starting {count} server(s)")
        instances = start_instances(settings, count, work, label)
        try:
            usage = Usage(instances)
            load = asyncio.run(
                run_load(
                    [instance.base_url for instance in instances],
                    collection_id,
                    partner_headers=tokens.partners,
                    analyst_headers=tokens.analysts,
                    duration_s=args.seconds,
                    api_root=settings.api_root,
                    seed=args.seed,
                    known=known,
                )
            )
            load_figures = _load_figures(load) | {"usage": usage.done()}
            log(f"{label}: load {load.summary()}")
            before = audit_histogram(instances)
            usage = Usage(instances)
            ceiling = audit_ceiling(instances, tokens.ceiling, args.ceiling_seconds)
            ceiling_usage = usage.done()
            audit_wait_ms = histogram_mean_ms(before, audit_histogram(instances))
        finally:
            exits = [instance.stop() for instance in instances]
        killed = any(instance.killed for instance in instances)
        # Counted only now: a server that batches records has written them all once it has stopped.
        records = ceiling_records(url)
        chain = verify_chain(settings)
    answered = ceiling.answered_200
    recorded = records["by_status"].get(200, 0)
    p50, p95 = percentiles(ceiling.latencies_ms)
    ceiling_figures = {
        "clients": ceiling.clients,
        "duration_s": round(ceiling.duration_s, 1),
        "answered_200": answered,
        "other_statuses": {str(status): n for status, n in ceiling.statuses.items() if status != 200},
        "failures": ceiling.failures,
        "failure_samples": ceiling.failure_samples,
        "records_per_s": round(answered / max(ceiling.duration_s, 1e-9), 1),
        "p50_ms": p50,
        "p95_ms": p95,
        "audit_wait_mean_ms": audit_wait_ms,
        "records": records,
        # Every 200 needs its record; a record beyond the 200s is allowed only for a broken connection.
        "records_missing": max(answered - recorded, 0),
        "records_unanswered": max(recorded - answered, 0),
        "records_match": recorded >= answered and recorded - answered <= ceiling.failures,
        "usage": ceiling_usage,
    }
    log(
        f"{label}: ceiling {ceiling_figures['records_per_s']} records/s ({answered} answered 200, "
        f"{recorded} recorded, {ceiling.failures} broken); chain {'ok' if chain['ok'] else 'BROKEN'}: {chain['output']}"
    )
    return {
        "database": kind,
        "instances": count,
        "preload": args.preload,
        "setup_s": setup_s,
        "load": load_figures,
        "ceiling": ceiling_figures,
        "server_exit_statuses": exits,
        "servers_killed": killed,
        "chain": chain,
    }


def _git(*argv: str) -> str:
    # Read-only, and without optional locks: other engineers commit in this checkout meanwhile.
    done = subprocess.run(
        ["git", "--no-optional-locks", *argv], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    return done.stdout.strip()


def environment(args: argparse.Namespace) -> dict[str, Any]:
    """Where and on what the run happened (the figures depend on the machine and on the code under test)."""
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": _git("rev-parse", "HEAD"),
        "app_uncommitted": _git("status", "--porcelain", "--", "app").splitlines(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "seconds": args.seconds,
        "ceiling_seconds": args.ceiling_seconds,
        "ceiling_clients": args.ceiling_clients,
        "preload": args.preload,
        "databases": args.databases,
        "instances": args.instances,
    }


def _counts(text: str) -> list[int]:
    counts = sorted({int(part) for part in text.split(",") if part.strip()})
    if not counts or counts[0] < 1:
        raise argparse.ArgumentTypeError("instance counts are positive integers, e.g. 1,2")
    return counts


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; ``--help`` lists it."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--databases", default="sqlite,postgresql", help="stores, in this order")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each load phase")
    parser.add_argument(
        "--ceiling-seconds", type=float, default=None, help="length of each audit ceiling phase [--seconds]"
    )
    parser.add_argument(
        "--ceiling-clients", type=int, default=32, help="keep-alive connections of the ceiling, over all instances"
    )
    parser.add_argument(
        "--instances", type=_counts, default=[1, 2], help="app instances on PostgreSQL, e.g. 1,2 (SQLite runs 1)"
    )
    parser.add_argument("--preload", type=int, default=2000, help="indicators in the collection before the load")
    parser.add_argument("--seed", type=int, default=8, help="the preload's and the analysts' choice of markings")
    parser.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN_URL)
    parser.add_argument("--keep-work", action="store_true", help="keep the servers' logs and SQLite files")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results JSON; the Markdown goes beside it")
    args = parser.parse_args(argv)
    args.databases = [name.strip() for name in args.databases.split(",") if name.strip()]
    unknown = set(args.databases) - {"sqlite", "postgresql"}
    if unknown or not args.databases:
        parser.error(f"--databases takes sqlite and/or postgresql, not {sorted(unknown) or 'nothing'}")
    if args.ceiling_seconds is None:
        args.ceiling_seconds = args.seconds
    return args


def main(argv: list[str] | None = None) -> int:
    """Run every store and instance count, write the JSON and the Markdown, print the table."""
    args = parse_args(argv)
    started = time.monotonic()

    def log(message: str) -> None:
        print(f"[{time.monotonic() - started:6.0f}s] {message}", file=sys.stderr, flush=True)

    result: dict[str, Any] = {"command": " ".join([".venv/bin/python bench/load.py", *sys.argv[1:]])}
    result["environment"] = environment(args)
    work = Path(tempfile.mkdtemp(prefix="tearline-load-"))
    try:
        generate_key_pair(work / "keys" / "jwt-private.pem", work / "keys" / "jwt-public.pem")
        tokens = Tokens.issue(make_settings("sqlite://", work), args.ceiling_clients)
        runs = []
        for kind in args.databases:
            for count in args.instances if kind == "postgresql" else [1]:
                runs.append(run(kind, count, args, work, tokens, log))
    finally:
        # --keep-work leaves the servers' logs (and SQLite files) behind, to look into a failure.
        if args.keep_work:
            log(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    result["runs"] = runs
    result["verdicts"] = verdicts(runs)
    result["environment"]["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    result["environment"]["total_s"] = round(time.monotonic() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    report = markdown(result)
    args.out.with_suffix(".md").write_text(report)
    print(report)
    return 0 if result["verdicts"]["correct"] else 1


if __name__ == "__main__":
    sys.exit(main())
