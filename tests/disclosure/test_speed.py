"""Time from post to release: the officers' speed table and the Prometheus metrics."""

from __future__ import annotations

from tests.disclosure.helpers import decide, post_marked, review_of


def _metric(text: str, name: str, collection_id: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + "{") and f'collection="{collection_id}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return None


def test_releases_and_waiting_items_are_counted(client, api, collection, who):
    analyst, officer = who("analyst"), who("officer", "officer-speed")
    released = post_marked(client, api, collection.id, analyst, "RESTRICTED//REL TO USA")
    post_marked(client, api, collection.id, analyst, "CONFIDENTIAL//REL TO USA")  # stays waiting
    assert decide(client, officer, [review_of(client, officer, released["id"])["id"]]).status_code == 200

    speed = client.get("/api/v1/disclosure/speed", headers=officer).json()["speed"]
    rows = {row["classification"]: row for row in speed if row["collection"] == collection.id}
    assert (rows["RESTRICTED"]["released"], rows["RESTRICTED"]["waiting"]) == (1, 0)
    assert rows["RESTRICTED"]["p50_seconds"] is not None and rows["RESTRICTED"]["p50_seconds"] >= 0
    assert (rows["CONFIDENTIAL"]["released"], rows["CONFIDENTIAL"]["waiting"]) == (0, 1)
    assert rows["CONFIDENTIAL"]["p95_seconds"] is None

    metrics = client.get("/metrics").text
    assert _metric(metrics, "tearline_disclosure_release_seconds_count", collection.id) == 1
    assert _metric(metrics, "tearline_disclosure_waiting", collection.id) == 1
    assert client.get("/api/v1/disclosure/speed", headers=who("partner", nation="USA")).status_code == 403
