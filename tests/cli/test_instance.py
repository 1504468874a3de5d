"""How `tearline` finds its instance without exported variables (app/config/instance.py, README "Command line").

--data-dir, TEARLINE_DATA_DIR or ./data names the data directory; its tearline.env is read;
environment variables win over the file; production reads the environment only; a command that
needs the database never creates one.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import main as cli
from app.config.instance import InstanceError, locate, write_settings_file

runner = CliRunner()


@pytest.fixture
def clean(tmp_path: Path, monkeypatch) -> Path:
    """No TEARLINE_* variable at all, and ``tmp_path`` as the working directory."""
    for name in list(os.environ):
        if name.startswith("TEARLINE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args: str, env: dict | None = None):
    return runner.invoke(cli.app, list(args), env=env)


def ok(*args: str, env: dict | None = None):
    result = run(*args, env=env)
    assert result.exit_code == 0, f"{args}: exit {result.exit_code}\n{result.output}\n{result.exception!r}"
    return result


def _settings_file(directory: Path, **values: str) -> Path:
    path = directory / "tearline.env"
    write_settings_file(path, "test settings", values)
    return path


def test_data_dir_option_is_a_whole_instance(clean: Path):
    instance = clean / "elsewhere"
    ok("--data-dir", str(instance), "keys", "generate")
    ok("--data-dir", str(instance), "db", "upgrade")
    ok("--data-dir", str(instance), "partner", "add", "USA", "--clearance", "SECRET")
    assert (instance / "keys" / "jwt-private.pem").exists() and (instance / "tearline.sqlite").exists()
    assert "USA" in ok("--data-dir", str(instance), "partner", "list").stdout
    assert sorted(p.name for p in clean.iterdir()) == ["elsewhere"]  # nothing in the working directory
    # The option beats TEARLINE_DATA_DIR (and the database that variable's directory would imply).
    other = {"TEARLINE_DATA_DIR": str(clean / "other")}
    assert "USA" in ok("--data-dir", str(instance), "partner", "list", env=other).stdout


def test_the_settings_file_of_the_default_data_directory_is_read(clean: Path):
    instance = clean / "instance"
    ok("--data-dir", str(instance), "keys", "generate")
    ok("--data-dir", str(instance), "db", "upgrade")
    _settings_file(
        clean / "data",
        data_dir=str(instance),
        database_url=f"sqlite:///{instance / 'tearline.sqlite'}",
        home_nation="FRA",
    )
    # No variable, no option: ./data/tearline.env names the instance and its home nation.
    token = ok("token", "issue", "--subject", "s", "--nation", "FRA", "--roles", "analyst").stdout.strip()
    assert token.count(".") == 2
    assert ok("collection", "list").stdout.startswith("ID")
    # A variable wins over the file, setting by setting.
    refused = run(
        "token", "issue", "--subject", "s", "--nation", "FRA", "--roles", "analyst", env={"TEARLINE_HOME_NATION": "DEU"}
    )
    assert refused.exit_code == 2 and "not the home nation (DEU)" in refused.stderr


def test_production_reads_the_environment_only(clean: Path):
    _settings_file(clean / "data", database_url=f"sqlite:///{clean / 'demo.sqlite'}", home_nation="FRA")
    production = {"TEARLINE_ENV": "production"}
    result = run("partner", "list", env=production)
    assert result.exit_code == 1
    assert "data/tearline.env ignored: with TEARLINE_ENV=production" in result.stderr
    assert "demo.sqlite" not in result.stderr  # the file's database was not used
    refused = run("--data-dir", str(clean / "data"), "partner", "list", env=production)
    assert refused.exit_code == 1 and "--data-dir is for development instances" in refused.stderr


def test_a_file_that_says_production_is_refused(clean: Path):
    _settings_file(clean / "data", env="production", database_url="postgresql+psycopg://x@db/tearline")
    result = run("partner", "list")
    assert result.exit_code == 1 and "production settings come from the environment only" in result.stderr


@pytest.mark.parametrize(
    "command",
    [
        ("label", "check", "SECRET//REL TO FVEY"),
        ("policy", "check", "--nation", "FRA", "--banner", "SECRET"),
        ("partner", "list"),
        ("group", "list"),
        ("collection", "list"),
        ("audit", "verify"),
        ("audit", "export"),
        ("feed", "list"),
    ],
    ids=" ".join,
)
def test_commands_never_create_a_missing_database(clean: Path, command):
    result = run(*command)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"error: no database at {clean / 'data' / 'tearline.sqlite'}")
    assert "tearline db upgrade" in result.stderr
    assert list(clean.iterdir()) == []  # no database file, no data/ or keys/ directory


def test_demo_writes_the_file_the_command_finds_it_by(clean: Path):
    ok("demo", "--no-serve")
    pointer = clean / "data" / "tearline.env"
    text = pointer.read_text()
    assert text.startswith("# Written by `tearline demo`")
    assert f"TEARLINE_DATA_DIR='{clean / 'data' / 'demo'}'" in text
    assert "FRA" in ok("partner", "list").stdout  # from the demo's directory, no variable
    ok("demo", "--no-serve")  # running it again replaces its own file
    assert pointer.read_text().splitlines()[1:] == text.splitlines()[1:]


def test_demo_leaves_another_settings_file_and_another_instance_alone(clean: Path):
    mine = _settings_file(clean / "data", home_nation="NLD")
    before = mine.read_text()
    result = ok("demo", "--no-serve")
    assert mine.read_text() == before
    assert "data/tearline.env exists and was not written by the demo" in result.stdout
    assert f"--data-dir {clean / 'data' / 'demo'} COMMAND" in result.stdout

    mine.unlink()
    (clean / "data" / "keys").mkdir()  # a development instance of its own in ./data
    result = ok("demo", "--no-serve")
    assert not mine.exists() and "holds an instance of its own" in result.stdout


def test_demo_in_a_data_dir_of_its_choice_writes_no_pointer(clean: Path):
    target = clean / "trial"
    result = ok("--data-dir", str(target), "demo", "--no-serve")
    assert (target / "tearline.sqlite").exists() and not (clean / "data").exists()
    assert f"--data-dir {target} COMMAND" in result.stdout
    assert "FRA" in ok("--data-dir", str(target), "partner", "list").stdout


def test_locate_applies_the_precedence(clean: Path):
    data = clean / "d"
    _settings_file(data, home_nation="FRA", database_url="sqlite:///from-file.sqlite")
    chosen = locate(data, {})
    assert chosen.settings_file == data / "tearline.env"
    settings = chosen.settings()
    assert (settings.data_dir, settings.home_nation, settings.database_url) == (
        data,
        "FRA",
        "sqlite:///from-file.sqlite",
    )
    # --data-dir names the directory whatever TEARLINE_DATA_DIR says; without it, the variable does.
    assert locate(data, {"TEARLINE_DATA_DIR": "/nowhere"}).data_dir == data
    assert locate(None, {"TEARLINE_DATA_DIR": str(data)}).settings_file == data / "tearline.env"
    assert locate(None, {}).data_dir == Path("data")
    # Without a file or a named database, --data-dir implies its own SQLite file.
    bare = clean / "bare"
    assert locate(bare, {}).overrides["database_url"] == f"sqlite:///{bare / 'tearline.sqlite'}"
    assert "database_url" not in locate(bare, {"tearline_database_url": "sqlite:///x.sqlite"}).overrides
    with pytest.raises(InstanceError, match="--data-dir"):
        locate(bare, {"TEARLINE_ENV": "Production"})
