"""The Alembic migrations: up, down and up again on empty databases, and agreement with the models.

Each test gets its own empty database (not the shared, already migrated one),
on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlmodel
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    CheckConstraint,
    ForeignKeyConstraint,
    UniqueConstraint,
    inspect,
    select,
    text,
)

import app.audit.models
import app.feeds.models
import app.items.models
import app.markings.models
import app.partners.models
import app.policy.models
import app.taxii.models  # noqa: F401
from alembic import command
from app.config.settings import REPO_ROOT
from app.db import migrations
from app.db.engine import make_engine
from app.markings.models import UNRESTRICTED_LABEL_ID, UNRESTRICTED_LABEL_KEY, Label
from app.taxii.models import DEFAULT_COLLECTION_ID, Collection
from tests.conftest import postgres_database

APP_TABLES = {
    "label",
    "partner",
    "collection",
    "stix_object",
    "taxii_status",
    "policy_state",
    "partner_group",
    "object_withhold",
    "object_marking_ref",
    "object_reference",
    "stored_change",
    "disclosure_review",
    "recall",
    "recall_notice",
    "recalled_version",
    "recall_watch",
    "token_revocation",
    "audit_head",
    "audit_record",
    "audit_served",
    "audit_written",
    "audit_index_head",
    "audit_object",
    "audit_dissemination",
    "audit_checkpoint",
    "feed",
    "item_derivation",
}
VERSION_TABLE = "alembic_version"


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request, tmp_path) -> Iterator[str]:
    """A new database with no tables at all."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrations.sqlite'}"
        return
    with postgres_database() as url:
        yield url


@pytest.fixture
def engine_for(empty_database_url):
    engines = []

    def _engine():
        engine = make_engine(empty_database_url)
        engines.append(engine)
        return engine

    yield _engine
    for engine in engines:
        engine.dispose()


def _tables(engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def _head() -> str:
    return ScriptDirectory.from_config(migrations.alembic_config("sqlite://")).get_current_head()


def _current_revision(engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _assert_seeded(engine) -> None:
    with engine.connect() as connection:
        labels = connection.execute(select(Label.id, Label.key, Label.rank)).all()
        collections = connection.execute(
            select(
                Collection.id,
                Collection.alias,
                Collection.read_roles,
                Collection.write_roles,
                Collection.date_added_hwm,
            )
        ).all()
    assert [tuple(row) for row in labels] == [(UNRESTRICTED_LABEL_ID, UNRESTRICTED_LABEL_KEY, 0)]
    assert [tuple(row) for row in collections] == [(DEFAULT_COLLECTION_ID, "default", "partner,analyst", "analyst", 0)]


def test_upgrade_downgrade_upgrade(empty_database_url, engine_for):
    engine = engine_for()
    assert _tables(engine) == set()

    migrations.upgrade(empty_database_url)
    assert _tables(engine) == APP_TABLES | {VERSION_TABLE}
    assert _current_revision(engine) == _head()
    _assert_seeded(engine)

    migrations.downgrade(empty_database_url, "base")
    engine.dispose()  # forget reflected state and pooled connections from before the downgrade
    assert _tables(engine) - {VERSION_TABLE} == set(), "downgrade to base left tables behind"
    assert _current_revision(engine) is None
    with engine.connect() as connection:
        assert connection.execute(text(f"SELECT COUNT(*) FROM {VERSION_TABLE}")).scalar_one() == 0

    migrations.upgrade(empty_database_url)
    engine.dispose()
    assert _tables(engine) == APP_TABLES | {VERSION_TABLE}
    assert _current_revision(engine) == _head()
    _assert_seeded(engine)  # seeded exactly once again, not duplicated or missing


def test_models_match_migrated_schema(empty_database_url, engine_for):
    """What `alembic check` checks: autogenerate finds nothing to change."""
    migrations.upgrade(empty_database_url)
    engine = engine_for()
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "compare_server_default": True})
        differences = compare_metadata(context, sqlmodel.SQLModel.metadata)
    assert differences == []
    assert set(sqlmodel.SQLModel.metadata.tables) == APP_TABLES


def test_alembic_check_command(empty_database_url):
    """`alembic check` itself runs (env.py provides the models' metadata) and finds no differences."""
    migrations.upgrade(empty_database_url)
    command.check(migrations.alembic_config(empty_database_url))  # raises AutogenerateDiffsDetected


def _model_constraints(table) -> dict:
    return {
        "pk": table.primary_key.name,
        "unique": {
            (c.name, tuple(col.name for col in c.columns)) for c in table.constraints if isinstance(c, UniqueConstraint)
        },
        "check": {c.name for c in table.constraints if isinstance(c, CheckConstraint)},
        "foreign": {
            (c.name, tuple(c.column_keys), c.referred_table.name)
            for c in table.constraints
            if isinstance(c, ForeignKeyConstraint)
        },
        "index": {(i.name, tuple(col.name for col in i.columns), bool(i.unique)) for i in table.indexes},
    }


def _migrated_constraints(inspector, table_name: str) -> dict:
    return {
        "pk": inspector.get_pk_constraint(table_name).get("name"),
        "unique": {(c["name"], tuple(c["column_names"])) for c in inspector.get_unique_constraints(table_name)},
        "check": {c["name"] for c in inspector.get_check_constraints(table_name)},
        "foreign": {
            (f["name"], tuple(f["constrained_columns"]), f["referred_table"])
            for f in inspector.get_foreign_keys(table_name)
        },
        # PostgreSQL reports the index behind each unique constraint too; those are compared above.
        "index": {
            (i["name"], tuple(i["column_names"]), bool(i["unique"]))
            for i in inspector.get_indexes(table_name)
            if "duplicates_constraint" not in i
        },
    }


def test_constraint_names_match(empty_database_url, engine_for):
    """Beyond autogenerate (which ignores names and check constraints): the models name every
    constraint and index exactly as the migration does, so later migrations can address them."""
    migrations.upgrade(empty_database_url)
    inspector = inspect(engine_for())
    tables = sqlmodel.SQLModel.metadata.sorted_tables
    assert {t.name: _model_constraints(t) for t in tables} == {
        t.name: _migrated_constraints(inspector, t.name) for t in tables
    }


def _served_record(engine, request_id: str, served) -> None:
    """One partner read's audit record serving ``served``."""
    from app.audit.service import record_event

    record_event(
        engine,
        request_id=request_id,
        subject="usa-feed",
        nation="USA",
        roles=["partner"],
        method="GET",
        route="/r",
        status=200,
        decision="allow",
        served=served,
    )


def test_served_lists_survive_0007_down_and_up(empty_database_url, engine_for):
    """Downgrading past 0007 indexes what the index had not reached; upgrading rebuilds every served
    list from the index byte for byte, so the chain still verifies and exports are unchanged."""
    from app.audit.index import index_pending
    from app.audit.query import RecordFilter, iter_records, recipients
    from app.audit.service import AuditSigner, bind_signer
    from app.audit.verify import verify_chain

    migrations.upgrade(empty_database_url)
    engine = engine_for()
    signer = AuditSigner(key=b"migration-test-key", checkpoint_interval=0)
    bind_signer(engine, signer)

    def write(index: int, served) -> None:
        _served_record(engine, f"req-{index}", served)

    write(1, [("indicator--b", "2025-01-01T00:00:00.000Z"), ("indicator--a", "2025-01-02T00:00:00.000Z")])
    write(2, [])
    index_pending(engine)
    write(3, [("indicator--a", "2025-01-02T00:00:00.000Z"), ("indicator--c", "v\u00e9")])  # left unindexed
    before = list(iter_records(engine, RecordFilter()))
    assert [len(r["served"]) for r in before] == [2, 0, 2]

    migrations.downgrade(empty_database_url, "0006")
    engine.dispose()
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT COUNT(*) FROM audit_dissemination")).scalar_one()
    assert rows == 4  # record 3's versions were indexed on the way down

    migrations.upgrade(empty_database_url)
    engine.dispose()
    assert verify_chain(engine, signer).ok
    assert list(iter_records(engine, RecordFilter())) == before
    assert {(r["version"], r["times"]) for r in recipients(engine, "indicator--a")} == {("2025-01-02T00:00:00.000Z", 2)}


def test_0009_fills_references_and_withholding_sets_of_stored_versions(empty_database_url, engine_for):
    """Versions stored before 0009 get their references and withholding sets on the way up, exactly
    as ingest records them now."""
    from sqlmodel import Session

    from app.items import ingest
    from app.markings.mappings import load_mappings

    migrations.upgrade(empty_database_url)
    engine = engine_for()
    mappings = load_mappings(REPO_ROOT / "stix_mappings")
    created = "2026-11-01T00:00:00.000Z"
    secret, confidential = (
        {
            "type": "marking-definition",
            "spec_version": "2.1",
            "id": f"marking-definition--{uuid}",
            "created": created,
            "definition_type": "statement",
            "definition": {"statement": text_},
        }
        for uuid, text_ in (
            ("5b2d3b0a-8d6a-4d86-9b5f-1d2c3e4f5a61", "SECRET//REL TO USA"),
            ("5b2d3b0a-8d6a-4d86-9b5f-1d2c3e4f5a62", "CONFIDENTIAL//REL TO USA"),
        )
    )
    place = {
        "type": "location",
        "spec_version": "2.1",
        "id": "location--1b9d7c3e-2f4a-4b5c-8d6e-7f8a9b0c1d2e",
        "created": created,
        "modified": created,
        "region": "western-europe",
        "country": "NL",
        "granular_markings": [
            {"marking_ref": secret["id"], "selectors": ["region"]},
            {"marking_ref": confidential["id"], "selectors": ["country"]},
        ],
    }
    link = {
        "type": "relationship",
        "spec_version": "2.1",
        "id": "relationship--2c8e6d4f-3a5b-4c6d-9e7f-8a9b0c1d2e3f",
        "created": created,
        "modified": created,
        "relationship_type": "related-to",
        "source_ref": place["id"],
        "target_ref": "malware--3d9f7e5a-4b6c-4d7e-8f9a-0b1c2d3e4f5a",
    }
    with Session(engine) as session:
        valid, failures = ingest.validate_all([secret, confidential, place, link])
        assert not failures
        ingest.store(session, DEFAULT_COLLECTION_ID, valid, submitter="NLD", mappings=mappings, home_nation="NLD")
        session.commit()

    def side_tables() -> tuple[list, list]:
        with engine.connect() as connection:
            return (
                sorted(connection.execute(text("SELECT prop, position, group_no, ref_id FROM object_reference")).all()),
                sorted(connection.execute(text("SELECT set_no, label_id FROM object_withhold")).all()),
            )

    recorded = side_tables()
    assert [row[0] for row in recorded[0]] == ["source_ref", "target_ref"]
    assert len(recorded[1]) == 2 and len({set_no for set_no, _ in recorded[1]}) == 1  # one set of both labels
    migrations.downgrade(empty_database_url, "0008")
    engine.dispose()
    migrations.upgrade(empty_database_url)
    engine.dispose()
    assert side_tables() == recorded


def test_0014_stores_the_audit_lists_with_lz4_and_reads_them_back_unchanged(empty_database_url, engine_for):
    """On PostgreSQL the served and written lists are compressed with lz4 (faster than the default
    pglz); the text read back is what was written, so the chain verifies. SQLite is untouched."""
    from app.audit.query import RecordFilter, iter_records
    from app.audit.service import AuditSigner, bind_signer
    from app.audit.verify import verify_chain

    migrations.upgrade(empty_database_url)
    engine = engine_for()
    signer = AuditSigner(key=b"migration-test-key", checkpoint_interval=0)
    bind_signer(engine, signer)
    # Large enough to be compressed (PostgreSQL compresses values over about 2 KB).
    served = [(f"indicator--{index:036d}", f"2025-01-01T00:00:{index % 60:02d}.{index:06d}Z") for index in range(500)]
    _served_record(engine, "req-lz4", served)
    [record] = list(iter_records(engine, RecordFilter()))
    assert [tuple(pair) for pair in record["served"]] == sorted(served)
    assert verify_chain(engine, signer).ok
    if engine.dialect.name != "postgresql":
        return
    with engine.connect() as connection:
        methods = connection.execute(
            text(
                "SELECT c.relname, a.attcompression FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
                "WHERE c.relname IN ('audit_served', 'audit_written') AND a.attname = 'pairs'"
            )
        ).all()
        stored = connection.execute(text("SELECT pg_column_compression(pairs) FROM audit_served")).scalar_one()
    assert dict(methods) == {"audit_served": "l", "audit_written": "l"}
    assert stored == "lz4"
    migrations.downgrade(empty_database_url, "0013")
    with engine.connect() as connection:
        after = connection.execute(
            text(
                "SELECT attcompression FROM pg_attribute WHERE attrelid = 'audit_served'::regclass AND attname = 'pairs'"
            )
        ).scalar_one()
    assert after == "p"
