"""The authenticated requester, as every access decision sees it."""

from __future__ import annotations

from dataclasses import dataclass

ROLES = frozenset({"partner", "analyst", "auditor", "admin", "officer"})
HOME_ROLES = frozenset({"analyst", "auditor", "admin", "officer"})


@dataclass(frozen=True)
class Principal:
    """Who is asking: subject, nation, roles, effective clearance rank and group memberships."""

    subject: str
    nation: str
    roles: frozenset[str]
    clearance: int
    groups: frozenset[str]
    is_home: bool
