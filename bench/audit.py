"""Audit overhead on a full pull (issue 5): pull time with full auditing vs without dissemination records.

One store of ``--objects`` indicators (every one visible to the pulling partner, USA)
is loaded through the ingest service (``app.taxii.service.add_objects``, the code a
TAXII POST runs, without HTTP). Three apps serve the same database from uvicorn
threads of this process, and USA pulls the whole collection (pages of
``--page-size``, following ``next``) from each in turn, ``--repeats`` rounds:

* ``full``: the application as shipped: one hash-chained record per page with its
  served list (one row), and the recipients index (one row per object served) built
  from it by the server's background thread;
* ``no_dissemination`` (the baseline the issue asks for): the same app and the same
  record per page, but the served list is emptied before the record is written, so
  neither a served list nor index rows are written;
* ``no_audit``: the audit middleware removed altogether (for reference).

Each round's pulls are repeat receipts (USA pulled these objects before); the first
pull, where every object id is new to the audit log and gets its key, is reported
apart (one sample per variant, from the warm-up).

A pull's time ends when the recipients index, which the servers build in background threads,
has caught up with it. The variants alternate within each round, so drift hits all alike. The headline
figure is median(full) / median(no_dissemination) - 1 (goal: below 25%). At the end
the whole chain (every record and dissemination row written by the run) is verified.
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
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import httpx
import orjson
from sqlalchemy import text
from starlette.middleware import Middleware

from app.audit.index import index_pending
from app.audit.middleware import AuditMiddleware
from app.audit.service import signer_for
from app.audit.verify import verify_chain
from app.auth.keys import generate_key_pair
from app.auth.tokens import issue_token
from app.main import create_app
from app.markings.mappings import load_mappings
from bench.releasability import (
    DEFAULT_PG_ADMIN_URL,
    PARTNER,
    TAXII,
    Dataset,
    ServerThread,
    Store,
    build_store,
    database,
    make_dataset,
    make_settings,
)

VARIANTS = ("full", "no_dissemination", "no_audit")


class DropServed:
    """Innermost layer of the baseline app: empties the noted served list before the record is written."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        async def clearing_send(message) -> None:
            if message["type"] == "http.response.start":
                context = scope.get("state", {}).get("audit")
                if context is not None:
                    context.served.clear()
            await send(message)

        await self.app(scope, receive, clearing_send)


def variant_app(settings, variant: str):
    app = create_app(settings)
    if variant == "no_dissemination":
        app.user_middleware.append(Middleware(DropServed))  # last = innermost, inside the audit layer
    elif variant == "no_audit":
        app.user_middleware[:] = [m for m in app.user_middleware if m.cls is not AuditMiddleware]
    app.middleware_stack = None  # rebuilt on first request
    return app


def full_pull(client: httpx.Client, collection_id: str, page_size: int, engine) -> dict:
    """Every page, then the wait until the audit's recipients index has caught up (part of the time)."""
    path = f"/taxii2/api1/collections/{collection_id}/objects/"
    params = {"limit": str(page_size)}
    objects = pages = 0
    started = time.perf_counter()
    while True:
        response = client.get(path, params=params)
        if response.status_code != 200:
            raise SystemExit(f"GET {path} answered {response.status_code}: {response.text[:300]}")
        document = orjson.loads(response.content)
        objects += len(document.get("objects", []))
        pages += 1
        if not document.get("more"):
            break
        params = {"limit": str(page_size), "next": document["next"]}
    index_pending(engine)
    return {"seconds": time.perf_counter() - started, "objects": objects, "pages": pages}


def audit_counts(engine) -> dict:
    with engine.connect() as connection:
        return {
            table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("audit_record", "audit_served", "audit_object", "audit_dissemination", "audit_checkpoint")
        }


def markdown(result: dict) -> str:
    lines = [
        f"# Audit overhead: full pull of {result['objects_served']:,} objects ({result['database']})",
        "",
        f"Command: `{result['command']}`",
        "",
        "| variant | median s | min s | max s | pages | objects/s (median) |",
        "|---|---|---|---|---|---|",
    ]
    for variant in VARIANTS:
        s = result["variants"][variant]
        lines.append(
            f"| {variant} | {s['median_s']:.2f} | {s['min_s']:.2f} | {s['max_s']:.2f} | {s['pages']} | "
            f"{s['objects_per_s']:,.0f} |"
        )
    lines += [
        "",
        f"- **overhead of dissemination records** (full vs no_dissemination): "
        f"**{result['overhead_vs_no_dissemination']:+.1%}** (goal < 25%)",
        f"- overhead of the whole audit (full vs no_audit): {result['overhead_vs_no_audit']:+.1%}",
        f"- first pull, objects never disseminated before (one sample each, full vs no_dissemination): "
        f"{result['first_pull_s']['full']:.2f} s vs {result['first_pull_s']['no_dissemination']:.2f} s, "
        f"{result['first_pull_overhead_vs_no_dissemination']:+.1%}",
        f"- audit rows written by the run: {result['audit_rows']}",
        f"- verify of the whole chain: {result['verify']['seconds']} s, ok={result['verify']['ok']}, "
        f"{result['verify']['records']} records, "
        f"{result['verify']['dissemination_rows_per_s']:,.0f} dissemination rows/s",
        f"- load: {result['load']['objects_stored']:,} objects in {result['load']['seconds']} s "
        f"({result['load']['objects_per_s']} objects/s)",
        f"- machine: {result['machine']}, load average before the pulls {result['load_average']}",
    ]
    return "\n".join(lines) + "\n"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--objects", type=int, default=100_000, help="indicators in the store (all visible to USA)")
    parser.add_argument("--labels", type=int, default=20, help="distinct labels, all releasable to USA")
    parser.add_argument("--page-size", type=int, default=1000, help="limit= of each page")
    parser.add_argument("--repeats", type=int, default=3, help="rounds; each pulls once from every variant")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN_URL)
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument(
        "--out",
        default="bench/results/audit-{database}",
        help="results base path: .json and .md are written; relative to the repository root",
    )
    args = parser.parse_args(argv)
    if args.objects < 1 or args.repeats < 1 or args.page_size < 1:
        parser.error("--objects, --repeats and --page-size must be >= 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    out = Path(args.out.format(database=args.database))
    out = out if out.is_absolute() else REPO_ROOT / out
    out.parent.mkdir(parents=True, exist_ok=True)
    mappings = load_mappings(REPO_ROOT / "stix_mappings")
    # Twice the labels asked for, keeping those USA may see: every stored object is pulled.
    full = make_dataset(args.seed, args.labels * 2, mappings)
    visible = [d for d in full.definitions if d["id"] in full.visible_refs]
    dataset = Dataset(args.seed, visible, {d["id"] for d in visible}, {d["id"]: i for i, d in enumerate(visible)})

    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tearline-bench-audit-")))
        key_dir = workdir / "keys"
        generate_key_pair(key_dir / "jwt-private.pem", key_dir / "jwt-public.pem")
        url = stack.enter_context(database(args.database, workdir, "audit", args.pg_admin_url))
        settings = make_settings(url, workdir, key_dir, args.page_size)
        store = Store("audit", args.objects, url)
        log(f"loading {args.objects:,} indicators + {len(visible)} label definitions on {args.database}")
        build_store(store, dataset, settings, log, analyze=args.database == "postgresql")
        stack.callback(store.app.state.engine.dispose)
        log(f"  loaded {store.load['objects_stored']:,} objects in {store.load['seconds']} s")

        token = issue_token(
            key=(key_dir / "jwt-private.pem").read_text(),
            algorithm="RS256",
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            subject="usa-feed",
            nation=PARTNER,
            roles=["partner"],
            lifetime_s=24 * 3600,
        )
        apps = {v: variant_app(settings, v) for v in VARIANTS}
        for app in apps.values():
            stack.callback(app.state.engine.dispose)
        clients = {}
        for variant, app in apps.items():
            server = stack.enter_context(ServerThread(app))
            clients[variant] = stack.enter_context(
                httpx.Client(
                    base_url=f"http://127.0.0.1:{server.port}",
                    timeout=600,
                    headers={"Authorization": f"Bearer {token}", "Accept": TAXII},
                )
            )
        # Warm-up (imports, statement caches, policy decisions), the full variant last so that its
        # pull, the first that disseminates these objects (every id gets its key), runs as warm
        # as the baseline's: that pair is reported as "first pull".
        first = {}
        for variant in reversed(VARIANTS):
            first[variant] = full_pull(clients[variant], store.collection_id, args.page_size, store.app.state.engine)
            log(f"  first pull {variant}: {first[variant]['seconds']:.2f} s")
        load_average = [round(x, 2) for x in os.getloadavg()]
        index_pending(store.app.state.engine)
        before = audit_counts(store.app.state.engine)
        runs = {v: [] for v in VARIANTS}
        for round_no in range(args.repeats):
            for variant in VARIANTS:
                result = full_pull(clients[variant], store.collection_id, args.page_size, store.app.state.engine)
                runs[variant].append(result)
                log(
                    f"  round {round_no + 1} {variant}: {result['seconds']:.2f} s, {result['objects']:,} objects, "
                    f"{result['pages']} pages"
                )
        index_pending(store.app.state.engine)  # the index rows the servers' threads had not written yet
        after = audit_counts(store.app.state.engine)

        engine = apps["full"].state.engine
        t0 = time.perf_counter()
        report = verify_chain(engine, signer_for(engine))
        verify_s = time.perf_counter() - t0

    served = runs["full"][0]["objects"]
    summary = {}
    for variant, results in runs.items():
        seconds = [r["seconds"] for r in results]
        if any(r["objects"] != served for r in results):
            raise SystemExit(f"{variant} served a different number of objects: {[r['objects'] for r in results]}")
        summary[variant] = {
            "median_s": statistics.median(seconds),
            "min_s": min(seconds),
            "max_s": max(seconds),
            "runs_s": [round(s, 3) for s in seconds],
            "pages": results[0]["pages"],
            "objects_per_s": served / statistics.median(seconds),
        }
    result = {
        "command": "python bench/audit.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "database": args.database,
        "objects_stored": args.objects,
        "objects_served": served,
        "page_size": args.page_size,
        "repeats": args.repeats,
        "variants": summary,
        "overhead_vs_no_dissemination": summary["full"]["median_s"] / summary["no_dissemination"]["median_s"] - 1,
        "overhead_vs_no_audit": summary["full"]["median_s"] / summary["no_audit"]["median_s"] - 1,
        "first_pull_s": {v: round(r["seconds"], 3) for v, r in first.items()},
        "first_pull_overhead_vs_no_dissemination": first["full"]["seconds"] / first["no_dissemination"]["seconds"] - 1,
        "audit_rows": {table: after[table] - before[table] for table in after},
        "verify": {
            "ok": report.ok,
            "records": report.checked,
            "seconds": round(verify_s, 2),
            "dissemination_rows_per_s": after["audit_dissemination"] / verify_s,
        },
        "load": store.load,
        "load_average": load_average,
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
    }
    out.with_suffix(".json").write_text(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")
    out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
