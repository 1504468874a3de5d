"""``tearline partner``, ``collection`` and ``token``: who may connect, to what, with which token."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from app.auth.principal import HOME_ROLES, ROLES
from app.cli.common import (
    UNUSABLE,
    database,
    fail,
    load_cli_mappings,
    load_settings,
    parse_rank,
    parse_roles,
    require_database,
    split_codes,
    table,
)

if TYPE_CHECKING:
    from app.config.settings import Settings

partner_app = typer.Typer(help="Partner nations and their clearance.", no_args_is_help=True)
collection_app = typer.Typer(help="TAXII collections and the roles that may read and write them.", no_args_is_help=True)
token_app = typer.Typer(help="Bearer tokens (development and testing).", no_args_is_help=True)


@partner_app.command("add")
def partner_add(
    nation: Annotated[str, typer.Argument(help="ISO 3166-1 alpha-3 code, e.g. USA.")],
    clearance: Annotated[str, typer.Option(help="Highest classification the agreement clears, e.g. SECRET.")],
    groups: Annotated[str, typer.Option(help="Comma-separated group codes, e.g. FVEY,NATO.")] = "",
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    inactive: Annotated[bool, typer.Option("--inactive", help="Register without access for now.")] = False,
    identities: Annotated[
        str,
        typer.Option(
            help="Comma-separated STIX identity ids the partner's objects may name in created_by_ref "
            "[default: the identity the partner's own Tearline writes].",
        ),
    ] = "",
) -> None:
    """Register a partner nation, or update one."""
    from app.partners.service import InvalidPartner, save_partner

    settings = load_settings()
    require_database(settings)  # before the tables, which take seconds to load
    mappings = load_cli_mappings(settings)
    rank = parse_rank(mappings, clearance)
    change = (
        f"tearline partner add {nation} --clearance {clearance} --groups {groups or '-'} --name {name or '-'}"
        f"{' --inactive' if inactive else ''} --identities {identities or '-'}"
    )
    with database(settings, change) as session:
        try:
            partner = save_partner(
                session,
                nation=nation,
                clearance=rank,
                groups=split_codes(groups),
                name=name,
                active=not inactive,
                home_nation=settings.home_nation,
                mappings=mappings,
                identities=split_codes(identities) or None,  # not given: keep the registered ones
            )
        except InvalidPartner as exc:
            fail(str(exc))
        typer.echo(
            f"partner {partner.nation} saved: clearance {mappings.rank_names[partner.clearance]}, "
            f"groups {partner.groups or '-'}, {'active' if partner.active else 'inactive'}"
        )


@partner_app.command("list")
def partner_list() -> None:
    """Show the registered partner nations."""
    from app.partners.service import list_partners

    settings = load_settings()
    require_database(settings)
    rank_names = load_cli_mappings(settings).rank_names
    with database(settings) as session:
        partners = list_partners(session)
        rows = [
            (p.nation, p.name or "-", rank_names[p.clearance], p.groups or "-", "yes" if p.active else "no")
            for p in partners
        ]
    if not rows:
        typer.echo("no partners registered")
        return
    typer.echo(table(("NATION", "NAME", "CLEARANCE", "GROUPS", "ACTIVE"), rows))


@collection_app.command("add")
def collection_add(
    title: Annotated[str, typer.Option(help="Collection title shown to clients.")],
    description: Annotated[str, typer.Option(help="Collection description.")] = "",
    alias: Annotated[str | None, typer.Option(help="Unique short name.")] = None,
    read_roles: Annotated[str, typer.Option(help="Comma-separated roles that may read.")] = "partner,analyst",
    write_roles: Annotated[str, typer.Option(help="Comma-separated roles that may write.")] = "analyst",
) -> None:
    """Create a TAXII collection; prints its id."""
    from sqlalchemy.exc import IntegrityError

    from app.taxii.service import create_collection

    readers, writers = parse_roles(read_roles, "--read-roles"), parse_roles(write_roles, "--write-roles")
    settings = load_settings()
    change = f"tearline collection add --title {title!r} --alias {alias or '-'} --read-roles {read_roles} --write-roles {write_roles}"
    with database(settings, change) as session:
        try:
            collection = create_collection(
                session,
                title=title,
                description=description,
                alias=alias or None,
                read_roles=readers,
                write_roles=writers,
            )
        except IntegrityError:
            session.rollback()
            fail(f"a collection with alias {alias!r} already exists")
        typer.echo(collection.id)


@collection_app.command("list")
def collection_list() -> None:
    """Show every collection with the roles granted on it."""
    from app.taxii.service import all_collections

    settings = load_settings()
    with database(settings) as session:
        rows = [
            (c.id, c.alias or "-", c.title, c.read_roles or "-", c.write_roles or "-") for c in all_collections(session)
        ]
    if not rows:
        typer.echo("no collections")
        return
    typer.echo(table(("ID", "ALIAS", "TITLE", "READ", "WRITE"), rows))


@token_app.command("issue")
def token_issue(
    subject: Annotated[str, typer.Option(help="The `sub` claim: who the token is for.")],
    nation: Annotated[str, typer.Option(help="ISO 3166-1 alpha-3 code of the holder's nation.")],
    roles: Annotated[str, typer.Option(help=f"Comma-separated roles: {', '.join(sorted(ROLES))}.")],
    clearance: Annotated[str | None, typer.Option(help="Lower the holder's clearance, e.g. CONFIDENTIAL.")] = None,
    lifetime: Annotated[int, typer.Option(min=1, help="Seconds until the token expires.")] = 3600,
) -> None:
    """Sign a bearer token and print only the token."""
    from app.auth.signing import sign_token
    from app.config.settings import ConfigurationError

    settings = load_settings()
    nation = nation.strip().upper()
    if len(nation) != 3 or not nation.isalpha():
        fail(f"--nation must be an ISO 3166-1 alpha-3 code, got {nation!r}")
    role_list = parse_roles(roles, "--roles")
    if not role_list:
        fail("--roles needs at least one role")
    # The server refuses these combinations; a token it would refuse is no use to anyone.
    if nation == settings.home_nation and not set(role_list) <= HOME_ROLES:
        fail(f"{nation} is the home nation: its roles are {', '.join(sorted(HOME_ROLES))}")
    if nation != settings.home_nation and set(role_list) != {"partner"}:
        fail(f"{nation} is not the home nation ({settings.home_nation}): its tokens carry only the partner role")
    if clearance is not None:
        rank = parse_rank(load_cli_mappings(settings), clearance)
        if nation != settings.home_nation:
            _within_agreement(settings, nation, rank, clearance)
    try:
        token = sign_token(
            settings, subject=subject, nation=nation, roles=role_list, lifetime_s=lifetime, clearance=clearance
        )
    except ConfigurationError as exc:
        fail(str(exc), UNUSABLE)
    typer.echo(token)


def _within_agreement(settings: Settings, nation: str, rank: int, clearance: str) -> None:
    """Refuse a partner token whose clearance the partner agreement does not cover (the server would)."""
    from app.partners.models import Partner

    with database(settings) as session:
        partner = session.get(Partner, nation)
        if partner is None or not partner.active:
            fail(f"{nation} is not an active partner: `tearline partner add {nation} ...` first")
        if rank > partner.clearance:
            fail(
                f"--clearance {clearance} is above {nation}'s agreement (rank {partner.clearance}); the server refuses such a token"
            )


@token_app.command("revoke")
def token_revoke(
    subject: Annotated[str, typer.Option(help="The `sub` claim whose tokens to refuse from now on.")],
) -> None:
    """Refuse every token of SUBJECT issued until now (its open event streams close within seconds);
    tokens issued later are accepted again. Audited like any operator's change."""
    from app.auth.revocation import revoke_subject

    settings = load_settings()
    subject = subject.strip()
    if not subject or len(subject) > 255:
        fail("--subject must be 1 to 255 characters")
    with database(settings, f"tearline token revoke --subject {subject}") as session:
        revoke_subject(session, subject, revoked_by="operator")
        session.commit()
    typer.echo(f"revoked every token of {subject} issued until now")
