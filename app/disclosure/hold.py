"""Holding versions for disclosure review, in the storing transaction (the ingest path's first hook).

A version the release rules hold (:mod:`app.disclosure.rules`) keeps its body and markings, but is
served under its *held label*: the marked label released to nobody. Every read decides by label in
SQL (TAXII pages and by-id answers, counts, live streams, push feeds, reference closure, the marking
definitions served beside it), so a held version is absent for every partner on every path, while
the home nation sees it as before. The marked label and the state of the review are in
``disclosure_review``. Held versions are passed on to no later hook: until released they withdraw
nothing (app/recall/).
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import insert, select
from sqlmodel import Session, col

from app.db.timestamps import now_us
from app.db.written import actor_of
from app.disclosure.models import PENDING, DisclosureReview, still_held
from app.disclosure.rules import ItemMarks, ReleaseRules, load_rules
from app.items.changes import StoredBatch, is_review_exempt, only_rows
from app.items.models import StixObject
from app.items.side_tables import relabel
from app.items.store import MARKING_DEFINITION
from app.markings.label_spec import LabelSpec
from app.markings.mappings import Mappings
from app.markings.service import intern_labels, label_specs
from app.taxii.models import Collection

log = logging.getLogger(__name__)


@dataclass
class DisclosureEnv:
    """What disclosure review needs of the app: the rules file, the tables and the home nation.

    The rules are read again when the file changes on disk (a stat per storing transaction); an
    invalid file refuses every store (raised), and once rules are in force a file removed or emptied
    leaves the last rules in force.
    """

    policies_dir: Path
    mappings: Mappings
    home_nation: str
    _rules: ReleaseRules | None = None
    _mtime: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def rules(self) -> ReleaseRules:
        """The current release rules (an invalid file raises: nothing is stored unreviewed)."""
        path = self.policies_dir / "disclosure.toml"
        mtime = path.stat().st_mtime if path.exists() else None
        with self._lock:
            if self._rules is None or mtime != self._mtime:
                loaded = load_rules(self.policies_dir, self.mappings)
                if self._rules is not None and self._rules.rules and not loaded.rules:
                    # Emptied (a rewrite in progress) or removed while rules were in force: the last
                    # rules stay, so nothing is released unreviewed meanwhile. Running without review
                    # takes a restart.
                    log.error("%s: removed or emptied while release rules were in force; the last rules stay", path)
                    return self._rules
                self._rules, self._mtime = loaded, mtime
            return self._rules


def held_spec(marked: LabelSpec, home_nation: str) -> LabelSpec:
    """The label a held version is served under: as marked, released to nobody, and the home nation's
    (so only the home nation sees it, at its clearance: not even the originator of a partner's item
    sees the home nation's new version of it before review)."""
    return LabelSpec(marked.rank, frozenset(), marked.caveats, home_nation)


def releases_to_anyone(spec: LabelSpec, mappings: Mappings, home_nation: str) -> bool:
    """Whether some partner could ever see a version of this label: a release named, or a partner
    originator (who sees its own item), and no home-only caveat."""
    home_only = any(mappings.caveats.get(caveat, "home_only") == "home_only" for caveat in spec.caveats)
    partner_originator = spec.originator not in (None, home_nation)
    return (bool(spec.releasable_to) or partner_originator) and not home_only


def tlp_levels(body: dict[str, Any], mappings: Mappings) -> frozenset[str] | None:
    """The TLP levels of the object's markings, granular ones included, when every one of them is
    TLP; else None (a classified paragraph makes an item TLP-marked no more)."""
    refs = [*(body.get("object_marking_refs") or [])]
    refs += [m.get("marking_ref") for m in body.get("granular_markings") or [] if isinstance(m, dict)]
    if not refs or any(ref not in mappings.tlp for ref in refs):
        return None
    return frozenset(mappings.tlp[ref][0] for ref in refs)


def _granular_ids(row: dict[str, Any]) -> list[int]:
    granular = row.get("granular")
    return list(orjson.loads(granular).values()) if granular else []


def on_stored(session: Session, batch: StoredBatch, env: DisclosureEnv) -> StoredBatch | None:
    """The after-store hook: hold the versions the rules hold; the rest go on to the next hook.

    Candidates are the versions the home nation wrote (its items, and its new versions of a partner's
    item), of every type but marking definitions (served only beside what they describe). An item's
    classification for the rules, the two-person rule and the officer's clearance is the highest of
    its object and granular markings.
    """
    if is_review_exempt(session):
        return None
    candidates = [
        row for row in batch.rows if row["submitter"] == env.home_nation and row["type"] != MARKING_DEFINITION
    ]
    if not candidates:
        return None
    rules = env.rules()
    if not rules.rules:
        return None
    collection = session.get(Collection, batch.collection_id)
    keys = {batch.collection_id, *([collection.alias] if collection is not None and collection.alias else [])}
    if not any(rule.applies_to(keys) for rule in rules.rules):
        return None  # a collection no rule names is not reviewed: nothing more to read
    specs = label_specs(session, {i for row in candidates for i in [row["label_id"], *_granular_ids(row)]})
    held = []
    for row in candidates:
        spec = specs[row["label_id"]]
        if not releases_to_anyone(spec, env.mappings, env.home_nation):
            continue
        body = orjson.loads(row["body"])
        if body.get("revoked") is True and _repeats_released(session, batch.collection_id, row, body):
            continue  # a revocation of released content only withdraws: it is never held back
        marks = ItemMarks.of([spec, *(specs[i] for i in _granular_ids(row))], tlp_levels(body, env.mappings))
        if rules.reviews(keys, marks):
            held.append((row, spec, marks.rank))
    if not held:
        return None
    _hold(session, env, batch.collection_id, held, rules)
    held_keys = {(row["object_id"], row["version_us"]) for row, _, _ in held}
    return only_rows(batch, lambda row: (row["object_id"], row["version_us"]) not in held_keys)


_NOT_CONTENT = ("modified", "revoked")


def _repeats_released(session: Session, collection_id: str, row: dict[str, Any], body: dict[str, Any]) -> bool:
    """Whether a revoked version says nothing new to anyone: its content and markings are those of a
    version in the same collection, not held, and still served under the very label the revocation
    gets (one withdrawn or recalled since, or held, or in another collection does not count). A
    revocation carrying anything more is reviewed like any version."""
    content = {k: v for k, v in body.items() if k not in _NOT_CONTENT}
    released = session.execute(
        select(col(StixObject.body)).where(
            col(StixObject.object_id) == row["object_id"],
            col(StixObject.collection_id) == collection_id,
            col(StixObject.version_us) != row["version_us"],
            col(StixObject.label_id) == row["label_id"],
            ~still_held(col(StixObject.pk)),
        )
    ).scalars()
    return any({k: v for k, v in orjson.loads(other).items() if k not in _NOT_CONTENT} == content for other in released)


def _hold(
    session: Session,
    env: DisclosureEnv,
    collection_id: str,
    held: list[tuple[dict[str, Any], LabelSpec, int]],
    rules: ReleaseRules,
) -> None:
    """Serve each version under its held label, and open its review (same transaction)."""
    home = env.home_nation
    held_ids = intern_labels(session, (held_spec(spec, home) for _, spec, _ in held), env.mappings)
    relabel(session, {row["pk"]: held_ids[held_spec(spec, home)] for row, spec, _ in held})
    posted = now_us()
    submitted_by = actor_of(session) or "unknown"
    reviews = []
    for row, _, rank in held:
        reviews.append(
            {
                "id": str(uuid.uuid4()),
                "object_pk": row["pk"],
                "object_id": row["object_id"],
                "version_us": row["version_us"],
                "collection_id": collection_id,
                "object_type": row["type"],
                "marked_label_id": row["label_id"],
                "rank": rank,
                "two_person": rules.needs_two(rank),
                "submitted_by": submitted_by,
                "posted_us": posted,
                "state": PENDING,
            }
        )
    session.connection().execute(insert(DisclosureReview.__table__), reviews)
