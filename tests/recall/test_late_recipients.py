"""A read that raced a withdrawal: its served list names the withdrawn version but was written after
the withdrawing transaction read the recipients. The sweep tells that nation too, once.

The race itself (a read's query before the withdrawal commits, its audit record after) cannot be
timed from a test; its trace can: a served list committed after the withdrawal that names the
version, exactly what such a read leaves.
"""

from __future__ import annotations

import uuid

import pytest

from app.audit.service import append_record, signer_for
from app.recall.sweep import sweep_once
from tests.recall.helpers import RECALL_EXTENSION, Nations, notices_for, pull
from tests.taxii.helpers import indicator, new_version, post_ok, taxii_time
from tests.taxii.test_releasability import banner, marked


@pytest.fixture
def nations(auth) -> Nations:
    return Nations(auth)


def _raced_read(app, nation: str, collection_id: str, pairs: list[tuple[str, str]]) -> None:
    engine = app.state.engine
    with engine.begin() as connection:
        append_record(
            connection,
            signer_for(engine),
            request_id=uuid.uuid4().hex,
            subject=f"{nation.lower()}-raced",
            nation=nation,
            roles=("partner",),
            method="GET",
            route=f"/taxii2/api1/collections/{collection_id}/objects/",
            status=200,
            decision="allow",
            collection_id=collection_id,
            served=pairs,
            recipient_nation=nation,
        )


def test_a_late_recipient_is_notified_by_the_sweep_once(app, client, api, collection, nations):
    wide, home_only = banner("UNCLASSIFIED//REL TO FRA, DEU"), banner("UNCLASSIFIED")
    item = marked(indicator(), wide)
    post_ok(client, api, collection.id, nations.home, [wide, item])
    pull(client, api, collection.id, nations["FRA"])
    post_ok(client, api, collection.id, nations.home, [home_only, marked(new_version(item, 1), home_only)])
    assert len(notices_for(client, api, collection.id, nations["FRA"])) == 1
    assert notices_for(client, api, collection.id, nations["DEU"]) == []

    _raced_read(app, "DEU", collection.id, [(item["id"], taxii_time(item["modified"]))])
    sweep_once(app.state.engine, app.state.recall_env)  # (the background sweeper may have been first)
    (late,) = notices_for(client, api, collection.id, nations["DEU"])
    assert late["extensions"][RECALL_EXTENSION]["recalled_versions"] == [taxii_time(item["modified"])]
    # Swept again: nobody is told twice, FRA not a second time either.
    sweep_once(app.state.engine, app.state.recall_env)
    assert len(notices_for(client, api, collection.id, nations["DEU"])) == 1
    assert len(notices_for(client, api, collection.id, nations["FRA"])) == 1
