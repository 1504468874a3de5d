"""Live-stream latency (issue 22): does a partner learn of what it may see within a second of it being stored?

Per database (SQLite, PostgreSQL), one store: the 10 partner nations of ``bench/disclosure_seed.py``,
one collection, and one label, CONFIDENTIAL releasable to USA, GBR, CAN, FRA, DEU and ITA. USA, GBR,
CAN, FRA and DEU may see what is marked with it; AUS, NZL, ESP and POL may not (not released to) and
neither may ITA (cleared to RESTRICTED only). The app is served by uvicorn on a free 127.0.0.1 port,
in a thread of this process (``releasability.ServerThread``, lifespan on, the live settings at their
defaults: keep-alive 15 s, re-check 5 s). Then, for each S of ``--streams``:

1. S event streams (``GET .../events/``) are opened at once by a child process
   (``bench/live_streams.py``), each its own partner principal, round-robin over the nations with an
   allowed and a denied one in turn (S = 1: USA; S = 2: USA and AUS; S = 50: five of each nation);
   the run goes on once every stream has answered 200 and the server counts S open streams;
2. for each K of ``--batch``, one untimed (cold) repeat, then ``--repeats``: the home analyst POSTs
   an envelope of K new indicators (``POST .../objects/``, marked with the label), and the bench
   waits until every allowed stream has had all K ids (at most 10 s; else *missed*), then 0.25 s.

Per allowed stream and repeat, the time from three moments to the event's arrival (the child's
``perf_counter``, ``CLOCK_MONOTONIC`` like this process's): the commit that stored the versions (in
process: the storing session's ``after_commit``, the promise's "stored"), the POST's response, and the
POST's sending. Reported per (store, S, K): p50, p95 and max, the share under 1 s, and as the baseline
of the same run the POST's own round trip (the latency from the commit over it, at p50). The goal:
p95 from the commit <= 1 s. A denied stream that receives an event, or an allowed one that misses
a post, fails the run (exit status 1, after the results are written). After the streams, each nation
pulls the collection over TAXII: it must hold every post (allowed) or none (denied), as the streams did.

    .venv/bin/python bench/live.py                     # S = 1, 50; K = 1 (20 repeats), 100 (5); ~75 s
    .venv/bin/python bench/live.py --databases sqlite --streams 2 --batch 1 --repeats 2   # smoke, ~10 s

Writes ``bench/results/live.json`` and ``live.md`` (``--out``). The code: this entry point (the store,
the command line, the report), ``bench/live_measure.py`` (the repeats, the ledger of what each stream
received, the figures) and ``bench/live_streams.py`` (the child process that reads the streams).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import httpx
import orjson

from app.auth.keys import generate_key_pair
from app.config.settings import Settings
from app.markings.label_spec import LabelSpec
from app.markings.labels import label_marking_definition
from bench.disclosure_seed import PARTNERS, check
from bench.fixtures import app_with_collection, token_maker
from bench.live_measure import GOAL_MS, Ledger, Log, Poster, StoredClock, StreamPlan, post_and_follow, summarise
from bench.live_report import goal_rows, markdown, table
from bench.live_streams import StreamReaders
from bench.releasability import DEFAULT_PG_ADMIN_URL, HOME, TAXII, ServerThread, database, make_settings
from bench.workload import code_state

DATABASES = ("sqlite", "postgresql")
RANK = 2  # CONFIDENTIAL
RELEASED_TO = ("USA", "GBR", "CAN", "FRA", "DEU", "ITA")
# Allowed and denied nations in turn, so that any S >= 2 holds streams of both.
STREAM_ORDER = ("USA", "AUS", "GBR", "ITA", "CAN", "NZL", "FRA", "ESP", "DEU", "POL")
SETTLE_S = 0.5  # after the streams open: each has made its first (empty) read and waits
GRACE_S = 1.0  # after the last repeat: a leak or duplicate that is late is still caught
Token = Callable[[str, str, str], str]  # (subject, nation, role) -> a signed bearer token


def may_see(nation: str) -> bool:
    """Whether the bench's label lets ``nation`` see the posts (the rule; checked by the TAXII pulls)."""
    clearance = {n: c for n, c, _ in PARTNERS}[nation]
    return nation in RELEASED_TO and clearance >= RANK


def stream_plans(count: int) -> list[StreamPlan]:
    """``count`` streams, round-robin over the nations, each its own principal (a principal may hold 4)."""
    plans = []
    for i in range(count):
        nation = STREAM_ORDER[i % len(STREAM_ORDER)]
        plans.append(
            StreamPlan(i, nation, f"bench-live-{nation.lower()}-{i // len(STREAM_ORDER) + 1:03d}", may_see(nation))
        )
    return plans


def default_repeats(batch: int) -> int:
    """20 repeats of single objects, 5 of larger envelopes (each costs its POST and the fan-out)."""
    return 20 if batch == 1 else 5


def pulled_ids(client: httpx.Client, path: str, token: str) -> set[str]:
    """Every object id a TAXII pull of the whole collection serves this principal (every page)."""
    headers = {"Authorization": f"Bearer {token}", "Accept": TAXII}
    ids: set[str] = set()
    params: dict[str, str] = {"limit": "1000"}
    while True:
        document = orjson.loads(check(client.get(path, headers=headers, params=params), 200, "pull").content)
        ids.update(o["id"] for o in document.get("objects", []))
        if not document.get("more"):
            return ids
        params = {"limit": "1000", "next": document["next"]}


def run_store(kind: str, args: argparse.Namespace, log: Log) -> dict[str, Any]:
    """Build one store, serve it, and measure every (S, K) on it."""
    with tempfile.TemporaryDirectory(prefix="tearline-bench-live-") as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        key_dir = work / "keys"
        generate_key_pair(key_dir / "jwt-private.pem", key_dir / "jwt-public.pem")
        url = stack.enter_context(database(kind, work, "live", args.pg_admin_url))
        if kind == "postgresql":
            # The live listener thread closes its connection within a second of the app stopping (not
            # awaited): give it that before the database is dropped under it.
            stack.callback(time.sleep, 1.5)
        settings: Settings = make_settings(url, work, key_dir, 1000).model_copy(
            # The default limit of open streams (256) unless an S asks for more: a refusal would measure nothing.
            update={"feed_scheduler": False, "live_max_streams": max(256, *args.streams)}
        )
        app, collection_id = app_with_collection(stack, settings, "live bench", PARTNERS)
        token = token_maker(settings, key_dir, lifetime_s=7200)

        server = stack.enter_context(ServerThread(app))
        base_url = f"http://127.0.0.1:{server.port}"
        client = stack.enter_context(httpx.Client(base_url=base_url, timeout=120))
        collection = f"/taxii2/{settings.api_root}/collections/{collection_id}"
        label = label_marking_definition(LabelSpec(RANK, frozenset(RELEASED_TO), frozenset(), HOME), app.state.mappings)
        poster = Poster(
            client,
            f"{collection}/objects/",
            token("bench-analyst", HOME, "analyst"),
            label["id"],
            random.Random(args.seed),
        )
        # The label first: streams open after it, so it is no event, and they judge a stored label.
        poster.post(orjson.dumps({"objects": [label]}), 1)
        clock = StoredClock(app, collection_id)
        stack.callback(clock.close)
        blocks = [
            run_streams(count, args, app, base_url, f"{collection}/events/", token, poster, clock, log)
            for count in args.streams
        ]
        posted = {i for block in blocks for i in block.pop("posted")}
        return {
            "database": kind,
            "label": label["name"],
            "blocks": blocks,
            "pull_check": pull_check(client, f"{collection}/objects/", token, posted),
        }


def run_streams(
    count: int,
    args: argparse.Namespace,
    app: Any,
    base_url: str,
    events_path: str,
    token: Token,
    poster: Poster,
    clock: StoredClock,
    log: Log,
) -> dict[str, Any]:
    """Open ``count`` streams, run each batch size's repeats on them, and close them.

    If the server refuses some streams, nothing is posted (the run would only time out) and the
    block reports the refusals instead of figures.
    """
    plans = stream_plans(count)
    tokens = [token(p.subject, p.nation, "partner") for p in plans]
    ledger = Ledger(plans)
    block: dict[str, Any] = {
        "streams": count,
        "allowed_streams": sum(1 for p in plans if p.allowed),
        "nations": dict(Counter(p.nation for p in plans)),
    }
    wait_for_streams(app, 0, 45)  # the previous block's streams have ended on the server
    runs = []
    started = time.perf_counter()
    with StreamReaders(base_url, events_path, tokens) as readers:
        opened, refused, early = readers.wait_open(timeout=90)
        for message in early:
            ledger.handle(message)
        block["opened"] = len(opened)
        block["open_ms_max"] = round((max(opened.values(), default=started) - started) * 1000, 1)
        block["refused"] = [
            {
                "stream": r["stream"],
                "nation": plans[r["stream"]].nation,
                "status": r.get("status"),
                "error": r.get("error"),
            }
            for r in refused
        ]
        block["pool_connections_checked_out_idle"] = app.state.engine.pool.checkedout()
        if refused:
            statuses = Counter(r.get("status") for r in refused)
            log(
                f"  S={count}: {len(refused)} of {count} streams REFUSED {dict(statuses)} after "
                f"{block['open_ms_max'] / 1000:.0f} s; {len(opened)} opened, holding "
                f"{block['pool_connections_checked_out_idle']} of the app's pooled connections; nothing posted"
            )
        else:
            wait_for_streams(app, count, 10)
            ledger.drain(readers, SETTLE_S)
            block["pool_connections_checked_out_idle"] = app.state.engine.pool.checkedout()
            log(
                f"  S={count}: {count} streams open ({block['allowed_streams']} may see the posts) in "
                f"{block['open_ms_max']:.0f} ms; the app's pool has {block['pool_connections_checked_out_idle']} "
                "connections out"
            )
            for config, batch in enumerate(args.batch):
                repeats = args.repeats or default_repeats(batch)
                runs.append((batch, post_and_follow(poster, clock, readers, ledger, config, batch, repeats, log)))
            ledger.drain(readers, GRACE_S)
    configs: list[dict[str, Any]] = []
    for batch, repeats in runs:
        figures = summarise(repeats, plans, ledger, min(opened.values()))
        configs.append({"batch": batch, "repeats": len(repeats) - 1, **figures})
        lat = figures["latency_ms"]["from_commit"]
        log(
            f"  S={count} K={batch}: POST p50 {figures['post_ms']['p50']} ms; from commit p50 {lat['p50']} "
            f"p95 {lat['p95']} max {lat['max']} ms; {figures['verdict']}"
        )
    return block | {
        "first_keepalive_streams": len(ledger.keepalives),
        "leaks": ledger.leaks,
        "anomalies": ledger.anomalies,
        "received_by_denied_streams": sum(len(ledger.received[p.index]) for p in plans if not p.allowed),
        "configs": configs,
        "posted": list(ledger.posted),
    }


def wait_for_streams(app: Any, count: int, timeout: float) -> None:
    """Wait until the server counts ``count`` open streams (it drops a closed one when it notices)."""
    deadline = time.perf_counter() + timeout
    while app.state.live_hub.open_streams != count:
        if time.perf_counter() > deadline:
            raise SystemExit(f"the server holds {app.state.live_hub.open_streams} streams, not {count}")
        time.sleep(0.05)


def pull_check(client: httpx.Client, path: str, token: Token, posted: set[str]) -> dict[str, Any]:
    """Each nation's TAXII pull of the collection: every post if it may see them, none if not."""
    nations: dict[str, Any] = {}
    for nation, _, _ in PARTNERS:
        seen = len(pulled_ids(client, path, token(f"bench-live-pull-{nation.lower()}", nation, "partner")) & posted)
        expected = len(posted) if may_see(nation) else 0
        nations[nation] = {"may_see": may_see(nation), "pulled": seen, "expected": expected, "ok": seen == expected}
    return {"posted": len(posted), "nations": nations, "ok": all(n["ok"] for n in nations.values())}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; sizes are comma-separated lists."""
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--databases", default=",".join(DATABASES), help="stores, comma-separated, in this order")
    parser.add_argument("--streams", default="1,50", help="open streams S, comma-separated")
    parser.add_argument("--batch", default="1,100", help="objects per POST K, comma-separated")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per (S, K) [20 for K=1, 5 otherwise]")
    parser.add_argument("--seed", type=int, default=20261222)
    parser.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN_URL)
    parser.add_argument("--out", default="bench/results/live.json", help="JSON results; the Markdown beside it (.md)")
    args = parser.parse_args(argv)
    args.databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    if not args.databases or set(args.databases) - set(DATABASES):
        parser.error(f"--databases takes {', '.join(DATABASES)}")
    try:
        args.streams = [int(s) for s in args.streams.split(",") if s.strip()]
        args.batch = [int(k) for k in args.batch.split(",") if k.strip()]
    except ValueError:
        parser.error("--streams and --batch take comma-separated integers")
    if not args.streams or not args.batch or min(args.streams + args.batch) < 1 or max(args.batch) > 1000:
        parser.error("--streams and --batch >= 1; --batch <= 1000 (one event's page)")
    if args.repeats is not None and args.repeats < 1:
        parser.error("--repeats >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 1 if a stream leaked or missed a post, or a pull disagreed."""
    args = parse_args(argv)
    log: Log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    out = Path(args.out)
    out = out if out.is_absolute() else REPO_ROOT / out
    out.parent.mkdir(parents=True, exist_ok=True)
    load_before = [round(x, 2) for x in os.getloadavg()]
    started = time.perf_counter()
    stores = []
    for kind in args.databases:
        log(f"{kind}:")
        stores.append(run_store(kind, args, log))
    document = {
        "command": " ".join(["python bench/live.py", *(argv if argv is not None else sys.argv[1:])]),
        "streams": args.streams,
        "batch": args.batch,
        "repeats": {str(k): args.repeats or default_repeats(k) for k in args.batch},
        "label": f"rank {RANK}, REL TO {', '.join(RELEASED_TO)}",
        "may_see": {n: may_see(n) for n in STREAM_ORDER},
        "goal": f"p95 of the latency from the commit <= {GOAL_MS:.0f} ms, no leak, no missed post",
        "stores": stores,
        "code": code_state("live"),
        "environment": {
            "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
            "load_average_before": load_before,
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "wall_s": round(time.perf_counter() - started, 1),
        },
    }
    failures = [
        f"{s['database']} S={b['streams']}: {len(b['refused'])} streams refused, {len(b['leaks'])} leaks, "
        f"{sum(c['missed_deliveries'] for c in b['configs'])} missed deliveries"
        for s in stores
        for b in s["blocks"]
        if b["refused"] or b["leaks"] or any(c["missed_deliveries"] for c in b["configs"])
    ] + [
        f"{s['database']}: a nation's TAXII pull disagrees with the label" for s in stores if not s["pull_check"]["ok"]
    ]
    document["failures"] = failures
    document["goals"] = goal_rows(document)  # bench/goals.py puts them in the report
    out.write_text(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n")
    out.with_suffix(".md").write_text(markdown(document))
    print(table(document))
    print(f"\n- results: {out} and {out.with_suffix('.md').name} ({document['environment']['wall_s']} s)")
    for failure in failures:
        print(f"FAILURE: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
