"""CLI commands for labels, releasability decisions and groups (registered by :mod:`app.cli.main`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from app.cli.common import database, fail, load_cli_mappings, load_settings, require_database
from app.markings.tokens import UnknownToken

if TYPE_CHECKING:
    from app.config.settings import Settings
    from app.markings.mappings import Mappings

label_app = typer.Typer(help="Labels: canonical banners and who may see them.", no_args_is_help=True)
policy_app = typer.Typer(help="Releasability decisions, explained.", no_args_is_help=True)
group_app = typer.Typer(help="Group codes (FVEY, NATO, ...) and their members.", no_args_is_help=True)


def _context() -> tuple[Settings, Mappings]:
    settings = load_settings()
    require_database(settings)  # a missing instance is reported before the tables take seconds to load
    return settings, load_cli_mappings(settings)


@label_app.command("check")
def label_check(
    banner: Annotated[str, typer.Argument(help='A banner, e.g. "SECRET//REL TO FVEY".')],
    originator: Annotated[str | None, typer.Option(help="Originating nation (default: the home nation).")] = None,
) -> None:
    """Print the canonical banner, its marking-definition id and the partners that may see it."""
    from app.policy.checks import check_label

    settings, mappings = _context()
    with database(settings) as session:
        try:
            report = check_label(
                session,
                banner,
                originator=(originator or settings.home_nation).upper(),
                home_nation=settings.home_nation,
                mappings=mappings,
                policies_dir=settings.policies_dir,
            )
        except UnknownToken as exc:
            fail(str(exc))
    typer.echo(f"banner:             {report.banner}")
    typer.echo(f"marking-definition: {report.marking_id}")
    typer.echo(f"partners who see it: {', '.join(report.partners) or 'none (home nation only)'}")


@policy_app.command("check")
def policy_check(
    nation: Annotated[str, typer.Option(help="The requesting nation (a partner, or the home nation).")],
    banner: Annotated[str, typer.Option(help="The label, as a banner.")],
    clearance: Annotated[str | None, typer.Option(help="A lower clearance the token would claim.")] = None,
    originator: Annotated[str | None, typer.Option(help="Originating nation (default: the home nation).")] = None,
) -> None:
    """Print whether ``nation`` may see ``banner`` and which clause of the rule decides."""
    from app.policy.checks import check_policy

    settings, mappings = _context()
    try:
        rank = None if clearance is None else mappings.rank_of(clearance)
    except UnknownToken as exc:
        fail(str(exc))
    with database(settings) as session:
        try:
            decision = check_policy(
                session,
                nation=nation.upper(),
                banner=banner,
                home_nation=settings.home_nation,
                mappings=mappings,
                policies_dir=settings.policies_dir,
                clearance=rank,
                originator=originator.upper() if originator else None,
            )
        except UnknownToken as exc:
            fail(str(exc))
    typer.echo(f"decision: {'ALLOW' if decision.allowed else 'DENY'}")
    for clause, holds in decision.clauses:
        typer.echo(f"  {'ok  ' if holds else 'FAIL'} {clause}")


@group_app.command("set")
def group_set(
    code: Annotated[str, typer.Argument(help="Group code, e.g. FVEY.")],
    members: Annotated[str, typer.Option(help="Comma-separated ISO 3166-1 alpha-3 codes.")],
) -> None:
    """Replace a group's members (overrides stix_mappings/codes/groups.json)."""
    from app.partners.service import InvalidPartner, set_group

    settings, mappings = _context()
    with database(settings, f"tearline group set {code} --members {members}") as session:
        try:
            group = set_group(session, code, members.split(","), mappings)
        except InvalidPartner as exc:
            fail(str(exc))
        typer.echo(f"group {group.code}: {group.members.replace(',', ', ') or '(no members)'}")


@group_app.command("list")
def group_list() -> None:
    """Show every group with the members decisions use."""
    from app.partners.service import effective_groups

    settings, mappings = _context()
    with database(settings) as session:
        groups = effective_groups(session, mappings)
    for code in sorted(groups):
        typer.echo(f"{code}: {', '.join(sorted(groups[code]))}")
