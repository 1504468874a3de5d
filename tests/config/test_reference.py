"""docs/configuration.md is exactly what the generator makes from the Settings class."""

from __future__ import annotations

from typer.testing import CliRunner

from app.cli.main import app as cli
from app.config.reference import DEFAULT_OUTPUT, render
from app.config.settings import Settings


def test_committed_reference_matches_the_settings_class():
    assert DEFAULT_OUTPUT.read_text() == render(), (
        "docs/configuration.md is out of date: run `tearline config reference` and commit the result"
    )


def test_every_setting_is_documented_with_its_variable_and_description():
    text = render()
    for name, field in Settings.model_fields.items():
        row = next(line for line in text.splitlines() if line.startswith(f"| `TEARLINE_{name.upper()}` |"))
        assert " ".join((field.description or "").split())[:40].replace("|", "\\|") in row
    # The production rules come from check_startup itself.
    assert "- TEARLINE_SECRET_KEY is required in production" in text
    # Nothing machine-specific: defaults inside the source tree are shown relative to it.
    assert "`policies/` in the source tree" in text and "/work/" not in text


def test_cli_writes_and_checks(tmp_path):
    runner = CliRunner()
    target = tmp_path / "configuration.md"
    stale = runner.invoke(cli, ["config", "reference", "--check", "--output", str(target)])
    assert stale.exit_code == 1 and "out of date" in stale.output
    assert runner.invoke(cli, ["config", "reference", "--output", str(target)]).exit_code == 0
    assert target.read_text() == render()
    assert runner.invoke(cli, ["config", "reference", "--check", "--output", str(target)]).exit_code == 0
