"""Workload generator for the peer benchmark (issue 7).

N realistic STIX 2.1 object versions: indicators, malware, relationships and
reports (about 700 bytes median), over ``labels`` distinct Tearline labels whose
releasable-to lists name 10 partner nations and their groups; 5% carry a
granular marking (on ``description``, with another label), 10% of the objects
have several versions. Half of the labels are visible to the pulling partner
(USA), so it sees about half of the store.

The label mix and the indicator shape come from :mod:`bench.releasability`
(same seeds, same helpers), so the two benchmarks describe the same world.
Everything is a pure function of the seed: the same N and seed give the same
objects, and a smaller N is a prefix of a larger one.
"""

from __future__ import annotations

import hashlib
import random
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from app.markings.labels import LabelSpec, label_marking_definition
from app.markings.mappings import Mappings
from bench.releasability import (
    ACTIVITIES,
    IDENTITY,
    MALWARE,
    SECTORS,
    SOURCES,
    THREATS,
    TIME_BASE,
    TIME_SPAN_MS,
    _ms,
    _word,
    make_indicator,
    make_labels,
)

PARTNERS = [  # (nation, clearance rank, groups): 10 partner nations, as in a real exchange
    ("USA", 3, ["FVEY", "NATO"]),
    ("GBR", 3, ["FVEY", "NATO"]),
    ("CAN", 2, ["FVEY", "NATO"]),
    ("AUS", 3, ["FVEY"]),
    ("NZL", 2, ["FVEY"]),
    ("FRA", 2, ["NATO", "EU"]),
    ("DEU", 2, ["NATO", "EU"]),
    ("ITA", 2, ["NATO", "EU"]),
    ("ESP", 1, ["NATO", "EU"]),
    ("POL", 2, ["NATO", "EU"]),
]
PULLER = "USA"
GRANULAR_SHARE = 0.05
VERSIONED_SHARE = 0.10
MIX = [("indicator", 0.55), ("malware", 0.10), ("relationship", 0.25), ("report", 0.10)]
MALWARE_TYPES = ["backdoor", "downloader", "dropper", "ransomware", "remote-access-trojan", "spyware", "worm"]


@dataclass
class Workload:
    """Label definitions and a repeatable stream of object versions."""

    seed: int
    definitions: list[dict]
    visible_refs: set[str]

    def objects(self, count: int) -> Iterator[dict]:
        """``count`` object versions (not counting the definitions), in submission order."""
        rng = random.Random(f"{self.seed}:workload")
        refs = [d["id"] for d in self.definitions]
        recent: list[str] = []  # indicator and malware ids that relationships and reports point at
        pending: list[tuple[int, dict]] = []  # (due position, later version)
        produced = 0
        while produced < count:
            if pending and pending[0][0] <= produced:
                yield pending.pop(0)[1]
                produced += 1
                continue
            obj = self._make(rng, rng.choice(refs), recent)
            if rng.random() < GRANULAR_SHARE and "description" in obj:
                other = rng.choice(refs)
                obj["granular_markings"] = [{"marking_ref": other, "selectors": ["description"]}]
            if obj["type"] in ("indicator", "malware"):  # what relationships may connect
                recent.append(obj["id"])
            if len(recent) > 500:
                recent.pop(0)
            if rng.random() < VERSIONED_SHARE:
                # A later version (new modified, possibly new label), submitted some envelopes later.
                newer = dict(obj)
                newer["modified"] = _ms(_ms_of(obj["modified"]) + rng.randrange(1, 90 * 86400 * 1000))
                newer["object_marking_refs"] = [rng.choice(refs)]
                pending.append((produced + rng.randrange(50, 3000), newer))
                pending.sort(key=lambda item: item[0])
            yield obj
            produced += 1

    def _make(self, rng: random.Random, ref: str, recent: list[str]) -> dict:
        kind = rng.choices([k for k, _ in MIX], weights=[w for _, w in MIX])[0]
        if kind == "indicator" or (kind in ("relationship", "report") and len(recent) < 2):
            return make_indicator(rng, ref)
        created = TIME_BASE + rng.randrange(TIME_SPAN_MS)
        common = {
            "spec_version": "2.1",
            "created_by_ref": IDENTITY,
            "created": _ms(created),
            "modified": _ms(created),
            "object_marking_refs": [ref],
        }
        if kind == "malware":
            name = f"{rng.choice(MALWARE)} {_word(rng, 2)}"
            return {
                "type": "malware",
                "id": _id(rng, "malware"),
                **common,
                "name": name,
                "description": f"{name}: {rng.choice(ACTIVITIES)} tooling seen against {rng.choice(SECTORS)}.",
                "malware_types": sorted(rng.sample(MALWARE_TYPES, rng.randint(1, 2))),
                "is_family": False,
                "labels": [rng.choice(THREATS).lower().replace(" ", "-")],
                "external_references": [
                    {"source_name": "tearline-bench", "url": f"https://intel.example.org/m/{rng.getrandbits(24):06x}"}
                ],
            }
        if kind == "relationship":
            source, target = rng.sample(recent, 2)
            return {
                "type": "relationship",
                "id": _id(rng, "relationship"),
                **common,
                "relationship_type": "related-to",
                "source_ref": source,
                "target_ref": target,
                "description": f"Observed together by {rng.choice(SOURCES)} "
                f"({rng.choice(['low', 'moderate', 'high'])} confidence).",
                "start_time": _ms(created),
                "stop_time": _ms(created + rng.randrange(1, 86400 * 1000)),
            }
        return {
            "type": "report",
            "id": _id(rng, "report"),
            **common,
            "name": f"{rng.choice(THREATS)} activity against {rng.choice(SECTORS)}",
            "description": " ".join(
                f"{rng.choice(ACTIVITIES).capitalize()} observed by {rng.choice(SOURCES)}."
                for _ in range(rng.randint(1, 2))
            ),
            "report_types": ["threat-report"],
            "published": _ms(created),
            "object_refs": rng.sample(recent, min(len(recent), rng.randint(2, 5))),
        }

    def envelopes(self, count: int, size: int = 1000) -> Iterator[list[dict]]:
        """Envelopes of ``size`` objects; the label definitions open the first."""
        batch = list(self.definitions)
        for obj in self.objects(count):
            batch.append(obj)
            if len(batch) >= size:
                yield batch
                batch = []
        if batch:
            yield batch


def _id(rng: random.Random, kind: str) -> str:
    return f"{kind}--{uuid.UUID(int=rng.getrandbits(128), version=4)}"


def _ms_of(text: str) -> int:
    from app.db.timestamps import parse_us

    return parse_us(text) // 1000


def make_workload(seed: int, label_count: int, mappings: Mappings) -> Workload:
    """Labels (half visible to USA, from :func:`bench.releasability.make_labels`) and their definitions."""
    labels: list[tuple[LabelSpec, bool]] = make_labels(random.Random(f"{seed}:labels"), label_count, mappings)
    definitions = [label_marking_definition(spec, mappings) for spec, _ in labels]
    visible = {d["id"] for d, (_, shown) in zip(definitions, labels) if shown}
    return Workload(seed, definitions, visible)


def code_state(domain: str) -> dict[str, Any]:
    """The commit checked out and a digest of ``app/<domain>/`` (a result may come from uncommitted work)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        head = None
    digest = hashlib.sha256()
    for path in sorted((REPO_ROOT / "app" / domain).glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return {"head": head, f"app_{domain}_sha256": digest.hexdigest()[:16]}
