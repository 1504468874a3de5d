"""``tearline audit``: verify and export the audit log."""

from __future__ import annotations

import typer

audit_app = typer.Typer(help="Audit log: verify the hash chain, export records.", no_args_is_help=True)
