"""The home nation's STIX identity: the ``created_by_ref`` of everything its analysts author here.

Its id and content are a pure function of the home nation, so every instance of one nation,
and every post, produce the same object: storing it again is an exact duplicate, never a
new version. It is marked TLP:CLEAR (1.0 "white"), so any partner shown an item can also
fetch who made it.
"""

from __future__ import annotations

import uuid
from typing import Any

import stix2

IDENTITY_NAMESPACE = uuid.UUID("0b7c1b52-3f3e-4c55-9d0c-6a4f2f1e8d21")
"""UUIDv5 namespace of home-nation identity ids. Fixed forever: changing it orphans created_by_ref."""
IDENTITY_CREATED = "2020-01-01T00:00:00.000Z"


def home_identity_id(home_nation: str) -> str:
    """``identity--<uuid>`` of the home nation; v5 digest with v4 bits, as STIX 2.1 asks of SDO ids."""
    digest = uuid.uuid5(IDENTITY_NAMESPACE, f"home-nation/{home_nation}")
    return f"identity--{uuid.UUID(bytes=digest.bytes, version=4)}"


def home_identity(home_nation: str) -> dict[str, Any]:
    """The identity object itself, byte-for-byte stable."""
    return {
        "type": "identity",
        "spec_version": "2.1",
        "id": home_identity_id(home_nation),
        "created": IDENTITY_CREATED,
        "modified": IDENTITY_CREATED,
        "name": f"{home_nation} (Tearline home nation)",
        "identity_class": "organization",
        "sectors": ["government-national"],
        "object_marking_refs": [stix2.TLP_WHITE.id],
    }
