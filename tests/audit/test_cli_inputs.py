"""``tearline audit export --since/--until`` (issue 19, item 4): ISO 8601 times, range-checked.

A time with a zone is read in that zone, a time without one as UTC (as the options' help says);
one that leaves the years 1-9999 in UTC is refused with a clear error and exit status 2.
"""

from __future__ import annotations

import os

import orjson
import pytest
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


def _write(engine) -> None:
    for index in range(7):
        record_event(
            engine,
            request_id=f"cli-{index}",
            subject="u",
            nation="CAN",
            roles=["partner"],
            method="GET",
            route="/taxii2/",
            status=200,
            decision="allow",
        )


def _export(env: dict[str, str], *options: str):
    return runner.invoke(cli.app, ["audit", "export", "--format", "ndjson", *options], env=env)


@pytest.mark.parametrize(
    "options",
    [
        ("--since", "2000-01-01T00:00:00Z"),
        ("--since", "2000-01-01T00:00:00+14:00"),
        ("--since", "0999-01-01"),
        ("--since", "0001-01-01T00:00:00-14:00"),
        ("--until", "9999-12-31T23:59:59.999999"),
        ("--since", "2000-01-01", "--until", "2999-01-01T00:00:00+02:00"),
    ],
    ids=["zulu", "offset", "year-999", "year-1-west", "last-instant", "naive-and-zoned"],
)
def test_iso_times_with_or_without_a_zone_select_every_record(fresh_engine, cli_env, options):
    _write(fresh_engine)
    result = _export(cli_env, *options)
    assert result.exit_code == 0, result.output
    assert [orjson.loads(line)["seq"] for line in result.stdout.splitlines()] == list(range(1, 8))


@pytest.mark.parametrize(
    "option, value",
    [
        ("--since", "0001-01-01T00:00:00+14:00"),
        ("--until", "0001-01-01T00:00:00+00:01"),
        ("--since", "9999-12-31T23:59:59-14:00"),
    ],
)
def test_a_time_that_leaves_the_calendar_in_utc_is_refused(fresh_engine, cli_env, option, value):
    _write(fresh_engine)
    result = _export(cli_env, option, value)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("error: ") and option in result.stderr and "Traceback" not in result.output


def test_naive_and_zoned_bounds_are_ordered_in_utc(fresh_engine, cli_env):
    # 10:00 naive (UTC) is after 11:00+02:00 (09:00 UTC).
    result = _export(cli_env, "--since", "2020-01-01T10:00:00", "--until", "2020-01-01T11:00:00+02:00")
    assert result.exit_code == 2 and result.stderr.startswith("error: ")


def test_a_time_that_is_not_iso_8601_is_refused(fresh_engine, cli_env):
    result = _export(cli_env, "--since", "yesterday")
    assert result.exit_code == 2 and "--since" in result.output


@pytest.mark.parametrize("option", ["--start", "--end"])
def test_verify_refuses_a_seq_beyond_63_bits(fresh_engine, cli_env, option):
    _write(fresh_engine)
    result = runner.invoke(cli.app, ["audit", "verify", option, str(2**63)], env=cli_env)
    assert result.exit_code == 2 and option in result.output
    assert runner.invoke(cli.app, ["audit", "verify", option, str(2**63 - 1)], env=cli_env).exit_code == 0
