"""The ``tearline`` command: assembles the command groups defined in this package."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.cli.audit import audit_app
from app.cli.common import DATA_DIR_OPTION, OPERATOR_OPTION
from app.cli.config import config_app
from app.cli.demo import demo
from app.cli.feeds import feed_app
from app.cli.policy import group_app, label_app, policy_app
from app.cli.recall import recall_app
from app.cli.registry import collection_app, partner_app, token_app
from app.cli.server import db_app, keys_app, serve
from app.cli.stream import stream_app

app = typer.Typer(
    name="tearline",
    no_args_is_help=True,
    add_completion=False,
    # Locals in a traceback could show keys and tokens.
    pretty_exceptions_show_locals=False,
)


@app.callback()
def root(
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            file_okay=False,
            help="Act on the development instance in this directory: its tearline.env, keys/ and "
            "tearline.sqlite (default: TEARLINE_DATA_DIR, else ./data).",
        ),
    ] = None,
    operator: Annotated[
        str | None,
        typer.Option(
            "--as",
            help="Who runs the command, named in the audit record of every change it makes "
            "(default: the operating-system user).",
        ),
    ] = None,
) -> None:
    """Tearline intelligence-sharing exchange: STIX 2.1 store and TAXII 2.1 server.

    Each command acts on one instance, found without exported variables: the settings file tearline.env of the data directory (--data-dir, else TEARLINE_DATA_DIR, else ./data) is read, and TEARLINE_* environment variables win over it. `tearline demo` writes ./data/tearline.env, so commands run from the directory it was started in use the demo instance. With TEARLINE_ENV=production only the environment counts.
    """
    # Set on every run, None included, so a run in the same process never sees an earlier one's value.
    DATA_DIR_OPTION.set(data_dir)
    OPERATOR_OPTION.set(operator.strip() if operator and operator.strip() else None)


app.command()(serve)
app.command()(demo)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(partner_app, name="partner")
app.add_typer(collection_app, name="collection")
app.add_typer(token_app, name="token")
app.add_typer(label_app, name="label")
app.add_typer(policy_app, name="policy")
app.add_typer(group_app, name="group")
app.add_typer(audit_app, name="audit")
app.add_typer(recall_app, name="recall")
app.add_typer(feed_app, name="feed")
app.add_typer(stream_app, name="stream")
app.add_typer(config_app, name="config")


def main() -> None:
    """Entry point of the ``tearline`` console script."""
    app()


if __name__ == "__main__":
    main()
