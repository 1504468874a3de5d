"""``tearline audit verify|export|checkpoint`` on both databases."""

from __future__ import annotations

import csv
import io
import os

import orjson
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from app.audit.service import record_event
from app.cli import main as cli
from tests.audit.conftest import TEST_KEY

runner = CliRunner()


@pytest.fixture
def cli_env(fresh_url, tmp_path, monkeypatch) -> dict[str, str]:
    for name in list(os.environ):
        if name.startswith("TEARLINE_"):
            monkeypatch.delenv(name)
    return {
        "TEARLINE_DATABASE_URL": fresh_url,
        "TEARLINE_DATA_DIR": str(tmp_path / "data"),
        "TEARLINE_AUDIT_KEY": TEST_KEY,
    }


def _write(engine, count: int = 7) -> None:
    for index in range(count):
        record_event(
            engine,
            request_id=f"cli-{index}",
            subject="+cmd|' /C calc'!A0" if index == 3 else "u",
            nation="CAN",
            roles=["partner"],
            method="GET",
            route="/taxii2/",
            status=200,
            decision="allow",
            served=[(f"indicator--{index}", "2025-01-01T00:00:00.000000Z")],
        )


def test_verify_passes_then_names_the_first_broken_record(fresh_engine, cli_env):
    _write(fresh_engine)
    result = runner.invoke(cli.app, ["audit", "verify"], env=cli_env)
    assert result.exit_code == 0, result.output
    assert "ok: 7 records verified" in result.stdout

    with fresh_engine.begin() as connection:
        connection.execute(text("UPDATE audit_record SET status = 204 WHERE seq = 4"))
    result = runner.invoke(cli.app, ["audit", "verify"], env=cli_env)
    assert result.exit_code == 3
    assert "BROKEN at seq 4" in result.stderr
    assert runner.invoke(cli.app, ["audit", "verify", "--end", "3"], env=cli_env).exit_code == 0


def test_verify_with_another_key_fails(fresh_engine, cli_env):
    _write(fresh_engine)
    result = runner.invoke(cli.app, ["audit", "verify"], env={**cli_env, "TEARLINE_AUDIT_KEY": "not the key"})
    assert result.exit_code == 3 and "HMAC" in result.stderr


def test_export_ndjson_and_csv(fresh_engine, cli_env, tmp_path):
    _write(fresh_engine)
    result = runner.invoke(cli.app, ["audit", "export", "--since", "2000-01-01", "--format", "ndjson"], env=cli_env)
    assert result.exit_code == 0, result.output
    docs = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert [d["seq"] for d in docs] == list(range(1, 8))
    assert docs[2]["served"] == [["indicator--2", "2025-01-01T00:00:00.000000Z"]]

    target = tmp_path / "audit.csv"
    result = runner.invoke(cli.app, ["audit", "export", "--format", "csv", "-o", str(target)], env=cli_env)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert len(rows) == 7 and rows[3]["subject"].startswith("'+")

    nothing = runner.invoke(cli.app, ["audit", "export", "--since", "2999-01-01"], env=cli_env)
    assert nothing.exit_code == 0 and nothing.stdout == ""
    bad = runner.invoke(cli.app, ["audit", "export", "--since", "2030-01-01", "--until", "2020-01-01"], env=cli_env)
    assert bad.exit_code == 2 and bad.stderr.startswith("error: ")


def test_checkpoint_then_archive_keeps_verification(fresh_engine, cli_env):
    _write(fresh_engine, 3)
    result = runner.invoke(cli.app, ["audit", "checkpoint"], env=cli_env)
    assert result.exit_code == 0 and "checkpoint at seq 3" in result.stdout
    _write(fresh_engine, 2)
    with fresh_engine.begin() as connection:  # the operator archives 1..3 (see README, Audit)
        connection.execute(text("DELETE FROM audit_dissemination WHERE record_seq <= 3"))
        connection.execute(text("DELETE FROM audit_served WHERE record_seq <= 3"))
        connection.execute(text("DELETE FROM audit_record WHERE seq <= 3"))
    result = runner.invoke(cli.app, ["audit", "verify"], env=cli_env)
    assert result.exit_code == 0, result.output
    assert "ok: 2 records verified" in result.stdout


def test_production_without_a_key_is_refused(fresh_url, cli_env):
    env = {**cli_env, "TEARLINE_ENV": "production"}
    env.pop("TEARLINE_AUDIT_KEY")
    result = runner.invoke(cli.app, ["audit", "verify"], env=env)
    assert result.exit_code == 1 and "TEARLINE_AUDIT_KEY" in result.stderr
