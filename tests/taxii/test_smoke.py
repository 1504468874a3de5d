"""A first pass through the TAXII routes: post, then read back."""

import stix2

from tests.conftest import TAXII


def test_post_then_get_objects(client, analyst, collection, api):
    indicator = stix2.Indicator(pattern="[ipv4-addr:value = '198.51.100.7']", pattern_type="stix")
    url = f"{api}/collections/{collection.id}/objects/"
    posted = client.post(
        url, headers=analyst | {"Content-Type": TAXII}, content='{"objects": [' + indicator.serialize() + "]}"
    )
    assert posted.status_code == 202, posted.text
    assert posted.json()["success_count"] == 1
    got = client.get(url, headers=analyst)
    assert got.status_code == 200
    assert [o["id"] for o in got.json()["objects"]] == [indicator.id]
