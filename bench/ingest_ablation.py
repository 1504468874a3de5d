"""Ingest throughput with each optimisation switched off in turn (issue 7, "record each optimisation's effect").

Loads the peer workload (``bench.workload``) into a fresh SQLite database with
``app.taxii.service.add_objects`` (envelopes of 1,000, no HTTP) and reports objects per wall second
and per CPU second of this process. CPU seconds are the steadier figure on a shared machine.
Each variant runs in its own subprocess, so a switched-off optimisation cannot leak into the next.

    .venv/bin/python bench/ingest_ablation.py              # every variant, N = 5,000, median of 3 rounds
    .venv/bin/python bench/ingest_ablation.py --variant all --objects 20000
    .venv/bin/python bench/ingest_ablation.py --variants all,sqlite-cache-2mib --objects 300000 --repeats 1 \
        --out bench/results/ingest-ablation-300k.json

Variants: ``all`` (the code as it is) and ``no-<optimisation>``, which puts back the previous
behaviour of that one step by patching this process only:

- ``no-pattern-cache``: every indicator pattern is validated by stix2-patterns' ANTLR parser;
- ``no-label-memo``: every object's label is derived from its marking definitions again (JSON
  Schema check of the definition each time), per object and per envelope;
- ``no-stored-definition-skip``: definitions loaded from the store are re-validated with stix2.parse
  in every envelope that references them;
- ``no-batch-labels``: labels are interned one query (or three) at a time;
- ``no-orjson-copy``: granular redaction deep-copies with ``copy.deepcopy``;
- ``stix2-parse``: every object is validated by ``stix2.parse`` instead of
  ``app.items.stix_validation`` (the official schemas on jsonschema-rs and stix2-validator's MUSTs),
  as before session 3 of issue 7;
- ``no-core-insert``: rows are inserted through the ORM's bulk path (``session.execute(insert(Model),
  rows)``) rather than Core inserts on the session's connection;
- ``no-timestamp-cache``: every timestamp is parsed again (no cache by text);
- ``sqlite-cache-2mib``: SQLite's default page cache (2 MiB per connection) instead of
  ``TEARLINE_SQLITE_CACHE_MIB`` (64).
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

VARIANTS = [
    "all",
    "no-pattern-cache",
    "no-label-memo",
    "no-stored-definition-skip",
    "no-batch-labels",
    "no-orjson-copy",
    "stix2-parse",
    "no-core-insert",
    "no-timestamp-cache",
    "sqlite-cache-2mib",
]
SQLITE_CACHE_MIB = {"sqlite-cache-2mib": 2}


def _switch_off(variant: str) -> None:
    """Patch this process so that one optimisation is undone."""
    import app.items.ingest  # noqa: F401  (installs the pattern cache first, so it can be undone)

    if variant == "no-pattern-cache":
        import stix2.v21.sdo
        from stix2patterns.validator import run_validator

        from app.items import patterns

        stix2.v21.sdo.run_validator = run_validator  # the analyst API's stix2.parse
        patterns.run_validator = run_validator  # app.items.stix_validation, every stored object
    elif variant == "no-label-memo":
        from app.items.labeling import Labeler
        from app.markings import stix_markings

        class NoMemo(dict):
            def __setitem__(self, key, value) -> None:  # never remembers
                pass

        def refs_label(self, refs, originator):
            return stix_markings.object_label(
                {"object_marking_refs": refs},
                originator=originator,
                definitions=self.definitions,
                mappings=self.mappings,
                home_nation=self.home_nation,
            )

        Labeler._refs_label = refs_label
        stix_markings._NO_MEMO = NoMemo  # read by _load below
    elif variant == "no-stored-definition-skip":
        from app.items.labeling import Labeler

        prepare = Labeler.prepare

        def prepare_and_forget(self, objects):
            prepare(self, objects)
            self.stored_definitions = set()

        Labeler.prepare = prepare_and_forget
    elif variant == "no-batch-labels":
        from app.items import ingest
        from app.markings.service import intern_label

        ingest.intern_labels = lambda session, specs, mappings: {
            spec: intern_label(session, spec, mappings) for spec in dict.fromkeys(specs)
        }
    elif variant == "no-orjson-copy":
        from app.markings import granular

        granular._copy = copy.deepcopy
    elif variant == "stix2-parse":
        import stix2

        from app.items import stix_validation

        def parse(obj: dict) -> None:
            try:
                stix2.parse(obj, allow_custom=True, version="2.1")
            except Exception as exc:  # noqa: BLE001 - as the ingest of session 2 did
                raise stix_validation.StixInvalid(str(exc)) from None

        def is_valid(obj: dict) -> bool:
            try:
                parse(obj)
            except stix_validation.StixInvalid:
                return False
            return True

        stix_validation.check = parse
        stix_validation.is_valid = is_valid  # reference groups and granular redaction ask it
    elif variant == "no-core-insert":
        from app.items import ingest

        class OrmConnection:
            """``session.connection().execute(insert(Table), rows)`` sent back through the ORM session."""

            def __init__(self, session) -> None:
                self.session = session

            def execute(self, statement, rows):
                from sqlalchemy import insert

                model = {m.__table__: m for m in (ingest.StixObject, ingest.ObjectMarkingRef, ingest.ObjectWithhold)}[
                    statement.table
                ]
                return self.session.execute(insert(model), rows)

        class OrmSession:
            def __init__(self, session) -> None:
                self.__dict__["_session"] = session

            def connection(self):
                return OrmConnection(self._session)

            def __getattr__(self, name):
                return getattr(self._session, name)

        store = ingest.store  # its side-table inserts get the same wrapped session
        ingest.store = lambda session, *a, **k: store(OrmSession(session), *a, **k)
    elif variant == "no-timestamp-cache":
        from app import timestamps

        timestamps._parse_text = timestamps._parse_text.__wrapped__
    elif variant != "all" and variant not in SQLITE_CACHE_MIB:
        raise SystemExit(f"unknown variant {variant}")


def run_one(variant: str, objects: int, seed: int) -> dict:
    """Load ``objects`` versions with one variant; return its throughput."""
    _switch_off(variant)
    from sqlmodel import Session

    from app.auth.keys import generate_key_pair
    from app.db import migrations
    from app.main import create_app
    from app.markings import stix_markings
    from app.taxii import service
    from bench.releasability import HOME, LOADER, make_settings
    from bench.workload import make_workload

    with tempfile.TemporaryDirectory(prefix="tearline-ablation-") as tmp:
        work = Path(tmp)
        generate_key_pair(work / "keys" / "jwt-private.pem", work / "keys" / "jwt-public.pem")
        url = f"sqlite:///{work / 'db.sqlite'}"
        migrations.upgrade(url)
        settings = make_settings(url, work, work / "keys", 1000)
        if variant in SQLITE_CACHE_MIB:
            settings = settings.model_copy(update={"sqlite_cache_mib": SQLITE_CACHE_MIB[variant]})
        app = create_app(settings)
        if hasattr(stix_markings, "_NO_MEMO"):
            object.__setattr__(app.state.mappings, "definition_labels", stix_markings._NO_MEMO())
        envelopes = list(make_workload(seed, 200, app.state.mappings).envelopes(objects))
        with Session(app.state.engine) as session:
            collection_id = service.create_collection(
                session, title="ablation", read_roles={"partner"}, write_roles={"analyst"}
            ).id
            stored, wall, cpu = 0, 0.0, 0.0
            for envelope in envelopes:
                t0, c0 = time.perf_counter(), time.process_time()
                status = service.add_objects(
                    session, collection_id, LOADER, envelope, mappings=app.state.mappings, home_nation=HOME
                )
                wall += time.perf_counter() - t0
                cpu += time.process_time() - c0
                if status.failure_count:
                    raise SystemExit(f"{variant}: {status.failure_count} objects refused")
                stored += status.success_count
        app.state.engine.dispose()
    return {
        "variant": variant,
        "objects": stored,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "objects_per_s": round(stored / wall),
        "objects_per_cpu_s": round(stored / cpu),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", choices=VARIANTS, help="run one variant in this process")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated variants to compare")
    parser.add_argument("--objects", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3, help="rounds; the median of each variant is reported")
    parser.add_argument("--seed", type=int, default=20240603)
    parser.add_argument("--out", default="bench/results/ingest-ablation.json")
    args = parser.parse_args(argv)
    if args.variant:
        print(json.dumps(run_one(args.variant, args.objects, args.seed)))
        return 0
    chosen = [variant for variant in args.variants.split(",") if variant]
    if unknown := set(chosen) - set(VARIANTS):
        parser.error(f"unknown variants: {sorted(unknown)}")
    runs: dict[str, list[dict]] = {variant: [] for variant in chosen}
    for round_no in range(args.repeats):  # rounds interleave the variants, so drift hits all alike
        for variant in chosen:
            done = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--variant",
                    variant,
                    "--objects",
                    str(args.objects),
                    "--seed",
                    str(args.seed),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            runs[variant].append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(
                f"round {round_no + 1} {variant:28} {runs[variant][-1]['objects_per_cpu_s']:>6} objects/CPU-s  "
                f"{runs[variant][-1]['objects_per_s']:>6} objects/s wall",
                file=sys.stderr,
                flush=True,
            )
    results = []
    for variant, measured in runs.items():
        results.append(
            {
                "variant": variant,
                "objects": measured[0]["objects"],
                "objects_per_cpu_s": statistics.median(r["objects_per_cpu_s"] for r in measured),
                "objects_per_s": statistics.median(r["objects_per_s"] for r in measured),
                "runs": measured,
            }
        )
    out = Path(args.out) if Path(args.out).is_absolute() else REPO_ROOT / args.out
    out.write_text(json.dumps({"objects": args.objects, "repeats": args.repeats, "variants": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
