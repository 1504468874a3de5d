"""Operators' checks: what a banner means and who may see it, with the same decision code as TAXII."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session

from app.auth.principal import Principal
from app.markings.classification import TOP_RANK
from app.markings.labels import (
    LabelSpec,
    canonical_banner,
    label_marking_id,
    parse_banner,
)
from app.markings.mappings import Mappings
from app.partners.models import Partner
from app.partners.service import effective_groups, list_partners
from app.policy.releasability import ReleasabilityPolicy


@dataclass(frozen=True)
class LabelReport:
    """A banner's canonical form, marking-definition id and the partners that may see it."""

    banner: str
    marking_id: str
    spec: LabelSpec
    partners: list[str]


@dataclass(frozen=True)
class Decision:
    """One principal's decision on one label, clause by clause."""

    allowed: bool
    clauses: list[tuple[str, bool]]


def _policy(session: Session, policies_dir: Path, mappings: Mappings, home_nation: str) -> ReleasabilityPolicy:
    current = dataclasses.replace(mappings, groups=effective_groups(session, mappings))
    return ReleasabilityPolicy(policies_dir, current, home_nation)


def partner_principal(partner: Partner, clearance: int | None = None) -> Principal:
    """The principal a partner's token would give, at its agreed clearance or a lower one."""
    rank = partner.clearance if clearance is None else min(clearance, partner.clearance)
    return Principal(
        f"check:{partner.nation}",
        partner.nation,
        frozenset({"partner"}),
        rank,
        frozenset(partner.group_list),
        is_home=False,
    )


def check_label(
    session: Session, banner: str, *, originator: str, home_nation: str, mappings: Mappings, policies_dir: Path
) -> LabelReport:
    """Parse ``banner`` (UnknownToken names a bad token) and list the active partners that see it."""
    spec = parse_banner(banner, originator=originator, mappings=mappings)
    canonical = canonical_banner(spec, mappings)
    policy = _policy(session, policies_dir, mappings, home_nation)
    seeing = [p.nation for p in list_partners(session) if p.active and policy.allows(partner_principal(p), spec)]
    return LabelReport(canonical, label_marking_id(canonical), spec, seeing)


def check_policy(
    session: Session,
    *,
    nation: str,
    banner: str,
    home_nation: str,
    mappings: Mappings,
    policies_dir: Path,
    clearance: int | None = None,
    originator: str | None = None,
) -> Decision:
    """The decision for a principal of ``nation`` on ``banner``; unknown partners are refused outright."""
    spec = parse_banner(banner, originator=originator or home_nation, mappings=mappings)
    if nation == home_nation:
        principal = Principal(
            "check:home",
            nation,
            frozenset({"analyst"}),
            TOP_RANK if clearance is None else clearance,
            frozenset(),
            is_home=True,
        )
    else:
        partner = session.get(Partner, nation)
        if partner is None or not partner.active:
            return Decision(False, [("registered, active partner", False)])
        principal = partner_principal(partner, clearance)
    policy = _policy(session, policies_dir, mappings, home_nation)
    return Decision(policy.allows(principal, spec), policy.explain(principal, spec))
