"""Issuing recalls: withdraw versions from nations, record the recall, store each recipient's notice.

A version is *withdrawn* from a nation by narrowing the label it is served under: the new label
releases it to exactly the partner nations that could see it before, less the withdrawn ones, and
every read (TAXII, live streams, push feeds, reference closure, counts) already decides by label,
in SQL. The label its markings state stays in its body, which is never changed.

Everything runs inside the caller's transaction: the recall, its notices and the narrowed labels
commit with the version or request that caused them, or not at all.
"""

from __future__ import annotations

import threading
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import delete, insert, select, update
from sqlmodel import Session, col

from app.auth.principal import Principal
from app.db.engine import dialect_insert
from app.db.timestamps import format_us, now_us
from app.db.written import note_written
from app.disclosure.models import still_held
from app.items import ingest
from app.items.changes import review_exempt
from app.items.models import ObjectReference, StixObject
from app.items.side_tables import relabel
from app.markings.label_spec import LabelSpec
from app.markings.labels import label_marking_definition
from app.markings.mappings import Mappings
from app.markings.service import intern_labels, label_specs
from app.partners.models import Partner
from app.policy.visibility import VisibilityCache
from app.recall.models import Recall, RecalledVersion, RecallNotice, RecallWatch
from app.recall.notice import NoticeFacts, RecallExtension, build_notice, notice_label
from app.recall.recipients import Receipt

WATCH_S = 60
"""How long an object is swept for late recipients after a withdrawal (app/recall/sweep.py): far
longer than any read between its query and its audit record (written before the first byte)."""


class SeersCache:
    """Which partner nations may see each label, for one policy generation (labels never change;
    partners and groups changing bump the policy epoch, and so the generation)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generation: object = None
        self._seers: dict[int, frozenset[str]] = {}

    def for_generation(self, generation: object) -> dict[int, frozenset[str]]:
        """The label id -> nations map of ``generation`` (emptied when the generation changes)."""
        with self._lock:
            if generation != self._generation:
                self._generation, self._seers = generation, {}
            return self._seers


@dataclass(frozen=True)
class RecallEnv:
    """What recall needs of the app: the tables, the home nation and the releasability decision."""

    mappings: Mappings
    home_nation: str
    visibility: VisibilityCache
    extension: RecallExtension
    """Tearline's recall extension (``stix_mappings/recall/``)."""
    seers: SeersCache = field(default_factory=SeersCache)


@dataclass(frozen=True)
class StoredVersion:
    """One stored version as recall sees it."""

    pk: int
    object_id: str
    version_us: int
    label_id: int
    collection_id: str
    originator: str
    submitter: str


@dataclass
class Plan:
    """One recall about to be issued: the object, why, and the versions each recipient nation held."""

    object_id: str
    cause: str
    reason: str
    action: str
    issued_by: str
    trigger_version_us: int | None = None
    parent_id: str | None = None
    source_note_id: str | None = None
    held: dict[str, dict[int, str | None]] = field(default_factory=dict)
    """nation -> {version_us: the collection it was received through}."""
    id: str = field(default_factory=lambda: str(uuid.uuid4()))


class Deciding:
    """Per-nation releasability of labels, decided by the policy at each partner's agreement."""

    def __init__(self, session: Session, env: RecallEnv) -> None:
        self.session = session
        self.env = env
        self.partners = [
            Principal(
                f"recall:{p.nation}", p.nation, frozenset({"partner"}), p.clearance, frozenset(p.group_list), False
            )
            for p in session.execute(select(Partner)).scalars()
        ]
        self.policy, generation = env.visibility.current_policy(session)
        self._by_label = env.seers.for_generation(generation)
        self._specs: dict[int, LabelSpec] = {}
        self._by_spec: dict[LabelSpec, frozenset[str]] = {}

    @property
    def nations(self) -> set[str]:
        """Every registered partner nation."""
        return {p.nation for p in self.partners}

    def ranks(self, versions: Iterable[StoredVersion]) -> dict[str, dict[int, int]]:
        """object id -> {version: classification rank} (the lowest where a version is stored twice)."""
        ranks: dict[str, dict[int, int]] = defaultdict(dict)
        for v in versions:
            rank = self.spec(v.label_id).rank
            ranks[v.object_id][v.version_us] = min(rank, ranks[v.object_id].get(v.version_us, rank))
        return ranks

    def load(self, label_ids: Iterable[int]) -> None:
        """Read the specs of these labels in one query (those not read yet)."""
        self._specs.update(label_specs(self.session, set(label_ids) - self._specs.keys()))

    def spec(self, label_id: int) -> LabelSpec:
        """The label's spec."""
        self.load([label_id])
        return self._specs[label_id]

    def seers_of(self, label_id: int) -> frozenset[str]:
        """The partner nations that may see versions under label ``label_id`` (decided once per label
        and policy generation, across transactions)."""
        nations = self._by_label.get(label_id)
        if nations is None:
            nations = self.seers(self.spec(label_id))
            self._by_label[label_id] = nations
        return nations

    def seers(self, spec: LabelSpec) -> frozenset[str]:
        """The partner nations that may see versions under ``spec``."""
        if spec not in self._by_spec:
            self._by_spec[spec] = frozenset(p.nation for p in self.partners if self.policy.allows(p, spec))
        return self._by_spec[spec]


def versions_of(session: Session, object_ids: Iterable[str]) -> list[StoredVersion]:
    """Every stored version of these objects, in every collection, oldest first; not those held for
    disclosure review (app/disclosure/): never released, they withdraw nothing and are recalled from nobody."""
    ids = sorted(set(object_ids))
    if not ids:
        return []
    rows = session.execute(
        select(
            col(StixObject.pk),
            col(StixObject.object_id),
            col(StixObject.version_us),
            col(StixObject.label_id),
            col(StixObject.collection_id),
            col(StixObject.originator),
            col(StixObject.submitter),
        )
        .where(col(StixObject.object_id).in_(ids), ~still_held(col(StixObject.pk)))
        .order_by(col(StixObject.version_us), col(StixObject.pk))
    ).all()
    return [StoredVersion(*row) for row in rows]


def watch(session: Session, object_ids: Iterable[str]) -> None:
    """Sweep these objects for late recipients for the next :data:`WATCH_S` (same transaction)."""
    until = now_us() + int(WATCH_S * 1_000_000)
    rows = [{"object_id": object_id, "until_us": until} for object_id in sorted(set(object_ids))]
    if not rows:
        return
    statement = dialect_insert(session)(RecallWatch).values(rows)
    session.execute(
        statement.on_conflict_do_update(index_elements=["object_id"], set_={"until_us": statement.excluded.until_us})
    )


def withdraw(
    session: Session, deciding: Deciding, withdrawals: dict[int, set[str]], versions: list[StoredVersion]
) -> None:
    """Narrow each version's label (``withdrawals``: pk -> nations) so that those nations no longer see it.

    The originator stays: its own item is never withdrawn from it.
    The new label releases the version to the partners that saw it, less the withdrawn ones; it is
    checked against the policy before it is used: nobody gains, every withdrawn nation loses.
    """
    by_pk = {v.pk: v for v in versions}
    narrowed: dict[int, LabelSpec] = {}
    for pk, withdrawn in withdrawals.items():
        old = deciding.spec(by_pk[pk].label_id)
        nations = withdrawn - {old.originator}  # an originator is never recalled from its own item
        if not nations:
            continue
        before = deciding.seers_of(by_pk[pk].label_id)
        keep = frozenset(before - nations - {old.originator})
        new = LabelSpec(old.rank, keep, old.caveats, old.originator)
        after = deciding.seers(new)
        if not after <= before - nations:
            raise RuntimeError("a narrowed label would widen or keep a withdrawn nation; nothing is stored")
        narrowed[pk] = new
    if not narrowed:
        return
    label_ids = intern_labels(session, narrowed.values(), deciding.env.mappings)
    relabel(session, {pk: label_ids[spec] for pk, spec in narrowed.items()})
    note_written(session, ((by_pk[pk].object_id, format_us(by_pk[pk].version_us)) for pk in narrowed))
    watch(session, (by_pk[pk].object_id for pk in narrowed))


def already_recalled(session: Session, object_ids: Iterable[str]) -> set[tuple[str, int, str]]:
    """(object id, version, nation) triples some earlier recall named."""
    ids = sorted(set(object_ids))
    if not ids:
        return set()
    rows = session.execute(
        select(col(RecalledVersion.object_id), col(RecalledVersion.version_us), col(RecalledVersion.nation)).where(
            col(RecalledVersion.object_id).in_(ids)
        )
    ).all()
    return {(o, v, n) for o, v, n in rows}


EVERY_PARTNER = "*"
"""``recalled_version.nation`` of a version withdrawn from every partner (explicit and partner
recalls): a copy stored later, in any collection, is withdrawn too."""


def withdrawn_everywhere(session: Session, plan_id: str, versions: Iterable[tuple[str, int]]) -> None:
    """Record that these versions are withdrawn from every partner (those recorded before stay as they are)."""
    rows = [
        {"object_id": object_id, "version_us": version, "nation": EVERY_PARTNER, "recall_id": plan_id}
        for object_id, version in sorted(set(versions))
    ]
    if rows:
        session.execute(_recalled_insert(session), rows)


def _recalled_insert(session: Session) -> Any:
    """An insert of ``recalled_version`` rows that skips rows already there: two writers (a sweep and a
    tightening, or tightenings in two collections) may recall one version from one nation at once,
    and the second must not fail its write for it (at worst the nation reads two notices)."""
    return dialect_insert(session)(RecalledVersion).on_conflict_do_nothing(
        index_elements=["object_id", "version_us", "nation"]
    )


def add_held(
    plan: Plan, receipts: Iterable[Receipt], wanted: dict[str, set[int]], done: set[tuple[str, int, str]]
) -> None:
    """Add to ``plan`` each receipt of a version in ``wanted`` (nation -> versions) not recalled before."""
    for receipt in receipts:
        if receipt.object_id != plan.object_id or receipt.version_us not in wanted.get(receipt.nation, ()):
            continue
        if (receipt.object_id, receipt.version_us, receipt.nation) in done:
            continue
        plan.held.setdefault(receipt.nation, {}).setdefault(receipt.version_us, receipt.collection_id)


def issue(
    session: Session,
    env: RecallEnv,
    plan: Plan,
    ranks: dict[int, int],
    home_collection: str,
    *,
    record_empty: bool = False,
) -> Recall | None:
    """Record ``plan`` and store one notice per recipient nation; None when no nation held anything
    (unless ``record_empty``: an explicit recall is on record even when it reached nobody).

    ``ranks`` gives each recalled version's classification before it was withdrawn: a notice is
    classified at the lowest among the versions its nation held. ``home_collection`` holds the
    notice of a nation whose receipts name no collection.
    """
    if not plan.held and not record_empty:
        return None
    issued_us = now_us() // 1000 * 1000  # notices carry milliseconds
    recall = Recall(
        id=plan.id,
        object_id=plan.object_id,
        cause=plan.cause,
        reason=plan.reason,
        action=plan.action,
        issued_us=issued_us,
        issued_by=plan.issued_by,
        trigger_version_us=plan.trigger_version_us,
        parent_id=plan.parent_id,
        source_note_id=plan.source_note_id,
    )
    connection = session.connection()
    connection.execute(insert(Recall.__table__).values(**recall.model_dump()))
    if not plan.held:
        return recall
    session.execute(
        _recalled_insert(session),
        [
            {"object_id": plan.object_id, "version_us": version, "nation": nation, "recall_id": plan.id}
            for nation, versions in sorted(plan.held.items())
            for version in sorted(versions)
        ],
    )
    by_collection: dict[str, list[NoticeFacts]] = {}
    for nation, versions in sorted(plan.held.items()):
        collections = sorted({c for c in versions.values() if c is not None}) or [home_collection]
        facts = NoticeFacts(
            f"note--{uuid.uuid4()}",
            plan.id,
            nation,
            collections[0],
            plan.object_id,
            tuple(sorted(versions)),
            plan.reason,
            plan.action,
            issued_us,
        )
        by_collection.setdefault(facts.collection_id, []).append(facts)
    rows = []
    for collection_id, notices in sorted(by_collection.items()):
        rows += _store_notices(session, env, collection_id, notices, ranks)
    connection.execute(insert(RecallNotice.__table__), rows)
    return recall


def _store_notices(
    session: Session, env: RecallEnv, collection_id: str, notices: list[NoticeFacts], ranks: dict[int, int]
) -> list[dict[str, object]]:
    """Store the notices of one collection through the ingest path; their ``recall_notice`` rows."""
    submission: list[ingest.ValidObject] = []
    built = []
    for facts in notices:
        spec = notice_label(min(ranks.get(v, 0) for v in facts.versions_us), facts.nation, env.home_nation)
        definition = label_marking_definition(spec, env.mappings)
        note = build_notice(facts, env.extension.id, definition["id"], env.home_nation)
        submission += [ingest.validate(definition), ingest.validate(note)]
        built.append((facts, note))
    with review_exempt(session):  # a notice only withdraws: it never waits for a disclosure officer
        outcomes = ingest.store(
            session,
            collection_id,
            submission,
            submitter=env.home_nation,
            mappings=env.mappings,
            home_nation=env.home_nation,
        )
    failed = [o for o in outcomes if not o.ok]
    if failed:
        raise RuntimeError(f"a recall notice could not be stored: {failed[0].message}")
    ids = [note["id"] for _, note in built]
    # A notice names an object its recipient held but may no longer see; reference closure would
    # withhold it for that very reason. Its one reference is to what the recipient already holds.
    pks = list(session.execute(select(col(StixObject.pk)).where(col(StixObject.object_id).in_(ids))).scalars())
    session.connection().execute(delete(ObjectReference).where(col(ObjectReference.object_pk).in_(pks)))
    session.connection().execute(update(StixObject).where(col(StixObject.pk).in_(pks)).values(has_refs=False))
    return [
        {
            "recall_id": facts.recall_id,
            "nation": facts.nation,
            "collection_id": facts.collection_id,
            "notice_id": note["id"],
            "notice_version_us": facts.issued_us,
            "versions": orjson.dumps([format_us(v) for v in sorted(facts.versions_us)]).decode(),
        }
        for facts, note in built
    ]
