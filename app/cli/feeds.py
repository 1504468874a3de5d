"""``tearline feed``: configure and run partner feeds.

Credentials are given with ``--credential`` (the secret, or ``env:NAME``) or typed
at a hidden prompt; they are stored encrypted and never printed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, cast

import typer

from app.cli.common import (
    DEFAULT_COLLECTION_ID,
    UNUSABLE,
    database,
    fail,
    load_cli_mappings,
    load_settings,
    table,
)

if TYPE_CHECKING:
    from rich.progress import Progress as RichProgress
    from rich.progress import TaskID
    from sqlalchemy import Engine

    from app.config.settings import Settings
    from app.feeds.context import FeedContext

feed_app = typer.Typer(help="Partner TAXII feeds: add, list, remove, sync.", no_args_is_help=True)

_COLUMNS = (
    "NAME",
    "PARTNER",
    "DIR",
    "STATE",
    "CURSOR",
    "IN",
    "OUT",
    "UNKNOWN",
    "REFUSED",
    "LAST SUCCESS",
    "LAST ERROR",
)


def _context(settings: Settings, engine: Engine) -> FeedContext:
    from app.audit.service import AuditSigner, bind_signer
    from app.disclosure.setup import bind_disclosure
    from app.feeds.context import FeedContext
    from app.markings.mappings import load_mappings
    from app.policy.enforcer import RoleRights
    from app.policy.visibility import VisibilityCache
    from app.recall.setup import bind_recall

    mappings = load_mappings(settings.mappings_dir)
    bind_signer(engine, AuditSigner.from_settings(settings))
    visibility = VisibilityCache(settings.policies_dir, mappings, settings.home_nation)
    bind_recall(engine, settings, mappings, visibility)  # a pulled version may withdraw older ones
    bind_disclosure(engine, settings, mappings)
    return FeedContext(settings, engine, mappings, visibility, RoleRights(settings.policies_dir))


@feed_app.command("add")
def feed_add(
    name: Annotated[str, typer.Argument(help="Feed name (a-z, 0-9, _ . -).")],
    partner: Annotated[str, typer.Option(help="Registered partner nation, e.g. USA.")],
    direction: Annotated[str, typer.Option(help="pull (their feed in) or push (our releasable feed out).")],
    url: Annotated[str, typer.Option(help="The partner's TAXII discovery or API root URL.")],
    collection: Annotated[str, typer.Option(help="The partner's collection id.")],
    local_collection: Annotated[
        str, typer.Option(help="Local collection: target of a pull, source of a push.")
    ] = DEFAULT_COLLECTION_ID,
    auth: Annotated[str, typer.Option(help="none, basic or bearer.")] = "none",
    username: Annotated[str | None, typer.Option(help="Username for basic auth.")] = None,
    credential: Annotated[
        str | None,
        typer.Option(help="Password or token, or env:NAME to read it from the environment; prompted for if needed."),
    ] = None,
    poll_interval: Annotated[int, typer.Option(help="Seconds between runs in `tearline serve`.")] = 300,
    default_label: Annotated[
        str | None, typer.Option(help="Banner for unmarked incoming objects [default: originator-only].")
    ] = None,
) -> None:
    """Add a feed (pull or push) for a registered partner."""
    from app.feeds.service import FeedSpec, InvalidFeed, add_feed, credential_kind

    if auth in ("basic", "bearer") and not credential:
        credential = typer.prompt("credential (password or token, or env:NAME)", hide_input=True)
    settings = load_settings()
    mappings = load_cli_mappings(settings)
    # The credential itself never reaches the record: only how it is kept.
    kept = "none" if not credential else ("env" if credential.startswith("env:") else "stored encrypted")
    change = (
        f"tearline feed add {name} --partner {partner} --direction {direction} --url {url} --collection {collection} "
        f"--local-collection {local_collection} --auth {auth} --username {username or '-'} --credential <{kept}> "
        f"--poll-interval {poll_interval} --default-label {default_label or '-'}"
    )
    with database(settings, change) as session:
        try:
            feed = add_feed(
                session,
                settings,
                mappings,
                FeedSpec(
                    name=name,
                    partner=partner,
                    direction=direction,
                    url=url,
                    collection_id=collection,
                    local_collection_id=local_collection,
                    auth_kind=auth,
                    username=username,
                    credential=credential,
                    poll_interval_s=poll_interval,
                    default_label=default_label,
                ),
            )
        except InvalidFeed as exc:
            fail(str(exc))
        typer.echo(
            f"feed {feed.name} added: {feed.direction} {feed.partner} {feed.url} "
            f"collection {feed.remote_collection_id}, credential {credential_kind(feed)}"
        )


@feed_app.command("list")
def feed_list() -> None:
    """Show every feed with its cursor, counters and last outcome (never a credential)."""
    from app.feeds.service import feed_view, list_feeds

    settings = load_settings()
    with database(settings) as session:
        views = [feed_view(feed) for feed in list_feeds(session)]
    if not views:
        typer.echo("no feeds")
        return
    rows = [
        (
            v["name"],
            v["partner"],
            v["direction"],
            "active" if v["enabled"] else f"stopped: {v['stopped_reason']}",
            v["cursor"] or "-",
            str(v["objects_in"]),
            str(v["objects_out"]),
            str(v["unknown_markings"]),
            str(v["refused"]),
            v["last_success"] or "-",
            v["last_error"] or "-",
        )
        for v in views
    ]
    typer.echo(table(_COLUMNS, rows))


@feed_app.command("remove")
def feed_remove(name: Annotated[str, typer.Argument(help="Feed name.")]) -> None:
    """Remove a feed and its cursor (objects it brought in stay)."""
    from app.feeds.service import NoSuchFeed, remove_feed

    settings = load_settings()
    with database(settings, f"tearline feed remove {name}") as session:
        try:
            remove_feed(session, name)
        except NoSuchFeed:
            fail(f"no feed named {name!r}")
    typer.echo(f"feed {name} removed")


class _RichProgress:
    """Feeds a rich progress bar (objects handled; no total, since a partner does not say how many)."""

    def __init__(self, progress: RichProgress) -> None:
        self.task: TaskID | None
        self.progress, self.task = progress, None

    def start(self, name: str, total: int | None) -> None:
        self.task = self.progress.add_task(f"feed {name}", total=total)

    def advance(self, count: int) -> None:
        if self.task is not None:
            self.progress.update(self.task, advance=count)


@feed_app.command("sync")
def feed_sync(
    name: Annotated[str | None, typer.Argument(help="Feed to run [default: every enabled feed].")] = None,
) -> None:
    """Run one feed, or every enabled feed, now. A stopped feed named here is resumed if the run succeeds."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    from app.feeds.service import list_feeds
    from app.feeds.sync import run_feed

    settings = load_settings()
    with database(settings) as session:
        feeds = list_feeds(session)
        names = [f.name for f in feeds if f.enabled] if name is None else [f.name for f in feeds if f.name == name]
        engine = cast("Engine", session.get_bind())  # the session of `database` is bound to an engine
        if name is not None and not names:
            fail(f"no feed named {name!r}")
        ctx = _context(settings, engine)
        failed = False
        columns = (
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("objects"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, transient=False) as progress:
            results = [
                run_feed(ctx, feed_name, progress=_RichProgress(progress), force=name is not None)
                for feed_name in names
            ]
        for result in results:
            counts = (
                f"pages {result.pages}, received {result.received}, stored {result.stored}, "
                f"duplicates {result.duplicates}, unknown markings {result.unknown_markings}, "
                f"refused {result.refused}"
                if result.direction == "pull"
                else f"sent {result.sent}, refused {result.refused}"
            )
            typer.echo(f"{result.name}: {result.status}; {counts}" + (f"; {result.message}" if result.message else ""))
            for refusal in result.refusals[:20]:
                typer.echo(f"  refused {refusal}")
            failed = failed or result.status in ("error", "stopped", "busy")
    if failed:
        raise typer.Exit(UNUSABLE)
