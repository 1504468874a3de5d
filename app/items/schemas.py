"""Request and response models of the analyst API (they are what /docs shows)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ItemVersionOut(BaseModel):
    """One stored version of an item, as the requester may see it."""

    id: str
    type: str
    collection: str
    version: str = Field(description="The version (`modified`, or `date_added` for observables), microseconds.")
    date_added: str
    banner: str = Field(description="Canonical banner of the version's label.")
    originator: str
    submitter: str
    revoked: bool
    object: dict[str, Any] = Field(
        description="The STIX 2.1 object (granular-marked properties you may not see are removed)."
    )


class PostResult(BaseModel):
    """What a post stored: the item(s) last, after the marking definitions and identity they need."""

    collection: str
    stored: list[ItemVersionOut]


class StixSubmission(BaseModel):
    """Full STIX 2.1: one object or a bundle, markings as in docs/design.md section 3."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "collection": "365fed99-08fa-fdcd-a1b3-fb247eb41d01",
                    "stix": {"type": "bundle", "id": "bundle--0d1e3b0b-45a7-4d83-9d66-1b3cf2b3d6f1", "objects": []},
                }
            ]
        },
    )

    collection: str | None = Field(None, description="Collection id; the default collection when absent.")
    stix: dict[str, Any] = Field(description="A STIX 2.1 object or bundle.")


class UpdateRequest(BaseModel):
    """A new version: changed and removed properties, and optionally new labels."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"changes": {"description": "Confirmed by a second source."}, "banner": "SECRET//REL TO USA, GBR, FRA"}
            ]
        },
    )

    changes: dict[str, Any] = Field(default_factory=dict, description="Properties to set (null removes).")
    remove: list[str] = Field(default_factory=list, description="Properties to remove.")
    banner: str | None = Field(None, description="New object-level label; unchanged when absent.")
    field_banners: dict[str, str] | None = Field(
        None, description="Replaces the granular markings ({} removes them); unchanged when absent."
    )
    collection: str | None = Field(None, description="Which collection's copy to version, if it is in several.")


class RevokeRequest(BaseModel):
    """Revoke an item: a new version with `revoked: true`."""

    model_config = ConfigDict(extra="forbid")

    collection: str | None = None


class HistoryOut(BaseModel):
    """Every version of an item you may see, oldest first."""

    id: str
    versions: list[ItemVersionOut]


class TearlineRequest(BaseModel):
    """Produce a releasable version of an item at a target label."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"banner": "RESTRICTED//REL TO NATO"}]})

    banner: str = Field(description="Target label, e.g. `RESTRICTED//REL TO NATO`.")
    collection: str | None = Field(None, description="Collection of the original (and of the result).")
    version: str | None = Field(None, description="Version of the original to derive from; the newest by default.")


class TearlineResult(BaseModel):
    """The derived object, the `derived-from` relationship, and the properties left out."""

    derived: ItemVersionOut
    relationship: ItemVersionOut
    removed: list[str] = Field(description="Selectors of the properties removed from the original.")
    stored: list[ItemVersionOut] = Field(description="Everything stored, marking definitions included.")


class SearchPage(BaseModel):
    """One page of search results (newest first)."""

    items: list[ItemVersionOut]
    more: bool
    next: str | None = Field(None, description="Pass as `next` to get the following page.")


class PartnerView(BaseModel):
    """What one partner would be served of the item."""

    nation: str
    active: bool
    clearance: str
    can_read_collection: bool
    served_version: str | None = Field(description="The version `match[version]=last` serves it; null: nothing.")
    visible_versions: list[str]
    redacted: list[str] = Field(description="Properties removed from the served version.")


class PreviewOut(BaseModel):
    """Per registered partner: which version of the item it would see and what is redacted."""

    id: str
    collection: str
    partners: list[PartnerView]
    limited_to_your_clearance: bool = Field(
        description="True when your token lowers your clearance: versions and properties above it are left out."
    )
