"""A recall notice reaches a partner's own TAXII server through its push feed (medallion, partner DEU);
the recall tests are in tests/recall/."""

from __future__ import annotations

from app.feeds.sync import run_feed
from tests.feeds.test_push import add_medallion_push, post
from tests.recall.helpers import RECALL_EXTENSION
from tests.taxii.helpers import indicator, new_version
from tests.taxii.test_releasability import banner, marked


def test_push_feed_delivers_the_notice_to_the_partners_server(medallion, app, ctx, session, collection, feed_name):
    to_deu, home_only = banner("CONFIDENTIAL//REL TO DEU"), banner("CONFIDENTIAL")
    item = marked(indicator(), to_deu)
    post(session, app, collection.id, [to_deu, item])
    target = add_medallion_push(session, ctx, medallion, feed_name, collection.id)
    assert run_feed(ctx, feed_name).status == "ok"
    assert item["id"] in {o["id"] for o in medallion.objects(target)}

    post(session, app, collection.id, [home_only, marked(new_version(item, 1, name="tightened"), home_only)])
    assert run_feed(ctx, feed_name).status == "ok"
    received = medallion.objects(target)
    notices = [o for o in received if o["type"] == "note"]
    assert len(notices) == 1
    assert notices[0]["extensions"][RECALL_EXTENSION]["recalled_object"] == item["id"]
    assert all(o.get("name") != "tightened" for o in received)
