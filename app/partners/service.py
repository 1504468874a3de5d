"""Register, update and list partner nations."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session

from app.partners.models import Partner


class InvalidPartner(ValueError):
    """The partner's data is not acceptable; the message says why."""


def save_partner(session: Session, *, nation: str, clearance: int, groups: list[str] | tuple[str, ...] = (),
                 name: str = "", active: bool = True, home_nation: str | None = None) -> Partner:
    """Add or update a partner nation. Commits."""
    nation = nation.strip().upper()
    if len(nation) != 3 or not nation.isalpha():
        raise InvalidPartner(f"nation must be an ISO 3166-1 alpha-3 code, got {nation!r}")
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
    session.add(partner)
    session.commit()
    session.refresh(partner)
    return partner


def list_partners(session: Session) -> list[Partner]:
    """All partners, by nation code."""
    return list(session.execute(select(Partner).order_by(Partner.nation)).scalars())
