"""Which instance the ``tearline`` command acts on, found without exported variables.

The rule (README, "Command line"):

1. The data directory D is ``--data-dir`` if given, else ``TEARLINE_DATA_DIR``, else ``./data``.
2. The settings file ``D/tearline.env`` (dotenv lines ``TEARLINE_NAME=value``) is read if it exists.
   ``tearline demo`` writes one in ``./data`` that names the demo instance in ``./data/demo``, so
   the command finds the demo from the directory the demo was started in.
3. Each setting is taken from the first of: the environment (``TEARLINE_*``), that file, the
   built-in default. ``--data-dir`` is stronger than all of them for the data directory, and
   makes ``D/tearline.sqlite`` the database unless the environment or the file names one.
4. Production reads the environment only. With ``TEARLINE_ENV=production`` in the environment no
   file is read (a warning names the one left aside) and ``--data-dir`` is refused; a file that
   itself says production is refused. A settings file next to a production instance is never
   what its operator meant, and a demo file must not quietly supply a production database.

Only the command line uses this; ``Settings()`` alone (the server under uvicorn, the tests) reads
the environment as before.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from app.config.settings import Settings

SETTINGS_FILE = "tearline.env"
DEFAULT_DATA_DIR = Path("data")
PREFIX = "TEARLINE_"


class InstanceError(ValueError):
    """The instance cannot be determined; the message says why and what to do."""


@dataclass(frozen=True)
class Instance:
    """Where the command's settings come from, and what to build them with."""

    data_dir: Path
    settings_file: Path | None
    overrides: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def settings(self) -> Settings:
        """The settings of this instance: the environment, then the file, then the defaults."""
        # _env_file is pydantic-settings' own dotenv reading; keyword values beat the environment.
        return Settings(_env_file=self.settings_file, **self.overrides)


def _lookup(name: str, values: Mapping[str, str | None]) -> str | None:
    """The value of ``name`` in ``values``, matched without regard to case (as the settings class reads it)."""
    for key, value in values.items():
        if key.upper() == name:
            return value
    return None


def sqlite_url(path: Path) -> str:
    """The SQLAlchemy URL of a SQLite file."""
    return f"sqlite:///{path}"


def locate(data_dir_option: Path | None, environ: Mapping[str, str] | None = None) -> Instance:
    """Apply the rule of this module to ``--data-dir`` and the environment."""
    environ = os.environ if environ is None else environ
    production = (_lookup(f"{PREFIX}ENV", environ) or "").strip().lower() == "production"
    if production and data_dir_option is not None:
        raise InstanceError(
            "--data-dir is for development instances; with TEARLINE_ENV=production every setting comes "
            "from the environment (set TEARLINE_DATA_DIR and TEARLINE_DATABASE_URL)"
        )
    from_environment = _lookup(f"{PREFIX}DATA_DIR", environ)
    data_dir = data_dir_option or (Path(from_environment) if from_environment else DEFAULT_DATA_DIR)
    candidate = data_dir / SETTINGS_FILE
    exists = candidate.is_file()
    if production:
        ignored = f"{candidate} ignored: with TEARLINE_ENV=production settings come from the environment only"
        return Instance(data_dir, None, warnings=(ignored,) if exists else ())
    file_values: dict[str, str | None] = dict(dotenv_values(candidate)) if exists else {}
    if (_lookup(f"{PREFIX}ENV", file_values) or "").strip().lower() == "production":
        raise InstanceError(
            f"{candidate} says TEARLINE_ENV=production: production settings come from the environment only, "
            "never from a file"
        )
    overrides: dict[str, Any] = {}
    if data_dir_option is not None:
        overrides["data_dir"] = data_dir_option
        named = _lookup(f"{PREFIX}DATABASE_URL", environ) or _lookup(f"{PREFIX}DATABASE_URL", file_values)
        if not named:
            overrides["database_url"] = sqlite_url(data_dir_option / "tearline.sqlite")
    return Instance(data_dir, candidate if exists else None, overrides)


def quoted(value: str) -> str:
    """``value`` in single quotes, which dotenv reads literally (no escapes, no ``${...}`` expansion)."""
    if "'" in value or "\n" in value:
        raise InstanceError(f"cannot write {value!r} to a settings file: it holds a quote or a line break")
    return f"'{value}'"


def write_settings_file(path: Path, header: str, values: Mapping[str, str]) -> None:
    """Write ``values`` (setting names without the prefix) as a settings file under a comment ``header``."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    lines += [f"{PREFIX}{name.upper()}={quoted(value)}" for name, value in values.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
