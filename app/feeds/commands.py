"""``tearline feed``: configure and run partner feeds."""

from __future__ import annotations

import typer

feed_app = typer.Typer(help="Partner TAXII feeds: add, list, remove, sync.", no_args_is_help=True)
