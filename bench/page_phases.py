"""Where one page of a pull goes: the pieces of Tearline's objects endpoint, timed in process (issue 7).

Loads the peer workload into a fresh store with ``app.taxii.service.add_objects`` (no HTTP), then
times, for partner USA's first page of 1,000 (median of ``--repeats``):

- the visibility decision (``VisibilityCache.visible_label_ids``, warm);
- ``read_page`` (the keyset query and its rows) and ``versions_page`` (plus granular redaction);
- the served list the audit record gets (``(id, format_us(version))`` per row);
- ``record_event`` with that list (the audit record and its dissemination rows);
- the whole request in process (Starlette's TestClient: middleware, authentication, audit; no socket).

It imports only APIs that existed before issue 7's third session, so the same file measures an
older checkout: ``PYTHONPATH=/path/to/old/checkout .venv/bin/python bench/page_phases.py``.

    .venv/bin/python bench/page_phases.py                       # SQLite, N = 10,000
    .venv/bin/python bench/page_phases.py --database postgresql --objects 10000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(os.environ.get("PYTHONPATH", "").split(os.pathsep)[0] or Path(__file__).resolve().parent.parent)
BENCH_ROOT = Path(__file__).resolve().parent.parent
for root in (BENCH_ROOT, REPO_ROOT):  # the code measured goes first on the path, before this checkout
    if str(root) in sys.path:
        sys.path.remove(str(root))
    sys.path.insert(0, str(root))

PAGE = 1000


def _median_ms(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1000, 2)


def measure(kind: str, objects: int, repeats: int, pg_admin_url: str) -> dict:
    from sqlmodel import Session
    from starlette.testclient import TestClient

    from app.audit.service import record_event
    from app.auth.keys import generate_key_pair
    from app.auth.principal import Principal
    from app.auth.tokens import issue_token
    from app.db import migrations
    from app.db.timestamps import format_us
    from app.items.store import VersionFilter, read_page
    from app.main import create_app
    from app.partners.service import save_partner
    from app.taxii import service
    from bench.releasability import HOME, LOADER, database, make_settings
    from bench.workload import PARTNERS, PULLER, make_workload

    with tempfile.TemporaryDirectory(prefix="tearline-phases-") as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        generate_key_pair(work / "keys" / "jwt-private.pem", work / "keys" / "jwt-public.pem")
        url = stack.enter_context(database(kind, work, "phases", pg_admin_url))
        migrations.upgrade(url)
        settings = make_settings(url, work, work / "keys", PAGE)
        app = create_app(settings)
        stack.callback(app.state.engine.dispose)
        with Session(app.state.engine) as session:
            for nation, clearance, groups in PARTNERS:
                save_partner(session, nation=nation, clearance=clearance, groups=groups, home_nation=HOME)
            collection_id = service.create_collection(
                session, title="phases", read_roles={"partner"}, write_roles={"analyst"}
            ).id
            for envelope in make_workload(20240603, 200, app.state.mappings).envelopes(objects):
                service.add_objects(
                    session, collection_id, LOADER, envelope, mappings=app.state.mappings, home_nation=HOME
                )
        if kind == "postgresql":
            with app.state.engine.begin() as connection:
                connection.exec_driver_sql("ANALYZE")
        usa = Principal(
            subject="usa-feed",
            nation=PULLER,
            roles=frozenset({"partner"}),
            clearance=3,
            groups=frozenset({"FVEY", "NATO"}),
            is_home=False,
        )
        visibility, flt = app.state.visibility, VersionFilter()
        columns = service._PAGE_COLUMNS[True]
        figures: dict[str, float] = {}
        with Session(app.state.engine) as session:
            visible = visibility.visible_label_ids(session, usa)
            figures["visibility_ms"] = _median_ms(lambda: visibility.visible_label_ids(session, usa), repeats)
            figures["read_page_ms"] = _median_ms(
                lambda: read_page(session, collection_id, visible, flt, after_us=None, limit=PAGE, columns=columns),
                repeats,
            )
            page = service.versions_page(
                session, collection_id, visible, flt, after_us=None, limit=PAGE, with_body=True
            )
            figures["versions_page_ms"] = _median_ms(
                lambda: service.versions_page(
                    session, collection_id, visible, flt, after_us=None, limit=PAGE, with_body=True
                ),
                repeats,
            )
        figures["served_list_ms"] = _median_ms(
            lambda: [(row.object_id, format_us(row.version_us)) for row in page.rows], repeats
        )
        served = [(row.object_id, format_us(row.version_us)) for row in page.rows]
        figures["audit_record_ms"] = _median_ms(
            lambda: record_event(
                app.state.audit_engine,
                request_id="phases",
                subject="usa-feed",
                nation=PULLER,
                roles=["partner"],
                method="GET",
                route="/phases",
                status=200,
                decision="allow",
                served=served,
            ),
            repeats,
        )
        token = issue_token(
            key=(work / "keys" / "jwt-private.pem").read_text(),
            algorithm="RS256",
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            subject="usa-feed",
            nation=PULLER,
            roles=["partner"],
            lifetime_s=3600,
        )
        with TestClient(app) as client:
            url_path = f"/taxii2/{settings.api_root}/collections/{collection_id}/objects/?limit={PAGE}"
            headers = {"Authorization": f"Bearer {token}", "Accept": "application/taxii+json;version=2.1"}

            def request() -> None:
                response = client.get(url_path, headers=headers)
                assert response.status_code == 200, response.text[:300]

            figures["request_in_process_ms"] = _median_ms(request, repeats)
        return {
            "database": kind,
            "objects": objects,
            "page_objects": len(page.rows),
            "repeats": repeats,
            "code": str(Path(sys.modules["app"].__file__).parent.parent),
            **figures,
        }


def main(argv: list[str] | None = None) -> int:
    from bench.releasability import DEFAULT_PG_ADMIN_URL

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="sqlite", choices=["sqlite", "postgresql"])
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN_URL)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.database, args.objects, args.repeats, args.pg_admin_url), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
