"""What the disclosure benchmark times: the officer's reads, the batch releases, and profiles.

Split from ``bench/disclosure.py`` (the entry point): each function here takes a seeded
:class:`bench.disclosure_seed.Store` and returns or fills :class:`Measure` objects, whose summaries
are the ``measures`` of ``bench/results/disclosure.json``. Slow measures are profiled in process.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import httpx
import orjson
from httpx_sse import connect_sse
from sqlalchemy import select
from sqlmodel import Session

from app.db.timestamps import format_us
from app.disclosure.models import DisclosureReview
from bench.disclosure_seed import QUEUE, Store, check

GOAL_MS = 1000.0
REVIEW = "/api/v1/disclosure/reviews/{}"
PREVIEW = "/api/v1/disclosure/preview"
DECISIONS = "/api/v1/disclosure/decisions"
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


def _display(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)
