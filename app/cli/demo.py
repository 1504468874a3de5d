"""``tearline demo``: seed a local instance, print what a newcomer needs, serve it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import UNUSABLE, data_dir_option, fail, load_settings, operator_name
from app.cli.server import run_server


def demo(
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 8000,
    host: Annotated[str, typer.Option(help="Address to serve on.")] = "127.0.0.1",
    serve_it: Annotated[bool, typer.Option("--serve/--no-serve", help="Start the server after seeding.")] = True,
) -> None:
    """Seed a local instance in ./data/demo/ (or --data-dir), print a token per role, serve it."""
    from app.config.instance import InstanceError
    from app.config.settings import ConfigurationError
    from app.demo import handout
    from app.demo import seed as demo_module
    from app.main import create_app

    base_dir = data_dir_option() or demo_module.DEMO_DIR
    settings = load_settings(lambda: demo_module.demo_settings(base_dir, port=port, host=host))
    result = demo_module.seed(settings, operator=operator_name())
    if result.failures:
        fail("sample objects refused: " + "; ".join(result.failures), UNUSABLE)
    typer.echo(
        f"Seeded {settings.data_dir}: partners {', '.join(result.partners)}; "
        f"{result.succeeded}/{result.submitted} sample objects accepted, "
        f"{result.stored} stored in the default collection.\n"
    )
    cwd = Path.cwd()
    try:
        not_written = handout.write_pointer(settings, cwd)
        tokens = handout.issue_tokens(settings)
    except (ConfigurationError, InstanceError) as exc:
        fail(str(exc), UNUSABLE)
    typer.echo(handout.instructions(settings, tokens, cwd=cwd, not_written=not_written))
    if serve_it:
        try:
            application = create_app(settings)
        except (ConfigurationError, FileNotFoundError) as exc:
            fail(f"cannot start: {exc}", UNUSABLE)
        run_server(application, settings.host, settings.port, None, None)
