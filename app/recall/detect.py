"""Recalls that arise when versions are stored, and recalls asked for: what is withdrawn, who is told.

Runs in the storing transaction (the ingest path's hook, :func:`app.items.changes.after_store`):

- **Tightened.** A version is withdrawn from every partner nation that may see it but not a newer
  version of the same object (a narrower release, a higher classification, a caveat), whatever
  order the versions arrive in. Nations that received a withdrawn version are notified.
- **Revoked.** A ``revoked: true`` version recalls every older version from the nations that
  received one.
- **Derived.** A nation that loses an object loses the tearlines derived from it
  (``item_derivation``, at any depth), and is notified of those it received.
- **A partner's recall.** A notice from the partner that originated an object (a note carrying the
  recall extension, from a feed or a partner's post) recalls the versions it names from every
  nation here, and is passed on to those that received them.

:func:`recall_versions` is the analyst's explicit recall, on the same path.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import select
from sqlmodel import Session, col

from app.db.timestamps import parse_us
from app.items.changes import StoredBatch
from app.items.models import ItemDerivation
from app.items.store import SHARED_TYPES  # no partner's recall names them
from app.recall.notice import DERIVED_REASON, WITHDRAWN_REASON, read_notice
from app.recall.recipients import Receipt, receipts
from app.recall.service import (
    EVERY_PARTNER,
    Deciding,
    Plan,
    RecallEnv,
    StoredVersion,
    add_held,
    already_recalled,
    issue,
    versions_of,
    withdraw,
    withdrawn_everywhere,
)

MAX_DERIVATION_DEPTH = 16


def on_stored(session: Session, batch: StoredBatch, env: RecallEnv) -> None:
    """The after-store hook: find and issue the recalls ``batch`` causes."""
    for row in batch.rows:
        if row["type"] == "note" and row["submitter"] != env.home_nation:
            _partner_notice(session, env, row, batch.collection_id)
    if not batch.prior_ids:
        return
    _keep_withdrawn(session, env, batch)
    revoking = {
        row["object_id"]: row["version_us"]
        for row in batch.rows
        if row["object_id"] in batch.prior_ids and orjson.loads(row["body"]).get("revoked") is True
    }
    _tightened(session, env, sorted(batch.prior_ids), revoking, batch.collection_id)


def _keep_withdrawn(session: Session, env: RecallEnv, batch: StoredBatch) -> None:
    """A copy of a version withdrawn from every partner (an explicit or a partner's recall), stored
    again in any collection, is withdrawn too."""
    everywhere = {
        (object_id, version)
        for object_id, version, nation in already_recalled(session, batch.prior_ids)
        if nation == EVERY_PARTNER
    }
    if not everywhere:
        return
    stored = [
        v
        for v in versions_of(session, batch.prior_ids)
        if v.collection_id == batch.collection_id and (v.object_id, v.version_us) in everywhere
    ]
    if stored:
        deciding = Deciding(session, env)
        withdraw(session, deciding, {v.pk: deciding.nations for v in stored}, stored)


def _tightened(
    session: Session, env: RecallEnv, object_ids: list[str], revoking: dict[str, int], collection_id: str
) -> None:
    versions = versions_of(session, object_ids)
    by_object: dict[str, list[StoredVersion]] = defaultdict(list)
    for version in versions:
        by_object[version.object_id].append(version)
    deciding = Deciding(session, env)
    deciding.load(v.label_id for v in versions)
    withdrawals: dict[int, set[str]] = {}
    lost: dict[str, set[str]] = {}
    for object_id, history in by_object.items():
        seen_by = [deciding.seers_of(v.label_id) for v in history]
        newest = history[-1].version_us
        for index, version in enumerate(history):
            # Versions of one originator: each nation's copy of a cyber observable is its own
            # (app/items/ingest.py), and one nation's copy never withdraws another's.
            later = [
                seen_by[i]
                for i, v in enumerate(history)
                if v.version_us > version.version_us and v.originator == version.originator
            ]
            excluded = {n for n in seen_by[index] if any(n not in s for s in later)} - {version.originator}
            if excluded:
                withdrawals[version.pk] = excluded
        could = set().union(*(s for v, s in zip(history, seen_by, strict=True) if v.version_us < newest))
        now = set().union(*(s for v, s in zip(history, seen_by, strict=True) if v.version_us == newest))
        gone = could - now - {history[0].originator}
        if gone:
            lost[object_id] = gone
    if not withdrawals and not revoking:
        return
    ranks = deciding.ranks(versions)
    withdraw(session, deciding, withdrawals, versions)
    got = _by_object(receipts(session, by_object.keys(), env.home_nation))
    done = already_recalled(session, by_object.keys())
    with_derivations = _with_derivations(session, lost.keys())
    for object_id, history in by_object.items():
        wanted: dict[str, set[int]] = defaultdict(set)
        for version in history:
            for nation in withdrawals.get(version.pk, ()):
                wanted[nation].add(version.version_us)
        revoked_at = revoking.get(object_id)
        if revoked_at is not None:
            for receipt in got[object_id]:
                if receipt.version_us < revoked_at:
                    wanted[receipt.nation].add(receipt.version_us)
        plan = Plan(
            object_id,
            "revoked" if revoked_at is not None else "tightened",
            WITHDRAWN_REASON,
            "destroy",
            "originator",
            trigger_version_us=revoked_at if revoked_at is not None else history[-1].version_us,
        )
        add_held(plan, got[object_id], wanted, done)
        recall = issue(session, env, plan, ranks[object_id], collection_id)
        if object_id in with_derivations:
            _derived(session, env, deciding, object_id, lost[object_id], plan, recall is not None, collection_id)


def _by_object(found: Iterable[Receipt]) -> dict[str, list[Receipt]]:
    """Receipts grouped by the object they are of."""
    grouped: dict[str, list[Receipt]] = defaultdict(list)
    for receipt in found:
        grouped[receipt.object_id].append(receipt)
    return grouped


def _with_derivations(session: Session, object_ids: Iterable[str]) -> set[str]:
    """Those of ``object_ids`` that something was derived from (one query)."""
    ids = sorted(object_ids)
    if not ids:
        return set()
    return set(
        session.execute(
            select(col(ItemDerivation.source_id)).where(col(ItemDerivation.source_id).in_(ids)).distinct()
        ).scalars()
    )


def derived_from(session: Session, object_id: str) -> list[str]:
    """Ids of every object derived from ``object_id`` (tearlines of it, and of those, ...)."""
    found: list[str] = []
    frontier, seen = {object_id}, {object_id}
    for _ in range(MAX_DERIVATION_DEPTH):
        derived = (
            set(
                session.execute(
                    select(col(ItemDerivation.derived_id)).where(col(ItemDerivation.source_id).in_(frontier))
                ).scalars()
            )
            - seen
        )
        if not derived:
            break
        found += sorted(derived)
        seen |= derived
        frontier = derived
    return found


def _derived(
    session: Session,
    env: RecallEnv,
    deciding: Deciding,
    source_id: str,
    nations: set[str] | None,
    parent: Plan,
    parent_issued: bool,
    collection_id: str,
) -> set[str]:
    """Withdraw what was derived from ``source_id`` from ``nations`` (None: every partner) and notify
    those that received it; returns the nations notified. The notices give their own fixed reason:
    the first recall's words were written for the source's recipients, at the source's label."""
    derived = derived_from(session, source_id)
    if not derived:
        return set()
    versions = versions_of(session, derived)
    if nations is None:
        withdrawn_everywhere(session, parent.id, ((v.object_id, v.version_us) for v in versions))
    deciding.load(v.label_id for v in versions)
    losing = deciding.nations if nations is None else nations
    withdrawals = {v.pk: losing & deciding.seers_of(v.label_id) for v in versions}
    ranks = deciding.ranks(versions)
    withdraw(session, deciding, withdrawals, versions)
    got = _by_object(receipts(session, derived, env.home_nation))
    done = already_recalled(session, derived)
    notified: set[str] = set()
    for object_id in derived:
        wanted: dict[str, set[int]] = defaultdict(set)
        for receipt in got[object_id]:
            if nations is None or receipt.nation in nations:
                wanted[receipt.nation].add(receipt.version_us)
        plan = Plan(
            object_id,
            "derived",
            DERIVED_REASON,
            parent.action,
            parent.issued_by,
            parent_id=parent.id if parent_issued else None,
        )
        add_held(plan, got[object_id], wanted, done)
        issue(session, env, plan, ranks[object_id], collection_id)
        notified |= plan.held.keys()
    return notified


def recall_versions(
    session: Session,
    env: RecallEnv,
    object_id: str,
    versions_us: set[int] | None,
    *,
    cause: str,
    reason: str,
    action: str,
    issued_by: str,
    collection_id: str,
    source_note_id: str | None = None,
    spare: str | None = None,
) -> RecallOutcome:
    """Recall versions of ``object_id`` (None: all) from every partner nation but ``spare`` (the
    originator of a partner's recall): withdrawn everywhere (copies stored later too), recipients
    notified, and what was derived from the object recalled in turn."""
    deciding = Deciding(session, env)
    stored = [v for v in versions_of(session, [object_id]) if versions_us is None or v.version_us in versions_us]
    everyone = deciding.nations - {spare}
    withdrawals = {v.pk: everyone & deciding.seers_of(v.label_id) for v in stored}
    ranks = deciding.ranks(stored)[object_id]
    withdraw(session, deciding, withdrawals, stored)
    recalled = {v.version_us for v in stored}
    got = receipts(session, [object_id], env.home_nation)
    wanted = dict.fromkeys(everyone, recalled)
    plan = Plan(object_id, cause, reason, action, issued_by, source_note_id=source_note_id)
    add_held(plan, got, wanted, already_recalled(session, [object_id]))
    recall = issue(session, env, plan, ranks, collection_id, record_empty=True)
    withdrawn_everywhere(session, plan.id, ((object_id, version) for version in recalled))
    derived = _derived(session, env, deciding, object_id, None, plan, recall is not None, collection_id)
    return RecallOutcome(plan, derived)


@dataclass(frozen=True)
class RecallOutcome:
    """What a recall did: its plan (``held``: the nations notified of the object itself) and the
    nations notified of what was derived from it."""

    plan: Plan
    derived_notified: set[str]


def _partner_notice(session: Session, env: RecallEnv, row: dict[str, Any], collection_id: str) -> None:
    """A partner's recall notice: honoured only from the partner that originated the recalled object."""
    properties = read_notice(orjson.loads(row["body"]), env.extension)
    if properties is None:
        return
    object_id = properties["recalled_object"]
    partner = row["originator"]
    if object_id.split("--", 1)[0] in SHARED_TYPES:
        return  # stored first by whoever used them first: no partner owns them
    stored = versions_of(session, [object_id])
    if not stored or any(v.originator != partner for v in stored):
        return  # only an object's originator recalls it; anyone else's notice stays an ordinary note
    first = min(stored, key=lambda v: v.pk)
    if first.submitter != partner:
        return  # the partner's own item: the first version came from that partner itself
    try:
        wanted = {parse_us(text) for text in properties["recalled_versions"]}
    except ValueError:
        return
    versions = {v.version_us for v in stored} & wanted
    if not versions:
        return
    recall_versions(
        session,
        env,
        object_id,
        versions,
        cause="partner",
        # The partner's words were written for this exchange: onward recipients get fixed ones.
        reason=WITHDRAWN_REASON,
        action=properties["action"],
        issued_by=f"partner:{partner}",
        collection_id=collection_id,
        source_note_id=row["object_id"],
        spare=partner,
    )
