"""Recall after a tightening: how soon every past recipient nation can read its notice, and at what cost.

One store per (database, variant): ``--nations`` partner nations (the first ISO 3166-1 trigraphs of
``stix_mappings/codes/countries.json`` that are not the home nation), one collection partners read,
and one indicator posted by the home analyst under a statement marking releasable to all of them.
``--principals`` partner principals (distinct token subjects, spread round-robin over the nations)
each GET the collection's objects once, so that as many audit records carry the indicator. Then the
analyst POSTs:

1. ``--baseline-repeats`` new versions of the indicator under ``UNCLASSIFIED//REL TO ALL`` (a new
   label, but every nation still sees it: nothing is tightened), each timed: the baseline;
2. one new version under ``UNCLASSIFIED`` (home only): every earlier version is withdrawn from every
   nation, and each nation gets a recall notice, stored in the POST's own transaction. Timed.

When the POST returns, the home analyst GETs the collection's notes: the time from the POST's start
until that answer holds every nation's notice is "all available" (the issue's goal: within 1 s;
printed, not asserted). Then one principal per nation, one after another, polls
``GET .../objects/?match[type]=note`` until it receives its own notice (each nation must). Also
reported: the POST's time and its ratio to the baseline's median, and what the tightening added to
the audit log (records, served and written list bytes) and to the recall tables.

Variants: ``indexed`` (as deployed: the app's recipients-index thread runs, and
``app.audit.index.index_pending`` has caught up before the tightening, which reads the index) and
``unindexed`` (the index thread is stopped before the pulls, so the tightening reads every
un-indexed served list instead).

The app runs in process (Starlette's TestClient, lifespan on: no socket). Tokens are RS256, signed
with a key parsed once.

    .venv/bin/python bench/recall.py                          # SQLite and PostgreSQL, both variants
    .venv/bin/python bench/recall.py --databases sqlite --principals 200 --nations 10
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import orjson
from jose import jwk
from sqlalchemy import Engine, text
from sqlmodel import Session
from starlette.testclient import TestClient

from app.audit.index import index_pending
from app.auth.keys import generate_key_pair
from app.auth.tokens import issue_token
from app.config.settings import Settings
from app.db import migrations
from app.items.identity import home_identity_id
from app.main import create_app
from app.partners.service import save_partner
from app.taxii import service
from bench.releasability import DEFAULT_PG_ADMIN_URL, HOME, TAXII, database, make_settings
from bench.workload import code_state

GOAL_MS = 1000.0
DATABASES = ("sqlite", "postgresql")
VARIANTS = ("indexed", "unindexed")
PARTNER_CLEARANCE = 3  # above UNCLASSIFIED; the marking's rank is 0
COUNTED_TABLES = (
    "audit_record",
    "audit_object",
    "audit_dissemination",
    "recall",
    "recall_notice",
    "recalled_version",
    "stix_object",
    "label",
)
LIST_TABLES = ("audit_served", "audit_written")  # one row per record; pairs = the canonical JSON list
BASE_TIME = "2026-01-01T00:00:00"


def partner_nations(count: int) -> list[str]:
    """The first ``count`` ISO trigraphs of the shipped country table, the home nation left out."""
    table = orjson.loads((REPO_ROOT / "stix_mappings" / "codes" / "countries.json").read_bytes())
    codes = [entry["code"] for entry in table["countries"] if entry["code"] != HOME]
    if count > len(codes):
        raise SystemExit(f"--nations {count}: the country table has {len(codes)} codes besides {HOME}")
    return codes[:count]


def statement(banner: str) -> dict[str, Any]:
    """A statement marking whose statement is a banner (how an analyst marks what they post)."""
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": f"marking-definition--{uuid.uuid4()}",
        "created": "2024-01-01T00:00:00.000Z",
        "definition_type": "statement",
        "definition": {"statement": banner},
    }


def indicator_version(object_id: str, version: int, marking: dict[str, Any]) -> dict[str, Any]:
    """Version ``version`` (0 = the first) of the indicator: same size each time, ``modified`` one second later."""
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": object_id,
        "created_by_ref": home_identity_id(HOME),
        "created": f"{BASE_TIME}.000Z",
        "modified": f"2026-01-01T00:00:{version:02d}.000Z",
        "name": "C2 server of a tracked intrusion set",
        "description": f"Beaconing destination seen in incident response, revision {version:02d}.",
        "indicator_types": ["malicious-activity"],
        "pattern": "[ipv4-addr:value = '198.51.100.23']",
        "pattern_type": "stix",
        "valid_from": f"{BASE_TIME}.000Z",
        "object_marking_refs": [marking["id"]],
    }


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def audit_snapshot(engine: Engine) -> dict[str, int]:
    """Row counts of the audit and recall tables, and the bytes of the served and written lists."""
    with engine.connect() as connection:
        figures = {
            table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() for table in COUNTED_TABLES
        }
        for table in LIST_TABLES:
            rows, size = connection.execute(
                text(f"SELECT count(*), coalesce(sum(length(pairs)), 0) FROM {table}")
            ).one()
            figures[f"{table}_rows"], figures[f"{table}_bytes"] = rows, int(size)
        figures["index_head_seq"] = connection.execute(
            text("SELECT seq FROM audit_index_head WHERE id = 1")
        ).scalar_one()
        figures["last_record_seq"] = connection.execute(
            text("SELECT coalesce(max(seq), 0) FROM audit_record")
        ).scalar_one()
    return figures


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {key: after[key] - before[key] for key in before if key not in ("index_head_seq", "last_record_seq")}


def unindexed_backlog(engine: Engine) -> dict[str, int]:
    """Served lists the recipients index does not cover yet (what the tightening reads besides the index)."""
    with engine.connect() as connection:
        rows, size = connection.execute(
            text(
                "SELECT count(*), coalesce(sum(length(s.pairs)), 0) FROM audit_served s "
                "WHERE s.record_seq > (SELECT h.seq FROM audit_index_head h WHERE h.id = 1)"
            )
        ).one()
    return {"served_lists": rows, "bytes": int(size)}


@dataclass
class Setup:
    client: TestClient
    app: Any
    objects_path: str
    analyst: dict[str, str]
    principals: list[tuple[str, dict[str, str]]]  # (nation, headers)


def post(setup: Setup, objects: list[dict[str, Any]]) -> float:
    """POST an envelope as the home analyst; every object must be stored. Returns the wall seconds."""
    headers = setup.analyst | {"Content-Type": TAXII}
    body = orjson.dumps({"objects": objects})
    started = time.perf_counter()
    response = setup.client.post(setup.objects_path, content=body, headers=headers)
    elapsed = time.perf_counter() - started
    if response.status_code != 202:
        raise SystemExit(f"POST answered {response.status_code}: {response.text[:300]}")
    status = response.json()
    if status["failure_count"] or status["success_count"] != len(objects):
        raise SystemExit(f"POST refused objects: {status.get('failures')}")
    return elapsed


def get_objects(setup: Setup, headers: dict[str, str], params: dict[str, str] | None = None) -> list[dict[str, Any]]:
    response = setup.client.get(setup.objects_path, headers=headers, params=params)
    if response.status_code != 200:
        raise SystemExit(f"GET answered {response.status_code}: {response.text[:300]}")
    objects: list[dict[str, Any]] = orjson.loads(response.content).get("objects", [])
    return objects


def poll_notices(
    setup: Setup,
    pollers: dict[str, dict[str, str]],
    object_id: str,
    extension_id: str,
    started: float,
    timeout_s: float,
) -> tuple[dict[str, float], int, list[float]]:
    """Poll each nation, one GET at a time, until it receives its notice.

    Returns nation -> ms after ``started`` when its notice had arrived, the rounds, and every poll's latency.
    """
    found: dict[str, float] = {}
    latencies: list[float] = []
    rounds = 0
    deadline = time.perf_counter() + timeout_s
    while len(found) < len(pollers) and time.perf_counter() < deadline:
        rounds += 1
        for nation, headers in pollers.items():
            if nation in found:
                continue
            sent = time.perf_counter()
            notes = get_objects(setup, headers, {"match[type]": "note"})
            latencies.append(time.perf_counter() - sent)
            if any(
                (note.get("extensions") or {}).get(extension_id, {}).get("recalled_object") == object_id
                for note in notes
            ):
                found[nation] = _ms(time.perf_counter() - started)
    return found, rounds, latencies


@contextlib.contextmanager
def running_app(settings: Settings, nations: list[str]) -> Iterator[tuple[Any, str]]:
    """The app on a migrated database, the partners registered, one collection partners read."""
    migrations.upgrade(settings.database_url)
    app = create_app(settings)
    try:
        with Session(app.state.engine) as session:
            for nation in nations:
                save_partner(
                    session,
                    nation=nation,
                    clearance=PARTNER_CLEARANCE,
                    groups=[],
                    home_nation=HOME,
                    mappings=app.state.mappings,
                )
            collection_id = service.create_collection(
                session, title="recall bench", read_roles={"partner", "analyst"}, write_roles={"analyst"}
            ).id
        yield app, collection_id
    finally:
        app.state.engine.dispose()
        app.state.audit_engine.dispose()


def run_one(
    kind: str, variant: str, args: argparse.Namespace, nations: list[str], log: Callable[[str], None]
) -> dict[str, Any]:
    """One store: set up, pull, baseline POSTs, the tightening POST, the notices' polling."""
    with tempfile.TemporaryDirectory(prefix="tearline-bench-recall-") as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        key_dir = work / "keys"
        generate_key_pair(key_dir / "jwt-private.pem", key_dir / "jwt-public.pem")
        url = stack.enter_context(database(kind, work, f"recall_{variant}", args.pg_admin_url))
        settings = make_settings(url, work, key_dir, 1000).model_copy(update={"feed_scheduler": False})
        t0 = time.perf_counter()
        app, collection_id = stack.enter_context(running_app(settings, nations))
        setup_s = time.perf_counter() - t0

        key = jwk.construct((key_dir / "jwt-private.pem").read_text(), "RS256")  # parsed once: ~0.5 ms a token

        def headers(subject: str, nation: str, roles: list[str]) -> dict[str, str]:
            token = issue_token(
                key=key,  # type: ignore[arg-type]  # jose takes a constructed key as well as PEM text
                algorithm="RS256",
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
                subject=subject,
                nation=nation,
                roles=roles,
                lifetime_s=3600,
            )
            return {"Authorization": f"Bearer {token}", "Accept": TAXII}

        principals = [
            (nations[i % len(nations)], f"{nations[i % len(nations)].lower()}-{i:05d}") for i in range(args.principals)
        ]
        client = stack.enter_context(TestClient(app))  # lifespan on: the recipients-index thread runs
        if variant == "unindexed":
            app.state.audit_indexer.stop()  # nothing is indexed from here on
        setup = Setup(
            client,
            app,
            f"/taxii2/{settings.api_root}/collections/{collection_id}/objects/",
            headers("bench-analyst", HOME, ["analyst"]),
            [(nation, headers(subject, nation, ["partner"])) for nation, subject in principals],
        )
        engine = app.state.engine
        extension_id = app.state.recall_env.extension.id

        object_id = f"indicator--{uuid.uuid4()}"
        wide = statement(f"UNCLASSIFIED//REL TO {', '.join(nations)}")
        first_post_s = post(setup, [wide, indicator_version(object_id, 0, wide)])

        log(f"  {kind}/{variant}: {args.principals:,} principals of {len(nations)} nations pull the indicator")
        t0 = time.perf_counter()
        for nation, hdrs in setup.principals:
            if not any(o["id"] == object_id for o in get_objects(setup, hdrs)):
                raise SystemExit(f"a principal of {nation} did not receive the indicator")
        pulls_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        indexed_records = index_pending(app.state.audit_engine) if variant == "indexed" else 0
        index_s = time.perf_counter() - t0
        backlog = unindexed_backlog(engine)

        baseline_s = []
        baseline_deltas = []
        for repeat in range(args.baseline_repeats):
            marking = statement("UNCLASSIFIED//REL TO ALL")
            before = audit_snapshot(engine)
            baseline_s.append(post(setup, [marking, indicator_version(object_id, 1 + repeat, marking)]))
            baseline_deltas.append(delta(before, audit_snapshot(engine)))
        if any(d["recall"] for d in baseline_deltas):
            raise SystemExit("a baseline POST issued a recall: it was meant to tighten nothing")
        if variant == "indexed":
            index_pending(app.state.audit_engine)  # the baseline POSTs' records (they serve nothing)

        log(f"  {kind}/{variant}: tightening")
        home_only = statement("UNCLASSIFIED")
        tightening = [home_only, indicator_version(object_id, 1 + args.baseline_repeats, home_only)]
        before = audit_snapshot(engine)
        started = time.perf_counter()
        tighten_s = post(setup, tightening)
        # Available: stored and served. One GET by the home analyst, who sees every nation's notice,
        # right after the POST returns (the notices commit with the tightening version).
        home_notes = get_objects(setup, setup.analyst, {"match[type]": "note", "limit": "1000"})
        available_s = time.perf_counter() - started
        served_notices = sum(
            1
            for note in home_notes
            if (note.get("extensions") or {}).get(extension_id, {}).get("recalled_object") == object_id
        )
        after_post = audit_snapshot(engine)
        pollers: dict[str, dict[str, str]] = {}
        for nation, hdrs in setup.principals:
            pollers.setdefault(nation, hdrs)
        found, rounds, latencies = poll_notices(setup, pollers, object_id, extension_id, started, args.poll_timeout)
        polled_s = time.perf_counter() - started
        after_poll = audit_snapshot(engine)
        still_served = [n for n in nations if any(o["id"] == object_id for o in get_objects(setup, pollers[n]))]
        if still_served:
            raise SystemExit(f"the indicator is still served to {still_served} after the tightening")

        available_ms = _ms(available_s) if served_notices == len(pollers) else None
        polled_all_ms = max(found.values()) if len(found) == len(pollers) else None
        baseline_median = statistics.median(baseline_s)
        return {
            "database": kind,
            "variant": variant,
            "nations": len(nations),
            "principals": args.principals,
            "setup_s": round(setup_s, 3),
            "first_post_ms": _ms(first_post_s),
            "pulls": {
                "requests": args.principals,
                "seconds": round(pulls_s, 3),
                "per_s": round(args.principals / pulls_s, 1),
            },
            "index_pending_ms": _ms(index_s),
            "index_pending_records": indexed_records,
            "unindexed_before_tightening": backlog,
            "baseline_post_ms": [_ms(s) for s in baseline_s],
            "baseline_post_ms_median": _ms(baseline_median),
            "tighten_post_ms": _ms(tighten_s),
            "tighten_vs_baseline": round(tighten_s / baseline_median, 2),
            "notices": {
                "nations_notified": len(found),
                "nations_expected": len(pollers),
                "poll_rounds": rounds,
                "poll_requests": len(latencies),
                "poll_ms_median": _ms(statistics.median(latencies)),
                "poll_ms_max": _ms(max(latencies)),
                "per_nation_ms": found,
                "first_ms": min(found.values()) if found else None,
                "all_available_ms": available_ms,
                "served_to_home_after_post": served_notices,
                "all_ms": polled_all_ms,
                # What one poller per nation, all polling at once right after the POST, would see if
                # their GETs did not contend: the notices are committed when the POST returns.
                "all_ms_if_polled_at_once": _ms(tighten_s + max(latencies)),
                "poll_loop_ms": _ms(polled_s),
            },
            "goal_ms": GOAL_MS,
            # Every notice stored and served within the goal, and each nation then saw its own.
            "goal_met": available_ms is not None and available_ms <= GOAL_MS and len(found) == len(pollers),
            "added_by_tightening": delta(before, after_post),
            "added_by_baseline": baseline_deltas[0] if baseline_deltas else {},
            "added_by_polling": delta(after_post, after_poll),
        }


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the repeats of one (store, variant); the row counts are the first run's (the same in each)."""

    def median(values: list[float]) -> float:
        return round(statistics.median(values), 2)

    all_ms = [r["notices"]["all_ms"] for r in runs]
    complete = [ms for ms in all_ms if ms is not None]
    first = runs[0]
    return {
        "database": first["database"],
        "variant": first["variant"],
        "repeats": len(runs),
        "pulls_per_s": median([r["pulls"]["per_s"] for r in runs]),
        "unindexed_before_tightening": first["unindexed_before_tightening"],
        "baseline_post_ms": median([r["baseline_post_ms_median"] for r in runs]),
        "tighten_post_ms": median([r["tighten_post_ms"] for r in runs]),
        "tighten_post_ms_each": [r["tighten_post_ms"] for r in runs],
        "tighten_vs_baseline": median([r["tighten_vs_baseline"] for r in runs]),
        "nations_notified_min": min(r["notices"]["nations_notified"] for r in runs),
        "nations_expected": first["notices"]["nations_expected"],
        "all_notices_ms": median(complete) if len(complete) == len(runs) else None,
        "all_notices_ms_each": all_ms,
        "all_available_ms": median([r["notices"]["all_available_ms"] or float("inf") for r in runs]),
        "all_available_ms_each": [r["notices"]["all_available_ms"] for r in runs],
        "all_notices_ms_if_polled_at_once": median([r["notices"]["all_ms_if_polled_at_once"] for r in runs]),
        "poll_ms_median": median([r["notices"]["poll_ms_median"] for r in runs]),
        "goal_met_runs": sum(1 for r in runs if r["goal_met"]),
        "added_by_tightening": first["added_by_tightening"],
        "added_by_baseline": first["added_by_baseline"],
        "added_by_polling": first["added_by_polling"],
    }


def table(summaries: list[dict[str, Any]]) -> str:
    header = (
        "| store | variant | runs | pulls/s | un-indexed lists (KB) | baseline POST ms | tightening POST ms | ratio | "
        "notices | all available ms | each nation polled in turn ms | goal 1 s met | audit records / served KB / written KB | "
        "recall / notice / recalled_version rows |"
    )
    lines = [header, "|" + "---|" * 14]
    for s in summaries:
        added, backlog = s["added_by_tightening"], s["unindexed_before_tightening"]
        lines.append(
            f"| {s['database']} | {s['variant']} | {s['repeats']} | {s['pulls_per_s']:,.0f} | "
            f"{backlog['served_lists']:,} ({backlog['bytes'] / 1024:,.0f}) | {s['baseline_post_ms']} | "
            f"{s['tighten_post_ms']} | {s['tighten_vs_baseline']}x | "
            f"{s['nations_notified_min']}/{s['nations_expected']} | {s['all_available_ms']} | {s['all_notices_ms']} | "
            f"{s['goal_met_runs']}/{s['repeats']} | "
            f"{added['audit_record']} / {added['audit_served_bytes'] / 1024:.1f} / {added['audit_written_bytes'] / 1024:.1f} | "
            f"{added['recall']} / {added['recall_notice']} / {added['recalled_version']} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--databases", default=",".join(DATABASES), help="stores, comma-separated, in this order")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="indexed and/or unindexed, comma-separated")
    parser.add_argument("--nations", type=int, default=30, help="partner nations, all releasable, all pulling")
    parser.add_argument("--principals", type=int, default=1000, help="partner principals, one GET each")
    parser.add_argument("--baseline-repeats", type=int, default=3, help="non-tightening POSTs timed (median)")
    parser.add_argument("--repeats", type=int, default=1, help="fresh stores per (database, variant); medians")
    parser.add_argument("--poll-timeout", type=float, default=30.0, help="seconds to wait for every notice")
    parser.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN_URL)
    parser.add_argument("--out", default=None, help="JSON results (default bench/results/recall[-<store>].json)")
    args = parser.parse_args(argv)
    args.databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if not args.databases or set(args.databases) - set(DATABASES):
        parser.error(f"--databases takes {', '.join(DATABASES)}")
    if not args.variants or set(args.variants) - set(VARIANTS):
        parser.error(f"--variants takes {', '.join(VARIANTS)}")
    if args.nations < 1 or args.principals < args.nations or min(args.baseline_repeats, args.repeats) < 1:
        parser.error("--nations >= 1, --principals >= --nations, --baseline-repeats and --repeats >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    nations = partner_nations(args.nations)
    if args.out is None:
        suffix = "" if args.databases == list(DATABASES) else "-" + "-".join(args.databases)
        args.out = f"bench/results/recall{suffix}.json"
    out = Path(args.out)
    out = out if out.is_absolute() else REPO_ROOT / out
    out.parent.mkdir(parents=True, exist_ok=True)
    load_before = [round(x, 2) for x in os.getloadavg()]
    started = time.perf_counter()
    results, summaries = [], []
    for kind in args.databases:
        for variant in args.variants:
            runs = []
            for repeat in range(args.repeats):
                runs.append(run_one(kind, variant, args, nations, log))
                r = runs[-1]
                log(
                    f"  {kind}/{variant} run {repeat + 1}: tightening POST {r['tighten_post_ms']} ms "
                    f"(baseline {r['baseline_post_ms_median']} ms), all notices within {r['notices']['all_ms']} ms"
                )
            results += runs
            summaries.append(summarise(runs))
    document = {
        "command": "python bench/recall.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "nations": nations,
        "principals": args.principals,
        "baseline_repeats": args.baseline_repeats,
        "goal": f"every notice stored and served within {GOAL_MS:.0f} ms of the tightening POST starting",
        "summary": summaries,
        "runs": results,
        "code": code_state("recall"),
        "environment": {
            "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
            "load_average_before": load_before,
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "wall_s": round(time.perf_counter() - started, 1),
        },
    }
    out.write_text(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n")
    print(table(summaries))
    print()
    for summary in summaries:
        print(
            f"- {summary['database']}/{summary['variant']}: all {summary['nations_expected']} notices stored and "
            f"served within {summary['all_available_ms']} ms of the POST starting (median of {summary['repeats']}; "
            f"each run: {summary['all_available_ms_each']}): the POST ({summary['tighten_post_ms']} ms, the notices "
            f"commit with it), then one GET of the notes by the home analyst. Goal <= {GOAL_MS:.0f} ms met in "
            f"{summary['goal_met_runs']} of {summary['repeats']} runs. Each nation then polled in turn, one GET "
            f"after another (median {summary['poll_ms_median']} ms each): the last had its notice at "
            f"{summary['all_notices_ms']} ms"
        )
    print(f"- results: {out.relative_to(REPO_ROOT) if out.is_relative_to(REPO_ROOT) else out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
