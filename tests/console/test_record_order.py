"""The records query the console pages through: oldest first by default, newest first with order=desc.

Keyset paging holds in both directions: each page continues where the last stopped, with no gap and
no record twice. On SQLite and PostgreSQL (the session's databases).
"""

from __future__ import annotations

import uuid


def _pages(client, headers, **params) -> list[list[int]]:
    pages, after = [], None
    while True:
        answer = client.get(
            "/api/v1/audit/records", params={**params, **({"after": after} if after else {})}, headers=headers
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        pages.append([r["seq"] for r in body["records"]])
        after = body["next"]
        if after is None:
            return pages


def test_records_come_newest_first_with_order_desc_and_page_downwards(client, auth):
    subject = f"order-{uuid.uuid4().hex[:8]}"
    for _ in range(7):
        assert (
            client.get("/taxii2/", headers=auth(subject=subject, nation="USA", roles=("partner",))).status_code == 200
        )
    auditor = auth(subject="order-auditor", roles=("auditor",))

    oldest_first = _pages(client, auditor, subject=subject, limit=3)
    newest_first = _pages(client, auditor, subject=subject, limit=3, order="desc")
    ascending = [seq for page in oldest_first for seq in page]
    descending = [seq for page in newest_first for seq in page]
    assert len(ascending) == 7 and ascending == sorted(ascending)
    assert descending == ascending[::-1]
    assert [len(page) for page in newest_first] == [3, 3, 1]
    assert _pages(client, auditor, subject=subject, limit=3, order="asc") == oldest_first


def test_an_unknown_order_is_refused(client, auth):
    answer = client.get(
        "/api/v1/audit/records", params={"order": "newest"}, headers=auth(subject="order-auditor", roles=("auditor",))
    )
    assert answer.status_code in (400, 422) and "order" in answer.text
