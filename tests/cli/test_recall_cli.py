"""``tearline recall list|show``: the auditor's recall report in a terminal, on both databases.

A recall is made over HTTP on the session database (an item released to FRA, pulled by FRA, then
made home-only); the command then reads that database as an operator's would, through
``TEARLINE_DATABASE_URL``. Both commands are read-only: they write no audit record.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from app.cli import main as cli
from tests.recall.helpers import Nations, notices_for
from tests.recall.test_report import tightened_for_fra

runner = CliRunner()


@pytest.fixture
def nations(auth) -> Nations:
    return Nations(auth)


def _ok(env: dict[str, str], *args: str):
    result = runner.invoke(cli.app, ["recall", *args], env=env)
    assert result.exit_code == 0, f"{args}: exit {result.exit_code}\n{result.output}\n{result.exception!r}"
    return result


def _refused(env: dict[str, str], *args: str):
    result = runner.invoke(cli.app, ["recall", *args], env=env)
    assert result.exit_code == 2, f"{args}: exit {result.exit_code}\n{result.output}"
    assert "Traceback" not in result.output
    return result


def _cli_records(app) -> int:
    with app.state.engine.connect() as connection:
        return connection.execute(text("SELECT COUNT(*) FROM audit_record WHERE method = 'CLI'")).scalar_one()


def test_list_and_show_follow_a_recipient_to_acknowledgement(app, client, api, collection, nations, cli_env):
    item = tightened_for_fra(client, api, collection.id, nations)
    before = _cli_records(app)

    listed = json.loads(_ok(cli_env, "list", "--object", item["id"], "--json").stdout)
    assert listed["more"] is False
    (recall,) = listed["recalls"]
    assert recall["cause"] == "tightened" and recall["outstanding"] == ["FRA"]
    recall_id = recall["recall_id"]
    table = _ok(cli_env, "list", "--object", item["id"]).stdout
    assert table.splitlines()[0].split() == ["RECALL", "ISSUED", "CAUSE", "OBJECT", "RECEIVED", "ACKED", "OUTSTANDING"]
    assert table.splitlines()[2].split() == [recall_id, recall["issued"], "tightened", item["id"], "0/1", "0/1", "FRA"]

    shown = json.loads(_ok(cli_env, "show", recall_id, "--json").stdout)
    assert shown["recall_id"] == recall_id and [r["state"] for r in shown["recipients"]] == ["notified"]

    (notice,) = notices_for(client, api, collection.id, nations["FRA"])
    shown = json.loads(_ok(cli_env, "show", recall_id, "--json").stdout)
    assert shown["recipients"][0]["state"] == "received" and shown["recipients"][0]["received_by"] == "fra-recall"

    client.post(f"/api/v1/recalls/{notice['id']}/acknowledgement", headers=nations["FRA"]).raise_for_status()
    text_report = _ok(cli_env, "show", recall_id).stdout
    assert f"recall:          {recall_id}" in text_report and "cause:           tightened" in text_report
    (row,) = [line for line in text_report.splitlines() if line.startswith("FRA ")]
    assert row.split()[:2] == ["FRA", "acknowledged"] and "fra-recall" in row and notice["id"] in row

    assert item["id"] in _ok(cli_env, "list", "--object", item["id"], "--since", "2000-01-01").stdout
    assert _ok(cli_env, "list", "--object", item["id"], "--outstanding").stdout.strip() == "no recalls"
    assert _cli_records(app) == before  # read-only: no audit record


def test_refused_input(cli_env):
    result = _refused(cli_env, "show", "00000000-0000-4000-8000-000000000000")
    assert result.stderr.startswith("error: no recall")
    _refused(cli_env, "list", "--since", "yesterday")
    result = _refused(cli_env, "list", "--since", "0001-01-01T00:00:00+14:00")
    assert result.stderr.startswith("error: ") and "--since" in result.stderr
    result = _refused(cli_env, "list", "--since", "2026-01-02", "--until", "2026-01-01")
    assert result.stderr.startswith("error: --since must be before --until")
