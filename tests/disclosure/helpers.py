"""Helpers of the disclosure tests: post as an analyst, find the item's review, decide, pull as a partner."""

from __future__ import annotations

import json
import uuid

import httpx

from tests.conftest import TAXII
from tests.recall.helpers import pull
from tests.taxii.helpers import indicator, objects_url, post_ok
from tests.taxii.test_releasability import banner, marked

QUEUE = "/api/v1/disclosure/queue"
DECISIONS = "/api/v1/disclosure/decisions"


def post_marked(client, api: str, collection_id: str, headers: dict, text: str, obj: dict | None = None) -> dict:
    """Post one indicator (or ``obj``) marked with the banner ``text`` as a statement marking; returns it."""
    definition = banner(text)
    item = marked(obj or indicator(), definition)
    post_ok(client, api, collection_id, headers, [definition, item])
    return item


def review_of(client, officer: dict, object_id: str) -> dict:
    """The pending review of ``object_id`` in the queue (fails if it is not there)."""
    answer = client.get(QUEUE, headers=officer, params={"limit": 1000})
    assert answer.status_code == 200, answer.text
    found = [r for r in answer.json()["reviews"] if r["object_id"] == object_id]
    assert len(found) == 1, f"{object_id} is not in the queue once: {found}"
    return found[0]


def decide(client, officer: dict, review_ids: list[str], action: str = "release", **extra) -> dict:
    """POST one decision; returns the response (status not checked)."""
    return client.post(
        DECISIONS, headers=officer, json={"reviews": review_ids, "action": action, "reason": "checked", **extra}
    )


def partner_ids(client, api: str, collection_id: str, headers: dict, version: str = "all") -> set[str]:
    """Ids a partner's full pull serves."""
    return {o["id"] for o in pull(client, api, collection_id, headers, version)}


def by_id_status(client, api: str, collection_id: str, headers: dict, object_id: str) -> int:
    """The status of GET by id."""
    return client.get(objects_url(api, collection_id, object_id), headers=headers).status_code


def post_marked_http(instance, collection_id: str, headers: dict, text: str) -> dict:
    """Post one marked indicator to a served instance over HTTP; returns it."""
    definition = banner(text)
    item = marked(indicator(), definition)
    answer = httpx.post(
        instance.objects_url(collection_id),
        headers=headers | {"Content-Type": TAXII},
        content=json.dumps({"objects": [definition, item]}),
    )
    assert answer.status_code == 202 and answer.json()["failure_count"] == 0, answer.text
    return item


def served_versions(client, api: str, collection_id: str, headers: dict, object_id: str) -> list[dict]:
    """Every version of ``object_id`` a full pull (match[version]=all) serves ``headers``."""
    return [o for o in pull(client, api, collection_id, headers, "all") if o["id"] == object_id]


def relationship(source: str, target: str, **extra) -> dict:
    """A related-to relationship from ``source`` to ``target`` (``extra`` properties added)."""
    return {
        "type": "relationship",
        "spec_version": "2.1",
        "id": f"relationship--{uuid.uuid4()}",
        "created": "2024-01-01T00:00:00.000Z",
        "modified": "2024-01-01T00:00:00.000Z",
        "relationship_type": "related-to",
        "source_ref": source,
        "target_ref": target,
    } | extra
