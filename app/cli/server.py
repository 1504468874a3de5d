"""``tearline serve``, ``db upgrade`` and ``keys generate``: run the server and prepare what it needs."""

from __future__ import annotations

from enum import Enum
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from app.cli.common import UNUSABLE, database, display_url, fail, load_settings, require_database

if TYPE_CHECKING:
    from fastapi import FastAPI

db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
keys_app = typer.Typer(help="Development key pairs for signing and verifying tokens.", no_args_is_help=True)


class KeyKind(str, Enum):
    """Key types ``keys generate`` can write."""

    rsa = "rsa"
    ec = "ec"


YOUNG_COLLECTION_THRESHOLD = 10_000


@cache
def prepare_process() -> None:
    """Once per server process, before it serves: load what the first POST would otherwise import,
    then move everything loaded so far out of the garbage collector's sight (``gc.freeze``).

    Ingest allocates enough to trigger full collections, and each walked the ~350,000 objects
    of the imported libraries: 16-20% of an ingest's time. They live as long as the process.

    The youngest generation is collected after 10,000 net allocations instead of 700. A page of
    1,000 objects holds some 10,000 containers while it is built, all alive until its response:
    at 700, each page paid about five collections that found nothing to free and promoted those
    containers into older generations, whose collections then walked them again (267 collections,
    98-110 ms over 50 pages; at 10,000: 5 collections, 23-28 ms, and pages 10-15% faster).
    Garbage in reference cycles waits for at most 10,000 more allocations.
    """
    import gc

    from app.items import stix_validation

    stix_validation.warm_up()
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD)


def run_server(application: FastAPI, host: str, port: int, ssl_keyfile: Path | None, ssl_certfile: Path | None) -> None:
    """Serve ``application`` with uvicorn: no Server header, Tearline's JSON access log."""
    import uvicorn

    from app.observability.logs import logging_config

    settings = application.state.settings
    prepare_process()

    # The app object, not an import string: it was built from the settings checked here.
    # server_header=False: no "Server: uvicorn" telling an attacker what runs here.
    uvicorn.run(
        application,
        host=host,
        port=port,
        ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None,
        ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
        server_header=False,
        # One JSON line per request from app/observability replaces uvicorn's access log.
        log_config=logging_config(settings.log_level, settings.log_format),
        access_log=False,
    )


def serve(
    host: Annotated[str | None, typer.Option(help="Listen address [default: TEARLINE_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port [default: TEARLINE_PORT]")] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option(help="PEM private key for HTTPS.")] = None,
    ssl_certfile: Annotated[Path | None, typer.Option(help="PEM certificate (chain) for HTTPS.")] = None,
) -> None:
    """Run the HTTP server (TAXII 2.1 under /taxii2/, /healthz, /docs)."""
    from app.config.settings import ConfigurationError
    from app.main import create_app

    if bool(ssl_keyfile) != bool(ssl_certfile):
        fail("--ssl-keyfile and --ssl-certfile go together")
    settings = load_settings()
    try:
        settings.check_startup()  # a refused configuration is named before anything else is looked at
        require_database(settings)  # before the app opens it: a missing SQLite file is not created
        application = create_app(settings)
    except (ConfigurationError, FileNotFoundError) as exc:
        fail(f"cannot start: {exc}", UNUSABLE)
    # Without the current schema every request would fail; say so before listening.
    with database(settings):
        pass
    run_server(application, host or settings.host, port or settings.port, ssl_keyfile, ssl_certfile)


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Option(help="Target Alembic revision.")] = "head",
) -> None:
    """Create or migrate the schema (TEARLINE_DATABASE_URL)."""
    from sqlalchemy.exc import OperationalError

    from app.db import migrations

    settings = load_settings()
    try:
        migrations.upgrade(settings.database_url, revision)
    except OperationalError as exc:
        fail(f"cannot migrate {display_url(settings.database_url)}: {str(exc.orig).strip().splitlines()[0]}", UNUSABLE)
    typer.echo(f"{display_url(settings.database_url)}: migrated to {revision}")


@keys_app.command("generate")
def keys_generate(
    kind: Annotated[KeyKind, typer.Option(help="rsa (RS256) or ec (ES256, P-256).")] = KeyKind.rsa,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing key pair.")] = False,
) -> None:
    """Write a development key pair under TEARLINE_DATA_DIR/keys/."""
    from app.auth.keys import generate_key_pair

    settings = load_settings()
    private_path, public_path = settings.default_key_paths()
    existing = [str(p) for p in (private_path, public_path) if p.exists()]
    if existing and not force:
        fail(
            f"key file(s) already exist: {', '.join(existing)}; pass --force to replace them "
            "(tokens signed with the old key stop working)"
        )
    generate_key_pair(private_path, public_path, kind.value)
    typer.echo(f"private key: {private_path}")
    typer.echo(f"public key:  {public_path}")
