"""``tearline demo``: seed a local instance, print what a newcomer needs, serve it."""

from __future__ import annotations

from typing import Annotated

import typer

from app.auth.signing import sign_token
from app.cli.common import UNUSABLE, fail, load_settings
from app.cli.server import run_server
from app.config.settings import ConfigurationError
from app.demo import seed as demo_module


def demo(
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 8000,
    host: Annotated[str, typer.Option(help="Address to serve on.")] = "127.0.0.1",
    serve_it: Annotated[bool, typer.Option("--serve/--no-serve", help="Start the server after seeding.")] = True,
) -> None:
    """Seed a local instance in ./data/demo/ (keys, partners, sample objects), print tokens, serve it."""
    from app.main import create_app

    settings = load_settings(lambda: demo_module.demo_settings(port=port, host=host))
    result = demo_module.seed(settings)
    if result.failures:
        fail("sample objects refused: " + "; ".join(result.failures), UNUSABLE)
    typer.echo(
        f"Seeded {settings.data_dir}: partners {', '.join(result.partners)}; "
        f"{result.succeeded}/{result.submitted} sample objects accepted, "
        f"{result.stored} stored in the default collection.\n"
    )
    partner_nation = demo_module.demo_partner(settings)
    lifetime = demo_module.DEMO_TOKEN_LIFETIME_S
    partner_token = sign_token(
        settings,
        subject=f"{partner_nation.lower()}-demo-feed",
        nation=partner_nation,
        roles=["partner"],
        lifetime_s=lifetime,
    )
    analyst_token = sign_token(
        settings,
        subject=demo_module.ANALYST_SUBJECT,
        nation=settings.home_nation,
        roles=["analyst"],
        lifetime_s=lifetime,
    )
    typer.echo(
        demo_module.instructions(
            settings, partner_nation=partner_nation, partner_token=partner_token, analyst_token=analyst_token
        )
    )
    if serve_it:
        try:
            application = create_app(settings)
        except (ConfigurationError, FileNotFoundError) as exc:
            fail(f"cannot start: {exc}", UNUSABLE)
        run_server(application, settings.host, settings.port, None, None)
