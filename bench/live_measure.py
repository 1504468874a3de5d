"""What the live benchmark times: one POST, and when each open stream had what it posted.

Part of ``bench/live.py`` (the entry point, which builds the store and writes the report). A
:class:`Ledger` sorts every message of the stream readers (:mod:`bench.live_streams`): per repeat,
when each stream that may see the post had all of it, and, loudly, any event a stream should not
have had (a *leak*: a nation the label does not release to, or one not cleared for it), any id
received twice, late or never. :func:`post_and_follow` runs the repeats of one (streams, batch)
configuration and :func:`summarise` turns them into the figures of ``bench/results/live.json``.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from bench.disclosure_seed import CommitClock, check
from bench.live_streams import StreamReaders
from bench.releasability import TAXII, make_indicator, percentile

GOAL_MS = 1000.0
DELIVERY_TIMEOUT_S = 10.0  # an allowed stream without the whole post by then has *missed* it
GAP_S = 0.25  # between repeats: the denied streams' reads and the last audit records settle
Log = Callable[[str], None]


@dataclass(frozen=True)
class StreamPlan:
    """One stream: its partner principal, and whether the posted label lets that nation see the posts."""

    index: int
    nation: str
    subject: str
    allowed: bool


class StoredClock:
    """When the app stored versions in the bench's collection (the server runs in this process).

    Two of the app's own moments: the storing session's commit (``CommitClock``, SQLAlchemy's
    ``after_commit``) and the app's stored signal (``app.state.stored_signal``: the storing connection
    went back to the pool, the moment streams are woken). The signal names only commits that stored
    versions, so the commit is the last one on the engine before it: no other request's commit is
    taken for the POST's.
    """

    def __init__(self, app: Any, collection_id: str) -> None:
        self.commits = CommitClock(app.state.engine)
        self.collection_id = collection_id
        self.announced: list[float] = []
        self._lock = threading.Lock()
        app.state.stored_signal.subscribe(self._stored)  # the app keeps it; it is dropped with the app

    def _stored(self, collection_ids: set[str]) -> None:
        if self.collection_id in collection_ids:
            with self._lock:
                self.announced.append(time.perf_counter())

    def stored_between(self, start: float, end: float) -> tuple[float, float]:
        """(commit, announcement) of the versions stored between ``start`` and ``end`` (perf_counter)."""
        with self._lock:
            announced = [t for t in self.announced if start <= t <= end]
        if not announced:
            raise SystemExit("the app announced no stored versions during the POST")
        committed = self.commits.last_between(start, announced[-1])
        if committed is None:
            raise SystemExit("no commit on the app's engine was seen before the POST's announcement")
        return committed, announced[-1]

    def close(self) -> None:
        """Stop listening to commits (the stored signal goes with the app)."""
        self.commits.close()


@dataclass
class Repeat:
    """One POST and its deliveries; times are perf_counter seconds, arrivals by stream index."""

    config: int
    number: int
    ids: set[str]
    sent: float = 0.0
    committed: float = 0.0
    announced: float = 0.0
    answered: float = 0.0
    arrivals: dict[int, float] = field(default_factory=dict)
    events: Counter[int] = field(default_factory=Counter)
    missed: dict[int, int] = field(default_factory=dict)


class Ledger:
    """Every message of one reader process, sorted into deliveries, leaks and anomalies."""

    def __init__(self, streams: list[StreamPlan]) -> None:
        self.streams = streams
        self.received: dict[int, set[str]] = {s.index: set() for s in streams}
        self.posted: dict[str, tuple[int, int]] = {}  # object id -> (config, repeat)
        self.current: Repeat | None = None
        self.pending: dict[int, set[str]] = {}
        self.keepalives: dict[int, float] = {}
        self.leaks: list[dict[str, Any]] = []
        self.anomalies: list[dict[str, Any]] = []

    def expect(self, repeat: Repeat) -> None:
        """``repeat``'s ids are about to be posted: every allowed stream now waits for all of them."""
        for object_id in repeat.ids:
            self.posted[object_id] = (repeat.config, repeat.number)
        self.current = repeat
        self.pending = {s.index: set(repeat.ids) for s in self.streams if s.allowed}

    def handle(self, message: dict[str, Any]) -> None:
        """Account for one reader message."""
        kind, index = message["kind"], message["stream"]
        plan = self.streams[index]
        if kind == "keepalive":
            self.keepalives.setdefault(index, message["at"])
            return
        if kind != "event":
            self.anomalies.append({"what": f"stream {kind}", "stream": index, "nation": plan.nation, **message})
            return
        ids: list[str] = message["ids"]
        seen = self.received[index]
        twice = [i for i in ids if i in seen]
        seen.update(ids)
        ours = [i for i in ids if i in self.posted]
        where = sorted({self.posted[i] for i in ours})
        if twice:
            self.anomalies.append(self._note("received twice", plan, twice, where))
        if len(ours) < len(ids):
            self.anomalies.append(self._note("not posted by the bench", plan, [i for i in ids if i not in self.posted]))
        if not plan.allowed:
            if ids:
                self.leaks.append(self._note("LEAK: event on a stream that may not see the posts", plan, ids, where))
            return
        current = self.current
        late = [i for i in ours if current is None or self.posted[i] != (current.config, current.number)]
        if late:
            self.anomalies.append(self._note("late (an earlier repeat's)", plan, late, where))
        waiting = self.pending.get(index)
        if current is None or waiting is None:
            return
        current.events[index] += 1
        waiting.difference_update(ids)
        if not waiting:
            current.arrivals[index] = message["at"]
            del self.pending[index]

    @staticmethod
    def _note(what: str, plan: StreamPlan, ids: list[str], where: Any = None) -> dict[str, Any]:
        return {
            "what": what,
            "stream": plan.index,
            "nation": plan.nation,
            "count": len(ids),
            "ids": ids[:3],
            "in": where,
        }

    def wait_delivered(self, readers: StreamReaders, deadline: float) -> None:
        """Handle messages until every allowed stream has the current repeat whole, or ``deadline``."""
        while self.pending:
            message = readers.get(deadline - time.perf_counter())
            if message is None:
                break
            self.handle(message)
        if self.current is not None:
            self.current.missed = {index: len(left) for index, left in self.pending.items()}
        self.pending = {}
        self.current = None

    def drain(self, readers: StreamReaders, seconds: float) -> None:
        """Handle whatever arrives for ``seconds`` (a late leak, a duplicate)."""
        deadline = time.perf_counter() + seconds
        while (message := readers.get(deadline - time.perf_counter())) is not None:
            self.handle(message)


@dataclass
class Poster:
    """The home analyst: POSTs envelopes of indicators marked with the bench's label."""

    client: httpx.Client
    objects_path: str
    token: str
    marking_ref: str
    rng: random.Random

    def envelope(self, batch: int) -> tuple[bytes, set[str]]:
        """A TAXII envelope of ``batch`` new indicators and their ids."""
        objects = [make_indicator(self.rng, self.marking_ref) for _ in range(batch)]
        return orjson.dumps({"objects": objects}), {o["id"] for o in objects}

    def post(self, body: bytes, batch: int) -> None:
        """POST ``body``; every object must be stored."""
        headers = {"Authorization": f"Bearer {self.token}", "Accept": TAXII, "Content-Type": TAXII}
        status = check(self.client.post(self.objects_path, content=body, headers=headers), 202, "POST").json()
        if status["failure_count"] or status["success_count"] != batch:
            raise SystemExit(f"POST refused objects: {status.get('failures', [])[:3]}")


def post_and_follow(
    poster: Poster,
    clock: StoredClock,
    readers: StreamReaders,
    ledger: Ledger,
    config: int,
    batch: int,
    repeats: int,
    log: Log,
) -> list[Repeat]:
    """One untimed (cold) repeat, then ``repeats``: POST ``batch`` objects, wait for every allowed stream.

    Returns every repeat, the cold one first (number 0). Events are read in the reader process while
    this thread POSTs, so the POST and the streams overlap as they would for a partner.
    """
    done: list[Repeat] = []
    for number in range(repeats + 1):
        body, ids = poster.envelope(batch)
        repeat = Repeat(config, number, ids)
        ledger.expect(repeat)
        repeat.sent = time.perf_counter()
        poster.post(body, batch)
        repeat.answered = time.perf_counter()
        repeat.committed, repeat.announced = clock.stored_between(repeat.sent, repeat.answered)
        ledger.wait_delivered(readers, repeat.answered + DELIVERY_TIMEOUT_S)
        done.append(repeat)
        if repeat.missed:
            log(f"    repeat {number}: {len(repeat.missed)} allowed streams MISSED part of the post: {repeat.missed}")
        ledger.drain(readers, GAP_S)
    return done


# --- figures -----------------------------------------------------------------------------------


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def _spread(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"p50": None, "p95": None, "max": None, "under_1s": None}
    return {
        "p50": round(percentile(values, 50), 2),
        "p95": round(percentile(values, 95), 2),
        "max": round(max(values), 2),
        "under_1s": round(sum(1 for v in values if v <= GOAL_MS) / len(values), 4),
    }


def _p50(values: list[float]) -> float | None:
    return round(percentile(values, 50), 2) if values else None


def _verdict(leaks: int, missed: int, p95: float | None) -> str:
    if leaks:
        return "LEAK"
    if missed:
        return "MISSED"
    if p95 is None:
        return "not measured"
    return "yes" if p95 <= GOAL_MS else "no"


def summarise(repeats: list[Repeat], streams: list[StreamPlan], ledger: Ledger, opened: float) -> dict[str, Any]:
    """The figures of one configuration: the timed repeats (the cold one apart), leaks and anomalies.

    ``opened`` is when the first stream opened: each repeat is dated from it (the streams re-check
    their principals every ``live_recheck_seconds`` from their opening, all at once).
    """
    cold, timed = repeats[0], repeats[1:]
    config = cold.config
    allowed = [s.index for s in streams if s.allowed]
    origins = {"from_commit": "committed", "from_response": "answered", "from_sent": "sent"}
    latency = {
        name: _spread([_ms(r.arrivals[i] - getattr(r, origin)) for r in timed for i in allowed if i in r.arrivals])
        for name, origin in origins.items()
    }
    post = _spread([_ms(r.answered - r.sent) for r in timed])
    per_stream = {i: _p50([_ms(r.arrivals[i] - r.committed) for r in timed if i in r.arrivals]) for i in allowed}
    measured = {i: ms for i, ms in per_stream.items() if ms is not None}
    slowest = max(measured, key=lambda i: measured[i]) if measured else None
    leaks = [leak for leak in ledger.leaks if any(c == config for c, _ in leak["in"] or [])]
    anomalies = [a for a in ledger.anomalies if not a.get("in") or any(c == config for c, _ in a["in"])]
    missed = sum(len(r.missed) for r in repeats)
    commit_p50, post_p50 = latency["from_commit"]["p50"], post["p50"]
    events = Counter(n for r in timed for n in r.events.values())
    return {
        "post_ms": post,
        "latency_ms": latency,
        "ratio_p50_to_post": round(commit_p50 / post_p50, 2) if commit_p50 is not None and post_p50 else None,
        "commit_to_announce_ms_p50": _p50([_ms(r.announced - r.committed) for r in timed]),
        "fan_out_ms_p50": _p50([_ms(max(r.arrivals.values()) - min(r.arrivals.values())) for r in timed if r.arrivals]),
        "slowest_stream": (
            None
            if slowest is None
            else {"stream": slowest, "nation": streams[slowest].nation, "p50_from_commit_ms": measured[slowest]}
        ),
        "events_per_delivery": {str(n): times for n, times in sorted(events.items())},
        "cold": {
            "post_ms": _ms(cold.answered - cold.sent),
            "max_from_commit_ms": _ms(max(cold.arrivals.values()) - cold.committed) if cold.arrivals else None,
        },
        "per_repeat": [
            {
                "number": r.number,
                "sent_after_open_s": round(r.sent - opened, 3),
                "post_ms": _ms(r.answered - r.sent),
                "commit_after_sent_ms": _ms(r.committed - r.sent),
                "arrivals_from_commit_ms": {str(i): _ms(t - r.committed) for i, t in sorted(r.arrivals.items())},
                "missed": {str(i): n for i, n in r.missed.items()},
            }
            for r in repeats
        ],
        "missed_deliveries": missed,
        "leaks": leaks,
        "anomalies": anomalies,
        "verdict": _verdict(len(leaks), missed, latency["from_commit"]["p95"]),
    }
