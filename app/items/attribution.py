"""Attribution: an object's ``created_by_ref`` names one of its originator's registered identities.

The home nation's identity is :func:`app.items.identity.home_identity_id`. A partner's identities
are registered with the partner (``tearline partner add --identities``); by default the one
identity a partner's own Tearline writes, the same function of its nation. A missing
``created_by_ref`` of a partner's object is set to the partner's first identity, so everyone it
reaches sees whose it is (the home nation's objects may leave it out: unattributed means home);
any other author is refused, so no partner's object can claim to be the home nation's (or
another partner's).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from app.items.identity import home_identity_id
from app.partners.models import Partner

# Types whose created_by_ref names another author, or none: definitions are shipped by third
# parties (TLP by OASIS), and an identity object is the author, not authored.
_NOT_ATTRIBUTED = frozenset({"marking-definition", "extension-definition", "identity"})


def registered_identities(session: Session, nations: Iterable[str], home_nation: str) -> dict[str, tuple[str, ...]]:
    """The identities each nation's objects may name, the one to set first."""
    wanted = set(nations)
    found: dict[str, tuple[str, ...]] = {home_nation: (home_identity_id(home_nation),)} if home_nation in wanted else {}
    partners = wanted - {home_nation}
    if partners:
        for nation, identities in session.execute(
            select(col(Partner.nation), col(Partner.identities)).where(col(Partner.nation).in_(partners))
        ):
            listed = tuple(i for i in identities.split(",") if i)
            found[nation] = listed or (home_identity_id(nation),)
    for nation in partners - found.keys():
        found[nation] = (home_identity_id(nation),)
    return found


def attribute(
    obj: dict[str, Any], identities: tuple[str, ...], *, set_missing: bool
) -> tuple[dict[str, Any], str | None]:
    """``obj`` with its author set if missing (when ``set_missing``), and a refusal if it names
    someone else (else None)."""
    if "created" not in obj:  # cyber observables have no created_by_ref
        return obj, None
    author = obj.get("created_by_ref")
    if author is None:
        if obj.get("type") in _NOT_ATTRIBUTED or not set_missing:
            return obj, None
        return obj | {"created_by_ref": identities[0]}, None
    if author in identities or obj.get("type") in ("marking-definition", "extension-definition"):
        return obj, None
    return obj, "created_by_ref: must be an identity registered for the object's originator"
