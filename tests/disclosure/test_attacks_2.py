"""Second probe of disclosure review and of the partner's own-version rule (docs/design.md 2, 2a, 7, 7a-7c).

Attacked from outside (a partner with a valid token), by an analyst and by officers, after two changes:
(1) disclosure-review hardening (revocations held unless they repeat a non-held version; every type
but marking definitions held; home versions of a partner's item held under a home-only label; an
item's classification the max of object and granular markings; granular TLP; review FK SET NULL; rules
kept when the file is emptied); (2) a partner's own versions (submitter = its nation) are exempt from
reference closure for that partner.

Tests named ``test_leak_*`` / ``test_bypass_*`` / ``test_oracle_*`` are FINDINGS: they fail today and
say what leaks and why it matters. ``test_safe_*`` are attacks that turned out to be refused.

Rules of tests/disclosure/conftest.py (TLP:CLEAR/GREEN released as marked, everything else held, two
officers from SECRET) unless a test builds its own app.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator

import pytest
import stix2
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.main import create_app
from app.taxii import service as taxii_service
from tests.disclosure.helpers import (
    by_id_status,
    decide,
    partner_ids,
    post_marked,
    relationship,
    review_of,
    served_versions,
)
from tests.policy.oracle import tlp_id
from tests.recall.helpers import pull
from tests.taxii.helpers import indicator, manifest_url, new_version, objects_url, post_envelope, post_ok, versions_url
from tests.taxii.test_releasability import banner, marked

GREEN = tlp_id("2.0:green")


def report(object_refs: list[str], **extra) -> dict:
    return {
        "type": "report",
        "spec_version": "2.1",
        "id": f"report--{uuid.uuid4()}",
        "created": "2024-01-01T00:00:00.000Z",
        "modified": "2024-01-01T00:00:00.000Z",
        "name": "weekly summary",
        "published": "2024-01-01T00:00:00.000Z",
        "object_refs": object_refs,
    } | extra


def get_object(client, api, collection_id, headers, object_id) -> dict | None:
    answer = client.get(objects_url(api, collection_id, object_id), headers=headers, params={"match[version]": "all"})
    if answer.status_code != 200:
        return None
    objects = answer.json().get("objects", [])
    return objects[-1] if objects else None


# ====================================================================== findings: revocations


def test_leak_revoking_a_recalled_item_re_releases_the_recalled_content_unreviewed(
    client, api, collection, analyst, officer, usa
):
    # FINDING (high). An analyst recalls a released version (explicit recall: withdrawn from every
    # partner, e.g. because it named a source) before USA pulled it, then revokes the item -- the
    # ordinary way to retire it. items/service.revoke_item builds the revocation from the newest
    # version the analyst sees -- the recalled one, whose label was narrowed but whose body is as it
    # was -- and hold._repeats_released lets it through unreviewed because the recalled version "is
    # not held". The revocation is stored under the *marked* label, so USA receives exactly the
    # content that was recalled from it (never received before), with no officer involved.
    # Fix: a revocation repeats only what partners may still see -- compare with versions whose current
    # label (not the disclosure state alone) still releases them (or hold a revocation whose source was
    # withdrawn/recalled; or build revocations as {id, created, modified, revoked} with no content).
    v1 = post_marked(
        client, api, collection.id, analyst, "CONFIDENTIAL//REL TO USA", indicator(description="names source X")
    )
    assert decide(client, officer, [review_of(client, officer, v1["id"])["id"]]).status_code == 200
    recalled = client.post(
        f"/api/v1/items/{v1['id']}/recall",
        headers=analyst,
        json={"reason": "names a source", "collection": collection.id},
    )
    assert recalled.status_code == 201, recalled.text
    assert served_versions(client, api, collection.id, usa, v1["id"]) == []
    revoked = client.post(f"/api/v1/items/{v1['id']}/revoke", headers=analyst, json={"collection": collection.id})
    assert revoked.status_code == 201, revoked.text
    descriptions = [o.get("description") for o in served_versions(client, api, collection.id, usa, v1["id"])]
    assert "names source X" not in descriptions, "the recalled content came back to USA in the revocation"


RULES_BY_ALIAS = """
two_person_from = "SECRET"

[[rule]]
collections = ["{alias}"]
rel_to = false
review = false

[[rule]]
collections = ["{alias}"]
review = true
"""


@pytest.fixture(scope="module")
def by_alias(settings, review_policies, app, tmp_path_factory) -> Iterator[tuple[TestClient, str, str]]:
    """An app whose rules name one collection (released to ALL: not reviewed; anything else held), and a
    second collection no rule names (not reviewed), e.g. an internal working collection."""
    directory = tmp_path_factory.mktemp("alias-policies")
    shutil.copytree(review_policies, directory, dirs_exist_ok=True)
    alias = f"reviewed-{uuid.uuid4().hex[:8]}"
    (directory / "disclosure.toml").write_text(RULES_BY_ALIAS.format(alias=alias))
    application = create_app(settings.model_copy(update={"policies_dir": directory}))
    with Session(application.state.engine) as session:
        reviewed = taxii_service.create_collection(
            session, title=alias, alias=alias, read_roles={"partner", "analyst"}, write_roles={"analyst"}
        )
        internal = taxii_service.create_collection(
            session, title=f"internal {alias}", read_roles={"analyst"}, write_roles={"analyst"}
        )
        ids = (reviewed.id, internal.id)
    with TestClient(application) as test_client:
        yield test_client, *ids
    application.state.engine.dispose()


def test_bypass_revocation_repeating_a_version_of_an_unreviewed_collection_skips_review(by_alias, api, who):
    # FINDING (high). hold._repeats_released compares a revocation with every non-held version of the
    # object in ANY collection. A version stored in a collection no rule names (an internal working
    # collection partners cannot even read) was never reviewed -- it is "not held" only because review
    # does not apply there. Posting a revoked copy of it into the partner-facing, reviewed collection
    # stores it unreviewed under its marked label: USA reads CONFIDENTIAL content that no officer saw.
    # Fix: a revocation repeats only a version that was released in the same collection (or reviewed
    # and released anywhere); look at disclosure_review RELEASED rows / the collection, not the absence
    # of a pending review.
    client, reviewed, internal = by_alias
    analyst, usa = who("analyst"), who("partner", "usa-1", nation="USA")
    draft = post_marked(
        client, api, internal, analyst, "CONFIDENTIAL//REL TO USA", indicator(description="internal draft")
    )
    revocation = new_version(draft, 3) | {"revoked": True}  # same content and markings, revoked
    post_ok(client, api, reviewed, analyst, [revocation])
    descriptions = [o.get("description") for o in served_versions(client, api, reviewed, usa, draft["id"])]
    assert "internal draft" not in descriptions, "unreviewed content reached USA through a revocation"


def test_bypass_rel_to_rule_ignores_a_narrower_granular_release(by_alias, api, who):
    # FINDING (medium/high). The item's classification for the rules is now the max of its object and
    # granular markings, but the `rel_to` condition still looks at the object label's release only. With
    # the common rule "released to ALL: not reviewed", an UNCLASSIFIED//REL TO ALL item whose description
    # carries a granular SECRET//REL TO USA marking matches the rule and is served at once: USA reads a
    # SECRET paragraph no officer (let alone the two officers required from SECRET) has seen.
    # Fix: evaluate `rel_to` over the granular labels too (any granular label naming nations makes the
    # item `rel_to = true`), as `tlp` and `min_classification` now are.
    client, reviewed, _ = by_alias
    analyst, usa = who("analyst"), who("partner", "usa-1", nation="USA")
    public, secret = banner("UNCLASSIFIED//REL TO ALL"), banner("SECRET//REL TO USA")
    item = marked(indicator(description="SECRET paragraph"), public) | {
        "granular_markings": [{"marking_ref": secret["id"], "selectors": ["description"]}]
    }
    post_ok(client, api, reviewed, analyst, [public, secret, item])
    descriptions = [o.get("description") for o in served_versions(client, api, reviewed, usa, item["id"])]
    assert "SECRET paragraph" not in descriptions, "SECRET content released without an officer"


def test_safe_revocation_with_different_markings_or_granular_markings_is_held(
    client, api, collection, analyst, officer, usa, gbr
):
    v1 = post_marked(client, api, collection.id, analyst, "CONFIDENTIAL//REL TO USA", indicator(description="v1"))
    assert decide(client, officer, [review_of(client, officer, v1["id"])["id"]]).status_code == 200
    wider = banner("CONFIDENTIAL//REL TO USA, GBR")
    widened = new_version(v1, 2) | {"revoked": True, "object_marking_refs": [wider["id"]]}
    post_ok(client, api, collection.id, analyst, [wider, widened])
    assert served_versions(client, api, collection.id, gbr, v1["id"]) == []
    secret = banner("SECRET//REL TO USA")
    granular = new_version(v1, 3) | {
        "revoked": True,
        "granular_markings": [{"marking_ref": secret["id"], "selectors": ["description"]}],
    }
    post_ok(client, api, collection.id, analyst, [secret, granular])
    assert [o["modified"] for o in served_versions(client, api, collection.id, usa, v1["id"])] == [v1["modified"]]


def test_safe_analyst_update_of_a_held_item_is_held_and_previous_release_stays_last(
    client, api, collection, analyst, officer, usa
):
    v1 = post_marked(client, api, collection.id, analyst, "CONFIDENTIAL//REL TO USA", indicator(description="v1"))
    assert decide(client, officer, [review_of(client, officer, v1["id"])["id"]]).status_code == 200
    answer = client.post(
        f"/api/v1/items/{v1['id']}/versions",
        headers=analyst,
        json={"changes": {"description": "v2 unreviewed"}, "collection": collection.id},
    )
    assert answer.status_code == 201, answer.text
    last = pull(client, api, collection.id, usa, "last")
    assert [o.get("description") for o in last if o["id"] == v1["id"]] == ["v1"]
    versions = client.get(versions_url(api, collection.id, v1["id"]), headers=usa).json()["versions"]
    assert len(versions) == 1
    head = client.get(objects_url(api, collection.id), headers=usa, params={"match[id]": v1["id"]})
    assert "v2 unreviewed" not in head.text


# ====================================================================== findings: own-version rule


def _held_observable(client, api, collection_id, analyst) -> dict:
    definition = banner("CONFIDENTIAL//REL TO USA")
    held = dict(stix2.DomainName(value=f"held-{uuid.uuid4().hex[:6]}.example").items()) | {
        "object_marking_refs": [definition["id"]]
    }
    post_ok(client, api, collection_id, analyst, [definition, held])
    return held


def test_oracle_own_version_is_judged_withheld_when_another_object_names_it(
    client, api, collection, shared, analyst, usa
):
    # FINDING (medium). A partner's own version is now served to it whole (never withheld over a
    # reference it wrote). But when *another* object names that version, reference closure judges the
    # own version along the chain (predicates.reference_verdicts/_judge) without the exemption: the own
    # relationship naming a hidden (here: held) observable counts as "withheld", so a home report whose
    # only entry is USA's relationship is withheld from USA (and a report with more entries loses it),
    # while the same report over a relationship naming an absent id is served. USA, which reads its own
    # relationship by id, learns that the home nation holds the observable it named (existence oracle
    # through a third object), and is under-served in breach of section 2 ("seen" = visible, not withheld,
    # readable: the own version is all three for USA).
    # Fix: apply the own-version exemption inside the verdict chain (a version submitted by the
    # requester's nation is never withheld by its references, at any hop) and in seen_flag.
    held = _held_observable(client, api, collection.id, analyst)
    absent = stix2.DomainName(value=f"absent-{uuid.uuid4().hex[:6]}.example")["id"]
    anchor = indicator()
    post_ok(client, api, shared.id, usa, [anchor])
    to_held, to_absent = relationship(held["id"], anchor["id"]), relationship(absent, anchor["id"])
    post_ok(client, api, shared.id, usa, [to_held, to_absent])
    assert by_id_status(client, api, shared.id, usa, to_held["id"]) == 200  # own: served whole
    over_held = report([to_held["id"]], object_marking_refs=[GREEN])
    over_absent = report([to_absent["id"]], object_marking_refs=[GREEN])
    post_ok(client, api, shared.id, analyst, [over_held, over_absent])
    assert by_id_status(client, api, shared.id, usa, over_absent["id"]) == 200
    assert by_id_status(client, api, shared.id, usa, over_held["id"]) == 200, "held observable detectable"


def test_safe_another_nations_version_naming_a_hidden_object_is_not_own(
    client, api, collection, shared, analyst, usa, gbr
):
    # GBR's relationship naming an object USA does not see is closed for USA (not USA's own) and served
    # whole to GBR only when GBR sees it; USA's exemption never extends to another nation's versions.
    held = _held_observable(client, api, collection.id, analyst)
    anchor = indicator()
    post_ok(client, api, shared.id, gbr, [anchor])
    by_gbr = relationship(held["id"], anchor["id"])
    post_ok(client, api, shared.id, gbr, [by_gbr])
    assert by_id_status(client, api, shared.id, gbr, by_gbr["id"]) == 200  # GBR's own
    assert by_id_status(client, api, shared.id, usa, by_gbr["id"]) == 404
    assert by_gbr["id"] not in partner_ids(client, api, shared.id, usa)
    manifest = client.get(manifest_url(api, shared.id), headers=usa, params={"match[id]": by_gbr["id"]})
    assert by_gbr["id"] not in manifest.text


def test_leak_home_version_of_a_partner_item_released_to_its_originator_only_is_not_held(
    client, api, shared, analyst, usa
):
    # FINDING (high). Section 7c: the home nation's new versions of a partner's item are held, "not even
    # the originator of a partner's item sees the home nation's new version of it". But
    # hold.releases_to_anyone() asks only whether the label names a releasable-to set; a partner item
    # released to its originator alone (CONFIDENTIAL//REL TO USA from USA, or any unmarked partner
    # object: originator only) has an empty releasable-to set, so the home nation's update of it is
    # never a candidate and USA reads the NLD analyst's new text (and any new references, trimmed) at
    # once, with no officer. Fix: a label releases to someone when it names a releasable-to set OR its
    # originator is a partner nation (not the home nation), no home-only caveat aside.
    rel = banner("CONFIDENTIAL//REL TO USA")
    anchor = indicator()
    own_report = marked(report([anchor["id"]]), rel)
    post_ok(client, api, shared.id, usa, [anchor, rel, own_report])
    answer = client.post(
        f"/api/v1/items/{own_report['id']}/versions",
        headers=analyst,
        json={"changes": {"description": "NLD assessment, not reviewed"}, "collection": shared.id},
    )
    assert answer.status_code == 201, answer.text
    descriptions = [o.get("description") for o in served_versions(client, api, shared.id, usa, own_report["id"])]
    assert "NLD assessment, not reviewed" not in descriptions, "home content reached the originator unreviewed"


def test_safe_home_version_of_a_partner_report_is_closed_for_that_partner(
    client, api, collection, shared, analyst, officer, usa
):
    # The home nation's new version of USA's report (submitter NLD) is not USA's own: it is held (not
    # even USA sees it), and after release a reference the analyst added to an object USA does not see
    # is removed from USA's copy.
    held = _held_observable(client, api, collection.id, analyst)
    anchor = indicator()
    rel = banner("CONFIDENTIAL//REL TO USA, GBR")
    own_report = marked(report([anchor["id"]]), rel)
    post_ok(client, api, shared.id, usa, [anchor, rel, own_report])
    answer = client.post(
        f"/api/v1/items/{own_report['id']}/versions",
        headers=analyst,
        json={"changes": {"object_refs": [anchor["id"], held["id"]]}, "collection": shared.id},
    )
    assert answer.status_code == 201, answer.text
    assert len(served_versions(client, api, shared.id, usa, own_report["id"])) == 1
    review = review_of(client, officer, own_report["id"])
    assert decide(client, officer, [review["id"]]).status_code == 200
    served = served_versions(client, api, shared.id, usa, own_report["id"])
    assert len(served) == 2
    assert all(held["id"] not in o["object_refs"] for o in served)


def test_safe_lowered_clearance_token_sees_only_ids_of_its_own_higher_objects(client, api, shared, who):
    # A USA token lowered to RESTRICTED: USA's own SECRET indicator stays absent (404, not listed, no
    # versions), while USA's own RESTRICTED relationship naming it is served whole -- the only thing it
    # shows is an id USA wrote itself.
    full, low = who("partner", "usa-1", nation="USA"), who("partner", "usa-low", nation="USA", clearance="RESTRICTED")
    secret, restricted = banner("SECRET//REL TO USA"), banner("RESTRICTED//REL TO USA")
    hidden = marked(indicator(description="SECRET content of USA"), secret)
    anchor = marked(indicator(), restricted)
    rel = marked(relationship(hidden["id"], anchor["id"]), restricted)
    post_ok(client, api, shared.id, full, [secret, restricted, hidden, anchor, rel])
    assert by_id_status(client, api, shared.id, low, hidden["id"]) == 404
    assert client.get(versions_url(api, shared.id, hidden["id"]), headers=low).status_code == 404
    everything = pull(client, api, shared.id, low, "all")
    assert hidden["id"] not in {o["id"] for o in everything}
    assert "SECRET content of USA" not in str(everything)
    got = get_object(client, api, shared.id, low, rel["id"])
    assert got is not None and got["source_ref"] == hidden["id"]


def test_safe_own_exemption_does_not_leak_to_a_lower_cleared_nation_with_a_post(
    client, api, collection, shared, analyst, usa, who
):
    # CAN (RESTRICTED) sees USA's RESTRICTED relationship naming a CONFIDENTIAL held observable? No:
    # the exemption is USA's alone; for CAN the relationship is closed (withheld: its source is hidden).
    can = who("partner", "can-1", nation="CAN")
    held = _held_observable(client, api, collection.id, analyst)
    anchor = indicator(object_marking_refs=[GREEN])
    rel = relationship(held["id"], anchor["id"], object_marking_refs=[GREEN])
    post_ok(client, api, shared.id, usa, [anchor, rel])
    assert by_id_status(client, api, shared.id, usa, rel["id"]) == 200
    assert by_id_status(client, api, shared.id, can, rel["id"]) == 404
    # ... also when CAN posts an exact copy of it (a duplicate stores nothing: still not CAN's own).
    status = post_envelope(client, api, shared.id, can, [rel]).json()
    assert by_id_status(client, api, shared.id, can, rel["id"]) == 404, status


def test_bypass_text_in_a_marking_definition_is_released_without_the_officer_seeing_it(
    client, api, collection, analyst, officer, usa
):
    # FINDING (low/medium). Marking definitions are never held ("served only beside what they
    # describe"), and the officer's review shows the held item's body only (service.held_content),
    # not the definitions it references. A home analyst's statement definition may carry free text
    # beside its banner (`name`, custom x_ properties): the officer releases the item having read
    # nothing of it, and USA then fetches the definition -- with the text -- by id and in pages.
    # Fix: show the item's non-TLP, non-canonical marking definitions in the review (or refuse free
    # properties on home statement definitions / serve canonical definitions only).
    definition = banner("CONFIDENTIAL//REL TO USA") | {
        "name": "source HUMINT-7, inside the target",
        "x_note": "meeting every Tuesday",
    }
    item = marked(indicator(description="reviewed text"), definition)
    post_ok(client, api, collection.id, analyst, [definition, item])
    review = review_of(client, officer, item["id"])
    shown = client.get(f"/api/v1/disclosure/reviews/{review['id']}", headers=officer)
    officer_saw = "HUMINT-7" in shown.text
    assert decide(client, officer, [review["id"]]).status_code == 200
    served = get_object(client, api, collection.id, usa, definition["id"])
    assert officer_saw or served is None or "HUMINT-7" not in str(served), "unseen text released beside the item"
