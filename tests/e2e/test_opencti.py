"""OpenCTI's TAXII2 import connector (OpenCTI-Platform/connectors, ``external-import/taxii2``) against Tearline.

The connector sets no header of its own: ``src/connector/client_taxii.py`` builds a taxii2-client
``v21.Server(discovery_url, auth=TokenAuth(token), verify=..., cert=...)`` (with ``TAXII2_V21=true``
and ``TAXII2_USE_TOKEN=true``), finds the API root by the last segment of its URL and the collection
by its title, and calls ``collection.get_objects(limit=..., added_after=...)``. What goes on the wire
is therefore taxii2-client's header set plus requests' defaults. The test drives taxii2-client the
same way, records the headers of every request, checks them against that set, then replays exactly
those headers with plain requests to discovery, the API root, the collections, one collection, its
objects and its manifest, and checks each answer is 200 and valid TAXII 2.1.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests
from taxii2client import DEFAULT_USER_AGENT, MEDIA_TYPE_TAXII_V21
from taxii2client.common import TokenAuth
from taxii2client.v21 import Server

from tests.e2e.partner_workload import USA, Workload, assert_exact_view, partner_token, post_workload
from tests.taxii.helpers import check_taxii_200

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def workload(app, live_server: str, settings, make_token) -> Workload:
    return post_workload(app, live_server, settings, make_token)


@pytest.fixture(scope="module")
def connector_run(workload: Workload, live_server: str, settings, make_token) -> tuple[list[dict], list[dict]]:
    """One connector run as USA (one page, as docs/partners.md advises): (objects, headers of each request)."""
    token = partner_token(make_token, USA)
    server = Server(f"{live_server}/taxii2/", auth=TokenAuth(token), verify=True, cert=None)
    sent: list[dict] = []
    # Every request of this client goes through one requests session; record what it put on the wire.
    server._conn.session.hooks["response"].append(
        lambda response, *_, **__: sent.append(dict(response.request.headers))
    )
    (root,) = [root for root in server.api_roots if root.url.split("/")[-2] == settings.api_root]
    title = next(c.title for c in root.collections if c.id == workload.collection_id)
    (collection,) = [c for c in root.collections if c.title == title]
    # TAXII2_INITIAL_HISTORY=720 (hours), TAXII2_ENABLE_URL_QUERY_LIMIT=true, TAXII2_URL_QUERY_LIMIT=1000.
    added_after = (datetime.now(UTC) - timedelta(hours=720)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    envelope = collection.get_objects(limit=1000, added_after=added_after)
    assert envelope.get("more", False) is False  # the whole collection in one page
    return envelope["objects"], sent


def test_the_connector_sends_taxii2_clients_headers(connector_run, make_token):
    _, sent = connector_run
    assert sent, "no request recorded"
    for headers in sent:
        assert headers["Accept"] == MEDIA_TYPE_TAXII_V21
        assert headers["User-Agent"] == DEFAULT_USER_AGENT
        assert headers["Authorization"].startswith("Token ")  # TokenAuth: "Token <jwt>", not "Bearer"
    # The same set on every route: discovery, API root, collections and objects.
    assert len({tuple(sorted((k, v) for k, v in h.items())) for h in sent}) == 1


def test_a_connector_run_receives_the_partners_view(connector_run, workload: Workload):
    objects, _ = connector_run
    assert_exact_view(USA, workload, objects)


def test_the_exact_header_set_is_served_on_every_taxii_route(connector_run, workload: Workload, live_server, settings):
    _, sent = connector_run
    headers = sent[0]
    base = f"{live_server}/taxii2/"
    root = f"{base}{settings.api_root}/"
    collection = f"{root}collections/{workload.collection_id}/"
    routes = {
        "discovery": base,
        "api root": root,
        "collections": f"{root}collections/",
        "collection": collection,
        "objects": f"{collection}objects/",
        "manifest": f"{collection}manifest/",
        "object": f"{collection}objects/{workload.item('C2 address').obj['id']}/",
    }
    for name, url in routes.items():
        response = requests.get(url, headers=headers, timeout=30)
        assert response.status_code == 200, (name, response.status_code, response.text)
        check_taxii_200(response)
        body = response.json()
        if name == "discovery":
            assert root in body["api_roots"]
        elif name == "api root":
            assert "application/taxii+json;version=2.1" in body["versions"]
        elif name == "collections":
            assert workload.collection_id in {c["id"] for c in body["collections"]}
        elif name == "collection":
            assert (body["id"], body["can_read"]) == (workload.collection_id, True)
        elif name in ("objects", "object"):
            assert body["objects"] and all(o["spec_version"] == "2.1" for o in body["objects"])
        else:
            assert body["objects"] and all("date_added" in record for record in body["objects"])
