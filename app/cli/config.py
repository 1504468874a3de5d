"""``tearline config reference``: write or check the configuration reference (docs/configuration.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

# As app.config.reference.DEFAULT_OUTPUT, whose module imports the settings class (pydantic): the
# option's default is shown by --help, which should not pay for it. tests/cli/test_start.py checks
# the two are equal.
DEFAULT_OUTPUT = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"

config_app = typer.Typer(help="Configuration reference.", no_args_is_help=True)


@config_app.command("reference")
def reference(
    output: Annotated[Path, typer.Option(help="Where to write the Markdown.")] = DEFAULT_OUTPUT,
    check: Annotated[bool, typer.Option("--check", help="Write nothing; exit 1 if OUTPUT is out of date.")] = False,
) -> None:
    """Write the configuration reference generated from the settings class (docs/configuration.md)."""
    from app.config.reference import render

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
