"""Held versions and recall: a held narrower version withdraws nothing until it is released."""

from __future__ import annotations

from tests.disclosure.helpers import decide, post_marked, review_of
from tests.recall.helpers import RECALL_EXTENSION, notices_for, pull
from tests.taxii.helpers import indicator, new_version, objects_url


def test_a_narrower_version_recalls_only_once_released(client, api, collection, who):
    analyst, officer = who("analyst"), who("officer", "officer-rr")
    fra = who("partner", "fra-rr", nation="FRA")
    first = post_marked(client, api, collection.id, analyst, "RESTRICTED//REL TO USA, FRA", indicator())
    assert decide(client, officer, [review_of(client, officer, first["id"])["id"]]).status_code == 200
    assert first["id"] in {o["id"] for o in pull(client, api, collection.id, fra)}  # FRA holds it

    second = post_marked(client, api, collection.id, analyst, "RESTRICTED//REL TO USA", new_version(first, 1))
    # Held: FRA keeps the first version and hears of nothing.
    assert client.get(objects_url(api, collection.id, first["id"]), headers=fra).status_code == 200
    assert notices_for(client, api, collection.id, fra) == []

    assert decide(client, officer, [review_of(client, officer, second["id"])["id"]]).status_code == 200
    assert client.get(objects_url(api, collection.id, first["id"]), headers=fra).status_code == 404
    (notice,) = notices_for(client, api, collection.id, fra)
    assert notice["extensions"][RECALL_EXTENSION]["recalled_object"] == first["id"]


def test_a_declined_narrower_version_leaves_the_released_one(client, api, collection, who):
    analyst, officer = who("analyst"), who("officer", "officer-rd")
    fra = who("partner", "fra-rd", nation="FRA")
    first = post_marked(client, api, collection.id, analyst, "RESTRICTED//REL TO USA, FRA", indicator())
    assert decide(client, officer, [review_of(client, officer, first["id"])["id"]]).status_code == 200
    pull(client, api, collection.id, fra)
    second = post_marked(client, api, collection.id, analyst, "RESTRICTED//REL TO USA", new_version(first, 1))
    assert decide(client, officer, [review_of(client, officer, second["id"])["id"]], "decline").status_code == 200
    assert client.get(objects_url(api, collection.id, first["id"]), headers=fra).status_code == 200
    assert notices_for(client, api, collection.id, fra) == []
