"""Disclosure decisions: the queue, and releasing, narrowing, tearlining or declining a held version.

Every function runs in the caller's transaction; the route commits it with its audit record, which
names the versions whose access changed and, in its reason, the action, the nations released to and
the officer's reason. An officer never decides on a version its own request stored, nor on one above
its clearance (that one answers as absent). Under the two-person rule the first officer's release is
a proposal; a second, different officer confirming the same decision makes it take effect.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Any, Literal

import orjson
from sqlalchemy import select, update
from sqlmodel import Session, col

from app.auth.principal import Principal
from app.db.timestamps import format_us, now_us, parse_us
from app.disclosure.hold import DisclosureEnv
from app.disclosure.models import DECLINED, PENDING, RELEASED, REPLACED, DisclosureReview
from app.disclosure.release import release_versions
from app.http.errors import ApiError
from app.items import ingest, tearline
from app.items.changes import review_exempt
from app.items.labeling import label_within
from app.items.models import StixObject
from app.items.service import ItemEnv, label_for, stix_timestamp
from app.markings.label_spec import LabelSpec
from app.markings.labels import canonical_banner
from app.markings.mappings import Mappings
from app.markings.service import intern_labels, label_specs
from app.policy.enforcer import RoleRights
from app.recall.service import Deciding, RecallEnv

Action = Literal["release", "narrow", "tearline", "decline"]


@dataclass(frozen=True)
class Decision:
    """What an officer decides on one held version (``banner``: the narrowed or tearline label)."""

    action: Action
    reason: str
    banner: str | None = None

    def proposal(self) -> str:
        """The decision as the second officer must confirm it (the reason is each officer's own)."""
        return orjson.dumps({"action": self.action, "banner": self.banner}).decode()


@dataclass(frozen=True)
class Officer:
    """The deciding officer and what the decision needs of the app."""

    principal: Principal
    env: DisclosureEnv
    recall_env: RecallEnv
    rights: RoleRights
    visible: list[int]


@dataclass(frozen=True)
class Outcome:
    """What a decision did to one review: its state, and to whom partners' access now extends."""

    review_id: str
    state: str
    released_to: list[str]
    result_id: str | None = None
    awaiting_second_officer: bool = False


def review_for(session: Session, officer: Principal, review_id: str) -> DisclosureReview:
    """The review, if its item is within the officer's clearance; 404 otherwise, as for an absent one."""
    return reviews_for(session, officer, [review_id])[0]


def reviews_for(session: Session, officer: Principal, review_ids: list[str]) -> list[DisclosureReview]:
    """The reviews, in the order asked (once each), in one query; 404 if any is absent or above the
    officer's clearance, as for an absent one."""
    wanted = list(dict.fromkeys(review_ids))
    found = {
        review.id: review
        for review in session.execute(select(DisclosureReview).where(col(DisclosureReview.id).in_(wanted))).scalars()
    }
    if any(rid not in found or found[rid].rank > officer.clearance for rid in wanted):
        raise ApiError(404, "No such review.")
    return [found[rid] for rid in wanted]


def decide(session: Session, officer: Officer, review_ids: list[str], decision: Decision) -> list[Outcome]:
    """Apply one decision to each review (a batch is all or nothing); see the module docstring."""
    if decision.action in ("narrow", "tearline") and not decision.banner:
        raise ApiError(422, f"A {decision.action} decision needs the banner to release at.")
    if decision.action == "tearline" and len(review_ids) != 1:
        raise ApiError(422, "A tearline is made from one item at a time.")
    wanted = list(dict.fromkeys(review_ids))
    # Take the write lock first (a row lock on PostgreSQL, the database's on SQLite), so two officers
    # deciding at once are serialised and the second reads the first one's decision.
    session.execute(
        update(DisclosureReview).where(col(DisclosureReview.id).in_(wanted)).values(state=DisclosureReview.state)
    )
    reviews = reviews_for(session, officer.principal, wanted)
    for review in reviews:
        _check_may_decide(review, officer.principal)
    present = set(
        session.execute(
            select(col(StixObject.pk)).where(col(StixObject.pk).in_([r.object_pk for r in reviews]))
        ).scalars()
    )
    if decision.action != "decline" and any(r.object_pk not in present for r in reviews):
        raise ApiError(409, "A held version was deleted since it was posted; it cannot be released.")
    deciding = Deciding(session, officer.recall_env)
    now = now_us()
    outcomes: list[Outcome] = []
    to_release: list[tuple[DisclosureReview, LabelSpec]] = []
    for review in reviews:
        if decision.action == "decline":
            _close(review, officer.principal, decision, DECLINED, now)
            outcomes.append(Outcome(review.id, DECLINED, []))
        elif review.two_person and not _confirms(review, officer.principal, decision):
            review.proposed_by, review.proposal, review.proposed_us = (
                officer.principal.subject,
                decision.proposal(),
                now,
            )
            outcomes.append(Outcome(review.id, PENDING, [], awaiting_second_officer=True))
        elif decision.action == "release":
            to_release.append((review, deciding.spec(review.marked_label_id)))
        elif decision.action == "narrow":
            outcomes.append(_narrow(session, officer, deciding, review, decision, now))
        else:
            outcomes.append(_tearline(session, officer, deciding, review, decision, now))
    for review, spec in to_release:
        released_to = _released(review, review.marked_label_id, spec, deciding)
        _close(review, officer.principal, decision, RELEASED, now)
        outcomes.append(Outcome(review.id, RELEASED, released_to))
    session.add_all(reviews)
    session.flush()  # released first: the hooks after the hold (recall) then count these versions in
    if to_release:
        release_versions(
            session,
            ((r.object_pk, r.collection_id, r.marked_label_id) for r, _ in to_release if r.object_pk is not None),
        )
    return sorted(outcomes, key=lambda o: review_ids.index(o.review_id))


def _check_may_decide(review: DisclosureReview, officer: Principal) -> None:
    if review.state != PENDING:
        raise ApiError(409, f"This review is already decided ({review.state}).")
    if review.submitted_by == officer.subject:
        raise ApiError(403, "You may not decide on an item your own request stored.")


def _confirms(review: DisclosureReview, officer: Principal, decision: Decision) -> bool:
    """Under the two-person rule: this decision is a second officer confirming the proposal."""
    if review.proposal is None:
        return False
    if review.proposed_by == officer.subject:
        raise ApiError(409, "A second, different officer must confirm this release.")
    if review.proposal != decision.proposal():
        raise ApiError(409, "Another release of this item is proposed: confirm it as proposed, or decline.")
    return True


def _released(review: DisclosureReview, label_id: int, spec: LabelSpec, deciding: Deciding) -> list[str]:
    """Record what partners received and under which label; the nations it now reaches."""
    released_to = sorted(deciding.seers(spec))
    review.released_label_id, review.released_to = label_id, orjson.dumps(released_to).decode()
    return released_to


def _close(review: DisclosureReview, officer: Principal, decision: Decision, state: str, now: int) -> None:
    review.state, review.action, review.reason = state, decision.action, decision.reason
    review.decided_by, review.decided_us = officer.subject, now


def held_content(session: Session, review: DisclosureReview) -> dict[str, Any]:
    """The held version as stored (None-safe for a version deleted since: an empty object)."""
    body = session.execute(select(col(StixObject.body)).where(col(StixObject.pk) == review.object_pk)).scalar()
    loaded: dict[str, Any] = orjson.loads(body) if body else {}
    return loaded


def held_markings(
    session: Session, review: DisclosureReview, content: dict[str, Any], mappings: Mappings
) -> list[dict[str, Any]]:
    """The marking definitions the held version references (object-level and granular), TLP aside:
    released with the item, so the officer reads them too (a statement's ``name`` or custom
    properties may carry text of their own)."""
    refs = {*(content.get("object_marking_refs") or [])}
    refs |= {m.get("marking_ref") for m in content.get("granular_markings") or [] if isinstance(m, dict)}
    wanted = sorted(ref for ref in refs if isinstance(ref, str) and ref not in mappings.tlp)
    if not wanted:
        return []
    rows = session.execute(
        select(col(StixObject.object_id), col(StixObject.body))
        .where(col(StixObject.object_id).in_(wanted), col(StixObject.collection_id) == review.collection_id)
        .order_by(col(StixObject.object_id))
    ).all()
    return [orjson.loads(body) for _, body in rows]


def _narrowed_label(
    officer: Officer, deciding: Deciding, review: DisclosureReview, banner: str
) -> tuple[LabelSpec, dict[str, Any]]:
    env = officer.env
    spec, definition = label_for(
        banner, "banner", originator=env.home_nation, mappings=env.mappings, home_nation=env.home_nation
    )
    if not label_within(spec, deciding.spec(review.marked_label_id), env.mappings):
        raise ApiError(422, "The release must not be wider than the item's marking (rank, releasable-to, caveats).")
    return spec, definition


def _narrow(
    session: Session, officer: Officer, deciding: Deciding, review: DisclosureReview, decision: Decision, now: int
) -> Outcome:
    """Release a new version of the item marked with the narrower label, so what partners hold says
    what they were released; the held version stays held."""
    assert decision.banner is not None
    env = officer.env
    spec, definition = _narrowed_label(officer, deciding, review, decision.banner)
    body = held_content(session, review)
    tlp = [ref for ref in body.get("object_marking_refs", []) if ref in env.mappings.tlp]
    modified = stix_timestamp(max(now, review.version_us // 1000 * 1000 + 1000))
    narrowed = body | {"modified": modified, "object_marking_refs": [definition["id"], *tlp]}
    with review_exempt(session):
        outcomes = ingest.store(
            session,
            review.collection_id,
            [ingest.validate(definition), ingest.validate(narrowed)],
            submitter=env.home_nation,
            mappings=env.mappings,
            home_nation=env.home_nation,
        )
    refused = [o for o in outcomes if not o.ok]
    if refused:
        raise ApiError(422, f"The narrowed version was refused: {refused[0].message}")
    released_to = _released(review, intern_labels(session, [spec], env.mappings)[spec], spec, deciding)
    review.result_object_id, review.result_version_us = review.object_id, parse_us(modified)
    _close(review, officer.principal, decision, REPLACED, now)
    return Outcome(review.id, REPLACED, released_to, review.object_id)


def _tearline(
    session: Session, officer: Officer, deciding: Deciding, review: DisclosureReview, decision: Decision, now: int
) -> Outcome:
    """Release a tearline of the held version (app/items/tearline.py): a new object at the banner,
    without the properties marked above it; the held version stays held."""
    assert decision.banner is not None
    env = officer.env
    # A tearline's label is the officer's to choose (it drops what is marked above it); produce()
    # keeps a partner's content inside that partner's release (the third-party rule).
    spec, _ = label_for(
        decision.banner, "banner", originator=env.home_nation, mappings=env.mappings, home_nation=env.home_nation
    )
    derived_id = f"{review.object_type}--{uuid.uuid4()}"
    released_to = _released(review, intern_labels(session, [spec], env.mappings)[spec], spec, deciding)
    review.result_object_id = derived_id
    _close(review, officer.principal, decision, REPLACED, now)
    session.add(review)
    # The officer's release writes with an analyst's right on the item's collection.
    writer = replace(officer.principal, roles=officer.principal.roles | {"analyst"})
    item_env = ItemEnv(writer, env.mappings, officer.rights, env.home_nation, officer.visible)
    with review_exempt(session):
        made = tearline.produce(
            session,
            item_env,
            review.object_id,
            target_banner=decision.banner,
            collection_id=review.collection_id,
            version=format_us(review.version_us),
            derived_id=derived_id,
            commit=False,
        )
    review.result_version_us = made.derived.version_us
    return Outcome(review.id, REPLACED, released_to, derived_id)


def describe(session: Session, reviews: list[DisclosureReview], mappings: Mappings) -> list[dict[str, Any]]:
    """The API form of reviews: the item, its marked banner, and the state of its review."""
    label_ids = {r.marked_label_id for r in reviews} | {r.released_label_id for r in reviews if r.released_label_id}
    labels = label_specs(session, label_ids)
    bodies = dict(
        session.execute(
            select(col(StixObject.pk), col(StixObject.body)).where(
                col(StixObject.pk).in_([r.object_pk for r in reviews])
            )
        ).all()
    )

    def when(micros: int | None) -> str | None:
        return format_us(micros) if micros is not None else None

    def banner(label_id: int | None) -> str | None:
        return canonical_banner(labels[label_id], mappings) if label_id is not None else None

    described = []
    for r in reviews:
        body = orjson.loads(bodies[r.object_pk]) if r.object_pk in bodies else {}
        described.append(
            {
                "id": r.id,
                "object_id": r.object_id,
                "version": format_us(r.version_us),
                "type": r.object_type,
                "name": body.get("name") if isinstance(body.get("name"), str) else None,
                "collection": r.collection_id,
                "banner": banner(r.marked_label_id),
                "classification": mappings.rank_names[r.rank],
                "state": r.state,
                "two_person": r.two_person,
                "submitted_by": r.submitted_by,
                "posted": format_us(r.posted_us),
                "proposed_by": r.proposed_by,
                "proposal": orjson.loads(r.proposal) if r.proposal else None,
                "proposed": when(r.proposed_us),
                "action": r.action,
                "reason": r.reason,
                "decided_by": r.decided_by,
                "decided": when(r.decided_us),
                "released_banner": banner(r.released_label_id),
                "released_to": orjson.loads(r.released_to) if r.released_to else None,
                "result_id": r.result_object_id,
                "result_version": when(r.result_version_us),
            }
        )
    return described
