"""The stix2 library's data-store API (``TAXIICollectionSource`` over a taxii2-client ``Collection``)
reading a Tearline collection as USA and as FRA.

The workload is :mod:`tests.e2e.partner_workload`'s, plus a second version of the malware for
both. ``query`` (no filter, a type filter sent to the server, a property filter applied by stix2),
``get`` and ``all_versions`` must return exactly the versions each nation may see, redacted as
for any TAXII client, and nothing of what it may not see (the other nation's objects, the TOP
SECRET one, the recalled item).
"""

from __future__ import annotations

import json

import pytest
import stix2
from stix2 import Filter, TAXIICollectionSource
from taxii2client.v21 import ApiRoot

from app.feeds.client import BearerAuth
from tests.e2e.partner_workload import (
    PULLERS,
    Workload,
    expected_view,
    notices,
    partner_collection,
    partner_token,
    post_workload,
)

pytestmark = pytest.mark.e2e


def _plain(obj) -> dict:
    """A stix2 object (or a dict, parsed as stix2 parses what it reads) as JSON: stix2 writes defaults
    such as ``pattern_version`` and its own timestamp precision, so expectations go through it too."""
    if isinstance(obj, dict):
        obj = stix2.parse(obj, allow_custom=True, version="2.1")
    return json.loads(obj.serialize())


@pytest.fixture(scope="module")
def workload(app, live_server: str, settings, make_token) -> tuple[Workload, dict, dict]:
    """The workload, the malware's first version and its second version (posted after the pulls)."""
    posted = post_workload(app, live_server, settings, make_token)
    first = posted.item("LanternRAT").obj
    second = _plain(
        stix2.parse(first, version="2.1").new_version(modified="2025-03-02T08:00:00.000Z", aliases=["Lantern"])
    )
    with ApiRoot(f"{live_server}/taxii2/{settings.api_root}/", auth=BearerAuth(make_token())) as root:
        (collection,) = [c for c in root.collections if c.id == posted.collection_id]
        status = collection.add_objects({"objects": [second]}, wait_for_completion=True)
    assert status.success_count == 1, status.failures
    return posted, first, second


@pytest.fixture(params=PULLERS, ids=lambda p: p.nation)
def source(request, workload, live_server: str, make_token):
    """(principal, a TAXIICollectionSource reading as it, its expected newest copies by id)."""
    posted, first, second = workload
    principal = request.param
    collection = partner_collection(live_server, partner_token(make_token, principal), posted.collection_id)
    expected = expected_view(principal, posted)
    assert first["id"] in expected  # both nations see the malware, so its newest version replaces the first
    expected[second["id"]] = second
    expected = {object_id: _plain(obj) for object_id, obj in expected.items()}
    # A small page: the source must follow Tearline's paging to the end.
    return principal, TAXIICollectionSource(collection, items_per_page=5), expected


def test_query_returns_exactly_the_releasable_objects(source, workload):
    principal, data_source, expected = source
    posted = workload[0]
    received = [_plain(o) for o in data_source.query()]
    content = {o["id"]: o for o in received if o["type"] != "marking-definition" and o not in notices(received)}
    assert content == expected, principal.nation
    assert len(notices(received)) == 1  # its own recall notice
    assert posted.recalled_id not in {o["id"] for o in received}

    # A filter TAXII understands (sent as match[type]) and one stix2 applies to what came back.
    indicators = [_plain(o) for o in data_source.query([Filter("type", "=", "indicator")])]
    assert {o["id"]: o for o in indicators} == {i: o for i, o in expected.items() if o["type"] == "indicator"}
    staging = data_source.query([Filter("type", "=", "indicator"), Filter("name", "=", "Staging host")])
    assert [o.id for o in staging] == [i for i, o in expected.items() if o.get("name") == "Staging host"]


def test_get_and_all_versions_serve_only_visible_versions(source, workload):
    principal, data_source, expected = source
    posted, first, second = workload
    for object_id, obj in expected.items():
        assert _plain(data_source.get(object_id)) == obj, (principal.nation, object_id)
    hidden = set(posted.items) - set(expected)
    assert hidden and posted.recalled_id in hidden
    for object_id in hidden:
        assert data_source.get(object_id) is None, (principal.nation, object_id)
        assert data_source.all_versions(object_id) == [], object_id

    versions = sorted((_plain(v) for v in data_source.all_versions(first["id"])), key=lambda v: v["modified"])
    assert versions == [_plain(first), _plain(second)]
    c2 = posted.item("C2 address").obj["id"]
    assert [_plain(v) for v in data_source.all_versions(c2)] == [expected[c2]]  # redacted alike, if at all
