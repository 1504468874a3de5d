"""Recall through two hops: a partner's Tearline (GBR) -> this exchange (NLD) -> a third nation (FRA).

GBR publishes an item released to NLD and FRA; NLD pulls it with a feed, FRA pulls it from NLD, and
NLD's analyst derives a tearline of it for FRA, which FRA pulls too. When GBR then recalls the item
(explicitly, or by a tightening version), GBR's own Tearline notifies NLD; NLD's feed brings the
notice (or the version) and NLD recalls in turn, from FRA only, the item and the tearline.
"""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest

from app.feeds import service
from app.feeds.service import FeedSpec
from app.feeds.sync import run_feed
from app.taxii import service as taxii_service
from tests.conftest import TAXII
from tests.feeds.conftest import PEER_HOME, indicator, statement
from tests.recall.helpers import RECALL_EXTENSION, Nations, notices_for, pull
from tests.taxii.helpers import objects_url


@pytest.fixture
def nations(auth) -> Nations:
    return Nations(auth)


def _peer_post(peer, collection_id: str, objects: list[dict]) -> None:
    answer = httpx.post(
        f"{peer.base_url}/taxii2/{peer.settings.api_root}/collections/{collection_id}/objects/",
        headers={
            "Authorization": f"Bearer {peer.token(nation=PEER_HOME, roles=('analyst',), subject='gbr-analyst')}",
            "Accept": TAXII,
            "Content-Type": TAXII,
        },
        content=json.dumps({"objects": objects}),
        timeout=30,
    )
    assert answer.status_code == 202 and answer.json()["failure_count"] == 0, answer.text


def _setup(peer, session, ctx, collection, client, api, nations):
    """GBR's item pulled by NLD's feed, then by FRA; NLD's tearline of it pulled by FRA."""
    with peer.session() as peer_session:
        outbox = taxii_service.create_collection(
            peer_session,
            title=f"outbox {uuid.uuid4().hex[:8]}",
            read_roles={"partner", "analyst"},
            write_roles={"analyst"},
        ).id
    released = statement("CONFIDENTIAL//REL TO NLD, FRA")
    item = indicator(f"GBR item {uuid.uuid4().hex[:6]}", released["id"])
    _peer_post(peer, outbox, [released, item])
    name = f"feed-{uuid.uuid4().hex[:10]}"
    service.add_feed(
        session,
        ctx.settings,
        ctx.mappings,
        FeedSpec(
            name=name,
            partner=PEER_HOME,
            direction="pull",
            url=f"{peer.base_url}/taxii2/",
            collection_id=outbox,
            local_collection_id=collection.id,
            auth_kind="bearer",
            credential=peer.token(),
        ),
    )
    assert run_feed(ctx, name).status == "ok"
    assert item["id"] in {o["id"] for o in pull(client, api, collection.id, nations["FRA"])}
    derived = client.post(
        f"/api/v1/items/{item['id']}/tearlines",
        headers=nations.home,
        json={"banner": "CONFIDENTIAL//REL TO FRA", "collection": collection.id},
    )
    assert derived.status_code in (200, 201), derived.text
    tearline_id = derived.json()["derived"]["id"]
    assert tearline_id in {o["id"] for o in pull(client, api, collection.id, nations["FRA"])}
    return outbox, name, item, tearline_id


def _recalled_objects(client, api, collection_id: str, headers: dict) -> set[str]:
    return {
        n["extensions"][RECALL_EXTENSION]["recalled_object"] for n in notices_for(client, api, collection_id, headers)
    }


def test_partner_recall_reaches_the_third_nation_for_the_item_and_its_tearline(
    peer, session, ctx, collection, client, api, nations
):
    _, name, item, tearline_id = _setup(peer, session, ctx, collection, client, api, nations)
    recalled = httpx.post(
        f"{peer.base_url}/api/v1/items/{item['id']}/recall",
        headers={"Authorization": f"Bearer {peer.token(nation=PEER_HOME, roles=('analyst',), subject='gbr-analyst')}"},
        json={"reason": "Source compromised.", "action": "destroy"},
        timeout=30,
    )
    assert recalled.status_code == 201, recalled.text
    assert recalled.json()["notified"] == ["NLD"]  # GBR's recipients: NLD's feed only
    started = time.monotonic()
    assert run_feed(ctx, name).status == "ok"

    assert _recalled_objects(client, api, collection.id, nations["FRA"]) == {item["id"], tearline_id}
    fra_notices = notices_for(client, api, collection.id, nations["FRA"])
    # GBR's words were for NLD: FRA reads fixed ones, for the item and for the tearline made from it.
    reasons = {n["extensions"][RECALL_EXTENSION]["reason"] for n in fra_notices}
    assert "Source compromised." not in reasons and len(reasons) == 2
    assert time.monotonic() - started < 5
    # Withdrawn from FRA: the item and the tearline answer 404 by id.
    for object_id in (item["id"], tearline_id):
        assert client.get(objects_url(api, collection.id, object_id), headers=nations["FRA"]).status_code == 404
    # Nobody else is told: USA and DEU never held either.
    for nation in ("USA", "DEU"):
        assert notices_for(client, api, collection.id, nations[nation]) == []


def test_partner_tightening_reaches_the_third_nation(peer, session, ctx, collection, client, api, nations):
    outbox, name, item, tearline_id = _setup(peer, session, ctx, collection, client, api, nations)
    nld_only = statement("CONFIDENTIAL//REL TO NLD")
    _peer_post(
        peer,
        outbox,
        [nld_only, item | {"modified": "2026-11-15T00:00:00.000Z", "object_marking_refs": [nld_only["id"]]}],
    )
    assert run_feed(ctx, name).status == "ok"
    assert _recalled_objects(client, api, collection.id, nations["FRA"]) == {item["id"], tearline_id}
    # NLD itself is still served the item by GBR (its notice from GBR is not a recall of NLD's copy here).
    assert item["id"] in {o["id"] for o in pull(client, api, collection.id, nations.home)}
