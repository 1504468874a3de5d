"""Peer benchmark (issue 7): Tearline against the raw-SQL limit and OASIS medallion, at growing N.

For each database and each N (object versions, ``bench.workload``):

1. a fresh migrated database and ``create_app(Settings(...))``, served by uvicorn on a free
   127.0.0.1 port (a thread of this process, as in ``bench.releasability``);
2. **ingest:** the workload POSTed to the TAXII objects endpoint by a home analyst in envelopes
   of 1,000 (validation, labelling, label interning, inserts; timed per envelope);
3. **pull:** partner USA (which sees about half) pulls everything with ``taxii2client`` in pages
   of 1,000 (``as_pages``); one cold pull (its Casbin decisions), then ``--repeats`` warm pulls.
   Per page: latency, objects, Casbin evaluations and time spent in the visibility decision,
   read from ``app.state.visibility`` (same process, sequential requests). After each pull the
   audit's recipients index, which the server builds in the background, is brought up to date
   (``index_pending``): that time counts in the pull's objects/s, and the next pull starts on a
   quiescent server;
4. **raw-SQL limit,** interleaved with the warm pulls: the same keyset query Tearline runs
   (``app.items.store.version_query`` compiled once, executed on the DBAPI connection with a
   ``date_added`` cursor) and a string join of the stored JSON of each page, without HTTP;
5. **medallion** (memory backend, Flask/werkzeug in a thread) on the same objects, pulled with
   taxii2client in pages of 1,000, at each N up to the first whose first page exceeds
   ``--medallion-page-limit`` seconds (its first page deep-copies and filters the whole store);
6. **OpenTAXII** 0.10.0b1 (its own venv, gunicorn, SQLite) on the same objects, pulled by the same
   function as medallion: ``bench/opentaxii_bench.py``.

Results: ``bench/results/peers.json``, ``peers.md`` and ``peers.png`` (``--out`` prefix).
Run ``make bench`` or ``.venv/bin/python bench/peers.py --help``; bench/README.md explains the table.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import platform
import socket
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import httpx
import orjson
from sqlalchemy import text
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlmodel import Session
from taxii2client.v21 import Collection as TaxiiCollection
from taxii2client.v21 import as_pages

from app.audit.index import index_pending
from app.auth.keys import generate_key_pair
from app.auth.principal import Principal
from app.db import migrations
from app.feeds.client import BearerAuth
from app.items.models import StixObject
from app.items.store import VersionFilter, version_query
from app.main import create_app
from app.markings.mappings import load_mappings
from app.partners.service import save_partner
from app.taxii import service
from bench import goals as issue_goals
from bench import opentaxii_bench
from bench.fixtures import token_maker
from bench.memory import RssSampler
from bench.releasability import (
    DEFAULT_PG_ADMIN_URL,
    HOME,
    ServerThread,
    database,
    make_settings,
)
from bench.workload import PARTNERS, PULLER, Workload, make_workload

TAXII = "application/taxii+json;version=2.1"
PAGE = 1000
ENVELOPE = 1000


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


# --- one Tearline store -----------------------------------------------------------------------


def ingest(base_url: str, collection_id: str, token: str, workload: Workload, count: int) -> dict:
    """POST the workload in envelopes of 1,000 through TAXII; every object must succeed."""
    url = f"{base_url}/taxii2/api1/collections/{collection_id}/objects/"
    headers = {"Authorization": f"Bearer {token}", "Accept": TAXII, "Content-Type": TAXII}
    seconds, cpu, stored, envelopes = 0.0, 0.0, 0, 0
    sizes: list[int] = []
    with httpx.Client(timeout=600, headers=headers) as client:
        for batch in workload.envelopes(count, ENVELOPE):
            body = orjson.dumps({"objects": batch})
            if len(sizes) < 5000:
                sizes.extend(len(orjson.dumps(o)) for o in batch if o["type"] != "marking-definition")
            t0, c0 = time.perf_counter(), time.process_time()
            response = client.post(url, content=body)
            seconds += time.perf_counter() - t0
            cpu += time.process_time() - c0  # server and client share this process
            status = response.json()
            if response.status_code != 202 or status.get("failure_count"):
                raise SystemExit(f"ingest failed ({response.status_code}): {str(status)[:500]}")
            stored += status["success_count"]
            envelopes += 1
    sizes.sort()
    return {
        "objects": stored,
        "envelopes": envelopes,
        "seconds": round(seconds, 3),
        "objects_per_s": round(stored / seconds, 1),
        "cpu_seconds": round(cpu, 3),
        "objects_per_cpu_s": round(stored / cpu, 1),
        "median_object_bytes": sizes[len(sizes) // 2],
    }


class ServerClock:
    """Seconds the server spent on requests and on their audit records, read from its own metrics
    (same process, sequential requests), so each page's latency splits into server, audit and the rest
    (HTTP and the client's JSON parsing)."""

    def __init__(self, metrics) -> None:
        self.registry = metrics.registry

    def read(self) -> tuple[float, float]:
        handled = sum(
            sample.value
            for metric in self.registry.collect()
            if metric.name == "tearline_http_request_duration_seconds"
            for sample in metric.samples
            if sample.name.endswith("_sum")
        )
        audit = self.registry.get_sample_value("tearline_audit_write_duration_seconds_sum") or 0.0
        return handled, audit


def taxii_pull(
    collection_url: str,
    token: str,
    visibility,
    clock: ServerClock | None = None,
    drain: Callable[[], object] | None = None,
) -> dict:
    """One full pull with taxii2client in pages of 1,000, each page timed and its decision cost read.

    ``drain`` finishes the server's background work the pull caused (the audit's recipients index);
    its time counts in the pull's objects/s, and the next pull starts on a quiescent server.
    """
    collection = TaxiiCollection(collection_url, auth=BearerAuth(token))
    pages: list[dict] = []
    generator = as_pages(collection.get_objects, per_request=PAGE)
    while True:
        evaluations, decision = visibility.evaluations, visibility.decision_seconds
        handled, audit = clock.read() if clock else (0.0, 0.0)
        t0 = time.perf_counter()
        try:
            envelope = next(generator)
        except StopIteration:
            break
        elapsed = time.perf_counter() - t0
        handled_after, audit_after = clock.read() if clock else (0.0, 0.0)
        pages.append(
            {
                "s": elapsed,
                "objects": len(envelope.get("objects", [])),
                "server_s": handled_after - handled,
                "audit_s": audit_after - audit,
                "evaluations": visibility.evaluations - evaluations,
                "decision_s": visibility.decision_seconds - decision,
                "labels": len(
                    {ref for o in envelope.get("objects", []) for ref in (o.get("object_marking_refs") or [o["id"]])}
                ),
            }
        )
    t0 = time.perf_counter()
    if drain is not None:
        drain()
    return {"pages": pages, "drain_s": time.perf_counter() - t0 if drain is not None else 0.0}


class RawSql:
    """The raw-SQL limit: Tearline's keyset query for the partner's labels, compiled once, executed on the
    DBAPI connection, and the stored JSON of each page joined into an envelope; no HTTP, no ORM."""

    def __init__(self, engine, collection_id: str, visible: list[int]) -> None:
        self.engine = engine
        query = version_query(collection_id, visible, VersionFilter(), (StixObject.date_added_us, StixObject.body))
        after = query.where(StixObject.date_added_us > -1).limit(PAGE + 1)
        first = query.limit(PAGE + 1)
        dialect = pg_dialect.dialect() if engine.dialect.name == "postgresql" else sqlite_dialect.dialect()
        compile_ = lambda q: str(q.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))  # noqa: E731
        self.first_sql = compile_(first)
        # The cursor is the only parameter; literal_binds wrote it as -1, which is replaced by a placeholder.
        self.after_sql = compile_(after).replace("> -1", "> %s" if engine.dialect.name == "postgresql" else "> ?")

    def pull(self, keep: int = 0) -> dict:
        """One pull; the object lists of the first ``keep`` pages are returned too (for :func:`http_floor`)."""
        pages, kept = [], []
        raw = self.engine.raw_connection()
        try:
            cursor = raw.cursor()
            after = None
            while True:
                t0 = time.perf_counter()
                if after is None:
                    cursor.execute(self.first_sql)
                else:
                    cursor.execute(self.after_sql, (after,))
                rows = cursor.fetchall()
                page, more = rows[:PAGE], len(rows) > PAGE
                envelope = (
                    b'{"more":'
                    + (b"true" if more else b"false")
                    + b',"objects":['
                    + ",".join(row[1] for row in page).encode()
                    + b"]}"
                )
                pages.append({"s": time.perf_counter() - t0, "objects": len(page), "bytes": len(envelope)})
                if len(kept) < keep:
                    kept.append((envelope[envelope.index(b'"objects":') : -1], len(page)))
                if not more:
                    break
                after = page[-1][0]
            raw.rollback()
        finally:
            raw.close()
        return {"pages": pages, "kept": kept}


FLOOR_PAGES = 40


def http_floor(kept: list[tuple[bytes, int]], repeats: int, pages: int) -> dict:
    """The HTTP and client floor: taxii2client pulling the same pages, pre-rendered, from a bare ASGI app
    on the same uvicorn (no database, authentication, policy or audit). What a page costs before the
    server does any work: the most any TAXII server in Python could reach with this client.

    A pull is as many pages as Tearline's (the kept pages served in turn), so that its start (the
    collection request, the connection) weighs on its objects/s as much as on Tearline's."""
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    def collection(_request):
        return Response(
            orjson.dumps(
                {
                    "id": "floor",
                    "title": "floor",
                    "can_read": True,
                    "can_write": False,
                    "media_types": ["application/stix+json;version=2.1"],
                }
            ),
            media_type=TAXII,
        )

    def objects(request):
        index = int(request.query_params.get("next", "0"))
        body, _ = kept[index % len(kept)]
        more = index + 1 < pages
        prefix = b'{"more":true,"next":"%d",' % (index + 1) if more else b'{"more":false,'
        return Response(prefix + body + b"}", media_type=TAXII)

    app = Starlette(routes=[Route("/collections/floor/", collection), Route("/collections/floor/objects/", objects)])

    class NoVisibility:
        evaluations, decision_seconds = 0, 0.0

    with ServerThread(app) as server:
        url = f"http://127.0.0.1:{server.port}/collections/floor/"
        pulls = [taxii_pull(url, "no-token", NoVisibility) for _ in range(repeats)]
    summary = summarise(pulls)
    return {
        key: summary[key]
        for key in ("pulls", "pages_per_pull", "objects_per_pull", "p50_page_ms", "p95_page_ms", "objects_per_s")
    }


def summarise(pulls: list[dict]) -> dict:
    """Median over pulls of first-page latency and objects/s; p50/p95 over every full page of every pull."""
    firsts = [p["pages"][0]["s"] for p in pulls]
    rates = [
        sum(pg["objects"] for pg in p["pages"]) / (sum(pg["s"] for pg in p["pages"]) + p.get("drain_s", 0.0))
        for p in pulls
    ]
    full = [pg["s"] for p in pulls for pg in p["pages"] if pg["objects"] == PAGE] or [
        pg["s"] for p in pulls for pg in p["pages"]
    ]
    out = {
        "pulls": len(pulls),
        "pages_per_pull": len(pulls[0]["pages"]),
        "objects_per_pull": sum(pg["objects"] for pg in pulls[0]["pages"]),
        "first_page_ms": ms(statistics.median(firsts)),
        "p50_page_ms": ms(percentile(full, 50)),
        "p95_page_ms": ms(percentile(full, 95)),
        "objects_per_s": round(statistics.median(rates), 1),
    }
    if "drain_s" in pulls[0]:
        out["index_drain_ms_per_pull_median"] = ms(statistics.median(p["drain_s"] for p in pulls))
    if "evaluations" in pulls[0]["pages"][0]:
        pages = [pg for p in pulls for pg in p["pages"]]
        out["casbin_evaluations_per_request"] = round(sum(pg["evaluations"] for pg in pages) / len(pages), 3)
        out["casbin_evaluations_max_per_request"] = max(pg["evaluations"] for pg in pages)
        out["distinct_labels_per_page_mean"] = round(statistics.mean(pg["labels"] for pg in pages), 1)
        out["decision_ms_per_page_median"] = ms(statistics.median(pg["decision_s"] for pg in pages))
    if "server_s" in pulls[0]["pages"][0]:
        pages = [pg for p in pulls for pg in p["pages"]]
        # Server time includes the audit write (the record is written before the response starts).
        out["server_ms_per_page_median"] = ms(statistics.median(pg["server_s"] for pg in pages))
        out["audit_ms_per_page_median"] = ms(statistics.median(pg["audit_s"] for pg in pages))
    return out


def run_tearline(
    kind: str, count: int, workload: Workload, workdir: Path, key_dir: Path, pg_admin_url: str, repeats: int
) -> dict:
    """Build, load and pull one store; return its figures."""
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(database(kind, workdir, f"n{count}", pg_admin_url))
        migrations.upgrade(url)
        settings = make_settings(url, workdir, key_dir, PAGE)
        app = create_app(settings)
        stack.callback(app.state.engine.dispose)
        with Session(app.state.engine) as session:
            for nation, clearance, groups in PARTNERS:
                save_partner(session, nation=nation, clearance=clearance, groups=groups, home_nation=HOME)
            collection_id = service.create_collection(
                session, title=f"bench {count}", read_roles={"partner", "analyst"}, write_roles={"analyst"}
            ).id
        token_for = token_maker(settings, key_dir)
        server = stack.enter_context(ServerThread(app))
        base = f"http://127.0.0.1:{server.port}"
        log(f"[{kind} N={count:,}] ingesting through TAXII POST")
        load = ingest(base, collection_id, token_for("bench-loader", HOME, "analyst"), workload, count)
        log(f"  {load['objects']:,} objects in {load['seconds']} s: {load['objects_per_s']:,} objects/s")
        if kind == "postgresql":
            t0 = time.perf_counter()
            with app.state.engine.begin() as conn:
                conn.execute(text("ANALYZE"))  # what autovacuum does after a bulk load
            load["analyze_seconds"] = round(time.perf_counter() - t0, 2)
        collection_url = f"{base}/taxii2/api1/collections/{collection_id}/"
        visibility = app.state.visibility
        clock = ServerClock(app.state.metrics)
        drain = partial(index_pending, app.state.audit_engine)
        # Warm the process with another partner (its own Casbin decisions), so USA's cold pull pays only its own.
        taxii_pull(collection_url, token_for("gbr-feed", "GBR", "partner"), visibility, drain=drain)
        usa_token = token_for("usa-feed", PULLER, "partner")
        cold = taxii_pull(collection_url, usa_token, visibility, clock, drain)
        usa = Principal(
            subject="usa-feed",
            nation=PULLER,
            roles=frozenset({"partner"}),
            clearance=3,
            groups=frozenset({"FVEY", "NATO"}),
            is_home=False,
        )
        with Session(app.state.engine) as session:
            visible = visibility.visible_label_ids(session, usa)
        raw = RawSql(app.state.engine, collection_id, visible)
        warm, limit, memory = [], [], []
        for round_no in range(repeats):  # alternate, so load from other processes hits both alike
            with RssSampler() as sampler:
                warm.append(taxii_pull(collection_url, usa_token, visibility, clock, drain))
            memory.append(sampler.figures())
            limit.append(raw.pull(keep=FLOOR_PAGES if round_no == 0 else 0))
            log(f"  round {round_no + 1}/{repeats}: tearline {warm[-1]['pages'][0]['s'] * 1000:.1f} ms first page")
        floor = http_floor(limit[0]["kept"], repeats, len(warm[0]["pages"])) if limit[0]["kept"] else None
        for pull in limit:
            pull.pop("kept")
        tearline, raw_sql = summarise(warm), summarise(limit)
        if raw_sql["objects_per_pull"] != tearline["objects_per_pull"]:
            raise SystemExit(
                f"raw SQL returned {raw_sql['objects_per_pull']} objects, Tearline "
                f"{tearline['objects_per_pull']}: they must serve the same pages"
            )
        cold_pages = cold["pages"]
        return {
            "database": kind,
            "n": count,
            "load": load,
            "tearline": tearline
            | {
                "cold_first_page_ms": ms(cold_pages[0]["s"]),
                "cold_casbin_evaluations_first_request": cold_pages[0]["evaluations"],
                "cold_casbin_evaluations_later_requests": sum(p["evaluations"] for p in cold_pages[1:]),
                "labels_visible": len(visible),
                "labels_interned": _label_count(app.state.engine),
                # The last warm pull's: the process has settled after the ingest and earlier pulls.
                **memory[-1],
            },
            "raw_sql": raw_sql,
            "http_floor": floor,
            "database_bytes": _database_bytes(url, app.state.engine),
        }


def _label_count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM label")).scalar_one()


def _database_bytes(url: str, engine) -> int:
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return path.stat().st_size
    with engine.connect() as conn:
        return conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()


# --- medallion --------------------------------------------------------------------------------


def medallion_data(workload: Workload, count: int) -> dict:
    """medallion's memory-backend document holding the same objects (all of them: it has no releasability)."""
    objects, manifest = [], []
    base_us = int(time.time() * 1_000_000) - count - 10_000
    for index, obj in enumerate(list(workload.definitions) + list(workload.objects(count))):
        added = (
            time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime((base_us + index) // 1_000_000))
            + f".{(base_us + index) % 1_000_000:06d}Z"
        )
        objects.append(obj | {"_date_added": added})
        manifest.append(
            {
                "id": obj["id"],
                "date_added": added,
                "version": obj.get("modified", obj.get("created")),
                "media_type": "application/stix+json;version=2.1",
            }
        )
    collection = {
        "id": "91a7b528-80eb-42ed-a74d-c6fbd5a26116",
        "title": "bench",
        "can_read": True,
        "can_write": False,
        "media_types": ["application/stix+json;version=2.1"],
        "objects": objects,
        "manifest": manifest,
    }
    return {
        "/discovery": {"title": "medallion bench", "api_roots": ["http://127.0.0.1/api1/"]},
        "api1": {
            "information": {
                "title": "api1",
                "versions": ["application/taxii+json;version=2.1"],
                "max_content_length": 104857600,
            },
            "status": [],
            "collections": [collection],
        },
    }


@contextlib.contextmanager
def medallion_server(data: dict, workdir: Path) -> Iterator[str]:
    """medallion (memory backend) on a free 127.0.0.1 port; yields the collection URL."""
    import logging

    import medallion
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise

    data_file = workdir / "medallion-data.json"
    data_file.write_text(json.dumps(data))
    config = {
        "backend": {
            "module": "medallion.backends.memory_backend",
            "module_class": "MemoryBackend",
            "filename": str(data_file),
        },
        "users": {"bench": "bench"},
        "taxii": {"max_page_size": PAGE},
    }
    config_file = workdir / "medallion.json"
    config_file.write_text(json.dumps(config))
    flask_app = medallion.application_instance
    if not getattr(flask_app, "_bench_blueprints", False):
        medallion.load_app(str(config_file))
        flask_app._bench_blueprints = True
    else:  # blueprints are registered once per process; a new store only needs a new backend
        medallion.set_config(flask_app, "backend", config)
        medallion.set_config(flask_app, "taxii", config)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = make_server("127.0.0.1", port, flask_app, threaded=False)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/api1/collections/{data['api1']['collections'][0]['id']}/"
    finally:
        server.shutdown()
        thread.join(timeout=30)


def medallion_pull(collection_url: str, budget_s: float) -> dict:
    """Pull with taxii2client until done or until ``budget_s`` has passed (then the figures cover those pages)."""
    collection = TaxiiCollection(collection_url, user="bench", password="bench")
    pages, started, complete = [], time.perf_counter(), True
    generator = as_pages(collection.get_objects, per_request=PAGE)
    while True:
        t0 = time.perf_counter()
        try:
            envelope = next(generator)
        except StopIteration:
            break
        pages.append({"s": time.perf_counter() - t0, "objects": len(envelope.get("objects", []))})
        if time.perf_counter() - started > budget_s and envelope.get("more"):
            complete = False
            break
    return {"pages": pages, "complete": complete}


def run_medallion(count: int, workload: Workload, workdir: Path, repeats: int, budget_s: float) -> dict:
    data = medallion_data(workload, count)
    with medallion_server(data, workdir) as url:
        pulls = [medallion_pull(url, budget_s) for _ in range(repeats)]
    summary = summarise(pulls)
    summary["complete_pulls"] = all(p["complete"] for p in pulls)
    summary["objects_served_of"] = count + len(workload.definitions)
    return {"n": count, "medallion": summary}


# --- output -----------------------------------------------------------------------------------


def markdown(result: dict) -> str:
    lines = [
        "| store | N | ingest obj/s (per CPU-s) | first page ms (cold) | first page ms | p50 page ms | p95 page ms | "
        "pull obj/s | raw-SQL obj/s | pull / limit | Casbin evals/request (max) | labels/page | "
        "decision ms/page | server ms/page (audit) | index drain ms/pull |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in result["runs"]:
        t, r = run["tearline"], run["raw_sql"]
        limit = issue_goals.limit_objects_per_s(run)
        of_limit = f"{t['objects_per_s'] / limit:.2f}" if limit else ""
        lines.append(
            f"| Tearline {run['database']} | {run['n']:,} | {run['load']['objects_per_s']:,.0f} "
            f"({run['load']['objects_per_cpu_s']:,.0f}) | "
            f"{t['cold_first_page_ms']} | {t['first_page_ms']} | {t['p50_page_ms']} | {t['p95_page_ms']} | "
            f"{t['objects_per_s']:,.0f} | {r['objects_per_s']:,.0f} | {of_limit} | "
            f"{t['casbin_evaluations_per_request']} ({t['casbin_evaluations_max_per_request']}) | "
            f"{t['distinct_labels_per_page_mean']} | {t['decision_ms_per_page_median']} | "
            f"{t.get('server_ms_per_page_median', '')} ({t.get('audit_ms_per_page_median', '')}) | "
            f"{t.get('index_drain_ms_per_pull_median', '')} |"
        )
    for run in result["runs"]:
        r = run["raw_sql"]
        lines.append(
            f"| raw SQL {run['database']} | {run['n']:,} | | | {r['first_page_ms']} | {r['p50_page_ms']} | "
            f"{r['p95_page_ms']} | {r['objects_per_s']:,.0f} | | | | | | |"
        )
    for run in result["runs"]:
        f = run.get("http_floor")
        if f:
            lines.append(
                f"| HTTP floor ({run['database']} pages) | {run['n']:,} | | | | {f['p50_page_ms']} | "
                f"{f['p95_page_ms']} | {f['objects_per_s']:,.0f} | | {f['objects_per_s'] / run['raw_sql']['objects_per_s']:.2f} "
                f"| | | | |"
            )
    for run in result["medallion"]:
        m = run["medallion"]
        note = "" if m["complete_pulls"] else f" (first {m['pages_per_pull']} pages)"
        lines.append(
            f"| medallion memory | {run['n']:,} | | | {m['first_page_ms']} | {m['p50_page_ms']} | "
            f"{m['p95_page_ms']} | {m['objects_per_s']:,.0f}{note} | | | | | | |"
        )
    lines.extend(opentaxii_bench.table_rows(result))
    lines.append("")
    lines.extend(f"- {line}" for line in result["goals"])
    return "\n".join(lines) + "\n"


def goals(result: dict) -> list[str]:
    """The issue's goals, each stated against the measured figures."""
    out = []
    by_db: dict[str, list[dict]] = {}
    for run in result["runs"]:
        by_db.setdefault(run["database"], []).append(run)
    for kind, runs in by_db.items():
        runs = sorted(runs, key=lambda r: r["n"])
        # The goal compares with N = 10,000; without that size, with the smallest measured.
        small = next((r for r in runs if r["n"] == 10_000), runs[0])
        for large in (r for r in runs if r["n"] > small["n"]):
            ratio = large["tearline"]["first_page_ms"] / small["tearline"]["first_page_ms"]
            out.append(
                f"{kind}: first page at N={large['n']:,} is {ratio:.2f}x its value at N={small['n']:,} "
                f"(goal <= 1.5x at 1M vs 10k)"
            )
        for run in runs:
            floor = run.get("http_floor")
            if floor:
                out.append(
                    f"{kind} N={run['n']:,}: the HTTP and client floor (the same pages, pre-rendered, from a bare "
                    f"app) is {floor['objects_per_s'] / run['raw_sql']['objects_per_s']:.0%} of the raw-SQL limit; "
                    f"Tearline reaches {run['tearline']['objects_per_s'] / floor['objects_per_s']:.0%} of that floor"
                )
    # Issue 22's goals: pull / limit, the audit record's share, ingest and memory, each with its verdict.
    out += [
        f"{row['goal']} ({row['where']}): {row['measured']} = {row['ratio']:.2f}, goal {row['target']}: {row['verdict']}"
        for row in issue_goals.peer_rows(result)
    ]
    for med in result["medallion"]:
        peers = [r for r in result["runs"] if r["n"] == med["n"]]
        for run in peers:
            m = med["medallion"]
            out.append(
                f"N={med['n']:,} vs medallion: Tearline {run['database']} first page "
                f"{m['first_page_ms'] / run['tearline']['first_page_ms']:.0f}x faster, "
                f"pull {run['tearline']['objects_per_s'] / m['objects_per_s']:.1f}x medallion's objects/s"
            )
    return out + opentaxii_bench.goal_lines(result)


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    series: dict[str, list[tuple[int, float]]] = {}
    for run in result["runs"]:
        series.setdefault(f"Tearline {run['database']}", []).append((run["n"], run["tearline"]["p50_page_ms"]))
        series.setdefault(f"raw SQL {run['database']}", []).append((run["n"], run["raw_sql"]["p50_page_ms"]))
        if run.get("http_floor"):
            series.setdefault(f"HTTP floor ({run['database']} pages)", []).append(
                (run["n"], run["http_floor"]["p50_page_ms"])
            )
    for run in result["medallion"]:
        # Its first page: later pages of a pull can be much faster (cached), so its p50 misleads.
        series.setdefault("medallion (memory), first page", []).append((run["n"], run["medallion"]["first_page_ms"]))
    if opentaxii_bench.plot_points(result):
        series["OpenTAXII (SQLite, gunicorn)"] = opentaxii_bench.plot_points(result)
    for name, points in series.items():
        points.sort()
        ax.plot(
            [p[0] for p in points],
            [p[1] for p in points],
            marker="o",
            linestyle="--" if name.startswith("raw") else ":" if name.startswith("HTTP") else "-",
            label=name,
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("objects stored (N)")
    ax.set_ylabel("p50 page latency, 1,000 objects (ms)")  # medallion: its first page
    ax.set_title("Page latency against store size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- main -------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000,1000000", help="comma-separated N (object versions)")
    parser.add_argument("--databases", default="sqlite,postgresql", help="sqlite and/or postgresql")
    parser.add_argument("--pg-only-sizes", default="", help="extra N run on PostgreSQL only (e.g. 1000000)")
    parser.add_argument("--repeats", type=int, default=3, help="warm pulls (and raw-SQL pulls) per store")
    parser.add_argument("--labels", type=int, default=200)
    parser.add_argument("--seed", type=int, default=20240603)
    parser.add_argument(
        "--medallion-sizes",
        default="1000,2000,4000",
        help="N for medallion, ascending; it stops at the first whose first page exceeds the limit",
    )
    parser.add_argument("--medallion-repeats", type=int, default=2)
    parser.add_argument(
        "--medallion-page-limit",
        type=float,
        default=60.0,
        help="stop growing medallion's N once its first page takes longer (seconds)",
    )
    parser.add_argument(
        "--medallion-budget",
        type=float,
        default=120.0,
        help="seconds per medallion pull; a longer pull is cut and its pages reported",
    )
    parser.add_argument("--no-medallion", action="store_true")
    opentaxii_bench.add_arguments(parser)
    parser.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN_URL)
    parser.add_argument("--out", default="bench/results/peers", help="prefix of the .json, .md and .png written")
    parser.add_argument("--report-only", action="store_true", help="only rewrite .md and .png from the .json")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report_only:  # redraw the table and plot from a results JSON
        out = Path(args.out) if Path(args.out).is_absolute() else REPO_ROOT / args.out
        result = orjson.loads(out.with_suffix(".json").read_bytes())
        result["goals"] = goals(result)
        out.with_suffix(".json").write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
        out.with_suffix(".md").write_text(markdown(result))
        plot(result, out.with_suffix(".png"))
        print(markdown(result))
        return 0
    started = time.perf_counter()
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    out = Path(args.out)
    out = out if out.is_absolute() else REPO_ROOT / out
    out.parent.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    pg_only = [int(s) for s in args.pg_only_sizes.split(",") if s]
    kinds = [k for k in args.databases.split(",") if k]
    workload = make_workload(args.seed, args.labels, load_mappings(REPO_ROOT / "stix_mappings"))
    result: dict = {
        "benchmark": "peers",
        "runs": [],
        "medallion": [],
        "opentaxii": [],
        "config": {
            "sizes": sizes,
            "pg_only_sizes": pg_only,
            "databases": kinds,
            "medallion_sizes": args.medallion_sizes,
            "medallion_page_limit_s": args.medallion_page_limit,
            "opentaxii_sizes": opentaxii_bench.sizes(args, sizes),
            "repeats": args.repeats,
            "labels": args.labels,
            "seed": args.seed,
            "page_size": PAGE,
            "envelope": ENVELOPE,
            "partners": [p[0] for p in PARTNERS],
            "puller": PULLER,
        },
    }
    with tempfile.TemporaryDirectory(prefix="tearline-peers-") as tmp:
        workdir = Path(tmp)
        key_dir = workdir / "keys"
        generate_key_pair(key_dir / "jwt-private.pem", key_dir / "jwt-public.pem")
        for kind in kinds:
            for count in sizes + (pg_only if kind == "postgresql" else []):
                result["runs"].append(
                    run_tearline(kind, count, workload, workdir, key_dir, args.pg_admin_url, args.repeats)
                )
                _write(result, out, args, started, load_at_start, final=False)
        if not args.no_medallion:
            for count in sorted({int(n) for n in args.medallion_sizes.split(",") if n}):
                log(f"[medallion N={count:,}]")
                run = run_medallion(count, workload, workdir, args.medallion_repeats, args.medallion_budget)
                result["medallion"].append(run)
                log(f"  first page {run['medallion']['first_page_ms']} ms, {run['medallion']['objects_per_s']} obj/s")
                _write(result, out, args, started, load_at_start, final=False)
                if run["medallion"]["first_page_ms"] > args.medallion_page_limit * 1000:
                    break

        def opentaxii_done(run: dict) -> None:
            result["opentaxii"].append(run)
            _write(result, out, args, started, load_at_start, final=False)

        opentaxii_bench.run_all(
            args,
            opentaxii_bench.sizes(args, sizes),
            lambda n: itertools.chain(workload.definitions, workload.objects(n)),
            workdir,
            partial(medallion_pull, budget_s=args.opentaxii_budget),
            summarise,
            log,
            opentaxii_done,
        )
    _write(result, out, args, started, load_at_start, final=True)
    print(markdown(result))
    return 0


def _write(result: dict, out: Path, args, started: float, load_at_start: list[float], *, final: bool) -> None:
    result["goals"] = goals(result)
    result["environment"] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "sqlite": sqlite3.sqlite_version,
        "load_average_at_start": load_at_start,
        "load_average_now": [round(x, 2) for x in os.getloadavg()],
    }
    result["runtime_s"] = round(time.perf_counter() - started, 1)
    out.with_suffix(".json").write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
    out.with_suffix(".md").write_text(markdown(result))
    if final or result["runs"]:  # a partial run still leaves a plot of what it measured
        plot(result, out.with_suffix(".png"))


if __name__ == "__main__":
    sys.exit(main())
