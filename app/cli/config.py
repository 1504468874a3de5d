"""``tearline config reference``: write or check the configuration reference (docs/configuration.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.config.reference import DEFAULT_OUTPUT, render

config_app = typer.Typer(help="Configuration reference.", no_args_is_help=True)


@config_app.command("reference")
def reference(
    output: Annotated[Path, typer.Option(help="Where to write the Markdown.")] = DEFAULT_OUTPUT,
    check: Annotated[bool, typer.Option("--check", help="Write nothing; exit 1 if OUTPUT is out of date.")] = False,
) -> None:
    """Write the configuration reference generated from the settings class (docs/configuration.md)."""
    text = render()
    if check:
        if not output.exists() or output.read_text() != text:
            typer.echo(f"error: {output} is out of date: run `tearline config reference`", err=True)
            raise typer.Exit(1)
        typer.echo(f"{output} is up to date")
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    typer.echo(f"wrote {output}")
