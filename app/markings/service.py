"""Which labels a principal may see, and which label a new object version gets.

The foundation holds one label, ``UNRESTRICTED`` (seeded by the first
migration with a fixed id), that every principal sees. The releasability
engine replaces these two functions with the section 2 decision; callers
already depend only on them.
"""

from __future__ import annotations

from sqlmodel import Session

from app.auth.principal import Principal
from app.markings.models import UNRESTRICTED_LABEL_ID


def visible_label_ids(session: Session, principal: Principal) -> list[int]:
    """Ids of the labels whose object versions ``principal`` may see."""
    del session, principal  # only the unrestricted label exists yet, and everyone sees it
    return [UNRESTRICTED_LABEL_ID]


def label_for_new_object(session: Session) -> int:
    """The label id a newly stored object version receives."""
    del session
    return UNRESTRICTED_LABEL_ID
