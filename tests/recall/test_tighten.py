"""Recall as partners meet it over TAXII: a tightened or revoked item reaches each past recipient as a
notice, and nobody else; the recalled versions are no longer served to the nations they were
withdrawn from; the notice is valid STIX and tells nothing the recipient did not hold.
"""

from __future__ import annotations

import pytest

from tests.conftest import TAXII
from tests.recall.helpers import RECALL_EXTENSION, Nations, notices_for, pull
from tests.taxii.helpers import assert_valid_stix, indicator, new_version, objects_url, post_ok, taxii_time
from tests.taxii.test_releasability import banner, marked


@pytest.fixture
def nations(auth) -> Nations:
    return Nations(auth)


def test_tightening_notifies_exactly_the_past_recipients_that_lose_the_item(client, api, collection, nations):
    wide, narrow = banner("CONFIDENTIAL//REL TO USA, GBR, FRA, DEU"), banner("CONFIDENTIAL//REL TO USA, GBR")
    first = marked(indicator(), wide)
    post_ok(client, api, collection.id, nations.home, [wide, first])
    # USA, FRA and GBR pull the first version; DEU may see it but never pulls it.
    for nation in ("USA", "FRA", "GBR"):
        assert first["id"] in {o["id"] for o in pull(client, api, collection.id, nations[nation])}
    tightened = marked(new_version(first, 1, description="narrowed"), narrow)
    post_ok(client, api, collection.id, nations.home, [narrow, tightened])

    # FRA held the item and lost it: one notice. USA and GBR still see it; DEU never held it.
    fra_notices = notices_for(client, api, collection.id, nations["FRA"])
    assert len(fra_notices) == 1
    notice = fra_notices[0]
    assert notice["object_refs"] == [first["id"]]
    properties = notice["extensions"][RECALL_EXTENSION]
    assert properties["recalled_object"] == first["id"]
    assert properties["recalled_versions"] == [taxii_time(first["modified"])]
    assert properties["action"] in {"destroy", "do-not-disseminate", "quarantine"}
    assert_valid_stix(notice)
    # Nothing of the new version: neither its content nor its label.
    text = str(notice)
    assert "narrowed" not in text and "REL TO USA, GBR" not in text and tightened["modified"] not in text
    for nation in ("USA", "GBR", "DEU"):
        assert notices_for(client, api, collection.id, nations[nation]) == []

    # The first version is withdrawn from FRA (by id: as absent), still served to USA, and DEU too lost it.
    by_id = client.get(objects_url(api, collection.id, first["id"]), headers=nations["FRA"])
    assert by_id.status_code == 404
    assert {
        o["modified"] for o in pull(client, api, collection.id, nations["USA"], version="all") if o["id"] == first["id"]
    } == {
        first["modified"],
        tightened["modified"],
    }
    assert first["id"] not in {o["id"] for o in pull(client, api, collection.id, nations["DEU"], version="all")}


def test_a_second_tightening_notifies_no_one_twice(client, api, collection, nations):
    wide = banner("UNCLASSIFIED//REL TO USA, FRA")
    first = marked(indicator(), wide)
    post_ok(client, api, collection.id, nations.home, [wide, first])
    pull(client, api, collection.id, nations["FRA"])
    home_only = banner("UNCLASSIFIED")
    post_ok(client, api, collection.id, nations.home, [home_only, marked(new_version(first, 1), home_only)])
    post_ok(client, api, collection.id, nations.home, [home_only, marked(new_version(first, 2), home_only)])
    assert len(notices_for(client, api, collection.id, nations["FRA"])) == 1


def test_revocation_notifies_every_past_recipient(client, api, collection, nations):
    wide = banner("UNCLASSIFIED//REL TO USA, FRA")
    first = marked(indicator(), wide)
    post_ok(client, api, collection.id, nations.home, [wide, first])
    for nation in ("USA", "FRA"):
        pull(client, api, collection.id, nations[nation])
    revoked = marked(new_version(first, 1, revoked=True), wide)
    post_ok(client, api, collection.id, nations.home, [wide, revoked])
    for nation in ("USA", "FRA"):
        (notice,) = notices_for(client, api, collection.id, nations[nation])
        assert notice["extensions"][RECALL_EXTENSION]["recalled_object"] == first["id"]
    assert notices_for(client, api, collection.id, nations["GBR"]) == []


def test_notice_arrives_in_an_added_after_pull(client, api, collection, nations):
    wide = banner("UNCLASSIFIED//REL TO FRA")
    first = marked(indicator(), wide)
    post_ok(client, api, collection.id, nations.home, [wide, first])
    response = client.get(objects_url(api, collection.id), headers=nations["FRA"])
    last = response.headers["X-TAXII-Date-Added-Last"]
    home_only = banner("UNCLASSIFIED")
    post_ok(client, api, collection.id, nations.home, [home_only, marked(new_version(first, 1), home_only)])
    later = client.get(
        objects_url(api, collection.id), headers=nations["FRA"] | {"Accept": TAXII}, params={"added_after": last}
    )
    assert sorted(o["type"] for o in later.json()["objects"]) == ["marking-definition", "note"]
