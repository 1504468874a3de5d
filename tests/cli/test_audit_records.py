"""Every state-changing command writes an audit record in the same transaction as its change (issue 24).

The record names the operator (``--as``, else the operating-system user) and the home nation; a
secret given on the command line never reaches it; read-only commands write none; if the record
cannot be written, the change is not made.
"""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import pytest
from sqlalchemy import text

from app.db.engine import make_engine
from tests.cli.test_cli import ok, refused, rows


@pytest.fixture
def instance(env, tmp_path: Path) -> Path:
    ok("db", "upgrade")
    ok("keys", "generate")
    return tmp_path / "tearline.sqlite"


def _records(database: Path) -> list[dict]:
    result = ok("audit", "export", "--format", "ndjson")
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def test_each_change_is_recorded_with_its_operator_and_secrets_are_masked(instance: Path):
    ok("--as", "alice", "partner", "add", "USA", "--clearance", "SECRET", "--groups", "FVEY")
    ok("collection", "add", "--title", "FVEY phishing")
    ok("--as", "bob", "group", "set", "FVEY", "--members", "USA,GBR,CAN,AUS,NZL")
    ok(
        "--as",
        "carol",
        "feed",
        "add",
        "usa-in",
        "--partner",
        "USA",
        "--direction",
        "pull",
        "--url",
        "http://127.0.0.1:9/taxii2/",
        "--collection",
        "c1",
        "--auth",
        "bearer",
        "--credential",
        "s3cret-token-value",
    )
    records = _records(instance)
    by_route = {r["route"].split(" ", 3)[1] + " " + r["route"].split(" ", 3)[2]: r for r in records}
    assert set(by_route) == {"partner add", "collection add", "group set", "feed add"}
    assert by_route["partner add"]["subject"] == "operator:alice"
    assert by_route["collection add"]["subject"] == f"operator:{getpass.getuser()}"
    assert by_route["group set"]["subject"] == "operator:bob"
    for record in records:
        assert record["nation"] == "NLD" and record["method"] == "CLI" and record["decision"] == "allow"
    assert "s3cret-token-value" not in json.dumps(records)
    assert "--credential <stored encrypted>" in by_route["feed add"]["route"]
    assert ok("audit", "verify").stdout.startswith("ok")


def test_read_only_commands_write_no_record(instance: Path):
    ok("partner", "add", "GBR", "--clearance", "SECRET")
    before = len(_records(instance))
    ok("partner", "list")
    ok("collection", "list")
    ok("label", "check", "SECRET//REL TO GBR")
    ok("policy", "check", "--nation", "GBR", "--banner", "SECRET//REL TO GBR")
    assert len(_records(instance)) == before


def test_a_change_whose_record_cannot_be_written_is_not_made(instance: Path):
    engine = make_engine(f"sqlite:///{instance}")
    try:
        with engine.begin() as connection:
            connection.execute(
                text("CREATE TRIGGER outage BEFORE INSERT ON audit_record BEGIN SELECT RAISE(ABORT, 'down'); END")
            )
        result = refused("partner", "add", "DEU", "--clearance", "CONFIDENTIAL", code=1)
        assert "audit" in result.stderr and "nothing was changed" in result.stderr
        assert rows(instance, "SELECT nation FROM partner WHERE nation = 'DEU'") == []
    finally:
        with engine.begin() as connection:
            connection.execute(text("DROP TRIGGER outage"))
        engine.dispose()


def test_the_demo_seeding_is_audited(env, tmp_path: Path):
    ok("--as", "newcomer", "demo", "--no-serve")
    database = tmp_path / "data" / "demo" / "tearline.sqlite"
    seeded = rows(database, "SELECT subject, route, written_count FROM audit_record WHERE method = 'CLI'")
    assert seeded and all(subject == "operator:newcomer" for subject, _, _ in seeded)
    assert all("tearline demo" in route for _, route, _ in seeded)
    assert sum(count or 0 for _, _, count in seeded) >= 21  # the sample objects, named in the records
