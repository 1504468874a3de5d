"""Releasability benchmark (issue 3): does a partner's page cost grow with the number of stored objects?

DESIGN.md section 4 promises that Casbin is evaluated once per (principal, label), that the
database filters on the visible label ids, and that "a page costs the same at 1,000 or
10,000,000 stored objects". This script measures that claim end to end:

1. builds two fresh stores (a small one and a large one, each its own migrated database)
   and an app for each with ``create_app(settings)``;
2. generates ``--labels`` distinct Tearline label marking definitions, half of them visible
   to the partner USA (registered at SECRET with FVEY and NATO), and loads realistic STIX 2.1
   indicators, each marked with one label, through Tearline's own ingest path
   (``app.taxii.service.add_objects``, envelopes of 1,000, the definitions in the first);
3. serves each app with uvicorn on a free 127.0.0.1 port in a background thread of this
   process and has USA pull the whole collection over HTTP with ``httpx.Client``
   (``limit=--page-size``, following ``next``), reading ``app.state.visibility.evaluations``
   before and after to count Casbin evaluations per request;
4. prints a Markdown table and writes the figures as JSON.

Run ``.venv/bin/python bench/releasability.py --help``; bench/README.md explains the output.
Nothing here changes the application: it only calls its public functions.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import math
import os
import platform
import random
import socket
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import httpx
import orjson
import uvicorn
from sqlalchemy import text
from sqlmodel import Session

from app.auth.keys import generate_key_pair
from app.auth.principal import Principal
from app.auth.tokens import issue_token
from app.cli.server import prepare_process
from app.config.settings import Settings
from app.db import migrations
from app.items.identity import home_identity_id
from app.main import create_app
from app.markings.labels import ALL, LabelSpec, label_marking_definition
from app.markings.mappings import Mappings, load_mappings
from app.partners.service import save_partner
from app.taxii import service

HOME = "NLD"
PARTNER = "USA"
PARTNER_CLEARANCE = 3  # SECRET
PARTNER_GROUPS = ["FVEY", "NATO"]
# Other partners registered beside USA, as a real exchange would have them (they pull nothing here).
OTHER_PARTNERS = [
    ("GBR", 3, ["FVEY", "NATO"]),
    ("FRA", 2, ["NATO", "EU"]),
    ("DEU", 2, ["NATO", "EU"]),
    ("CAN", 1, ["FVEY", "NATO"]),
]
WARMUP_PARTNER = "GBR"
ENVELOPE = 1000
TAXII = "application/taxii+json;version=2.1"
DEFAULT_PG_ADMIN_URL = os.environ.get("TEARLINE_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")

# --- synthetic data ----------------------------------------------------------------------------

# Codes a label's releasable-to list is drawn from: partners inside and outside USA's groups.
REL_COUNTRIES = [
    "USA",
    "GBR",
    "CAN",
    "AUS",
    "NZL",
    "FRA",
    "DEU",
    "ITA",
    "ESP",
    "POL",
    "NOR",
    "DNK",
    "BEL",
    "SWE",
    "FIN",
    "EST",
    "JPN",
    "KOR",
    "ISR",
    "UKR",
]
REL_GROUPS = ["FVEY", "NATO", "EU", "ACGU"]

THREATS = [
    "APT28",
    "APT29",
    "Sandworm",
    "Turla",
    "Lazarus Group",
    "Kimsuky",
    "FIN7",
    "Wizard Spider",
    "TA505",
    "Gamaredon",
    "MuddyWater",
    "OilRig",
    "Volt Typhoon",
    "Scattered Spider",
    "LockBit",
]
MALWARE = [
    "Cobalt Strike",
    "Emotet",
    "QakBot",
    "IcedID",
    "AgentTesla",
    "Sliver",
    "PlugX",
    "ShadowPad",
    "Industroyer2",
    "BlackCat",
    "Royal",
    "DarkGate",
    "Pikabot",
    "SocGholish",
    "RedLine",
]
SECTORS = [
    "energy",
    "defence",
    "telecommunications",
    "government",
    "finance",
    "healthcare",
    "maritime",
    "aviation",
    "water utilities",
    "research",
]
ACTIVITIES = [
    "command and control",
    "initial access",
    "credential harvesting",
    "data exfiltration",
    "payload staging",
    "phishing delivery",
    "lateral movement",
    "ransomware deployment",
]
SOURCES = [
    "national CERT",
    "partner liaison",
    "malware analysis",
    "incident response",
    "SIGINT-derived tip",
    "open source",
    "sensor network",
    "honeypot",
]
TAGS = [
    "apt",
    "ransomware",
    "phishing",
    "c2",
    "botnet",
    "espionage",
    "infostealer",
    "loader",
    "critical-infrastructure",
    "supply-chain",
    "zero-day",
    "wiper",
]
INDICATOR_TYPES = ["malicious-activity", "attribution", "compromised", "anomalous-activity"]
TLDS = ["com", "net", "org", "info", "ru", "cn", "io", "biz", "top", "xyz"]
SYLLABLES = ["ka", "lo", "mi", "zen", "tor", "vex", "nu", "ra", "sol", "qui", "dex", "mar", "fi", "on"]
# The home nation's identity: an analyst's objects name it (attribution, docs/design.md section 2a).
IDENTITY = home_identity_id("NLD")
TIME_BASE = int(dt.datetime(2023, 1, 1, tzinfo=dt.UTC).timestamp() * 1000)
TIME_SPAN_MS = 2 * 365 * 86400 * 1000


def _ms(ms: int) -> str:
    moment = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _word(rng: random.Random, parts: int) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(parts))


def _observable(rng: random.Random) -> tuple[str, str, str]:
    """(kind, value, pattern) for one indicator."""
    kind = rng.choice(["ipv4", "domain", "url", "sha256", "email"])
    if kind == "ipv4":
        value = (
            f"{rng.choice([45, 77, 91, 103, 146, 185, 193, 194])}.{rng.randrange(256)}.{rng.randrange(256)}."
            f"{rng.randrange(1, 255)}"
        )
        return kind, value, f"[ipv4-addr:value = '{value}']"
    domain = f"{_word(rng, 3)}-{_word(rng, 2)}.{rng.choice(TLDS)}"
    if kind == "domain":
        return kind, domain, f"[domain-name:value = '{domain}']"
    if kind == "url":
        value = f"https://{domain}/{_word(rng, 2)}/{rng.getrandbits(32):08x}.php"
        return kind, value, f"[url:value = '{value}']"
    if kind == "sha256":
        value = f"{rng.getrandbits(256):064x}"
        return kind, value, f"[file:hashes.'SHA-256' = '{value}']"
    value = f"{_word(rng, 2)}.{_word(rng, 2)}@{domain}"
    return kind, value, f"[email-addr:value = '{value}']"


def make_indicator(rng: random.Random, marking_ref: str) -> dict:
    """A realistic STIX 2.1 indicator (about 700 bytes serialised) marked with one label."""
    kind, _value, pattern = _observable(rng)
    threat, malware, sector = rng.choice(THREATS), rng.choice(MALWARE), rng.choice(SECTORS)
    created = TIME_BASE + rng.randrange(TIME_SPAN_MS)
    modified = created + rng.choice([0, 0, 0, rng.randrange(30 * 86400 * 1000)])
    sentences = [
        f"{rng.choice(ACTIVITIES).capitalize()} infrastructure targeting {sector}.",
        f"Reported by {rng.choice(SOURCES)}; confidence {rng.choice(['low', 'moderate', 'high'])}.",
    ]
    description = " ".join(sentences[: rng.choice([1, 1, 1, 1, 2])])
    reference = rng.getrandbits(24)
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--{uuid.UUID(int=rng.getrandbits(128), version=4)}",
        "created_by_ref": IDENTITY,
        "created": _ms(created),
        "modified": _ms(modified),
        "name": f"{threat} {malware} {kind}",
        "description": description,
        "indicator_types": [rng.choice(INDICATOR_TYPES)],
        "pattern": pattern,
        "pattern_type": "stix",
        "valid_from": _ms(created),
        "labels": sorted(rng.sample(TAGS, rng.randint(1, 2))),
        "external_references": [
            {
                "source_name": "tearline-bench",
                "url": f"https://intel.example.org/r/{reference:06x}",
            }
        ],
        "object_marking_refs": [marking_ref],
    }


def _visible_to_partner(spec: LabelSpec, mappings: Mappings) -> bool:
    """The releasability rule (DESIGN.md 2) for USA, written out here only to pick the label mix;
    the app's own decision is read back and reported after the pull."""
    if spec.rank > PARTNER_CLEARANCE or spec.caveats:
        return False
    expanded = mappings.expand(spec.releasable_to)
    return expanded is None or PARTNER in expanded


def make_labels(rng: random.Random, count: int, mappings: Mappings) -> list[tuple[LabelSpec, bool]]:
    """``count`` distinct labels originated by the home nation, half of them visible to USA (by design)."""
    want_visible = count // 2
    visible: dict[LabelSpec, None] = {}
    hidden: dict[LabelSpec, None] = {}
    while len(visible) < want_visible or len(hidden) < count - want_visible:
        rank = rng.choices(range(5), weights=[2, 2, 3, 4, 2])[0]
        roll = rng.random()
        if roll < 0.05:
            releasable = frozenset({ALL})
        elif roll < 0.10:
            releasable = frozenset()  # originator only
        else:
            releasable = frozenset(
                rng.sample(REL_COUNTRIES, rng.randint(1, 6)) + rng.sample(REL_GROUPS, rng.choice([0, 0, 1, 1, 2]))
            )
        caveats = frozenset({"NOFORN"}) if rng.random() < 0.08 else frozenset()
        spec = LabelSpec(rank, releasable, caveats, HOME)
        bucket, limit = (
            (visible, want_visible) if _visible_to_partner(spec, mappings) else (hidden, count - want_visible)
        )
        if spec not in visible and spec not in hidden and len(bucket) < limit:
            bucket[spec] = None
    labels = [(spec, True) for spec in visible] + [(spec, False) for spec in hidden]
    rng.shuffle(labels)
    return labels


@dataclass
class Dataset:
    """The label definitions and a repeatable stream of indicators (the small store is a prefix of the large)."""

    seed: int
    definitions: list[dict]
    visible_refs: set[str]
    label_of_ref: dict[str, int]

    def envelopes(self, objects: int) -> Iterator[tuple[list[dict], list[dict]]]:
        """Envelopes of at most ENVELOPE objects, the definitions in the first; with the indicators
        of each."""
        rng = random.Random(f"{self.seed}:indicators")
        refs = [d["id"] for d in self.definitions]
        produced, first = 0, True
        while produced < objects:
            room = ENVELOPE - (len(self.definitions) if first else 0)
            take = min(max(room, 1), objects - produced)
            batch = [make_indicator(rng, rng.choice(refs)) for _ in range(take)]
            yield (self.definitions + batch if first else batch), batch
            produced += take
            first = False


def make_dataset(seed: int, label_count: int, mappings: Mappings) -> Dataset:
    labels = make_labels(random.Random(f"{seed}:labels"), label_count, mappings)
    definitions = [label_marking_definition(spec, mappings) for spec, _ in labels]
    visible_refs = {d["id"] for d, (_, shown) in zip(definitions, labels) if shown}
    return Dataset(seed, definitions, visible_refs, {d["id"]: i for i, d in enumerate(definitions)})


# --- stores ------------------------------------------------------------------------------------


@dataclass
class Store:
    name: str
    objects: int
    url: str
    app: object = None
    collection_id: str = ""
    visible_indicators: int = 0
    visible_definitions: int = 0
    """Definitions whose label USA may see."""
    referenced_visible_definitions: int = 0
    """Of those, the ones some stored indicator references (an app may serve only these)."""
    served: int = 0
    """Objects USA received in its first pull (checked against the three counts above)."""
    load: dict = field(default_factory=dict)


@contextlib.contextmanager
def database(kind: str, workdir: Path, name: str, pg_admin_url: str) -> Iterator[str]:
    """A new, empty database URL: an SQLite file under ``workdir`` or a PostgreSQL database dropped on exit."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir / f'{name}.sqlite'}"
        return
    import psycopg

    db_name = f"tearline_bench_{name}_{uuid.uuid4().hex[:8]}"
    try:
        admin_connection = psycopg.connect(pg_admin_url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        raise SystemExit(f"PostgreSQL unreachable at {pg_admin_url} (set --pg-admin-url): {exc}".strip()) from None
    with admin_connection as admin:
        admin.execute(f'CREATE DATABASE "{db_name}"')
        try:
            base = pg_admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
            yield f"{base}/{db_name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


def make_settings(url: str, workdir: Path, key_dir: Path, page_size: int) -> Settings:
    return Settings(
        database_url=url,
        home_nation=HOME,
        data_dir=workdir / "data",
        jwt_public_key_file=key_dir / "jwt-public.pem",
        jwt_private_key_file=key_dir / "jwt-private.pem",
        secret_key="bench-cursor-secret",
        max_content_length=64 * 1024 * 1024,
        default_page_size=min(100, page_size),
        max_page_size=max(1000, page_size),
    )


LOADER = Principal(
    subject="bench-loader", nation=HOME, roles=frozenset({"analyst"}), clearance=4, groups=frozenset(), is_home=True
)


STATS_TABLES = ("stix_object", "object_withhold", "label")


def build_store(store: Store, dataset: Dataset, settings: Settings, log, *, analyze: bool) -> None:
    """Migrate, create the app, register partners and a collection, and load the objects (timed).

    With ``analyze`` the database gathers planner statistics after the load (what autovacuum does
    on its own on PostgreSQL after a bulk load). Without it on PostgreSQL, autovacuum is switched
    off for the bench tables so the fresh-load state (no statistics) holds for the whole run.
    """
    started = time.perf_counter()
    migrations.upgrade(store.url)
    store.app = app = create_app(settings)
    postgres = not store.url.startswith("sqlite")
    if postgres and not analyze:
        with app.state.engine.begin() as conn:
            for table in STATS_TABLES:
                conn.execute(text(f"ALTER TABLE {table} SET (autovacuum_enabled = false)"))
    with Session(app.state.engine) as session:
        save_partner(session, nation=PARTNER, clearance=PARTNER_CLEARANCE, groups=PARTNER_GROUPS, home_nation=HOME)
        for nation, clearance, groups in OTHER_PARTNERS:
            save_partner(session, nation=nation, clearance=clearance, groups=groups, home_nation=HOME)
        collection = service.create_collection(
            session, title=f"bench {store.name}", read_roles={"partner", "analyst"}, write_roles={"analyst"}
        )
        store.collection_id = collection.id
    setup_s = time.perf_counter() - started

    stored = envelopes = 0
    sizes: list[int] = []
    visible_indicators = 0
    referenced: set[str] = set()
    load_s = 0.0
    next_report = time.perf_counter() + 15
    with Session(app.state.engine) as session:
        for batch, indicators in dataset.envelopes(store.objects):
            if len(sizes) < 2000:
                sizes.extend(len(orjson.dumps(o)) for o in batch if o["type"] == "indicator")
            t0 = time.perf_counter()
            status = service.add_objects(
                session, store.collection_id, LOADER, batch, mappings=app.state.mappings, home_nation=HOME
            )
            load_s += time.perf_counter() - t0
            if status.failure_count:
                failures = orjson.loads(status.details)["failures"][:3]
                raise SystemExit(f"ingest refused {status.failure_count} objects, e.g. {failures}")
            stored += status.success_count
            envelopes += 1
            refs = [obj["object_marking_refs"][0] for obj in indicators]
            visible_indicators += sum(1 for ref in refs if ref in dataset.visible_refs)
            referenced.update(refs)
            if time.perf_counter() > next_report:
                log(f"  {store.name}: {stored:,} / {store.objects + len(dataset.definitions):,} objects loaded")
                next_report = time.perf_counter() + 15
    store.visible_indicators = visible_indicators
    store.visible_definitions = len(dataset.visible_refs)
    store.referenced_visible_definitions = len(referenced & dataset.visible_refs)
    analyze_s = None
    if analyze:
        t0 = time.perf_counter()
        with app.state.engine.begin() as conn:
            conn.execute(text("ANALYZE"))
        analyze_s = round(time.perf_counter() - t0, 3)
    sizes.sort()
    store.load = {
        "objects_stored": stored,
        "envelopes": envelopes,
        "seconds": round(load_s, 3),
        "objects_per_s": round(stored / load_s, 1),
        "setup_seconds": round(setup_s, 3),
        "indicator_bytes_median": sizes[len(sizes) // 2],
        "indicator_bytes_p5_p95": [sizes[int(len(sizes) * 0.05)], sizes[int(len(sizes) * 0.95)]],
        "database_bytes": database_bytes(store.url, app),
        "analyze_seconds": analyze_s,
    }


def statistics_state(store: Store) -> dict:
    """Whether the planner had statistics for stix_object when the run ended."""
    with store.app.state.engine.connect() as conn:
        if store.url.startswith("sqlite"):
            has = conn.execute(text("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")).scalar_one()
            rows = (
                conn.execute(text("SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'stix_object'")).scalar_one()
                if has
                else 0
            )
            return {"sqlite_stat1_rows_for_stix_object": rows}
        row = conn.execute(
            text("SELECT last_analyze, last_autoanalyze FROM pg_stat_user_tables WHERE relname = 'stix_object'")
        ).one()
        return {"last_analyze": row[0] and row[0].isoformat(), "last_autoanalyze": row[1] and row[1].isoformat()}


def database_bytes(url: str, app) -> int | None:
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return path.stat().st_size
    with app.state.engine.connect() as conn:
        return conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()


# --- serving and pulling -----------------------------------------------------------------------


class ServerThread:
    """uvicorn serving one app on a free 127.0.0.1 port, in a daemon thread of this process."""

    def __init__(self, app) -> None:
        # IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY only on sockets whose proto says TCP.
        # Without it Nagle holds each response's body until the client's delayed ACK (40 ms per
        # request on a kept-alive connection), which is what the earlier figures mostly measured.
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        # Lifespan on, as under `tearline serve`: the app's background work (the audit's recipients
        # index) runs beside the requests it follows and is part of what is measured.
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False, lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> ServerThread:
        prepare_process()  # as `tearline serve` does before it serves (once per process)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()


@dataclass
class Pull:
    """One full pull: per request, its latency, objects, distinct labels, bytes and Casbin evaluations."""

    latencies: list[float] = field(default_factory=list)
    objects: list[int] = field(default_factory=list)
    distinct_labels: list[int] = field(default_factory=list)
    bytes: list[int] = field(default_factory=list)
    evaluations: list[int] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return len(self.latencies)


def pull(client: httpx.Client, store: Store, page_size: int, label_of_ref: dict[str, int]) -> Pull:
    """Pull the whole collection, following ``next``; each page timed from request to last byte.

    The server runs in this process and requests are sequential, so the change of
    ``app.state.visibility.evaluations`` across one request is that request's Casbin evaluations.
    """
    visibility = store.app.state.visibility
    path = f"/taxii2/api1/collections/{store.collection_id}/objects/"
    params = {"limit": str(page_size)}
    result = Pull()
    result.kinds = {"indicator": 0, "marking-definition": 0}
    while True:
        before = visibility.evaluations
        t0 = time.perf_counter()
        response = client.get(path, params=params)
        elapsed = time.perf_counter() - t0
        evaluations = visibility.evaluations - before
        if response.status_code != 200:
            raise SystemExit(f"GET {path} answered {response.status_code}: {response.text[:300]}")
        document = orjson.loads(response.content)
        objects = document.get("objects", [])
        # A label definition counts as its own label; an indicator as the label it references.
        labels = {
            label_of_ref[o["id"]] if o["type"] == "marking-definition" else label_of_ref[o["object_marking_refs"][0]]
            for o in objects
        }
        for obj in objects:
            result.kinds[obj["type"]] += 1
        result.latencies.append(elapsed)
        result.objects.append(len(objects))
        result.distinct_labels.append(len(labels))
        result.bytes.append(len(response.content))
        result.evaluations.append(evaluations)
        if not document.get("more"):
            break
        params = {"limit": str(page_size), "next": document["next"]}
    return result


def check_complete(store: Store, result: Pull) -> None:
    """USA must receive every indicator whose label it may see and no other; and the definitions of
    visible labels (all of them, or only those a stored indicator references)."""
    indicators, definitions = result.kinds["indicator"], result.kinds["marking-definition"]
    if indicators != store.visible_indicators or not (
        store.referenced_visible_definitions <= definitions <= store.visible_definitions
    ):
        raise SystemExit(
            f"{store.name}: USA pulled {indicators} indicators and {definitions} definitions; expected "
            f"{store.visible_indicators} and {store.referenced_visible_definitions}-{store.visible_definitions}: "
            "the releasability filter and the label mix disagree"
        )
    store.served = sum(result.objects)


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def _ms_round(seconds: float) -> float:
    return round(seconds * 1000, 2)


def summarise(store: Store, cold: Pull, warm: list[Pull], visible_labels: int, page_size: int) -> dict:
    pages = [
        (lat, n, labels, size, ev)
        for p in warm
        for lat, n, labels, size, ev in zip(p.latencies, p.objects, p.distinct_labels, p.bytes, p.evaluations)
    ]
    # Page-time statistics use full pages only: a store's last page is short, and the small store
    # has proportionally more of them. A run too small to fill a page falls back to every page.
    full = [page for page in pages if page[1] == page_size]
    timed, timed_kind = (full, "full pages") if full else (pages, "all pages (none full)")
    busy = sum(page[0] for page in pages)
    objects = sum(page[1] for page in pages)
    evaluations = sum(page[4] for page in pages)
    distinct = [page[2] for page in timed]
    return {
        "objects_stored": store.load["objects_stored"],
        "objects_visible_to_partner": store.served,
        "definitions_served": cold.kinds["marking-definition"],
        "labels_visible_to_partner": visible_labels,
        "load": store.load,
        "cold_pull": {
            "pages": cold.requests,
            "first_page_ms": _ms_round(cold.latencies[0]),
            "casbin_evaluations_first_request": cold.evaluations[0],
            "casbin_evaluations_later_requests": sum(cold.evaluations[1:]),
            "casbin_evaluations_per_request": round(sum(cold.evaluations) / cold.requests, 3),
        },
        "warm_pulls": {
            "pulls": len(warm),
            "pages": len(pages),
            "pages_per_pull": warm[0].requests,
            "objects": objects,
            "pages_per_s": round(len(pages) / busy, 2),
            "objects_per_s": round(objects / busy, 1),
            "first_page_ms_median": _ms_round(percentile([p.latencies[0] for p in warm], 50)),
            "latency_pages": timed_kind,
            "latency_page_count": len(timed),
            "p50_page_ms": _ms_round(percentile([page[0] for page in timed], 50)),
            "p95_page_ms": _ms_round(percentile([page[0] for page in timed], 95)),
            "max_page_ms": _ms_round(max(page[0] for page in timed)),
            "page_bytes_median": int(percentile([page[3] for page in timed], 50)),
            "casbin_evaluations": evaluations,
            "casbin_evaluations_per_request": round(evaluations / len(pages), 3),
            "distinct_labels_per_page": {
                "mean": round(sum(distinct) / len(distinct), 1),
                "min": min(distinct),
                "max": max(distinct),
            },
            "page_ms_by_pull": [[round(x * 1000, 1) for x in p.latencies] for p in warm],
        },
    }


# --- profiling (optional) ----------------------------------------------------------------------


def profile_pull(store: Store, token: str, page_size: int, out_base: Path, log) -> dict | None:
    """One warm pull with every thread hop run inline, so pyinstrument (one thread) sees the handlers."""
    try:
        from pyinstrument import Profiler
    except ImportError:
        log("pyinstrument is not installed in this interpreter: skipping --profile")
        return None
    import anyio.to_thread

    original = anyio.to_thread.run_sync

    async def inline(func, *args, **_kwargs):
        return func(*args)

    async def run() -> int:
        transport = httpx.ASGITransport(app=store.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", headers={"Authorization": f"Bearer {token}", "Accept": TAXII}
        ) as client:
            path = f"/taxii2/api1/collections/{store.collection_id}/objects/"
            params, pages = {"limit": str(page_size)}, 0
            while True:
                response = await client.get(path, params=params)
                response.raise_for_status()
                document = orjson.loads(response.content)
                pages += 1
                if not document.get("more"):
                    return pages
                params = {"limit": str(page_size), "next": document["next"]}

    anyio.to_thread.run_sync = inline
    try:
        profiler = Profiler(interval=0.0005)
        profiler.start()
        pages = asyncio.run(run())
        profiler.stop()
    finally:
        anyio.to_thread.run_sync = original
    text_path = out_base.with_suffix(".profile.txt")
    text_path.write_text(profiler.output_text(unicode=False, color=False, show_all=False))
    log(f"profile of one {store.name} pull ({pages} pages, in-process ASGI, no network): {text_path}")
    return {"pages": pages, "text": _display(text_path)}


# --- report ------------------------------------------------------------------------------------


def markdown(result: dict) -> str:
    small, large = result["stores"]["small"], result["stores"]["large"]
    s_n, l_n = f"{small['objects_stored']:,} stored", f"{large['objects_stored']:,} stored"
    rows = [
        ("objects visible to USA", small["objects_visible_to_partner"], large["objects_visible_to_partner"], ""),
        (
            "labels visible to USA (of all)",
            f"{small['labels_visible_to_partner']} / {result['labels']['interned']}",
            f"{large['labels_visible_to_partner']} / {result['labels']['interned']}",
            "",
        ),
        ("database size (MB)", _mb(small["load"]["database_bytes"]), _mb(large["load"]["database_bytes"]), ""),
        ("load: objects/s (add_objects)", small["load"]["objects_per_s"], large["load"]["objects_per_s"], ""),
        ("load: seconds", small["load"]["seconds"], large["load"]["seconds"], ""),
        ("USA's first request: page ms", small["cold_pull"]["first_page_ms"], large["cold_pull"]["first_page_ms"], ""),
        (
            "USA's first pull: Casbin evaluations, first request / rest",
            f"{small['cold_pull']['casbin_evaluations_first_request']} / "
            f"{small['cold_pull']['casbin_evaluations_later_requests']}",
            f"{large['cold_pull']['casbin_evaluations_first_request']} / "
            f"{large['cold_pull']['casbin_evaluations_later_requests']}",
            "",
        ),
    ]
    sw, lw = small["warm_pulls"], large["warm_pulls"]
    rows += [
        (
            "warm: pulls x requests per pull",
            f"{sw['pulls']} x {sw['pages_per_pull']}",
            f"{lw['pulls']} x {lw['pages_per_pull']}",
            "",
        ),
        ("warm: pages/s", sw["pages_per_s"], lw["pages_per_s"], _ratio(lw["pages_per_s"], sw["pages_per_s"])),
        ("warm: objects/s", sw["objects_per_s"], lw["objects_per_s"], _ratio(lw["objects_per_s"], sw["objects_per_s"])),
        (
            "warm: first page ms (median)",
            sw["first_page_ms_median"],
            lw["first_page_ms_median"],
            _ratio(lw["first_page_ms_median"], sw["first_page_ms_median"]),
        ),
        (
            f"warm: p50 page ms ({sw['latency_page_count']} / {lw['latency_page_count']} {sw['latency_pages']})",
            sw["p50_page_ms"],
            lw["p50_page_ms"],
            _ratio(lw["p50_page_ms"], sw["p50_page_ms"]),
        ),
        ("warm: p95 page ms", sw["p95_page_ms"], lw["p95_page_ms"], _ratio(lw["p95_page_ms"], sw["p95_page_ms"])),
        (
            "warm: page size (KB, median)",
            round(sw["page_bytes_median"] / 1024, 1),
            round(lw["page_bytes_median"] / 1024, 1),
            "",
        ),
        (
            "warm: distinct labels per page (mean, min-max)",
            f"{sw['distinct_labels_per_page']['mean']} ({sw['distinct_labels_per_page']['min']}-"
            f"{sw['distinct_labels_per_page']['max']})",
            f"{lw['distinct_labels_per_page']['mean']} ({lw['distinct_labels_per_page']['min']}-"
            f"{lw['distinct_labels_per_page']['max']})",
            "",
        ),
        (
            "warm: Casbin evaluations / request",
            sw["casbin_evaluations_per_request"],
            lw["casbin_evaluations_per_request"],
            "",
        ),
    ]
    analyzed = "ANALYZE after load" if result["config"]["analyze_after_load"] else "no ANALYZE"
    lines = [
        f"| {result['config']['database']} ({analyzed}), limit={result['config']['page_size']} | {s_n} | {l_n} | large/small |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {name} | {a} | {b} | {r} |" for name, a, b, r in rows]
    verdict = result["verdict"]
    lines.append("")
    lines.append(
        f"Median page time ratio {l_n.split()[0]} vs {s_n.split()[0]}: **{verdict['p50_page_ratio']}** "
        f"(goal ~1.0); Casbin evaluations per warm request: {verdict['warm_evaluations_per_request']} "
        f"against {verdict['distinct_labels_per_page_mean']} distinct labels per page."
    )
    phase = result["environment"]["pull_phase"]
    cpus = result["environment"]["cpus"] or 1
    busy = max(phase["load_average_before"][0], phase["load_average_after"][0]) > cpus
    lines.append(
        f"Pull phase: {phase['wall_seconds']} s wall, {phase['process_cpu_seconds']} s CPU of this process; "
        f"1-min load average {phase['load_average_before'][0]} -> {phase['load_average_after'][0]} "
        f"on {cpus} CPUs"
        + (" (above the CPU count: other processes were competing, absolute times are inflated)." if busy else ".")
    )
    return "\n".join(lines)


def _display(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def _mb(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 1e6:.1f}"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else ""


# --- main --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--objects", type=int, default=100_000, help="indicators in the large store")
    parser.add_argument("--small", type=int, default=10_000, help="indicators in the small store")
    parser.add_argument("--labels", type=int, default=200, help="distinct labels (half visible to USA)")
    parser.add_argument("--page-size", type=int, default=1000, help="limit= of each page")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument(
        "--pg-admin-url",
        default=DEFAULT_PG_ADMIN_URL,
        help="PostgreSQL server to create the two databases on (dropped afterwards)",
    )
    parser.add_argument(
        "--analyze",
        choices=["auto", "yes", "no"],
        default="auto",
        help="run ANALYZE after loading; auto = yes on PostgreSQL (autovacuum would), "
        "no on SQLite (nothing runs it there)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="warm pulls of the large store")
    parser.add_argument("--seed", type=int, default=20240603, help="seed of labels and objects")
    parser.add_argument(
        "--out",
        default="bench/results/releasability-{database}.json",
        help="JSON results ({database} is replaced); relative to the repository root",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="afterwards, profile one pull of the large store with pyinstrument (if installed)",
    )
    args = parser.parse_args(argv)
    if args.small >= args.objects or args.small < 1:
        parser.error("--small must be at least 1 and below --objects")
    if args.labels < 2 or args.page_size < 1 or args.repeats < 1:
        parser.error("--labels must be >= 2, --page-size and --repeats >= 1")
    return args


LOAD_AT_START: list[float] = []


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    LOAD_AT_START[:] = [round(x, 2) for x in os.getloadavg()]
    started = time.perf_counter()
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    out = Path(args.out.format(database=args.database))
    out = out if out.is_absolute() else REPO_ROOT / out
    out.parent.mkdir(parents=True, exist_ok=True)

    analyze = args.analyze == "yes" or (args.analyze == "auto" and args.database == "postgresql")
    mappings = load_mappings(REPO_ROOT / "stix_mappings")
    dataset = make_dataset(args.seed, args.labels, mappings)
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tearline-bench-")))
        key_dir = workdir / "keys"
        generate_key_pair(key_dir / "jwt-private.pem", key_dir / "jwt-public.pem")
        stores = {}
        for name, count in (("small", args.small), ("large", args.objects)):
            url = stack.enter_context(database(args.database, workdir, name, args.pg_admin_url))
            store = Store(name, count, url)
            log(
                f"building the {name} store: {count:,} indicators + {len(dataset.definitions)} label definitions "
                f"on {args.database}"
            )
            build_store(store, dataset, make_settings(url, workdir, key_dir, args.page_size), log, analyze=analyze)
            stack.callback(store.app.state.engine.dispose)
            log(
                f"  loaded {store.load['objects_stored']:,} objects in {store.load['seconds']} s "
                f"({store.load['objects_per_s']} objects/s)"
            )
            stores[name] = store

        settings = stores["large"].app.state.settings
        private_key = (key_dir / "jwt-private.pem").read_text()

        def token_for(subject: str, nation: str, role: str) -> str:
            return issue_token(
                key=private_key,
                algorithm="RS256",
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
                subject=subject,
                nation=nation,
                roles=[role],
                lifetime_s=24 * 3600,
            )

        token = token_for("usa-feed", PARTNER, "partner")
        warmup_token = token_for("gbr-feed", WARMUP_PARTNER, "partner")

        # Both servers run at once and the pulls alternate, so drift (caches, CPU clock) hits both alike.
        servers = {name: stack.enter_context(ServerThread(store.app)) for name, store in stores.items()}
        clients = {
            name: stack.enter_context(
                httpx.Client(
                    base_url=f"http://127.0.0.1:{server.port}",
                    timeout=300,
                    headers={"Authorization": f"Bearer {token}", "Accept": TAXII},
                )
            )
            for name, server in servers.items()
        }
        # Warm the process first (imports, SQLAlchemy statement cache, policy load, label facts) with
        # one pull by another partner (its own principal key, its own evaluations), so USA's first
        # request pays only for USA's Casbin evaluations.
        warmup = {}
        for name, server in servers.items():
            with httpx.Client(
                base_url=f"http://127.0.0.1:{server.port}",
                timeout=300,
                headers={"Authorization": f"Bearer {warmup_token}", "Accept": TAXII},
            ) as analyst:
                warmup[name] = pull(analyst, stores[name], args.page_size, dataset.label_of_ref)
        log("pulling as USA over HTTP (uvicorn thread + httpx.Client)")
        load_before_pulls = [round(x, 2) for x in os.getloadavg()]
        cpu_before, wall_before = time.process_time(), time.perf_counter()
        cold = {name: pull(clients[name], stores[name], args.page_size, dataset.label_of_ref) for name in stores}
        for name, result in cold.items():
            check_complete(stores[name], result)
        small_pulls_per_round = max(1, math.ceil(cold["large"].requests / cold["small"].requests))
        warm: dict[str, list[Pull]] = {"small": [], "large": []}
        for round_no in range(args.repeats):
            for _ in range(small_pulls_per_round):
                warm["small"].append(pull(clients["small"], stores["small"], args.page_size, dataset.label_of_ref))
            warm["large"].append(pull(clients["large"], stores["large"], args.page_size, dataset.label_of_ref))
            log(f"  round {round_no + 1}/{args.repeats}: {small_pulls_per_round} small pull(s), 1 large pull")

        # Other processes competing for the CPUs show as a 1-minute load average above the core count
        # and as this process getting less CPU than wall time (client and server share one process).
        pulls_phase = {
            "load_average_before": load_before_pulls,
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "wall_seconds": round(time.perf_counter() - wall_before, 2),
            "process_cpu_seconds": round(time.process_time() - cpu_before, 2),
        }
        summaries = {}
        for name, store in stores.items():
            usa = Principal(
                subject="usa-feed",
                nation=PARTNER,
                roles=frozenset({"partner"}),
                clearance=PARTNER_CLEARANCE,
                groups=frozenset(PARTNER_GROUPS),
                is_home=False,
            )
            with Session(store.app.state.engine) as session:
                visibility = store.app.state.visibility
                before = visibility.evaluations
                visible_labels = len(visibility.visible_label_ids(session, usa))
                assert visibility.evaluations == before, "reading the visible labels after the pulls evaluated again"
                interned = session.execute(text("SELECT count(*) FROM label")).scalar_one()
            summaries[name] = summarise(store, cold[name], warm[name], visible_labels, args.page_size)
            summaries[name]["process_warmup"] = {
                "principal": f"partner {WARMUP_PARTNER}",
                "pages": warmup[name].requests,
                "first_page_ms": _ms_round(warmup[name].latencies[0]),
                "casbin_evaluations": sum(warmup[name].evaluations),
            }
            summaries[name]["planner_statistics"] = statistics_state(store)

        small, large = summaries["small"], summaries["large"]
        result = {
            "benchmark": "releasability",
            "config": {
                "objects": args.objects,
                "small": args.small,
                "labels": args.labels,
                "page_size": args.page_size,
                "database": args.database,
                "repeats": args.repeats,
                "analyze_after_load": analyze,
                "seed": args.seed,
                "partner": {"nation": PARTNER, "clearance": PARTNER_CLEARANCE, "groups": PARTNER_GROUPS},
                "transport": "uvicorn in a background thread of the benchmark process, httpx.Client "
                "over 127.0.0.1 (one connection, sequential requests)",
            },
            "labels": {
                "generated": args.labels,
                "visible_to_partner_by_design": len(dataset.visible_refs),
                "interned": interned,
            },
            "stores": summaries,
            "verdict": {
                "p50_page_ratio": round(large["warm_pulls"]["p50_page_ms"] / small["warm_pulls"]["p50_page_ms"], 3),
                "p95_page_ratio": round(large["warm_pulls"]["p95_page_ms"] / small["warm_pulls"]["p95_page_ms"], 3),
                "warm_evaluations_per_request": large["warm_pulls"]["casbin_evaluations_per_request"],
                "cold_evaluations_first_request": large["cold_pull"]["casbin_evaluations_first_request"],
                "distinct_labels_per_page_mean": large["warm_pulls"]["distinct_labels_per_page"]["mean"],
            },
            "environment": environment(args, stores["large"]) | {"pull_phase": pulls_phase},
        }
        for server in servers.values():  # stop serving before the optional single-threaded profile
            server.__exit__(None, None, None)
        result["runtime_s"] = round(time.perf_counter() - started, 1)
        out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
        if args.profile:  # after the figures are safe on disk; not counted in runtime_s
            result["profile"] = profile_pull(stores["large"], token, args.page_size, out.with_suffix(""), log)
            out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
    table = markdown(result)
    print(table)
    print(f"\nruntime {result['runtime_s']} s; results written to {_display(out)}")
    return 0


def environment(args: argparse.Namespace, store: Store) -> dict:
    env = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "sqlite": sqlite3.sqlite_version,
        "load_average_at_start": LOAD_AT_START,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }
    if args.database == "postgresql":
        with store.app.state.engine.connect() as conn:
            env["postgresql"] = conn.execute(text("SHOW server_version")).scalar_one()
    return env


if __name__ == "__main__":
    sys.exit(main())
