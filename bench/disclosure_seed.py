"""The disclosure benchmark's world: its held workload and the live store an officer works on.

Split from ``bench/disclosure.py`` (the entry point, which builds the store and writes the results):
this module makes the analyst posts the release rules hold, POSTs them over TAXII, and lists the
queue they land in; :mod:`bench.disclosure_measure` times what the officer then does with them.
"""

from __future__ import annotations

import datetime as dt
import random
import shutil
import sys
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
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session

from app.disclosure.models import PENDING, DisclosureReview
from bench.releasability import TAXII

QUEUE = "/api/v1/disclosure/queue"
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
