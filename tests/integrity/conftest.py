"""Fixtures of the write-path integrity tests: an audit outage on demand, table counts, STIX builders."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session

from app.taxii import service as taxii_service
from tests.conftest import memoised

# Every table a write may change; an audited write that fails must leave each count as it was.
DATA_TABLES = (
    "stix_object",
    "object_marking_ref",
    "object_withhold",
    "item_derivation",
    "label",
    "collection",
    "taxii_status",
    "feed",
    "partner",
    "audit_record",
    "audit_written",
)
CREATED = "2026-11-20T09:00:00.000Z"
API = "/taxii2/api1"
TLP_WHITE = "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"


@pytest.fixture(scope="session")
def headers_for(make_token) -> Callable[..., dict]:
    """Authorization headers, memoised: ``headers_for()`` is an analyst, ``headers_for(nation=..., roles=...)``."""
    return memoised(lambda **claims: {"Authorization": f"Bearer {make_token(**claims)}"})


@pytest.fixture
def fra(headers_for) -> dict:
    """Headers of France's partner feed."""
    return headers_for(subject="fra-feed", nation="FRA", roles=("partner",))


@pytest.fixture
def gbr(headers_for) -> dict:
    """Headers of the United Kingdom's partner feed."""
    return headers_for(subject="gbr-feed", nation="GBR", roles=("partner",))


@pytest.fixture
def writable(session: Session):
    """A fresh collection that analysts and partners may read and write."""
    return taxii_service.create_collection(
        session,
        title=f"integrity {uuid.uuid4().hex[:8]}",
        read_roles={"partner", "analyst"},
        write_roles={"partner", "analyst"},
    )


# Tables whose rows an admin write updates in place: compared row by row, not only counted.
UPDATED_TABLES = ("collection", "feed", "partner")


def table_counts(engine: Engine) -> dict[str, object]:
    """Rows per data table, and the whole content of the tables admin writes update in place."""
    with engine.connect() as connection:
        state: dict[str, object] = {
            name: connection.execute(text(f"SELECT COUNT(*) FROM {name}")).scalar_one() for name in DATA_TABLES
        }
        for name in UPDATED_TABLES:
            state[f"{name} rows"] = sorted(map(repr, connection.execute(text(f"SELECT * FROM {name}")).all()))
    return state


@contextmanager
def audit_outage(engine: Engine) -> Iterator[None]:
    """While inside, every insert into audit_record fails in the database itself (a trigger)."""
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.execute(
                text(
                    "CREATE TRIGGER audit_outage BEFORE INSERT ON audit_record "
                    "BEGIN SELECT RAISE(ABORT, 'audit outage'); END"
                )
            )
        else:
            connection.execute(
                text(
                    "CREATE FUNCTION audit_outage() RETURNS trigger AS $$ "
                    "BEGIN RAISE EXCEPTION 'audit outage'; END $$ LANGUAGE plpgsql"
                )
            )
            connection.execute(
                text(
                    "CREATE TRIGGER audit_outage BEFORE INSERT ON audit_record "
                    "FOR EACH ROW EXECUTE FUNCTION audit_outage()"
                )
            )
    try:
        yield
    finally:
        with engine.begin() as connection:
            if engine.dialect.name == "sqlite":
                connection.execute(text("DROP TRIGGER audit_outage"))
            else:
                connection.execute(text("DROP TRIGGER audit_outage ON audit_record"))
                connection.execute(text("DROP FUNCTION audit_outage()"))


def indicator(name: str, *marking_refs: str, object_id: str | None = None, modified: str = CREATED, **extra) -> dict:
    """A valid STIX 2.1 indicator."""
    obj = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": object_id or f"indicator--{uuid.uuid4()}",
        "created": CREATED,
        "modified": modified,
        "name": name,
        "indicator_types": ["malicious-activity"],
        "pattern": "[domain-name:value = 'integrity.example']",
        "pattern_type": "stix",
        "valid_from": "2026-11-20T09:00:00Z",
        **extra,
    }
    if marking_refs:
        obj["object_marking_refs"] = list(marking_refs)
    return obj


def statement(text_: str, *, marking_id: str | None = None, created: str = "2024-01-01T00:00:00.000Z") -> dict:
    """A statement marking whose statement is a banner."""
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": marking_id or f"marking-definition--{uuid.uuid4()}",
        "created": created,
        "definition_type": "statement",
        "definition": {"statement": text_},
    }
