"""The demo's collection under disclosure review: a few items waiting for the demo officer.

``policies/disclosure.toml`` names the collection alias ``reviewed``: its TLP:GREEN items are
released as marked, everything else waits for an officer (two officers from SECRET).
"""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import Session, select

from app.auth.principal import Principal
from app.items.identity import home_identity, home_identity_id
from app.markings.mappings import Mappings
from app.taxii import service as taxii_service
from app.taxii.models import Collection

REVIEWED_ALIAS = "reviewed"
REVIEWED_COLLECTION_ID = "6f1d3c2a-8b4e-4f6a-9c1d-2e3f4a5b6c7d"
_DAY = "2026-11-04T09:00:00.000Z"
_DEFINITION_IDS = {
    "CONFIDENTIAL": "marking-definition--2a1b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
    "SECRET": "marking-definition--3b2c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e",
}


def _definition(classification: str, home_nation: str) -> dict[str, Any]:
    statement = f"{classification}//REL TO {home_nation}, FVEY"
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": _DEFINITION_IDS[classification],
        "created": _DAY,
        "created_by_ref": home_identity_id(home_nation),
        "definition_type": "statement",
        "definition": {"statement": statement},
    }


def _indicator(object_id: str, name: str, address: str, markings: list[str], home_nation: str) -> dict[str, Any]:
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": object_id,
        "created": _DAY,
        "modified": _DAY,
        "created_by_ref": home_identity_id(home_nation),
        "name": name,
        "pattern": f"[ipv4-addr:value = '{address}']",
        "pattern_type": "stix",
        "valid_from": _DAY,
        "object_marking_refs": markings,
    }


def review_objects(home_nation: str) -> list[dict[str, Any]]:
    """One TLP:GREEN indicator (released by the rules) and two held ones, CONFIDENTIAL and SECRET."""
    green = "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"  # TLP 1.0 GREEN (STIX 2.1 7.2.1.4)
    confidential, secret = (_definition(c, home_nation) for c in ("CONFIDENTIAL", "SECRET"))
    return [
        home_identity(home_nation),
        confidential,
        secret,
        _indicator(
            "indicator--7c1e2d3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f",
            "LANTERN staging server (green)",
            "198.51.100.77",
            [green],
            home_nation,
        ),
        _indicator(
            "indicator--8d2f3e4a-5b6c-4d7e-9f8a-0b1c2d3e4f5a",
            "LANTERN exfiltration relay",
            "203.0.113.41",
            [confidential["id"]],
            home_nation,
        ),
        _indicator(
            "indicator--9e3a4f5b-6c7d-4e8f-8a9b-1c2d3e4f5a6b",
            "LANTERN operator VPN exit",
            "192.0.2.200",
            [secret["id"]],
            home_nation,
        ),
    ]


def seed_review(session: Session, analyst: Principal, mappings: Mappings, home_nation: str) -> list[str]:
    """Create the reviewed collection (once) and post its items as the analyst; the failures, if any."""
    if session.exec(select(Collection).where(Collection.id == REVIEWED_COLLECTION_ID)).first() is None:
        taxii_service.create_collection(
            session,
            title="Reviewed before release",
            description="Items here wait for a disclosure officer before any partner sees them (TLP:GREEN excepted).",
            read_roles={"partner", "analyst"},
            write_roles={"analyst"},
            alias=REVIEWED_ALIAS,
            collection_id=REVIEWED_COLLECTION_ID,
        )
    status = taxii_service.add_objects(
        session,
        REVIEWED_COLLECTION_ID,
        analyst,
        review_objects(home_nation),
        mappings=mappings,
        home_nation=home_nation,
    )
    details = json.loads(status.details)
    return [f"{f['id']}: {f.get('message', 'failed')}" for f in details["failures"]]
