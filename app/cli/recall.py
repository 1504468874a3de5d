"""``tearline recall``: the auditor's recall reports in a terminal (read-only).

``tearline recall list`` shows recalls newest first with how many recipient nations received and
acknowledged their notices; ``tearline recall show RECALL_ID`` shows one recall's recipients, each
``notified``, ``received`` or ``acknowledged``. Both print a table, or JSON with ``--json``, and
change nothing but the derived recipients index (brought up to date first, as the API does).

Exit status: 0 on success, 2 for refused input (a bad time, an unknown recall), 1 for an unusable
configuration or database.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from app.cli.common import database, fail, load_settings, table

if TYPE_CHECKING:
    from sqlmodel import Session

recall_app = typer.Typer(help="Recalls: who was told, who received the notice, who acknowledged.", no_args_is_help=True)
PAGE = 1000  # as app.recall.report_routes.MAX_PAGE (not imported: the CLI loads the recall modules lazily)


def _dump(value: Any) -> None:
    import orjson

    typer.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


def _dash(value: object) -> str:
    return "-" if value is None or value == "" else str(value)


def _page_all(session: Session, limit: int, **filters: Any) -> tuple[list[dict[str, Any]], bool]:
    """Up to ``limit`` recalls matching ``filters``, newest first, and whether more remain."""
    from app.recall.report import list_recalls

    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while len(found) < limit:
        page, cursor = list_recalls(session, after=cursor, limit=min(PAGE, limit - len(found)), **filters)
        found += page
        if cursor is None:
            return found, False
    return found, True


@recall_app.command("list")
def recall_list(
    object_id: Annotated[str | None, typer.Option("--object", help="Only recalls of this object (STIX id).")] = None,
    outstanding: Annotated[
        bool, typer.Option("--outstanding", help="Only recalls with a notice not yet acknowledged.")
    ] = False,
    since: Annotated[
        datetime | None, typer.Option(help="Only recalls issued at or after this time (UTC if no zone).")
    ] = None,
    until: Annotated[datetime | None, typer.Option(help="Only recalls issued before this time.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="Show at most this many recalls.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Show recalls newest first: cause, how many nations were notified, received and acknowledged."""
    from app.audit.query import FilterError
    from app.recall.report import time_us

    try:
        since_us = None if since is None else time_us(since, "--since")
        until_us = None if until is None else time_us(until, "--until")
    except FilterError as exc:
        fail(str(exc))
    if since_us is not None and until_us is not None and since_us >= until_us:
        fail("--since must be before --until")
    settings = load_settings()
    with database(settings) as session:
        try:
            recalls, more = _page_all(
                session,
                limit,
                object_id=object_id,
                since_us=since_us,
                until_us=until_us,
                outstanding=True if outstanding else None,
            )
        except FilterError as exc:
            fail(str(exc))
    if as_json:
        _dump({"recalls": recalls, "more": more})
        return
    if not recalls:
        typer.echo("no recalls")
        return
    rows = [
        (
            r["recall_id"],
            r["issued"],
            r["cause"],
            r["object_id"],
            f"{r['received']}/{r['nations']}",
            f"{r['acknowledged']}/{r['nations']}",
            ",".join(r["outstanding"]) or "-",
        )
        for r in recalls
    ]
    typer.echo(table(("RECALL", "ISSUED", "CAUSE", "OBJECT", "RECEIVED", "ACKED", "OUTSTANDING"), rows))
    if more:
        typer.echo(f"more recalls than the {limit} shown: narrow the filters or raise --limit", err=True)


@recall_app.command("show")
def recall_show(
    recall_id: Annotated[str, typer.Argument(help="The recall's id, as `tearline recall list` shows it.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Show one recall: why, who issued it, and each recipient nation's notice and state."""
    from app.recall.report import recall_report

    settings = load_settings()
    with database(settings) as session:
        report = recall_report(session, recall_id)
    if report is None:
        fail(f"no recall {recall_id!r}")
    if as_json:
        _dump(report)
        return
    fields = (
        ("recall", "recall_id"),
        ("object", "object_id"),
        ("cause", "cause"),
        ("reason", "reason"),
        ("action", "action"),
        ("issued", "issued"),
        ("issued by", "issued_by"),
        ("trigger version", "trigger_version"),
        ("parent", "parent_id"),
        ("source note", "source_note_id"),
    )
    for label, key in fields:
        typer.echo(f"{label + ':':<17}{_dash(report[key])}")
    typer.echo(f"{'derived:':<17}{', '.join(report['derived']) or '-'}")
    typer.echo("")
    rows = [
        (
            r["nation"],
            r["state"],
            r["notified"],
            _dash(r["received"]),
            _dash(r["received_by"]),
            _dash(r["acknowledged"]),
            _dash(r["acknowledged_by"]),
            r["notice_id"],
        )
        for r in report["recipients"]
    ]
    headers = ("NATION", "STATE", "NOTIFIED", "RECEIVED", "RECEIVED BY", "ACKNOWLEDGED", "ACKNOWLEDGED BY", "NOTICE")
    typer.echo(table(headers, rows) if rows else "no recipients")
