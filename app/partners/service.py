"""Register, update and list partner nations."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sqlalchemy import select
from sqlmodel import Session

from app.markings.mappings import Mappings
from app.markings.tokens import split_codes
from app.partners.models import Partner, PartnerGroup
from app.policy.models import bump_epoch


class InvalidPartner(ValueError):
    """The partner's data is not acceptable; the message says why."""


def save_partner(
    session: Session,
    *,
    nation: str,
    clearance: int,
    groups: list[str] | tuple[str, ...] = (),
    name: str = "",
    active: bool = True,
    home_nation: str | None = None,
    mappings: Mappings | None = None,
    identities: list[str] | tuple[str, ...] | None = None,
) -> Partner:
    """Add or update a partner nation; every instance's decision cache is invalidated. Commits.

    With ``mappings``, the nation must be a known ISO 3166-1 code and each group a known group.
    """
    nation = nation.strip().upper()
    if len(nation) != 3 or not nation.isalpha():
        raise InvalidPartner(f"nation must be an ISO 3166-1 alpha-3 code, got {nation!r}")
    if mappings is not None:
        if nation not in mappings.countries:
            raise InvalidPartner(f"unknown country code {nation!r}")
        unknown = sorted({g.strip().upper() for g in groups if g.strip()} - mappings.groups.keys())
        if unknown:
            raise InvalidPartner(f"unknown group code(s): {', '.join(unknown)}")
    if home_nation and nation == home_nation:
        raise InvalidPartner(f"{nation} is the home nation, not a partner")
    if not 0 <= clearance <= 4:
        raise InvalidPartner(f"clearance rank must be 0-4, got {clearance}")
    group_codes = sorted({g.strip().upper() for g in groups if g.strip()})
    partner = session.get(Partner, nation) or Partner(nation=nation, clearance=clearance)
    partner.name = name or partner.name
    partner.clearance = clearance
    partner.groups = ",".join(group_codes)
    partner.active = active
    if identities is not None:
        partner.identities = ",".join(_identity_ids(identities))
    session.add(partner)
    bump_epoch(session)
    session.commit()
    session.refresh(partner)
    return partner


def list_partners(session: Session) -> list[Partner]:
    """All partners, by nation code."""
    return list(session.execute(select(Partner).order_by(Partner.nation)).scalars())


def set_group(session: Session, code: str, members: list[str], mappings: Mappings) -> PartnerGroup:
    """Replace a group's members (operators' edit over ``stix_mappings``); invalidates decisions. Commits."""
    code = code.strip().upper()
    if not code.isalnum() or not 2 <= len(code) <= 10:
        raise InvalidPartner(f"group code must be 2-10 letters or digits, got {code!r}")
    if code in mappings.countries:
        raise InvalidPartner(f"{code} is a country code, not a group")
    normalised = sorted({m.strip().upper() for m in members if m.strip()})
    unknown = [m for m in normalised if m not in mappings.countries]
    if unknown:
        raise InvalidPartner(f"unknown country code(s): {', '.join(unknown)}")
    group = session.get(PartnerGroup, code) or PartnerGroup(code=code)
    group.members = ",".join(normalised)
    group.updated_at = datetime.now(UTC)
    session.add(group)
    bump_epoch(session)
    session.commit()
    session.refresh(group)
    return group


def effective_groups(session: Session, mappings: Mappings) -> dict[str, frozenset[str]]:
    """Group members as decisions use them: ``stix_mappings`` with operators' edits on top."""
    edits = {g.code: split_codes(g.members) for g in session.execute(select(PartnerGroup)).scalars()}
    return dict(mappings.groups) | edits


_IDENTITY_ID = re.compile(r"^identity--[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _identity_ids(identities: list[str] | tuple[str, ...]) -> list[str]:
    """Distinct STIX identity ids, in the order given; anything else is refused."""
    cleaned = list(dict.fromkeys(i.strip() for i in identities if i.strip()))
    bad = [i for i in cleaned if not _IDENTITY_ID.fullmatch(i)]
    if bad:
        raise InvalidPartner(f"not a STIX identity id: {', '.join(bad)}")
    return cleaned
