"""OpenTAXII as a second peer in the peer benchmark (``bench/peers.py``): same workload, same client.

At each N (``--opentaxii-sizes``) a fresh OpenTAXII 0.10.0b1 (``bench/opentaxii_server.py``: its own
venv, SQLite, one gunicorn sync worker, as its documentation serves it) holds the workload's objects,
all of them (it has no releasability, like medallion), and an account with read permission on the
collection pulls it with the function that pulls medallion (``taxii2client``, ``as_pages``, pages of
1,000, a time budget per pull). Figures are medallion's: first page, p50/p95 page, objects/s.

Loading: through OpenTAXII's persistence API (``Taxii2SQLDatabaseAPI.add_objects``, what its TAXII
POST handler calls after validating the envelope), in a script run by the peer's own Python, in
envelopes of 1,000. Its POST would add ``stix2.parse`` of every object and the HTTP round trips; the
persistence path still does its per-object existence query, insert and job-detail row, and stamps
``date_added`` as it goes, so publication order is the workload's order. The load is timed and
reported but is not comparable with Tearline's ingest (TAXII POST with validation and labelling).

This module is kept out of ``peers.py``: that file calls :func:`add_arguments`, :func:`sizes`,
:func:`run_all`, :func:`table_rows`, :func:`goal_lines` and :func:`plot_points`.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import orjson

from bench.opentaxii_server import (
    PeerUnavailable,
    bootstrap,
    free_port,
    peer_venv,
    run_script,
    serve,
    tagged,
    write_config,
)

USER, PASSWORD = "bench", "bench"  # what the medallion pull function authenticates with
LOAD_ENVELOPE = 1000

# Run by the peer's Python: argv = API root id, collection id, JSON-lines file, envelope size.
LOADER = """
import json, sys, time, uuid
from opentaxii.cli import app

api_root, collection, path, envelope = uuid.UUID(sys.argv[1]), uuid.UUID(sys.argv[2]), sys.argv[3], int(sys.argv[4])
with open(path) as lines:
    objects = [json.loads(line) for line in lines]
with app.app_context():
    api = app.taxii_server.servers.taxii2.persistence.api
    started, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(objects), envelope):
        job = api.add_objects(api_root_id=api_root, collection_id=collection, objects=objects[start : start + envelope])
        if job.success_count != len(objects[start : start + envelope]):
            raise SystemExit(f"OpenTAXII refused objects: {job.failure_count} failures")
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
print("LOADED " + json.dumps({"objects": len(objects), "seconds": seconds, "cpu_seconds": cpu}))
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--opentaxii-sizes",
        default=None,
        help="N for OpenTAXII, ascending (default: every --sizes N up to 100,000); it stops at the first "
        "whose first page exceeds --opentaxii-page-limit",
    )
    parser.add_argument("--opentaxii-repeats", type=int, default=2)
    parser.add_argument(
        "--opentaxii-page-limit",
        type=float,
        default=60.0,
        help="stop growing OpenTAXII's N once its first page takes longer (seconds)",
    )
    parser.add_argument(
        "--opentaxii-budget",
        type=float,
        default=300.0,
        help="seconds per OpenTAXII pull; a longer pull is cut and its pages reported",
    )
    parser.add_argument("--no-opentaxii", action="store_true", help="leave OpenTAXII out")


def sizes(args: argparse.Namespace, tearline_sizes: list[int]) -> list[int]:
    if args.no_opentaxii:
        return []
    if args.opentaxii_sizes is None:
        return sorted(n for n in tearline_sizes if n <= 100_000)
    return sorted({int(n) for n in args.opentaxii_sizes.split(",") if n})


def run_opentaxii(
    count: int,
    objects: Iterable[dict],
    workdir: Path,
    repeats: int,
    pull: Callable[[str], dict],
    summarise: Callable[[list[dict]], dict],
    worker_timeout: int,
) -> dict:
    """A fresh OpenTAXII holding ``objects``, pulled ``repeats`` times with ``pull`` (the medallion pull)."""
    venv = peer_venv()
    directory = workdir / f"opentaxii-n{count}"
    directory.mkdir()
    port = free_port()
    config = write_config(directory, port, title="OpenTAXII bench", max_content_length=100 * 1024 * 1024)
    ids = bootstrap(
        venv,
        config,
        title="bench",
        description="peer benchmark",
        collections=["bench"],
        accounts=[{"username": USER, "password": PASSWORD, "admin": False, "permissions": {"0": ["read"]}}],
    )
    (collection,) = ids["collections"]
    source = directory / "objects.jsonl"
    with open(source, "wb") as out:
        written = 0
        for obj in objects:
            out.write(orjson.dumps(obj) + b"\n")
            written += 1
    stdout = run_script(
        venv, config, LOADER, ids["api_root"], collection, str(source), str(LOAD_ENVELOPE), timeout=3600
    )
    loaded = tagged(stdout, "LOADED")
    source.unlink()
    load = {
        "objects": loaded["objects"],
        "via": "persistence API (Taxii2SQLDatabaseAPI.add_objects), envelopes of 1,000",
        "seconds": round(loaded["seconds"], 3),
        "objects_per_s": round(loaded["objects"] / loaded["seconds"], 1),
        "objects_per_cpu_s": round(loaded["objects"] / loaded["cpu_seconds"], 1),
    }
    with serve(venv, config, port, directory / "gunicorn.log", worker_timeout=worker_timeout) as base:
        url = f"{base}/taxii2/{ids['api_root']}/collections/{collection}/"
        pulls = [pull(url) for _ in range(repeats)]
    summary = summarise(pulls)
    summary["complete_pulls"] = all(p["complete"] for p in pulls)
    summary["objects_served_of"] = written
    return {
        "n": count,
        "load": load,
        "opentaxii": summary,
        "database_bytes": (directory / "data.db").stat().st_size,
    }


def run_all(
    args: argparse.Namespace,
    counts: list[int],
    objects_for: Callable[[int], Iterable[dict]],
    workdir: Path,
    pull: Callable[[str], dict],
    summarise: Callable[[list[dict]], dict],
    log: Callable[[str], None],
    done: Callable[[dict], None],
) -> None:
    """Each N in turn (``done`` gets its figures), stopping after the first whose first page exceeds
    ``--opentaxii-page-limit``: the next N would only take longer to say the same."""
    if counts:
        try:
            peer_venv()  # built once, before the first N, so that its build is in no N's figures
        except PeerUnavailable as exc:  # a run without PyPI still measures everything else
            log(f"[OpenTAXII] left out: {exc}")
            return
    for count in counts:
        log(f"[OpenTAXII N={count:,}]")
        started = time.perf_counter()
        # gunicorn kills a worker whose request outlasts --timeout: let a page take a whole pull's budget.
        timeout = int(args.opentaxii_budget) + 60
        run = run_opentaxii(count, objects_for(count), workdir, args.opentaxii_repeats, pull, summarise, timeout)
        done(run)
        figures = run["opentaxii"]
        log(
            f"  loaded {run['load']['objects']:,} in {run['load']['seconds']} s; first page "
            f"{figures['first_page_ms']} ms, {figures['objects_per_s']} obj/s ({time.perf_counter() - started:.0f} s)"
        )
        if figures["first_page_ms"] > args.opentaxii_page_limit * 1000:
            break


def table_rows(result: dict) -> list[str]:
    rows = []
    for run in result.get("opentaxii", []):
        o = run["opentaxii"]
        note = "" if o["complete_pulls"] else f" (first {o['pages_per_pull']} pages)"
        rows.append(
            f"| OpenTAXII sqlite (gunicorn) | {run['n']:,} | | | {o['first_page_ms']} | {o['p50_page_ms']} | "
            f"{o['p95_page_ms']} | {o['objects_per_s']:,.0f}{note} | | | | | | |"
        )
    return rows


def goal_lines(result: dict) -> list[str]:
    """OpenTAXII's load, and Tearline's store of the same N against it."""
    out = []
    for ot in result.get("opentaxii", []):
        o, load = ot["opentaxii"], ot["load"]
        out.append(
            f"OpenTAXII N={ot['n']:,}: loaded {load['objects']:,} objects through its persistence API at "
            f"{load['objects_per_s']:,.0f} obj/s; pulls serve {o['objects_per_pull']:,} objects (latest versions)"
        )
        for run in (r for r in result["runs"] if r["n"] == ot["n"]):
            out.append(
                f"N={ot['n']:,} vs OpenTAXII: Tearline {run['database']} first page "
                f"{o['first_page_ms'] / run['tearline']['first_page_ms']:.1f}x faster, "
                f"pull {run['tearline']['objects_per_s'] / o['objects_per_s']:.1f}x OpenTAXII's objects/s"
            )
    return out


def plot_points(result: dict) -> list[tuple[int, float]]:
    """OpenTAXII's p50 page against N (its pages cost alike through a pull, unlike medallion's)."""
    return [(run["n"], run["opentaxii"]["p50_page_ms"]) for run in result.get("opentaxii", [])]
