"""Helpers every ``tearline`` command shares: settings, the database, refusals, tables.

Settings are read when a command runs, never at import, so the environment a
command sees is the one it was started with; which instance that is follows the
rule of :mod:`app.config.instance` (``--data-dir``, ``TEARLINE_*`` variables, the
data directory's ``tearline.env``). Refused input (unknown names, invalid
partners) exits with status 2, an unusable configuration or database with
status 1; both print one line on stderr and no traceback.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer

from app.auth.principal import ROLES
from app.markings.tokens import UnknownToken

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlmodel import Session

    from app.config.settings import Settings
    from app.markings.mappings import Mappings

# Every command module imports this one, and `tearline --help` imports every command module: so
# only typer, the standard library and light app modules (a few constants, no pydantic, no
# SQLAlchemy) are imported here. The rest (settings, SQLAlchemy, the audit modules, Alembic, the
# mapping tables with their JSON Schema checks: up to seconds at import) is imported by the
# functions that need it; tests/cli/test_start.py checks what loading the CLI imports.

# As app.taxii.models.DEFAULT_COLLECTION_ID, which comes with SQLModel and SQLAlchemy; the
# command modules need it for option defaults (shown by --help). tests/cli/test_start.py checks
# the two are equal.
DEFAULT_COLLECTION_ID = "365fed99-08fa-fdcd-a1b3-fb247eb41d01"

REFUSED = 2
UNUSABLE = 1


def fail(message: str, code: int = REFUSED) -> NoReturn:
    """Print ``error: <message>`` on stderr and exit with ``code`` (2 refused input, 1 unusable setup)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


# The root command's --as: who runs the command, for the audit records of what it changes.
OPERATOR_OPTION: ContextVar[str | None] = ContextVar("tearline_operator_option", default=None)


def operator_name() -> str:
    """Who runs this command: the root ``--as`` option, else the operating-system user."""
    return OPERATOR_OPTION.get() or getpass.getuser()


# The root command's --data-dir, set by its callback on every run (app.cli.main.root).
DATA_DIR_OPTION: ContextVar[Path | None] = ContextVar("tearline_data_dir_option", default=None)


def data_dir_option() -> Path | None:
    """The root command's ``--data-dir`` for this run, or None."""
    return DATA_DIR_OPTION.get()


def load_settings(factory: Callable[[], Settings] | None = None) -> Settings:
    """The settings of the instance this command acts on (or ``factory``'s); unusable ones exit with status 1."""
    from pydantic import ValidationError

    from app.config.instance import InstanceError, locate

    try:
        if factory is not None:
            return factory()
        instance = locate(data_dir_option())
        for warning in instance.warnings:
            typer.echo(f"warning: {warning}", err=True)
        return instance.settings()
    except InstanceError as exc:
        fail(str(exc), UNUSABLE)
    except ValidationError as exc:
        problems = "; ".join(
            (f"TEARLINE_{'_'.join(str(p) for p in err['loc']).upper()}: " if err["loc"] else "") + err["msg"]
            for err in exc.errors()
        )
        fail(f"invalid configuration: {problems}", UNUSABLE)


def display_url(database_url: str) -> str:
    """The database URL with its password hidden, for messages."""
    from sqlalchemy.engine import make_url

    return make_url(database_url).render_as_string(hide_password=True)


def split_codes(values: str) -> list[str]:
    """The non-empty items of a comma-separated option, stripped."""
    return [v.strip() for v in values.split(",") if v.strip()]


def parse_roles(values: str, option: str) -> list[str]:
    """The roles of a comma-separated option; an unknown role is refused."""
    roles = split_codes(values)
    unknown = sorted(set(roles) - ROLES)
    if unknown:
        fail(f"{option}: unknown role(s) {', '.join(unknown)}; known roles: {', '.join(sorted(ROLES))}")
    return roles


def load_cli_mappings(settings: Settings) -> Mappings:
    """The marking and code tables; tables that do not load exit with status 1."""
    from app.markings.mappings import MappingError, load_mappings

    try:
        return load_mappings(settings.mappings_dir)
    except MappingError as exc:
        fail(str(exc), UNUSABLE)


def parse_rank(mappings: Mappings, name: str) -> int:
    """A classification rank from its number or any known classification name; anything else is refused."""
    if name.strip().isdigit() and 0 <= int(name) < len(mappings.rank_names):
        return int(name)
    try:
        return mappings.rank_of(name)
    except UnknownToken:
        names = ", ".join(mappings.rank_names)
        fail(
            f"unknown classification {name!r}; use one of {names}, a national or NATO name, "
            "an abbreviation or a rank 0-4"
        )


def schema_problem(engine: Engine, database_url: str) -> str | None:
    """Why the database cannot be used by this code yet, or None."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from app.db import migrations

    head = ScriptDirectory.from_config(migrations.alembic_config(database_url)).get_current_head()
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    if current is None:
        return f"the database {display_url(database_url)} has no schema: run `tearline db upgrade` first"
    if current != head:
        return (
            f"the database {display_url(database_url)} is at revision {current}, this version needs {head}: "
            "run `tearline db upgrade`"
        )
    return None


def require_database(settings: Settings) -> None:
    """Exit with status 1 if the settings name a SQLite file that does not exist.

    Opening a missing SQLite file creates it: a mistyped path or a command run from the wrong
    directory would leave an empty database behind and then report "no schema" about it.
    """
    from sqlalchemy.engine import make_url

    url = make_url(settings.database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:") or "mode=memory" in str(url):
        return
    path = Path(url.database or "")
    if not path.exists():
        fail(
            f"no database at {path.resolve()}: create one with `tearline db upgrade`, or try the demo with "
            "`tearline demo`; choose the instance with --data-dir or TEARLINE_DATABASE_URL (see `tearline --help`)",
            UNUSABLE,
        )


@contextmanager
def database(settings: Settings, change: str | None = None) -> Iterator[Session]:
    """A session on an existing, reachable database whose schema is current; anything else is a one-line error.

    ``change`` describes what a state-changing command does (``tearline partner add USA ...``, no
    secret in it): every commit of the session appends an audit record naming it and the operator,
    in the same transaction. Read-only commands pass nothing and commit nothing.
    """
    from sqlalchemy.exc import OperationalError
    from sqlmodel import Session

    from app.audit.service import AuditUnavailable
    from app.audit.transaction import audit_operator_writes
    from app.db.engine import make_engine

    require_database(settings)
    engine = make_engine(settings.database_url)
    try:
        try:
            problem = schema_problem(engine, settings.database_url)
        except OperationalError as exc:
            fail(
                f"cannot open the database {display_url(settings.database_url)}: "
                f"{str(exc.orig).strip().splitlines()[0]}",
                UNUSABLE,
            )
        if problem:
            fail(problem, UNUSABLE)
        with Session(engine) as session:
            # Whatever the command changes commits with its audit record, or not at all.
            audit_operator_writes(session, settings, operator=operator_name(), command=change or "tearline")
            try:
                yield session
            except AuditUnavailable as exc:
                fail(f"the audit log cannot be written ({exc}); nothing was changed", UNUSABLE)
    finally:
        engine.dispose()


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Rows as plain-text columns under a header line and a dashed rule."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    lines = [headers, ["-" * w for w in widths], *rows]
    return "\n".join("  ".join(str(cell).ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines)
