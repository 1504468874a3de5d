"""The ``tearline`` command: run the server and do the operator's chores.

Settings are read when a command runs, never at import, so the environment a
command sees is the one it was started with. Refused input (unknown names,
invalid partners) exits with status 2, an unusable configuration or database
with status 1; both print one line on stderr and no traceback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session

from app import demo as demo_module
from app import migrations
from app.auth.keys import generate_key_pair
from app.auth.principal import HOME_ROLES, ROLES
from app.config import ConfigurationError, Settings
from app.db import make_engine
from app.markings.mappings import MappingError, Mappings, load_mappings
from app.markings.tokens import UnknownToken
from app.audit.commands import audit_app
from app.feeds.commands import feed_app
from app.policy.commands import group_app, label_app, policy_app
from app.observability.config_reference import config_app

app = typer.Typer(
    name="tearline",
    help="Tearline intelligence-sharing exchange: STIX 2.1 store and TAXII 2.1 server.",
    no_args_is_help=True,
    add_completion=False,
    # Locals in a traceback could show keys and tokens.
    pretty_exceptions_show_locals=False,
)
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
keys_app = typer.Typer(help="Development key pairs for signing and verifying tokens.", no_args_is_help=True)
partner_app = typer.Typer(help="Partner nations and their clearance.", no_args_is_help=True)
collection_app = typer.Typer(help="TAXII collections and the roles that may read and write them.",
                             no_args_is_help=True)
token_app = typer.Typer(help="Bearer tokens (development and testing).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(partner_app, name="partner")
app.add_typer(collection_app, name="collection")
app.add_typer(token_app, name="token")
app.add_typer(label_app, name="label")
app.add_typer(policy_app, name="policy")
app.add_typer(group_app, name="group")
app.add_typer(audit_app, name="audit")
app.add_typer(feed_app, name="feed")
app.add_typer(config_app, name="config")

REFUSED = 2
UNUSABLE = 1


class KeyKind(str, Enum):
    """Key types ``keys generate`` can write."""

    rsa = "rsa"
    ec = "ec"


def _fail(message: str, code: int = REFUSED) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _settings(factory: Callable[[], Settings] = Settings) -> Settings:
    try:
        return factory()
    except ValidationError as exc:
        problems = "; ".join(
            (f"TEARLINE_{'_'.join(str(p) for p in err['loc']).upper()}: " if err["loc"] else "") + err["msg"]
            for err in exc.errors()
        )
        _fail(f"invalid configuration: {problems}", UNUSABLE)


def _display_url(database_url: str) -> str:
    return make_url(database_url).render_as_string(hide_password=True)


def _split(values: str) -> list[str]:
    return [v.strip() for v in values.split(",") if v.strip()]


def _roles(values: str, option: str) -> list[str]:
    roles = _split(values)
    unknown = sorted(set(roles) - ROLES)
    if unknown:
        _fail(f"{option}: unknown role(s) {', '.join(unknown)}; known roles: {', '.join(sorted(ROLES))}")
    return roles


def _mappings(settings: Settings) -> Mappings:
    try:
        return load_mappings(settings.mappings_dir)
    except MappingError as exc:
        _fail(str(exc), UNUSABLE)


def _rank(mappings: Mappings, name: str) -> int:
    if name.strip().isdigit() and 0 <= int(name) < len(mappings.rank_names):
        return int(name)
    try:
        return mappings.rank_of(name)
    except UnknownToken:
        names = ", ".join(mappings.rank_names)
        _fail(f"unknown classification {name!r}; use one of {names}, a national or NATO name, "
              "an abbreviation or a rank 0-4")


def _schema_problem(engine: Engine, database_url: str) -> str | None:
    """Why the database cannot be used by this code yet, or None."""
    head = ScriptDirectory.from_config(migrations.alembic_config(database_url)).get_current_head()
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    if current is None:
        return f"the database {_display_url(database_url)} has no schema: run `tearline db upgrade` first"
    if current != head:
        return (f"the database {_display_url(database_url)} is at revision {current}, this version needs {head}: "
                "run `tearline db upgrade`")
    return None


@contextmanager
def _database(settings: Settings) -> Iterator[Session]:
    """A session on a reachable database whose schema is current; anything else is a one-line error."""
    engine = make_engine(settings.database_url)
    try:
        try:
            problem = _schema_problem(engine, settings.database_url)
        except OperationalError as exc:
            _fail(f"cannot open the database {_display_url(settings.database_url)}: "
                  f"{str(exc.orig).strip().splitlines()[0]}", UNUSABLE)
        if problem:
            _fail(problem, UNUSABLE)
        with Session(engine) as session:
            yield session
    finally:
        engine.dispose()


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    lines = [headers, ["-" * w for w in widths], *rows]
    return "\n".join("  ".join(str(cell).ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines)


def _run_server(application, host: str, port: int, ssl_keyfile: Path | None, ssl_certfile: Path | None) -> None:
    import uvicorn

    from app.observability.logs import logging_config

    settings = application.state.settings

    # The app object, not an import string: it was built from the settings checked here.
    # server_header=False: no "Server: uvicorn" telling an attacker what runs here.
    uvicorn.run(application, host=host, port=port, ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None,
                ssl_certfile=str(ssl_certfile) if ssl_certfile else None, server_header=False,
                # One JSON line per request from app/observability replaces uvicorn's access log.
                log_config=logging_config(settings.log_level, settings.log_format), access_log=False)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address [default: TEARLINE_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port [default: TEARLINE_PORT]")] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option(help="PEM private key for HTTPS.")] = None,
    ssl_certfile: Annotated[Path | None, typer.Option(help="PEM certificate (chain) for HTTPS.")] = None,
) -> None:
    """Run the HTTP server (TAXII 2.1 under /taxii2/, /healthz, /docs)."""
    from app.main import create_app

    if bool(ssl_keyfile) != bool(ssl_certfile):
        _fail("--ssl-keyfile and --ssl-certfile go together")
    settings = _settings()
    try:
        application = create_app(settings)
    except (ConfigurationError, FileNotFoundError) as exc:
        _fail(f"cannot start: {exc}", UNUSABLE)
    # Without the current schema every request would fail; say so before listening.
    with _database(settings):
        pass
    _run_server(application, host or settings.host, port or settings.port, ssl_keyfile, ssl_certfile)


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Option(help="Target Alembic revision.")] = "head",
) -> None:
    """Create or migrate the schema (TEARLINE_DATABASE_URL)."""
    settings = _settings()
    try:
        migrations.upgrade(settings.database_url, revision)
    except OperationalError as exc:
        _fail(f"cannot migrate {_display_url(settings.database_url)}: "
              f"{str(exc.orig).strip().splitlines()[0]}", UNUSABLE)
    typer.echo(f"{_display_url(settings.database_url)}: migrated to {revision}")


@keys_app.command("generate")
def keys_generate(
    kind: Annotated[KeyKind, typer.Option(help="rsa (RS256) or ec (ES256, P-256).")] = KeyKind.rsa,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing key pair.")] = False,
) -> None:
    """Write a development key pair under TEARLINE_DATA_DIR/keys/."""
    settings = _settings()
    private_path, public_path = settings.default_key_paths()
    existing = [str(p) for p in (private_path, public_path) if p.exists()]
    if existing and not force:
        _fail(f"key file(s) already exist: {', '.join(existing)}; pass --force to replace them "
              "(tokens signed with the old key stop working)")
    generate_key_pair(private_path, public_path, kind.value)
    typer.echo(f"private key: {private_path}")
    typer.echo(f"public key:  {public_path}")


@partner_app.command("add")
def partner_add(
    nation: Annotated[str, typer.Argument(help="ISO 3166-1 alpha-3 code, e.g. USA.")],
    clearance: Annotated[str, typer.Option(help="Highest classification the agreement clears, e.g. SECRET.")],
    groups: Annotated[str, typer.Option(help="Comma-separated group codes, e.g. FVEY,NATO.")] = "",
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    inactive: Annotated[bool, typer.Option("--inactive", help="Register without access for now.")] = False,
) -> None:
    """Register a partner nation, or update one."""
    from app.partners.service import InvalidPartner, save_partner

    settings = _settings()
    mappings = _mappings(settings)
    rank = _rank(mappings, clearance)
    with _database(settings) as session:
        try:
            partner = save_partner(session, nation=nation, clearance=rank, groups=_split(groups), name=name,
                                   active=not inactive, home_nation=settings.home_nation,
                                   mappings=mappings)
        except InvalidPartner as exc:
            _fail(str(exc))
        typer.echo(f"partner {partner.nation} saved: clearance {mappings.rank_names[partner.clearance]}, "
                   f"groups {partner.groups or '-'}, {'active' if partner.active else 'inactive'}")


@partner_app.command("list")
def partner_list() -> None:
    """Show the registered partner nations."""
    from app.partners.service import list_partners

    settings = _settings()
    rank_names = _mappings(settings).rank_names
    with _database(settings) as session:
        partners = list_partners(session)
        rows = [(p.nation, p.name or "-", rank_names[p.clearance], p.groups or "-",
                 "yes" if p.active else "no") for p in partners]
    if not rows:
        typer.echo("no partners registered")
        return
    typer.echo(_table(("NATION", "NAME", "CLEARANCE", "GROUPS", "ACTIVE"), rows))


@collection_app.command("add")
def collection_add(
    title: Annotated[str, typer.Option(help="Collection title shown to clients.")],
    description: Annotated[str, typer.Option(help="Collection description.")] = "",
    alias: Annotated[str | None, typer.Option(help="Unique short name.")] = None,
    read_roles: Annotated[str, typer.Option(help="Comma-separated roles that may read.")] = "partner,analyst",
    write_roles: Annotated[str, typer.Option(help="Comma-separated roles that may write.")] = "analyst",
) -> None:
    """Create a TAXII collection; prints its id."""
    from app.taxii.service import create_collection

    readers, writers = _roles(read_roles, "--read-roles"), _roles(write_roles, "--write-roles")
    settings = _settings()
    with _database(settings) as session:
        try:
            collection = create_collection(session, title=title, description=description, alias=alias or None,
                                           read_roles=readers, write_roles=writers)
        except IntegrityError:
            session.rollback()
            _fail(f"a collection with alias {alias!r} already exists")
        typer.echo(collection.id)


@collection_app.command("list")
def collection_list() -> None:
    """Show every collection with the roles granted on it."""
    from app.taxii.service import all_collections

    settings = _settings()
    with _database(settings) as session:
        rows = [(c.id, c.alias or "-", c.title, c.read_roles or "-", c.write_roles or "-")
                for c in all_collections(session)]
    if not rows:
        typer.echo("no collections")
        return
    typer.echo(_table(("ID", "ALIAS", "TITLE", "READ", "WRITE"), rows))


@token_app.command("issue")
def token_issue(
    subject: Annotated[str, typer.Option(help="The `sub` claim: who the token is for.")],
    nation: Annotated[str, typer.Option(help="ISO 3166-1 alpha-3 code of the holder's nation.")],
    roles: Annotated[str, typer.Option(help=f"Comma-separated roles: {', '.join(sorted(ROLES))}.")],
    clearance: Annotated[str | None, typer.Option(help="Lower the holder's clearance, e.g. CONFIDENTIAL.")] = None,
    lifetime: Annotated[int, typer.Option(min=1, help="Seconds until the token expires.")] = 3600,
) -> None:
    """Sign a bearer token and print only the token."""
    settings = _settings()
    nation = nation.strip().upper()
    if len(nation) != 3 or not nation.isalpha():
        _fail(f"--nation must be an ISO 3166-1 alpha-3 code, got {nation!r}")
    role_list = _roles(roles, "--roles")
    if not role_list:
        _fail("--roles needs at least one role")
    # The server refuses these combinations; a token it would refuse is no use to anyone.
    if nation == settings.home_nation and not set(role_list) <= HOME_ROLES:
        _fail(f"{nation} is the home nation: its roles are {', '.join(sorted(HOME_ROLES))}")
    if nation != settings.home_nation and set(role_list) != {"partner"}:
        _fail(f"{nation} is not the home nation ({settings.home_nation}): its tokens carry only the partner role")
    if clearance is not None:
        _rank(_mappings(settings), clearance)
    try:
        token = demo_module.sign_token(settings, subject=subject, nation=nation, roles=role_list,
                                       lifetime_s=lifetime, clearance=clearance)
    except ConfigurationError as exc:
        _fail(str(exc), UNUSABLE)
    typer.echo(token)


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 8000,
    host: Annotated[str, typer.Option(help="Address to serve on.")] = "127.0.0.1",
    serve_it: Annotated[bool, typer.Option("--serve/--no-serve", help="Start the server after seeding.")] = True,
) -> None:
    """Seed a local instance in ./data/demo/ (keys, partners, sample objects), print tokens, serve it."""
    from app.main import create_app

    settings = _settings(lambda: demo_module.demo_settings(port=port, host=host))
    result = demo_module.seed(settings)
    if result.failures:
        _fail("sample objects refused: " + "; ".join(result.failures), UNUSABLE)
    typer.echo(f"Seeded {settings.data_dir}: partners {', '.join(result.partners)}; "
               f"{result.succeeded}/{result.submitted} sample objects accepted, "
               f"{result.stored} stored in the default collection.\n")
    partner_nation = demo_module.demo_partner(settings)
    lifetime = demo_module.DEMO_TOKEN_LIFETIME_S
    partner_token = demo_module.sign_token(settings, subject=f"{partner_nation.lower()}-demo-feed",
                                           nation=partner_nation, roles=["partner"], lifetime_s=lifetime)
    analyst_token = demo_module.sign_token(settings, subject=demo_module.ANALYST_SUBJECT,
                                           nation=settings.home_nation, roles=["analyst"], lifetime_s=lifetime)
    typer.echo(demo_module.instructions(settings, partner_nation=partner_nation, partner_token=partner_token,
                                        analyst_token=analyst_token))
    if serve_it:
        try:
            application = create_app(settings)
        except (ConfigurationError, FileNotFoundError) as exc:
            _fail(f"cannot start: {exc}", UNUSABLE)
        _run_server(application, settings.host, settings.port, None, None)


def main() -> None:
    """Entry point of the ``tearline`` console script."""
    app()


if __name__ == "__main__":
    main()
