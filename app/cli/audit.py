"""``tearline audit``: verify the hash chain, export records, checkpoint before archiving.

Exit status: 0 when the chain verifies, 3 when it is broken (the first broken
record is printed), 1 for an unusable configuration or database, 2 for refused input.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from app.cli.common import UNUSABLE, database, fail, load_settings, require_database

if TYPE_CHECKING:
    from rich.progress import Progress
    from sqlalchemy import Engine

    from app.audit.service import AuditSigner
    from app.config.settings import Settings

audit_app = typer.Typer(help="Audit log: verify the hash chain, export records.", no_args_is_help=True)
BROKEN = 3
MAX_SEQ = 2**63 - 1  # as app.audit.query.MAX_SEQ (not imported: the CLI loads the audit modules lazily)


class Format(str, Enum):
    """Formats of an export."""

    csv = "csv"
    ndjson = "ndjson"


def _progress() -> Progress:
    # Written to stderr so that an export to stdout stays clean. Imported here, not with the module:
    # rich.progress takes tens of milliseconds that `tearline --help` should not pay.
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )


def _engine_and_signer() -> tuple[Settings, AuditSigner]:
    from app.audit.service import AuditSigner, AuditUnavailable

    settings = load_settings()
    # Before the signer: in development it creates its key file, which no command on a missing
    # instance should leave behind.
    require_database(settings)
    try:
        signer = AuditSigner.from_settings(settings)
    except AuditUnavailable as exc:
        fail(str(exc), UNUSABLE)
    return settings, signer


@audit_app.command("verify")
def verify(
    start: Annotated[
        int | None, typer.Option(min=1, max=MAX_SEQ, help="First sequence number to check (default: the first).")
    ] = None,
    end: Annotated[
        int | None, typer.Option(min=1, max=MAX_SEQ, help="Last sequence number to check (default: the head).")
    ] = None,
) -> None:
    """Recompute every record's hash and check links, dissemination rows, checkpoints and the head."""
    from app.audit.verify import verify_chain

    settings, signer = _engine_and_signer()
    with database(settings) as session:
        engine = cast("Engine", session.get_bind())  # the session of `database` is bound to an engine
        with _progress() as progress:
            task = progress.add_task("verifying", total=None)
            report = verify_chain(
                engine,
                signer,
                start=start,
                end=end,
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
    if report.ok:
        typer.echo(
            f"ok: {report.checked} records verified (seq {start or report.first_seq}.."
            f"{end or report.head_seq}), {report.checkpoints_checked} checkpoints, head at {report.head_seq}"
        )
        return
    typer.echo(f"BROKEN at seq {report.broken_seq}: {report.problem}", err=True)
    raise typer.Exit(BROKEN)


@audit_app.command("export")
def export(
    since: Annotated[datetime | None, typer.Option(help="Only records at or after this time (UTC if no zone).")] = None,
    until: Annotated[datetime | None, typer.Option(help="Only records before this time.")] = None,
    format: Annotated[Format, typer.Option(help="csv or ndjson.")] = Format.ndjson,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")] = None,
) -> None:
    """Write matching records, each with the exact versions it served."""
    from app.audit import query

    # Checked before anything is opened: naive and zoned times compare in UTC, and a zone that
    # takes a time outside years 1-9999 is refused rather than failing mid-export.
    try:
        since = None if since is None else query.in_utc(since, "--since")
        until = None if until is None else query.in_utc(until, "--until")
    except query.FilterError as exc:
        fail(str(exc))
    if since and until and since >= until:
        fail("--since must be before --until")
    flt = query.record_filter(since, until)
    settings, _ = _engine_and_signer()
    lines = query.csv_lines if format is Format.csv else query.ndjson_lines
    with database(settings) as session:
        engine = cast("Engine", session.get_bind())  # the session of `database` is bound to an engine
        total = query.count_records(engine, flt)
        stream = output.open("wb") if output else sys.stdout.buffer
        try:
            with _progress() as progress:
                task = progress.add_task("exporting", total=total)

                def counted() -> Iterator[dict[str, Any]]:
                    for record in query.iter_records(engine, flt):
                        yield record
                        progress.advance(task)

                for chunk in lines(counted()):
                    stream.write(chunk)
        finally:
            if output:
                stream.close()
            else:
                stream.flush()
    if output:
        typer.echo(f"{total} records written to {output}", err=True)


@audit_app.command("checkpoint")
def checkpoint() -> None:
    """Checkpoint the chain head now (do this before archiving a range; see README, Audit)."""
    from app.audit.service import bind_signer, write_checkpoint

    settings, signer = _engine_and_signer()
    with database(settings) as session:
        engine = cast("Engine", session.get_bind())  # the session of `database` is bound to an engine
        bind_signer(engine, signer)
        seq = write_checkpoint(engine)
    typer.echo("no records yet" if seq is None else f"checkpoint at seq {seq}")
