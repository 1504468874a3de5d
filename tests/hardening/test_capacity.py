"""More concurrent requests than the database pool has connections are served, not stalled.

Sync dependencies and endpoints run on worker threads; a request holds its pooled connection from
its first query until its path function returns. With more worker threads than connections, the
threads waiting for a connection could take every thread while the requests holding connections
had none to finish on: the instance stalled until the pool's timeout and answered 503.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from app.db.engine import make_engine

pytestmark = pytest.mark.e2e
POOL = make_engine.__kwdefaults__["pool_size"] + make_engine.__kwdefaults__["max_overflow"]
CONCURRENT = 3 * POOL


async def _pull_all(url: str, headers: dict) -> list[int]:
    limits = httpx.Limits(max_connections=CONCURRENT)
    async with httpx.AsyncClient(timeout=20, limits=limits) as client:
        responses = await asyncio.gather(*(client.get(url, headers=headers) for _ in range(CONCURRENT)))
    return [response.status_code for response in responses]


def test_three_times_the_pool_at_once_is_answered(settings, server_factory, collection, auth):
    server = server_factory(settings)
    url = f"{server.base_url}/taxii2/{settings.api_root}/collections/{collection.id}/objects/"
    headers = auth(subject="usa-burst", nation="USA", roles=("partner",))
    statuses = asyncio.run(_pull_all(url, headers))
    assert statuses == [200] * CONCURRENT
