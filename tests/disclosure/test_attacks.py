"""Attacks on disclosure review (docs/design.md 2, 2a, 7, 7a, 7b, 7c), from outside and inside.

The contract under attack: a home-nation item the release rules hold is invisible to every partner
on every path until a disclosure officer releases it; only officers decide, never on items their own
request stored, never above their clearance, two different officers from ``two_person_from``.

Tests named ``test_leak_*`` / ``test_bypass_*`` / ``test_oracle_*`` are FINDINGS: they fail today
and describe what leaks and why it matters. Tests named ``test_safe_*`` are attacks that turned out
to be refused; they pin the behaviour down.

All run with the review rules of tests/disclosure/conftest.py: TLP:CLEAR/GREEN released as marked,
everything else held, two officers from SECRET.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Iterator

import pytest
import stix2
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.audit.models import AuditRecord
from app.items.models import StixObject
from app.main import create_app
from tests.disclosure.helpers import (
    QUEUE,
    by_id_status,
    decide,
    partner_ids,
    post_marked,
    relationship,
    review_of,
    served_versions,
)
from tests.policy.oracle import tlp_id
from tests.taxii.helpers import (
    indicator,
    manifest_url,
    new_version,
    objects_url,
    post_envelope,
    post_ok,
    versions_url,
)
from tests.taxii.test_releasability import banner, marked

GREEN = tlp_id("2.0:green")


# ====================================================================== findings: content released unreviewed


def test_leak_revoking_a_held_version_releases_its_content(client, api, collection, analyst, officer, usa):
    # FINDING (high). hold.on_stored exempts every version with `revoked: true` ("a revocation only
    # withdraws"), but items/service.revoke_item builds the revoked version from the newest version
    # the analyst sees -- the HELD one -- so the revocation carries the held content, under the held
    # version's marked label, straight to partners. Here v1 was released; v2 (new description) waits
    # for an officer; revoking the item hands v2's unreviewed description to USA at once, without any
    # officer (and the analyst can do it with its own item, so review is optional for it).
    # Fix: hold a revocation whose content differs from a released version (or build it from the
    # newest *released* version, or store revocations as `{id, modified, revoked}` of a released one).
    v1 = post_marked(client, api, collection.id, analyst, "CONFIDENTIAL//REL TO USA", indicator(description="v1"))
    assert decide(client, officer, [review_of(client, officer, v1["id"])["id"]]).status_code == 200
    held = new_version(v1, 1, description="v2: held, not reviewed")
    post_marked(client, api, collection.id, analyst, "CONFIDENTIAL//REL TO USA", held)
    assert "v2: held, not reviewed" not in str(served_versions(client, api, collection.id, usa, v1["id"]))

    answer = client.post(f"/api/v1/items/{v1['id']}/revoke", headers=analyst, json={"collection": collection.id})
    assert answer.status_code == 201, answer.text
    descriptions = [o.get("description") for o in served_versions(client, api, collection.id, usa, v1["id"])]
    assert "v2: held, not reviewed" not in descriptions, "the revocation released the held version's content"


def test_bypass_a_posted_revoked_version_carries_new_content_past_review(client, api, collection, analyst, usa):
    # FINDING (high). The `revoked: true` exemption is decided on the body alone, so any TAXII/STIX post
    # of a version marked revoked -- a brand-new object, or a "revocation" of a released object with new
    # content -- is stored under its marked label and served to partners with no officer involved. An
    # analyst thereby releases arbitrary CONFIDENTIAL content to USA in a collection where everything
    # is reviewed. Fix: exempt only a revocation that repeats a released version's content (or hold it).
    definition = banner("CONFIDENTIAL//REL TO USA")
    item = marked(indicator(description="never reviewed"), definition) | {"revoked": True}
    post_ok(client, api, collection.id, analyst, [definition, item])
    assert served_versions(client, api, collection.id, usa, item["id"]) == [], "unreviewed content served to USA"


def test_bypass_shared_types_are_never_held(client, api, collection, analyst, usa):
    # FINDING (high). hold.on_stored skips every type in SHARED_TYPES (identity, language-content,
    # extension-definition, marking-definition), but only marking definitions are served "beside what
    # they describe" (store._visible); the others are served on their own label. A home-nation
    # identity (e.g. a HUMINT source, with description and contact details) marked
    # CONFIDENTIAL//REL TO USA is therefore served to USA without review; language-content (which
    # carries translated text of other objects) likewise. Fix: hold shared types too (they are
    # content), or serve them only beside a served object that references them.
    definition = banner("CONFIDENTIAL//REL TO USA")
    source = {
        "type": "identity",
        "spec_version": "2.1",
        "id": f"identity--{uuid.uuid4()}",
        "created": "2024-01-01T00:00:00.000Z",
        "modified": "2024-01-01T00:00:00.000Z",
        "name": "Source HUMINT-7",
        "description": "our agent inside the target organisation",
        "identity_class": "individual",
        "object_marking_refs": [definition["id"]],
    }
    post_ok(client, api, collection.id, analyst, [definition, source])
    assert by_id_status(client, api, collection.id, usa, source["id"]) == 404, "an unreviewed identity is served"


def test_bypass_home_content_in_a_new_version_of_a_partner_item_is_never_held(client, api, shared, analyst, usa, gbr):
    # FINDING (medium). Only versions whose *originator* is the home nation are held; a new version the
    # home nation writes of a partner's item keeps the partner as originator (third-party rule), so
    # hold.on_stored never looks at it. USA's item released to USA and GBR gets a home-nation update
    # (new analyst-written description) that reaches GBR immediately, unreviewed. Fix: decide
    # candidates by the submitter (the home nation wrote it), not only by the originator.
    definition = banner("CONFIDENTIAL//REL TO USA, GBR")
    item = marked(indicator(description="USA's own report"), definition)
    post_ok(client, api, shared.id, usa, [definition, item])
    answer = client.post(
        f"/api/v1/items/{item['id']}/versions",
        headers=analyst,
        json={"changes": {"description": "NLD assessment, not reviewed"}, "collection": shared.id},
    )
    assert answer.status_code == 201, answer.text
    descriptions = [o.get("description") for o in served_versions(client, api, shared.id, gbr, item["id"])]
    assert "NLD assessment, not reviewed" not in descriptions, "home-nation content released to GBR unreviewed"


def test_bypass_tlp_green_item_with_secret_granular_property_is_not_held(client, api, collection, analyst, usa):
    # FINDING (medium/high). The rules' `tlp` condition and `min_classification` look only at the
    # object-level markings/label. An item marked TLP:GREEN whose description carries a granular
    # SECRET//REL TO USA marking matches the "TLP:GREEN is released" rule and is served at once:
    # USA (cleared SECRET) reads SECRET home-nation content that no officer (let alone the two
    # officers required from SECRET) has seen. Fix: evaluate rules (and the two-person rank) on the
    # highest label of the item including its granular markings; a granular label makes `tlp` false.
    secret = banner("SECRET//REL TO USA")
    item = indicator(description="SECRET paragraph") | {
        "object_marking_refs": [GREEN],
        "granular_markings": [{"marking_ref": secret["id"], "selectors": ["description"]}],
    }
    post_ok(client, api, collection.id, analyst, [secret, item])
    descriptions = [o.get("description") for o in served_versions(client, api, collection.id, usa, item["id"])]
    assert "SECRET paragraph" not in descriptions, "SECRET content released without an officer"


# ====================================================================== findings: officers (insider)


def _confidential_item_with_secret_paragraph(client, api, collection_id, analyst) -> dict:
    label, secret = banner("CONFIDENTIAL//REL TO USA"), banner("SECRET//REL TO USA")
    item = marked(indicator(description="SECRET paragraph"), label) | {
        "granular_markings": [{"marking_ref": secret["id"], "selectors": ["description"]}]
    }
    post_ok(client, api, collection_id, analyst, [label, secret, item])
    return item


def test_leak_officer_reads_and_releases_content_above_its_clearance(client, api, collection, analyst, who, usa):
    # FINDING (high). review_for / the queue bound an officer by the *object* rank only; the review
    # route returns the held body unredacted (service.held_content). A CONFIDENTIAL-cleared officer
    # therefore reads a SECRET granular paragraph and, by releasing "as marked", hands it to USA --
    # "never above their clearance" broken both ways. Fix: redact held_content (and `name`) by the
    # officer's visible labels, and bound review_for/queue by the highest granular rank too.
    low = who("officer", "officer-conf", clearance="CONFIDENTIAL")
    item = _confidential_item_with_secret_paragraph(client, api, collection.id, analyst)
    # The item counts as SECRET (its highest marking): not listed for the CONFIDENTIAL officer.
    listed = client.get("/api/v1/disclosure/queue", headers=low, params={"limit": 1000}).json()["reviews"]
    assert item["id"] not in {r["object_id"] for r in listed}
    review = review_of(client, who("officer", "officer-top"), item["id"])
    shown = client.get(f"/api/v1/disclosure/reviews/{review['id']}", headers=low)
    leaked_to_officer = shown.status_code == 200 and "SECRET paragraph" in shown.text
    decide(client, low, [review["id"]])
    descriptions = [o.get("description") for o in served_versions(client, api, collection.id, usa, item["id"])]
    assert not leaked_to_officer, "a CONFIDENTIAL officer was shown a SECRET paragraph"
    assert "SECRET paragraph" not in descriptions, "a CONFIDENTIAL officer released SECRET content"


def test_bypass_two_person_rule_via_granular_secret_content(client, api, collection, analyst, officer):
    # FINDING (medium). two_person is decided from the object rank only (hold._hold ->
    # rules.needs_two(spec.rank)): SECRET content inside a CONFIDENTIAL item goes out on one
    # officer's word, although the rules demand two officers from SECRET. Fix: rank = max(object
    # rank, granular ranks) for two_person (and for the queue's clearance bound).
    item = _confidential_item_with_secret_paragraph(client, api, collection.id, analyst)
    assert review_of(client, officer, item["id"])["two_person"] is True


def test_leak_stale_review_releases_another_item_after_delete_sqlite_pk_reuse(
    client, api, collection, analyst, officer, usa
):
    # FINDING (high on SQLite, the default single-node deployment; PostgreSQL sequences do not reuse
    # keys, so there the release is correctly refused with 409). disclosure_review.object_pk is "not
    # a foreign key: a TAXII DELETE may remove the version", and stix_object.pk on SQLite is a plain
    # INTEGER PRIMARY KEY (no AUTOINCREMENT): after the held version (the newest row) is deleted, the
    # next stored version gets the same pk. The stale review then points at that new version: the
    # officer's review page shows the new item's body under the old item's banner, and "release"
    # (decide's present-check passes, release_versions updates by pk) relabels the new version with
    # the deleted item's marked label. Here a SECRET//NOFORN item -- never reviewable, home only --
    # is served to USA. Fix: AUTOINCREMENT (sqlite_autoincrement) on stix_object, and/or a real FK
    # with ON DELETE (close or delete the review), and check object_id/version_us in decide/release.
    noforn = banner("SECRET//NOFORN")
    post_ok(client, api, collection.id, analyst, [noforn])
    deleted = post_marked(client, api, collection.id, analyst, "CONFIDENTIAL//REL TO USA")
    review = review_of(client, officer, deleted["id"])
    assert client.delete(objects_url(api, collection.id, deleted["id"]), headers=analyst).status_code == 200
    home_only = marked(indicator(description="NOFORN content"), noforn)
    post_ok(client, api, collection.id, analyst, [home_only])
    decide(client, officer, [review["id"]])
    assert by_id_status(client, api, collection.id, usa, home_only["id"]) == 404, "a NOFORN item reached USA"


# ====================================================================== findings: existence oracles


def test_oracle_ownership_refusal_tells_a_partner_a_held_observable_exists(
    client, api, collection, shared, analyst, usa
):
    # FINDING (medium). SCO ids are deterministic (UUIDv5 of the value), so a partner can compute the
    # id of any observable it is curious about. Admission refuses a new version of a stored object
    # from a non-owner ("only the originator ...") whether or not the versions are visible -- but an
    # ABSENT id is a plain success. Posting `domain-name` "target.example" into a collection USA may
    # write tells USA whether the home nation holds (here: pending disclosure review, in another
    # collection) an observable for that domain, i.e. what it is investigating. Fix: for an id with
    # no version visible to the submitter, answer as for an absent id (store the partner's own
    # object in its own namespace, or refuse absent ids alike for computable-id types).
    definition = banner("CONFIDENTIAL//REL TO USA")
    held = dict(stix2.DomainName(value="target.example").items()) | {"object_marking_refs": [definition["id"]]}
    post_ok(client, api, collection.id, analyst, [definition, held])
    assert held["id"] not in partner_ids(client, api, collection.id, usa)

    def probe(value: str) -> dict:
        sco = dict(stix2.DomainName(value=value).items())
        status = post_envelope(client, api, shared.id, usa, [sco]).json()
        return {"ok": status["success_count"], "messages": [f.get("message") for f in status["failures"]]}

    assert probe("target.example") == probe(f"absent-{uuid.uuid4().hex[:8]}.example"), "held SCO detectable"


def test_oracle_reference_closure_tells_a_partner_a_held_object_exists(client, api, collection, shared, analyst, usa):
    # FIXED (was medium): a partner's own versions are served to it whole (app/items/store.py).
    # Reference closure withheld a version naming a stored object the requester
    # does not see, but serves "as it is" one naming an id not stored. A partner's OWN relationship
    # to a computed SCO id is thus 404 for itself when the home nation holds that observable, and 200
    # when it does not: the same existence oracle, on the read path. Fix: never withhold a partner's
    # own version for a reference the partner itself wrote (or trim/withhold absent ids alike).
    definition = banner("CONFIDENTIAL//REL TO USA")
    held = dict(stix2.DomainName(value="probe.example").items()) | {"object_marking_refs": [definition["id"]]}
    post_ok(client, api, collection.id, analyst, [definition, held])
    own = indicator()
    post_ok(client, api, shared.id, usa, [own])
    absent = stix2.DomainName(value=f"absent-{uuid.uuid4().hex[:8]}.example")["id"]
    to_held, to_absent = relationship(own["id"], held["id"]), relationship(own["id"], absent)
    post_ok(client, api, shared.id, usa, [to_held, to_absent])
    assert by_id_status(client, api, shared.id, usa, to_absent["id"]) == 200
    assert by_id_status(client, api, shared.id, usa, to_held["id"]) == 200, "the held observable is detectable"


# ====================================================================== finding: rules file at runtime


@pytest.fixture
def own_rules(settings, review_policies, app, tmp_path) -> Iterator[tuple[TestClient, object]]:
    """An app with its own copy of the review rules (so the test may edit them)."""
    directory = tmp_path / "policies"
    shutil.copytree(review_policies, directory)
    application = create_app(settings.model_copy(update={"policies_dir": directory}))
    with TestClient(application, raise_server_exceptions=False) as test_client:
        yield test_client, directory
    application.state.engine.dispose()


def _touch_later(path) -> None:
    later = time.time() + 5
    os.utime(path, (later, later))


def test_safe_an_invalid_rules_file_at_runtime_stores_nothing(own_rules, api, collection, analyst, session):
    client, directory = own_rules
    rules = directory / "disclosure.toml"
    rules.write_text('[[rule]]\ncollections = ["*"]\n')  # `review` missing: invalid
    _touch_later(rules)
    definition = banner("CONFIDENTIAL//REL TO USA")
    item = marked(indicator(), definition)
    answer = post_envelope(client, api, collection.id, analyst, [definition, item])
    assert answer.status_code >= 500
    stored = session.execute(select(func.count()).select_from(StixObject).where(StixObject.object_id == item["id"]))
    assert stored.scalar_one() == 0


def test_bypass_emptied_or_deleted_rules_file_silently_stops_review(own_rules, api, collection, analyst, usa):
    # FINDING (low/medium, operator-side). An invalid rules file fails closed (above), but a file that
    # is truncated (an editor or config tool rewriting it non-atomically) or removed while Tearline
    # runs is read as "no rules": every item posted meanwhile is released as marked, with no error
    # and no log line to the operator. The review that was configured at start is switched off by a
    # missing file. Fix: once started with rules, treat a missing/empty file as invalid (fail closed)
    # and keep the last good rules, or require an explicit `review = false` to switch review off.
    client, directory = own_rules
    first = post_marked(client, api, collection.id, analyst, "CONFIDENTIAL//REL TO USA")
    assert first["id"] not in partner_ids(client, api, collection.id, usa)  # held, as configured
    rules = directory / "disclosure.toml"
    rules.write_text("")  # mid-rewrite
    _touch_later(rules)
    during_rewrite = post_marked(client, api, collection.id, analyst, "CONFIDENTIAL//REL TO USA")
    rules.unlink()
    while_missing = post_marked(client, api, collection.id, analyst, "CONFIDENTIAL//REL TO USA")
    seen = partner_ids(client, api, collection.id, usa)
    assert during_rewrite["id"] not in seen, "an emptied rules file released items unreviewed"
    assert while_missing["id"] not in seen, "a missing rules file released items unreviewed"


# ====================================================================== safe: partner probes


def test_safe_partner_probes_answer_a_held_id_like_an_absent_one(client, api, collection, analyst, usa):
    visible = post_ok(
        client, api, collection.id, analyst, [indicator(created_days=5) | {"object_marking_refs": [GREEN]}]
    )
    assert visible["success_count"] == 1
    definition = banner("CONFIDENTIAL//REL TO USA")
    held = marked(indicator(), definition)
    post_ok(client, api, collection.id, analyst, [definition, held])
    absent = f"indicator--{uuid.uuid4()}"

    def answers(object_id: str, version: str) -> list:
        got = []
        for url, params in (
            (objects_url(api, collection.id, object_id), {}),
            (versions_url(api, collection.id, object_id), {}),
            (objects_url(api, collection.id), {"match[id]": object_id}),
            (manifest_url(api, collection.id), {"match[id]": object_id}),
            (objects_url(api, collection.id), {"match[version]": version}),
        ):
            answer = client.get(url, headers=usa, params=params)
            body = answer.json() if answer.content else None
            detail = (
                {k: body.get(k) for k in ("title", "detail", "objects", "more")} if isinstance(body, dict) else body
            )
            got.append((answer.status_code, detail))
        return got

    held_version = held["modified"].replace("Z", "000Z")
    assert answers(held["id"], held_version) == answers(absent, "2019-01-01T00:00:00.000000Z")
    # The held item's own marking definition is not served either (by id, nor in lists).
    assert by_id_status(client, api, collection.id, usa, definition["id"]) == 404
    assert definition["id"] not in partner_ids(client, api, collection.id, usa)


def test_safe_partner_posting_over_a_held_id_answers_like_for_a_visible_one(
    client, api, collection, shared, analyst, usa
):
    # A new version or a duplicate of a held (random) id from a partner reads "only the originator"
    # exactly as for any stored object, visible or not (section 2a); nothing names the held version.
    held = post_marked(client, api, shared.id, analyst, "CONFIDENTIAL//REL TO USA")
    visible = indicator() | {"object_marking_refs": [GREEN]}
    post_ok(client, api, shared.id, analyst, [visible])

    def message(obj: dict) -> list:
        status = post_envelope(client, api, shared.id, usa, [obj]).json()
        return [(f.get("message"), f["id"] == obj["id"]) for f in status["failures"]]

    assert message(new_version(held, 3, description="x")) == message(new_version(visible, 3, description="x"))


def test_safe_withdrawal_applies_to_an_older_version_released_after_a_newer_one(
    client, api, collection, analyst, officer, usa, gbr
):
    # Release as new: an older, wider version released after a newer, narrower one is still withdrawn
    # from the nation the newer one excludes (section 7b, "whatever order the versions were stored in").
    base = indicator()
    newer = post_marked(
        client, api, collection.id, analyst, "CONFIDENTIAL//REL TO USA", new_version(base, 2, description="newer")
    )
    assert decide(client, officer, [review_of(client, officer, newer["id"])["id"]]).status_code == 200
    older = post_marked(
        client, api, collection.id, analyst, "CONFIDENTIAL//REL TO USA, GBR", new_version(base, 1, description="o")
    )
    assert decide(client, officer, [review_of(client, officer, older["id"])["id"]]).status_code == 200
    assert served_versions(client, api, collection.id, gbr, base["id"]) == []
    assert len(served_versions(client, api, collection.id, usa, base["id"])) == 2


# ====================================================================== safe: who may act on the queue


def test_safe_only_officers_reach_the_queue_and_refusals_are_on_record(
    client, api, collection, analyst, officer, usa, who, session
):
    item = post_marked(client, api, collection.id, analyst, "RESTRICTED//REL TO USA")
    review = review_of(client, officer, item["id"])
    routes = [
        ("GET", QUEUE, None),
        ("GET", f"/api/v1/disclosure/reviews/{review['id']}", None),
        ("POST", "/api/v1/disclosure/preview", {"reviews": [review["id"]]}),
        ("POST", "/api/v1/disclosure/decisions", {"reviews": [review["id"]], "action": "release", "reason": "x"}),
        ("GET", "/api/v1/disclosure/speed", None),
    ]
    for headers in (usa, who("auditor"), analyst, who("partner+officer", "usa-off", nation="USA")):
        for method, url, body in routes:
            answer = client.request(method, url, headers=headers, json=body)
            assert answer.status_code in (401, 403), (headers, url, answer.status_code)
            assert item["id"] not in answer.text and "RESTRICTED" not in answer.text
    assert client.get("/api/v1/disclosure/mine", headers=usa).status_code == 403
    assert review_of(client, officer, item["id"])["state"] == "pending"
    assert item["id"] not in partner_ids(client, api, collection.id, usa)


def test_safe_a_batch_mixing_an_own_item_is_refused_whole_and_on_record(client, api, collection, who, session):
    dual = who("analyst+officer", "dual-atk")
    analyst = who("analyst")
    own = post_marked(client, api, collection.id, dual, "RESTRICTED//REL TO USA")
    other = post_marked(client, api, collection.id, analyst, "RESTRICTED//REL TO USA")
    reviewer = who("officer", "officer-atk-2")
    ids = [review_of(client, reviewer, other["id"])["id"], review_of(client, reviewer, own["id"])["id"]]
    assert decide(client, dual, ids).status_code == 403
    assert {review_of(client, reviewer, i)["state"] for i in (own["id"], other["id"])} == {"pending"}
    session.expire_all()
    record = (
        session.execute(
            select(AuditRecord)
            .where(AuditRecord.route.contains("/disclosure/decisions"), AuditRecord.subject == "dual-atk")
            .order_by(AuditRecord.seq.desc())
        )
        .scalars()
        .first()
    )
    assert record is not None and record.status == 403
    # Nor may it release its own item by proposing and confirming it with itself (two-person).
    secret = post_marked(client, api, collection.id, analyst, "SECRET//REL TO USA")
    secret_review = review_of(client, reviewer, secret["id"])["id"]
    assert decide(client, reviewer, [secret_review]).json()["outcomes"][0]["awaiting_second_officer"] is True
    assert decide(client, reviewer, [secret_review, secret_review]).status_code == 409
