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
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import hashlib
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import httpx
import orjson
from httpx_sse import connect_sse
from jose import jwk
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session

from app.auth.keys import generate_key_pair
from app.auth.tokens import issue_token
from app.db import migrations
from app.db.timestamps import format_us
from app.disclosure.models import PENDING, DisclosureReview
from app.main import create_app
from app.partners.service import save_partner
from app.taxii import service
from bench.releasability import DEFAULT_PG_ADMIN_URL, HOME, TAXII, ServerThread, database, make_settings

GOAL_MS = 1000.0
DATABASES = ("sqlite", "postgresql")
QUEUE = "/api/v1/disclosure/queue"
REVIEW = "/api/v1/disclosure/reviews/{}"
PREVIEW = "/api/v1/disclosure/preview"
DECISIONS = "/api/v1/disclosure/decisions"
RULES = """# bench/disclosure.py: every analyst post is held (TLP:CLEAR/GREEN aside); one officer decides.

[[rule]]
collections = ["*"]
tlp = ["clear", "white", "green"]
review = false

[[rule]]
collections = ["*"]
review = true
"""
# (nation, clearance rank, groups): USA reads every item; the others see some.
PARTNERS = [
    ("USA", 3, ["FVEY", "NATO"]),
    ("GBR", 3, ["FVEY", "NATO"]),
    ("CAN", 2, ["FVEY", "NATO"]),
    ("AUS", 3, ["FVEY"]),
    ("NZL", 2, ["FVEY"]),
    ("FRA", 2, ["NATO", "EU"]),
    ("DEU", 2, ["NATO", "EU"]),
    ("ITA", 1, ["NATO", "EU"]),
    ("ESP", 1, ["NATO", "EU"]),
    ("POL", 1, ["NATO", "EU"]),
]
PULLER = "USA"
CLASSIFICATIONS = ("RESTRICTED", "CONFIDENTIAL", "SECRET")
RELEASES = (
    "USA",
    "USA, GBR",
    "USA, GBR, CAN, AUS, NZL",
    "USA, FRA, DEU",
    "USA, GBR, FRA, DEU, ITA, ESP, POL",
    "USA, CAN, POL",
)
GRANULAR_BANNER = "SECRET//REL TO USA, GBR"
MEASURES = (
    "queue_first_page_100",
    "queue_first_page_1000",
    "review_preview",
    "union_preview",
    "batch_release",
    "pull_after_release",
    "stream_after_release",
)
MEASURE_TEXT = {
    "queue_first_page_100": "open the queue: first page of 100",
    "queue_first_page_1000": "open the queue: first page of 1,000",
    "review_preview": "one item's per-partner preview (GET reviews/{id})",
    "union_preview": "union preview of the batch (POST preview)",
    "batch_release": "release the batch in one action (POST decisions)",
    "pull_after_release": "release commit -> USA TAXII pull (added_after) has the whole batch",
    "stream_after_release": "release commit -> USA live stream has delivered the whole batch",
}


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


# --- the workload ------------------------------------------------------------------------------


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


@dataclass
class Workload:
    """The label definitions (posted first) and a generator of posts of held items."""

    seed: int
    definitions: list[dict[str, Any]]
    refs: list[str]
    granular_ref: str

    def posts(self, items: int, size: int) -> Iterator[list[dict[str, Any]]]:
        """Envelopes of ``size`` items (the last may be smaller); a report names indicators of its own post."""
        rng = random.Random(self.seed)
        made = 0
        when = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        while made < items:
            post: list[dict[str, Any]] = []
            indicators: list[str] = []
            for _ in range(min(size, items - made)):
                when += dt.timedelta(seconds=1)
                stamp = when.strftime("%Y-%m-%dT%H:%M:%S.000Z")
                marking = rng.choice(self.refs)
                if len(indicators) >= 5 and rng.random() < 0.1:
                    names = rng.sample(indicators[-50:], rng.randint(2, 5))
                    post.append(
                        {
                            "type": "report",
                            "spec_version": "2.1",
                            "id": f"report--{uuid.UUID(int=rng.getrandbits(128), version=4)}",
                            "created": stamp,
                            "modified": stamp,
                            "name": f"Activity summary {made:05d}",
                            "description": "Indicators seen together in one intrusion, for partners' hunting.",
                            "report_types": ["threat-report"],
                            "published": stamp,
                            "object_refs": names,
                            "object_marking_refs": [marking],
                        }
                    )
                else:
                    octets = ".".join(str(rng.randint(1, 254)) for _ in range(4))
                    obj = {
                        "type": "indicator",
                        "spec_version": "2.1",
                        "id": f"indicator--{uuid.UUID(int=rng.getrandbits(128), version=4)}",
                        "created": stamp,
                        "modified": stamp,
                        "name": f"C2 address {octets}",
                        "description": f"Beaconing destination seen in incident response {made:05d}.",
                        "indicator_types": ["malicious-activity"],
                        "pattern": f"[ipv4-addr:value = '{octets}']",
                        "pattern_type": "stix",
                        "valid_from": stamp,
                        "object_marking_refs": [marking],
                    }
                    if rng.random() < 0.05:
                        obj["granular_markings"] = [{"marking_ref": self.granular_ref, "selectors": ["description"]}]
                    post.append(obj)
                    indicators.append(obj["id"])
                made += 1
            yield post


def make_workload(seed: int) -> Workload:
    rng = random.Random(seed)
    definitions = []
    for classification in CLASSIFICATIONS:
        for release in RELEASES:
            definition = statement(f"{classification}//REL TO {release}")
            definition["id"] = f"marking-definition--{uuid.UUID(int=rng.getrandbits(128), version=4)}"
            definitions.append(definition)
    granular = statement(GRANULAR_BANNER)
    granular["id"] = f"marking-definition--{uuid.UUID(int=rng.getrandbits(128), version=4)}"
    return Workload(seed, [*definitions, granular], [d["id"] for d in definitions], granular["id"])


# --- the store ---------------------------------------------------------------------------------


class CommitClock:
    """perf_counter times at which sessions on one engine committed (the server runs in this process)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.times: list[float] = []
        self._lock = threading.Lock()
        event.listen(OrmSession, "after_commit", self._committed)

    def _committed(self, session: OrmSession) -> None:
        if session.bind is self.engine:
            with self._lock:
                self.times.append(time.perf_counter())

    def last_between(self, start: float, end: float) -> float | None:
        with self._lock:
            inside = [t for t in self.times if start <= t <= end]
        return max(inside) if inside else None

    def close(self) -> None:
        event.remove(OrmSession, "after_commit", self._committed)


@dataclass
class Store:
    kind: str
    app: Any
    client: httpx.Client
    api_root: str
    collection_id: str
    officer: dict[str, str]
    analyst: dict[str, str]
    partner: dict[str, str]
    partner_token: str
    officer_token: str
    clock: CommitClock
    seed: dict[str, Any] = field(default_factory=dict)

    @property
    def objects_path(self) -> str:
        return f"/taxii2/{self.api_root}/collections/{self.collection_id}/objects/"

    @property
    def events_path(self) -> str:
        return f"/taxii2/{self.api_root}/collections/{self.collection_id}/events/"


def check(response: httpx.Response, expected: int, what: str) -> httpx.Response:
    if response.status_code != expected:
        raise SystemExit(f"{what} answered {response.status_code}: {response.text[:500]}")
    return response


def policies_copy(work: Path) -> Path:
    """``policies/`` with the bench's release rules."""
    directory = work / "policies"
    shutil.copytree(REPO_ROOT / "policies", directory)
    (directory / "disclosure.toml").write_text(RULES)
    return directory


def seed_store(store: Store, workload: Workload, items: int, batch: int, log: Callable[[str], None]) -> None:
    """POST the definitions, then the items in envelopes of ``batch``; every item must be held."""
    headers = store.analyst | {"Content-Type": TAXII}

    def post(objects: list[dict[str, Any]]) -> None:
        body = orjson.dumps({"objects": objects})
        status = check(store.client.post(store.objects_path, content=body, headers=headers), 202, "POST").json()
        if status["failure_count"] or status["success_count"] != len(objects):
            raise SystemExit(f"POST refused objects: {status.get('failures', [])[:3]}")

    post(workload.definitions)
    started = time.perf_counter()
    posted = 0
    for envelope in workload.posts(items, batch):
        post(envelope)
        posted += len(envelope)
        if posted % 5000 == 0 or posted == items:
            log(f"  {store.kind}: {posted:,} / {items:,} items posted")
    seconds = time.perf_counter() - started
    with Session(store.app.state.engine) as session:
        pending = session.execute(
            select(func.count()).select_from(DisclosureReview).where(DisclosureReview.state == PENDING)
        ).scalar_one()
    if pending != items:
        raise SystemExit(f"{pending} reviews pending after posting {items} items: the rules did not hold them all")
    store.seed = {
        "items": items,
        "envelope": batch,
        "seconds": round(seconds, 3),
        "items_per_s": round(items / seconds, 1),
        "pending": pending,
    }


def pending_ids(store: Store) -> list[str]:
    """Every pending review id, in queue order (oldest first), paging the queue (untimed)."""
    ids: list[str] = []
    params: dict[str, Any] = {"limit": 1000}
    while True:
        page = check(store.client.get(QUEUE, headers=store.officer, params=params), 200, "queue").json()
        ids += [r["id"] for r in page["reviews"]]
        if not page["next"]:
            return ids
        params = {"limit": 1000, "after": page["next"]}


# --- measures ----------------------------------------------------------------------------------


@dataclass
class Measure:
    name: str
    ms: list[float] = field(default_factory=list)
    cold_ms: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        median = round(statistics.median(self.ms), 2) if self.ms else None
        worst = max(self.ms) if self.ms else None
        if median is None or worst is None:
            verdict = "not measured"
        elif worst <= GOAL_MS:
            verdict = "yes"
        elif median <= GOAL_MS:
            verdict = "median only"
        else:
            verdict = "no"
        return {
            "what": MEASURE_TEXT[self.name],
            "ms": self.ms,
            "median_ms": median,
            "max_ms": worst,
            "cold_ms": self.cold_ms,
            "goal_ms": GOAL_MS,
            "goal_met": verdict == "yes",
            "verdict": verdict,
            **self.extra,
        }


def timed(call: Callable[..., httpx.Response], path: str, what: str, **kwargs: Any) -> tuple[float, httpx.Response]:
    """One request, timed from sending to the last byte of the answer (not parsed); it must answer 200."""
    started = time.perf_counter()
    response = call(path, **kwargs)
    elapsed = time.perf_counter() - started
    check(response, 200, what)
    return elapsed, response


def measure_reads(store: Store, ids: list[str], batch: int, repeats: int) -> dict[str, Measure]:
    client, officer = store.client, store.officer
    measures = {name: Measure(name) for name in MEASURES}
    for limit in (100, 1000):
        m = measures[f"queue_first_page_{limit}"]
        for i in range(repeats + 1):
            elapsed, response = timed(client.get, QUEUE, "queue", headers=officer, params={"limit": limit})
            if i == 0:
                m.cold_ms = _ms(elapsed)
                m.extra["reviews"] = len(response.json()["reviews"])
            else:
                m.ms.append(_ms(elapsed))
    m = measures["review_preview"]
    rng = random.Random(7)
    for i in range(repeats + 1):
        review_id = rng.choice(ids)
        elapsed, response = timed(client.get, REVIEW.format(review_id), "review", headers=officer)
        if i == 0:
            m.cold_ms = _ms(elapsed)
            m.extra["partners"] = len(response.json()["partners"])
        else:
            m.ms.append(_ms(elapsed))
    m = measures["union_preview"]
    windows = [ids[k * batch : (k + 1) * batch] for k in range(max(1, len(ids) // batch))]
    for i in range(repeats + 1):
        window = windows[i % len(windows)]
        elapsed, response = timed(client.post, PREVIEW, "union preview", headers=officer, json={"reviews": window})
        views = response.json()["partners"]
        if i == 0:
            m.cold_ms = _ms(elapsed)
            m.extra |= {
                "items": len(window),
                "partners": len(views),
                "response_bytes": len(response.content),
                "would_receive_per_partner": {v["nation"]: v["would_receive"] for v in views},
            }
        else:
            m.ms.append(_ms(elapsed))
    return measures


class StreamWatcher:
    """A USA live stream (SSE) in a thread: when has it delivered every id of ``wanted``?"""

    def __init__(self, store: Store, added_after: str, wanted: set[str], base_url: str) -> None:
        self.wanted = set(wanted)
        self.seen: set[str] = set()
        self.events = 0
        self.done_at: float | None = None
        self.opened = threading.Event()
        self.finished = threading.Event()
        self.error: str | None = None
        self.client = httpx.Client(base_url=base_url, timeout=httpx.Timeout(60, read=120))
        self.args = (
            store.events_path,
            {"added_after": added_after},
            {"Authorization": f"Bearer {store.partner_token}", "Accept": "text/event-stream"},
        )
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        path, params, headers = self.args
        try:
            with connect_sse(self.client, "GET", path, params=params, headers=headers) as source:
                if source.response.status_code != 200:
                    self.error = f"events answered {source.response.status_code}"
                    return
                self.opened.set()
                for sse in source.iter_sse():
                    if sse.event != "objects":
                        continue
                    self.events += 1
                    self.seen.update(o["id"] for o in orjson.loads(sse.data).get("objects", []))
                    if self.wanted <= self.seen:
                        self.done_at = time.perf_counter()
                        return
        except (httpx.HTTPError, RuntimeError) as exc:
            if not self.finished.is_set():
                self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.opened.set()
            self.finished.set()

    def __enter__(self) -> StreamWatcher:
        self.thread.start()
        if not self.opened.wait(30) or self.error:
            raise SystemExit(f"the live stream did not open: {self.error}")
        return self

    def wait(self, timeout: float) -> float | None:
        self.thread.join(timeout)
        return self.done_at

    def __exit__(self, *exc: object) -> None:
        self.finished.set()
        self.client.close()
        self.thread.join(10)


def pull_until(store: Store, added_after: str, wanted: set[str], timeout: float) -> tuple[float | None, int, int]:
    """Pull as USA with ``added_after`` (every page) until the pull holds every id of ``wanted``.

    Returns the perf_counter time when it did (None on timeout), the pulls and the requests made.
    """
    deadline = time.perf_counter() + timeout
    pulls = requests = 0
    while time.perf_counter() < deadline:
        pulls += 1
        seen: set[str] = set()
        params: dict[str, str] = {"added_after": added_after, "limit": "1000"}
        while True:
            requests += 1
            response = check(store.client.get(store.objects_path, headers=store.partner, params=params), 200, "pull")
            document = orjson.loads(response.content)
            seen.update(o["id"] for o in document.get("objects", []))
            if not document.get("more"):
                break
            params = {"added_after": added_after, "limit": "1000", "next": document["next"]}
        if wanted <= seen:
            return time.perf_counter(), pulls, requests
    return None, pulls, requests


def object_ids(store: Store, review_ids: list[str]) -> set[str]:
    with Session(store.app.state.engine) as session:
        return set(
            session.execute(select(DisclosureReview.object_id).where(DisclosureReview.id.in_(review_ids))).scalars()
        )


def measure_releases(
    store: Store, ids: list[str], batch: int, repeats: int, base_url: str, measures: dict[str, Measure], log
) -> None:
    release, pulled, streamed = (measures[n] for n in ("batch_release", "pull_after_release", "stream_after_release"))
    release.extra["items"] = batch
    from_response: list[float] = []
    pulls_made: list[int] = []
    stream_events: list[int] = []
    for i in range(repeats):
        window = ids[i * batch : (i + 1) * batch]
        wanted = object_ids(store, window)
        added_after = format_us(time.time_ns() // 1000 - 1000)  # before the release's new date_added
        with StreamWatcher(store, added_after, wanted, base_url) as stream:
            body = {"reviews": window, "action": "release", "reason": "bench: checked against the partner preview"}
            started = time.perf_counter()
            response = store.client.post(DECISIONS, headers=store.officer, json=body)
            answered = time.perf_counter()
            check(response, 200, "release")
            outcomes = response.json()["outcomes"]
            if len(outcomes) != len(window) or any(o["state"] != "released" for o in outcomes):
                raise SystemExit(f"the release did not release every item: {outcomes[:3]}")
            committed = store.clock.last_between(started, answered)
            if committed is None:
                raise SystemExit("no commit on the app's engine was seen during the release")
            seen_at, pulls, _ = pull_until(store, added_after, wanted, timeout=30)
            if seen_at is None:
                raise SystemExit(f"USA's pull did not see the {len(wanted)} released items within 30 s")
            done_at = stream.wait(timeout=30)
            if done_at is None:
                raise SystemExit(
                    f"the live stream delivered {len(stream.seen & wanted)} of {len(wanted)} released items "
                    f"within 30 s ({stream.error or 'no error'})"
                )
            stream_events.append(stream.events)
        release.ms.append(_ms(answered - started))
        pulled.ms.append(_ms(seen_at - committed))
        streamed.ms.append(_ms(done_at - committed))
        from_response.append(_ms(seen_at - answered))
        pulls_made.append(pulls)
        log(
            f"  {store.kind}: release {i + 1}: {release.ms[-1]} ms; pull had all {len(wanted)} "
            f"{pulled.ms[-1]} ms after the commit, the stream {streamed.ms[-1]} ms"
        )
    pulled.extra |= {"items": batch, "ms_from_response": from_response, "pulls_needed": pulls_made}
    streamed.extra |= {"items": batch, "events": stream_events}


# --- profiling ---------------------------------------------------------------------------------


def profile_request(
    app: Any, method: str, path: str, token: str, params: dict[str, Any] | None, body: Any, out: Path
) -> dict[str, Any]:
    """One request under pyinstrument, in process: every thread hop inline, so one thread sees it all."""
    import anyio.to_thread
    from pyinstrument import Profiler

    original = anyio.to_thread.run_sync

    async def inline(func: Callable[..., Any], *args: Any, **_kwargs: Any) -> Any:
        return func(*args)

    async def run() -> tuple[int, float]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", headers={"Authorization": f"Bearer {token}"}, timeout=300
        ) as client:
            started = time.perf_counter()
            response = await client.request(method, path, params=params, json=body)
            return response.status_code, time.perf_counter() - started

    anyio.to_thread.run_sync = inline  # type: ignore[assignment]
    try:
        profiler = Profiler(interval=0.001)
        profiler.start()
        status, elapsed = asyncio.run(run())
        profiler.stop()
    finally:
        anyio.to_thread.run_sync = original  # type: ignore[assignment]
    out.write_text(profiler.output_text(unicode=False, color=False, show_all=False))
    return {"status": status, "ms": _ms(elapsed), "text": _display(out)}


def profile_slow(
    store: Store,
    measures: dict[str, Measure],
    ids: list[str],
    released: int,
    batch: int,
    threshold_ms: float,
    out_base: Path,
    log,
) -> dict[str, Any]:
    """Profile each measure with a repeat over ``threshold_ms`` (a release: one more batch, if left)."""
    profiles: dict[str, Any] = {}
    token = store.officer_token
    for name, m in measures.items():
        if not m.ms or max(m.ms) <= threshold_ms:
            continue
        out = out_base.parent / f"{out_base.stem}-{store.kind}-{name}.profile.txt"
        if name.startswith("queue_first_page_"):
            limit = int(name.rsplit("_", 1)[1])
            profiles[name] = profile_request(store.app, "GET", QUEUE, token, {"limit": limit}, None, out)
        elif name == "review_preview":
            profiles[name] = profile_request(store.app, "GET", REVIEW.format(ids[-1]), token, None, None, out)
        elif name == "union_preview":
            window = ids[-batch:]
            profiles[name] = profile_request(store.app, "POST", PREVIEW, token, None, {"reviews": window}, out)
        elif name == "batch_release":
            window = ids[released : released + batch]
            if len(window) < batch:
                log(f"  {store.kind}: no batch left to profile a release")
                continue
            body = {"reviews": window, "action": "release", "reason": "bench: profiled release"}
            profiles[name] = profile_request(store.app, "POST", DECISIONS, token, None, body, out)
            released += batch
        elif name == "pull_after_release":
            params = {"added_after": format_us(0), "limit": "1000"}
            profiles[name] = profile_request(
                store.app, "GET", store.objects_path, store.partner_token, params, None, out
            )
        else:
            log(f"  {store.kind}: {name} is not profiled in process (a live stream)")
            continue
        log(f"  {store.kind}: profiled {name}: {profiles[name]['ms']} ms in process -> {profiles[name]['text']}")
    return profiles


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
        migrations.upgrade(settings.database_url)
        app = create_app(settings)
        stack.callback(app.state.audit_engine.dispose)
        stack.callback(app.state.engine.dispose)
        with Session(app.state.engine) as session:
            for nation, clearance, groups in PARTNERS:
                save_partner(
                    session,
                    nation=nation,
                    clearance=clearance,
                    groups=groups,
                    home_nation=HOME,
                    mappings=app.state.mappings,
                )
            collection_id = service.create_collection(
                session, title="disclosure bench", read_roles={"partner", "analyst"}, write_roles={"analyst"}
            ).id
        key = jwk.construct((key_dir / "jwt-private.pem").read_text(), "RS256")

        def token(subject: str, nation: str, roles: list[str]) -> str:
            return issue_token(
                key=key,  # type: ignore[arg-type]  # jose takes a constructed key as well as PEM text
                algorithm="RS256",
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
                subject=subject,
                nation=nation,
                roles=roles,
                lifetime_s=7200,
            )

        def headers(value: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {value}", "Accept": TAXII}

        officer_token = token("bench-officer", HOME, ["officer"])
        partner_token = token("bench-usa", PULLER, ["partner"])
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
            headers(token("bench-analyst", HOME, ["analyst"])),
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


def _display(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def code_state() -> dict[str, Any]:
    """The commit checked out and a digest of app/disclosure/ (work in progress is not committed yet)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        head = None
    digest = hashlib.sha256()
    for path in sorted((REPO_ROOT / "app" / "disclosure").glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return {"head": head, "app_disclosure_sha256": digest.hexdigest()[:16]}


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
        "code": code_state(),
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
