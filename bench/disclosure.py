"""Disclosure review at queue scale: how fast an officer works through 10,000 held items.

One store per database: release rules that hold every analyst post (a copy of ``policies/`` with its
own ``disclosure.toml``: TLP:CLEAR/GREEN released as marked, everything else held, no two-person
rule), 10 registered partner nations, one collection partners read, and ``--items`` analyst posts
(90% indicators, 10% reports naming 2-5 indicators of the same post, 5% with a granular marking on
``description``; RESTRICTED, CONFIDENTIAL or SECRET, each releasable to USA and to some others),
POSTed by the home analyst over TAXII in envelopes of ``--batch``, so every one is pending review.

The app is served by uvicorn on a free 127.0.0.1 port, in a thread of this process (lifespan on, as
under ``tearline serve``): the live event stream needs a real server (Starlette's TestClient reads a
response to its end). An officer (home nation, role ``officer``) then times, over HTTP:

1. opening the queue: ``GET /api/v1/disclosure/queue`` with ``limit`` 100 and 1,000;
2. one item's per-partner preview: ``GET /api/v1/disclosure/reviews/{id}`` (a different item each time);
3. the union preview of ``--batch`` items: ``POST /api/v1/disclosure/preview``;
4. a batch release of ``--batch`` items in one action: ``POST /api/v1/disclosure/decisions``;
5. from that release's commit (an SQLAlchemy ``after_commit`` listener in this process, on the
   app's engine) until a USA partner's TAXII pull with ``added_after`` (the wall time just before
   the release) has every released item, and until a USA live stream (``GET .../events/``, opened
   before the release) has delivered every one.

Each read is done once untimed (cold) and then ``--repeats`` times; each repeat of 4-5 releases a
fresh batch (the queue's next ``--batch`` items, one post's worth). Median and max in ms, against
the goal "well under a second" (<= 1,000 ms). A measure with a repeat over ``--profile-over`` ms
is run once more under pyinstrument, in process (every thread hop inline, no socket), and the
profile written beside the results.

    .venv/bin/python bench/disclosure.py                       # SQLite and PostgreSQL, 10,000 items
    .venv/bin/python bench/disclosure.py --databases sqlite --items 200 --repeats 1   # smoke, ~10 s

The code is in three modules: this entry point (the store's setup, the command line and the report),
``bench/disclosure_seed.py`` (the held workload, the store, seeding the queue) and
``bench/disclosure_measure.py`` (the timed measures and the profiles), each small enough to read whole.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import httpx
import orjson

from app.auth.keys import generate_key_pair
from bench.disclosure_measure import (
    GOAL_MS,
    MEASURE_TEXT,
    MEASURES,
    _display,
    measure_reads,
    measure_releases,
    profile_slow,
)
from bench.disclosure_seed import (
    PARTNERS,
    PULLER,
    CommitClock,
    Store,
    Workload,
    make_workload,
    pending_ids,
    policies_copy,
    seed_store,
)
from bench.fixtures import app_with_collection, token_maker
from bench.releasability import DEFAULT_PG_ADMIN_URL, HOME, TAXII, ServerThread, database, make_settings
from bench.workload import code_state

DATABASES = ("sqlite", "postgresql")


# --- one store ---------------------------------------------------------------------------------


def run_store(kind: str, args: argparse.Namespace, workload: Workload, out: Path, log) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="tearline-bench-disclosure-") as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        key_dir = work / "keys"
        generate_key_pair(key_dir / "jwt-private.pem", key_dir / "jwt-public.pem")
        url = stack.enter_context(database(kind, work, "disclosure", args.pg_admin_url))
        if kind == "postgresql":
            # The live listener thread closes its connection within a second of the app stopping (not
            # awaited): give it that before the database is dropped under it.
            stack.callback(time.sleep, 1.5)
        settings = make_settings(url, work, key_dir, 1000).model_copy(
            update={"feed_scheduler": False, "policies_dir": policies_copy(work)}
        )
        app, collection_id = app_with_collection(stack, settings, "disclosure bench", PARTNERS)
        token = token_maker(settings, key_dir, lifetime_s=7200)

        def headers(value: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {value}", "Accept": TAXII}

        officer_token = token("bench-officer", HOME, "officer")
        partner_token = token("bench-usa", PULLER, "partner")
        server = stack.enter_context(ServerThread(app))
        base_url = f"http://127.0.0.1:{server.port}"
        client = stack.enter_context(httpx.Client(base_url=base_url, timeout=300))
        clock = CommitClock(app.state.engine)
        stack.callback(clock.close)
        store = Store(
            kind,
            app,
            client,
            settings.api_root,
            collection_id,
            {"Authorization": f"Bearer {officer_token}", "Accept": "application/json"},
            headers(token("bench-analyst", HOME, "analyst")),
            headers(partner_token),
            partner_token,
            officer_token,
            clock,
        )
        log(f"{kind}: seeding {args.items:,} held items in posts of {args.batch:,}")
        seed_store(store, workload, args.items, args.batch, log)
        ids = pending_ids(store)
        if len(ids) != args.items:
            raise SystemExit(f"the queue lists {len(ids)} of {args.items} pending reviews")
        log(f"{kind}: queue, review and union previews")
        measures = measure_reads(store, ids, args.batch, args.repeats)
        log(f"{kind}: {args.repeats} releases of {args.batch:,}")
        measure_releases(store, ids, args.batch, args.repeats, base_url, measures, log)
        profiles: dict[str, Any] = {}
        if args.profile_over is not None:
            profiles = profile_slow(
                store, measures, ids, args.repeats * args.batch, args.batch, args.profile_over, out, log
            )
        return {
            "database": kind,
            "seed": store.seed,
            "partners": len(PARTNERS),
            "measures": {name: m.summary() for name, m in measures.items()},
            "profiles": profiles,
        }


# --- report ------------------------------------------------------------------------------------


def table(stores: list[dict[str, Any]]) -> str:
    lines = [
        "| store | measure | items | median ms | max ms | cold ms | goal <= 1 s |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for s in stores:
        for m in s["measures"].values():
            items = m.get("items", m.get("reviews", 1))
            cold = "" if m["cold_ms"] is None else m["cold_ms"]
            lines.append(
                f"| {s['database']} | {m['what']} | {items:,} | {m['median_ms']} | {m['max_ms']} | {cold} | {m['verdict']} |"
            )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--databases", default=",".join(DATABASES), help="stores, comma-separated, in this order")
    parser.add_argument("--items", type=int, default=10_000, help="held items in the queue")
    parser.add_argument(
        "--batch",
        type=int,
        default=1000,
        help="items per post, union preview and release (at most --items / --repeats)",
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats of each measure (reads: after one cold)")
    parser.add_argument(
        "--profile-over", type=float, default=500.0, help="profile measures with a repeat over this many ms"
    )
    parser.add_argument("--no-profile", action="store_true", help="profile nothing")
    parser.add_argument("--seed", type=int, default=20261203)
    parser.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN_URL)
    parser.add_argument("--out", default="bench/results/disclosure.json", help="JSON results")
    args = parser.parse_args(argv)
    args.databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    if not args.databases or set(args.databases) - set(DATABASES):
        parser.error(f"--databases takes {', '.join(DATABASES)}")
    if args.items < 1 or args.repeats < 1 or args.batch < 1:
        parser.error("--items, --batch and --repeats >= 1")
    args.batch = min(args.batch, args.items // args.repeats, 1000)
    if args.batch < 1:
        parser.error("--items must be at least --repeats (each release takes a fresh batch)")
    if args.no_profile:
        args.profile_over = None
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    out = Path(args.out)
    out = out if out.is_absolute() else REPO_ROOT / out
    out.parent.mkdir(parents=True, exist_ok=True)
    workload = make_workload(args.seed)
    load_before = [round(x, 2) for x in os.getloadavg()]
    started = time.perf_counter()
    stores = [run_store(kind, args, workload, out, log) for kind in args.databases]
    document = {
        "command": "python bench/disclosure.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "items": args.items,
        "batch": args.batch,
        "repeats": args.repeats,
        "partners": [nation for nation, _, _ in PARTNERS],
        "goal": f"each measure well under a second: max <= {GOAL_MS:.0f} ms ('median only': the median is)",
        "measures": {name: MEASURE_TEXT[name] for name in MEASURES},
        "stores": stores,
        "code": code_state("disclosure"),
        "environment": {
            "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
            "load_average_before": load_before,
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "wall_s": round(time.perf_counter() - started, 1),
        },
    }
    out.write_text(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n")
    print(table(stores))
    print(f"\n- results: {_display(out)} ({document['environment']['wall_s']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
