"""Feed configuration through the admin API and the CLI: validation, secrets kept secret, state shown."""

from __future__ import annotations

import os
import sqlite3
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import main as cli
from app.db.timestamps import now_us
from app.feeds import service
from app.feeds.models import Feed
from app.feeds.scheduler import FeedScheduler, due_feeds
from app.feeds.secrets import StoredSecret, read_secret
from app.feeds.service import FeedSpec
from app.feeds.sync import feed_lock, run_feed
from app.taxii.models import DEFAULT_COLLECTION_ID
from tests.feeds.conftest import (
    MEDALLION_PARTNER,
    MEDALLION_PASSWORD,
    MEDALLION_PULL_COLLECTION,
    MEDALLION_USER,
)

SECRET = "very-secret-partner-token-1234"
FEEDS = "/api/v1/feeds"


@pytest.fixture
def admin(auth) -> dict:
    return auth(subject="admin-1", roles=("admin",))


def body(**overrides) -> dict:
    values = {
        "name": f"usa-{uuid.uuid4().hex[:8]}",
        "partner": "USA",
        "direction": "pull",
        "url": "https://taxii.usa.example/taxii2/",
        "collection_id": "abc",
        "auth": "bearer",
        "credential": SECRET,
        "poll_interval_s": 60,
    }
    values.update(overrides)
    return values


def test_admin_adds_lists_and_removes_a_feed_without_ever_returning_the_credential(client, admin, session):
    created = client.post(FEEDS, json=body(), headers=admin)
    assert created.status_code == 201, created.text
    name = created.json()["name"]
    assert SECRET not in created.text and created.json()["credential"] == "encrypted"
    assert created.json()["default_label"] == "originator-only"

    listed = client.get(FEEDS, headers=admin)
    assert listed.status_code == 200 and SECRET not in listed.text
    view = next(f for f in listed.json()["feeds"] if f["name"] == name)
    for key in ("last_success", "last_error", "cursor", "objects_in", "objects_out", "pending_backlog"):
        assert key in view
    assert SECRET not in client.get(f"{FEEDS}/{name}", headers=admin).text

    stored = session.get(Feed, name)
    assert stored.secret_ciphertext and SECRET not in stored.secret_ciphertext
    assert read_secret(client.app.state.settings, StoredSecret(stored.secret_ciphertext)) == SECRET

    assert client.delete(f"{FEEDS}/{name}", headers=admin).status_code == 204
    assert client.get(f"{FEEDS}/{name}", headers=admin).status_code == 404


def test_environment_reference_is_stored_as_a_name(client, admin, session, monkeypatch):
    created = client.post(FEEDS, json=body(credential="env:USA_FEED_TOKEN"), headers=admin)
    assert created.status_code == 201 and created.json()["credential"] == "env:USA_FEED_TOKEN"
    stored = session.get(Feed, created.json()["name"])
    assert stored.secret_ciphertext is None
    monkeypatch.setenv("USA_FEED_TOKEN", SECRET)
    assert read_secret(client.app.state.settings, StoredSecret(env_name=stored.secret_env)) == SECRET


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        ({"partner": "AUS"}, "not a registered partner"),
        ({"direction": "sideways"}, "direction"),
        ({"url": "ftp://example.org/taxii2/"}, "url"),
        ({"url": "https://user:pw@example.org/taxii2/"}, "credential"),
        ({"auth": "bearer", "credential": None}, "credential"),
        ({"auth": "basic", "username": None}, "username"),
        ({"local_collection_id": "no-such-collection"}, "local_collection_id"),
        ({"default_label": "SECRET//REL TO XYZ"}, "XYZ"),
        ({"name": "Bad Name!"}, "name"),
        ({"partner": "U\x00A"}, "NUL"),
        ({"local_collection_id": "a\x00b"}, "NUL"),
    ],
)
def test_bad_feed_configuration_is_refused_and_stores_nothing(client, admin, session, overrides, fragment):
    values = body(**overrides)
    answer = client.post(FEEDS, json=values, headers=admin)
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert fragment in answer.json()["detail"]
    assert SECRET not in answer.text
    assert session.get(Feed, values["name"]) is None


def test_unknown_or_malformed_feed_names_are_not_found(client, admin):
    for name in ("no-such-feed", "Bad Name", "x" * 300):
        assert client.get(f"{FEEDS}/{name}", headers=admin).status_code == 404
        assert client.delete(f"{FEEDS}/{name}", headers=admin).status_code == 404
        assert client.post(f"{FEEDS}/{name}/sync", headers=admin).status_code == 404


def test_duplicate_name_conflicts(client, admin):
    values = body()
    assert client.post(FEEDS, json=values, headers=admin).status_code == 201
    assert client.post(FEEDS, json=values, headers=admin).status_code == 409


@pytest.mark.parametrize("who", [{}, {"roles": ("auditor",)}, {"nation": "USA", "roles": ("partner",)}])
def test_only_admins_manage_feeds(client, auth, who):
    headers = auth(subject="someone", **who)
    assert client.get(FEEDS, headers=headers).status_code == 403
    assert client.post(FEEDS, json=body(), headers=headers).status_code == 403
    assert client.get(FEEDS).status_code == 401


def test_push_feed_shows_its_pending_backlog(client, admin, analyst, api, collection):
    posted = client.post(
        f"{api}/collections/{collection.id}/objects/",
        headers=analyst | {"Content-Type": "application/taxii+json;version=2.1"},
        json={
            "objects": [
                {
                    "type": "indicator",
                    "spec_version": "2.1",
                    "id": f"indicator--{uuid.uuid4()}",
                    "created": "2026-11-20T09:00:00.000Z",
                    "modified": "2026-11-20T09:00:00.000Z",
                    "name": "green",
                    "indicator_types": ["malicious-activity"],
                    "pattern": "[domain-name:value = 'a.example']",
                    "pattern_type": "stix",
                    "valid_from": "2026-11-20T09:00:00Z",
                    "object_marking_refs": ["marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"],
                },
                {
                    "type": "indicator",
                    "spec_version": "2.1",
                    "id": f"indicator--{uuid.uuid4()}",
                    "created": "2026-11-20T09:00:00.000Z",
                    "modified": "2026-11-20T09:00:00.000Z",
                    "name": "home only",
                    "indicator_types": ["malicious-activity"],
                    "pattern": "[domain-name:value = 'b.example']",
                    "pattern_type": "stix",
                    "valid_from": "2026-11-20T09:00:00Z",
                },
            ]
        },
    )
    assert posted.status_code == 202 and posted.json()["failure_count"] == 0
    created = client.post(FEEDS, json=body(direction="push", local_collection_id=collection.id), headers=admin)
    assert created.status_code == 201
    view = client.get(f"{FEEDS}/{created.json()['name']}", headers=admin).json()
    assert view["pending_backlog"] == 2  # the green indicator and the TLP definition; not the home-only one
    assert view["cursor"] is None and view["last_success"] is None


def test_one_run_per_feed_at_a_time(ctx, session, collection, feed_name):
    service.add_feed(
        session,
        ctx.settings,
        ctx.mappings,
        FeedSpec(
            name=feed_name,
            partner="USA",
            direction="pull",
            url="http://127.0.0.1:9/taxii2/",
            collection_id="c",
            local_collection_id=collection.id,
        ),
    )
    with feed_lock(ctx.engine, feed_name) as acquired:
        assert acquired
        result = run_feed(ctx, feed_name)
    assert result.status == "busy"
    session.expire_all()
    assert session.get(Feed, feed_name).last_attempt_us is None  # the busy run touched nothing


def test_scheduler_runs_due_feeds_once_per_interval(medallion, ctx, session, collection, feed_name):
    service.add_feed(
        session,
        ctx.settings,
        ctx.mappings,
        FeedSpec(
            name=feed_name,
            partner=MEDALLION_PARTNER,
            direction="pull",
            url=f"{medallion.base_url}/taxii2/",
            collection_id=MEDALLION_PULL_COLLECTION,
            local_collection_id=collection.id,
            auth_kind="basic",
            username=MEDALLION_USER,
            credential=MEDALLION_PASSWORD,
            poll_interval_s=3600,
        ),
    )
    assert feed_name in due_feeds(ctx, now_us())
    scheduler = FeedScheduler(ctx)
    assert feed_name in scheduler.run_due()
    session.expire_all()
    feed = session.get(Feed, feed_name)
    assert feed.last_success_us is not None and feed.objects_in > 0
    assert feed_name not in due_feeds(ctx, now_us())
    assert feed_name in due_feeds(ctx, now_us() + 3600 * 1_000_000)


def test_scheduler_lives_with_the_app_when_enabled(settings):
    from fastapi.testclient import TestClient

    from app.main import create_app

    # Push on post and live pull would start on every feed other tests left in the session database
    # (unreachable partners) and wait for them on stop; they have their own tests (test_outbox, test_live_pull).
    only_scheduler = {
        "feed_scheduler": True,
        "feed_scheduler_tick_s": 0.05,
        "feed_push_on_post": False,
        "feed_live_pull": False,
    }
    application = create_app(settings.model_copy(update=only_scheduler))
    try:
        with TestClient(application):
            scheduler = application.state.feed_scheduler
            assert scheduler._thread.is_alive()
        assert not scheduler._thread.is_alive()
    finally:
        application.state.engine.dispose()


runner = CliRunner()


def test_cli_add_list_sync_remove_never_prints_the_credential(medallion, tmp_path: Path, monkeypatch):
    for name in list(os.environ):
        if name.startswith("TEARLINE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    database = tmp_path / "tearline.sqlite"
    env = {
        "TEARLINE_DATA_DIR": str(tmp_path / "data"),
        "TEARLINE_DATABASE_URL": f"sqlite:///{database}",
        "TEARLINE_FEED_RETRY_INITIAL_S": "0.01",
        "TEARLINE_FEED_PAGE_SIZE": "3",
    }

    def ok(*args):
        result = runner.invoke(cli.app, list(args), env=env)
        assert result.exit_code == 0, f"{args}: {result.output}{result.exception!r}"
        assert MEDALLION_PASSWORD not in result.output
        return result.output

    ok("db", "upgrade")
    ok("partner", "add", MEDALLION_PARTNER, "--clearance", "CONFIDENTIAL", "--groups", "NATO,EU")
    ok(
        "feed",
        "add",
        "deu-medallion",
        "--partner",
        MEDALLION_PARTNER,
        "--direction",
        "pull",
        "--url",
        f"{medallion.base_url}/taxii2/",
        "--collection",
        MEDALLION_PULL_COLLECTION,
        "--auth",
        "basic",
        "--username",
        MEDALLION_USER,
        "--credential",
        MEDALLION_PASSWORD,
    )
    with sqlite3.connect(database) as connection:
        (ciphertext,) = connection.execute("SELECT secret_ciphertext FROM feed").fetchone()
    assert ciphertext and MEDALLION_PASSWORD not in ciphertext
    output = ok("feed", "sync", "deu-medallion")
    assert "deu-medallion: ok" in output and "unknown markings 2" in output
    with sqlite3.connect(database) as connection:
        stored = connection.execute(
            "SELECT COUNT(*) FROM stix_object WHERE collection_id = ?", (DEFAULT_COLLECTION_ID,)
        ).fetchone()[0]
    assert stored == len(medallion.pull_objects)  # all but the unreadable definition, plus TLP:GREEN's
    listing = ok("feed", "list")
    assert "deu-medallion" in listing and "active" in listing
    bad = runner.invoke(
        cli.app,
        [
            "feed",
            "add",
            "x",
            "--partner",
            "AUS",
            "--direction",
            "pull",
            "--url",
            "http://a.example/",
            "--collection",
            "c",
        ],
        env=env,
    )
    assert bad.exit_code == 2 and "not a registered partner" in bad.output
    ok("feed", "remove", "deu-medallion")
    assert "no feeds" in ok("feed", "list")


def test_sync_through_the_api_then_state_shows_the_outcome(medallion, client, admin, collection):
    created = client.post(
        FEEDS,
        json=body(
            partner=MEDALLION_PARTNER,
            url=f"{medallion.base_url}/taxii2/",
            collection_id=MEDALLION_PULL_COLLECTION,
            local_collection_id=collection.id,
            auth="basic",
            username=MEDALLION_USER,
            credential=MEDALLION_PASSWORD,
        ),
        headers=admin,
    )
    assert created.status_code == 201, created.text
    name = created.json()["name"]
    synced = client.post(f"{FEEDS}/{name}/sync", headers=admin)
    assert synced.status_code == 200 and synced.json()["status"] == "ok", synced.text
    assert synced.json()["stored"] == len(medallion.pull_objects) - 1  # all but the unreadable definition
    view = client.get(f"{FEEDS}/{name}", headers=admin).json()
    assert view["objects_in"] == synced.json()["stored"] and view["unknown_markings"] == 2
    assert view["last_success"] and view["cursor"] and view["pending_backlog"] is None
    assert MEDALLION_PASSWORD not in client.get(FEEDS, headers=admin).text
    registry = client.app.state.metrics.registry
    assert registry.get_sample_value("tearline_feed_runs_total", {"feed": name, "outcome": "ok"}) == 1
    assert registry.get_sample_value("tearline_feed_lag_seconds", {"feed": name}) == 0


def test_production_needs_the_feed_key_to_store_a_credential(tmp_path):
    from app.config.settings import Settings
    from app.feeds.secrets import CredentialError, store_secret

    production = Settings(env="production", data_dir=tmp_path)
    with pytest.raises(CredentialError, match="TEARLINE_FEED_SECRET_KEY"):
        store_secret(production, SECRET)
    assert store_secret(production, "env:PARTNER_TOKEN").env_name == "PARTNER_TOKEN"  # no key needed
    assert not (tmp_path / "keys").exists()  # no development key file in production


def test_a_credential_from_another_key_is_refused_not_guessed(tmp_path):
    from cryptography.fernet import Fernet

    from app.config.settings import Settings
    from app.feeds.secrets import CredentialError, store_secret

    first = Settings(data_dir=tmp_path, feed_secret_key=Fernet.generate_key().decode())
    second = Settings(data_dir=tmp_path, feed_secret_key=Fernet.generate_key().decode())
    stored = store_secret(first, SECRET)
    assert read_secret(first, stored) == SECRET
    with pytest.raises(CredentialError) as refused:
        read_secret(second, stored)
    assert SECRET not in str(refused.value)


def test_env_credential_is_read_at_run_time(medallion, ctx, session, collection, feed_name, monkeypatch):
    service.add_feed(
        session,
        ctx.settings,
        ctx.mappings,
        FeedSpec(
            name=feed_name,
            partner=MEDALLION_PARTNER,
            direction="pull",
            url=f"{medallion.base_url}/taxii2/",
            collection_id=MEDALLION_PULL_COLLECTION,
            local_collection_id=collection.id,
            auth_kind="basic",
            username=MEDALLION_USER,
            credential="env:TEARLINE_TEST_MEDALLION_PW",
        ),
    )
    monkeypatch.delenv("TEARLINE_TEST_MEDALLION_PW", raising=False)
    missing = run_feed(ctx, feed_name)
    assert missing.status == "stopped" and "TEARLINE_TEST_MEDALLION_PW is not set" in missing.message
    monkeypatch.setenv("TEARLINE_TEST_MEDALLION_PW", MEDALLION_PASSWORD)
    resumed = run_feed(ctx, feed_name, force=True)
    assert resumed.status == "ok" and resumed.stored > 0
    session.expire_all()
    assert session.get(Feed, feed_name).enabled
