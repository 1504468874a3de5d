"""Open streams hold no database connection: more streams than the pool has connections leave every
other request of the instance answered (a partner's streams must not starve everyone's pulls)."""

from __future__ import annotations

from contextlib import ExitStack

import httpx

from app.db.engine import make_engine
from tests.conftest import TAXII
from tests.live.conftest import open_stream
from tests.live.test_events import _headers

POOL = make_engine.__kwdefaults__["pool_size"] + make_engine.__kwdefaults__["max_overflow"]


def test_more_streams_than_pooled_connections_leave_pulls_answered(instance, auth, collection):
    with ExitStack() as streams:
        for n in range(POOL + 5):
            headers = _headers(auth, subject=f"usa-stream-{n}", nation="USA", roles=("partner",))
            stream = streams.enter_context(open_stream(instance.events_url(collection.id), headers))
            assert stream.status == 200, stream.error_body
        pull = httpx.get(
            instance.objects_url(collection.id),
            headers=_headers(auth, subject="gbr-puller", nation="GBR", roles=("partner",)) | {"Accept": TAXII},
            timeout=10,
        )
    assert pull.status_code == 200, pull.text
