"""The simple form: a few fields and a banner, turned into valid STIX 2.1 with its markings.

The service adds what STIX needs and analysts should not have to write: the id, ``created``
and ``modified``, ``spec_version``, ``created_by_ref`` (the home nation's identity, stored
beside the item), the label's marking definition from the banner and granular markings from
``field_banners``. Any other STIX property of the type may be given as an extra field
(``is_family``, ``source_ref``, ``value``, ...); unknown ones are refused, not kept.
"""

from __future__ import annotations

import uuid
from typing import Any

import stix2
from pydantic import BaseModel, ConfigDict, Field
from stix2.registry import STIX2_OBJ_MAPS, class_for_type

from app.db.timestamps import now_us
from app.items.identity import home_identity
from app.items.problems import FieldError, ItemRefused, refuse
from app.items.service import created_by_home, granular_for, label_for, stix_timestamp
from app.items.stix_checks import stix_errors
from app.markings.mappings import Mappings

# Types an analyst may author; marking and extension definitions are the service's own business.
_NOT_AUTHORED = frozenset({"marking-definition", "extension-definition", "language-content"})
SDO_SRO_TYPES = frozenset(STIX2_OBJ_MAPS["2.1"]["objects"]) - _NOT_AUTHORED - {"bundle"}
SCO_TYPES = frozenset(STIX2_OBJ_MAPS["2.1"]["observables"])
SUPPORTED_TYPES = SDO_SRO_TYPES | SCO_TYPES

EXAMPLE: dict[str, Any] = {
    "type": "indicator",
    "name": "Spearphishing sender",
    "description": "Sender of invoice-themed phishing against defence procurement.",
    "pattern": "[email-addr:value = 'billing@lantern-mirror.example']",
    "banner": "SECRET//REL TO USA, GBR",
    "field_banners": {"description": "SECRET//NOFORN"},
}


class SimpleItem(BaseModel):
    """An item in the simple form. Extra fields are STIX properties of ``type``."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [EXAMPLE]})

    type: str = Field(
        description="STIX type: indicator, malware, threat-actor, ..., relationship, sighting, "
        "or a cyber-observable type such as ipv4-addr."
    )
    banner: str = Field(description="Classification and releasability, e.g. `SECRET//REL TO USA, GBR`.")
    collection: str | None = Field(None, description="Collection id; the default collection when absent.")
    name: str | None = None
    description: str | None = Field(None, description="For a note, its content.")
    pattern: str | None = Field(None, description="Indicators: the detection pattern.")
    pattern_type: str | None = Field(None, description="Indicators: defaults to `stix`.")
    valid_from: str | None = Field(None, description="Indicators: defaults to now.")
    field_banners: dict[str, str] = Field(
        default_factory=dict, description="Property (selector) -> banner: granular markings on single fields."
    )

    def stix_properties(self) -> dict[str, Any]:
        """The STIX properties the form gives, without the service's own fields."""
        given = self.model_dump(exclude={"banner", "collection", "field_banners"}, exclude_none=True)
        return given | dict(self.model_extra or {})


def _defaults(properties: dict[str, Any], now: str) -> dict[str, Any]:
    """Per-type defaults that make the common cases valid without more typing."""
    kind = properties["type"]
    if kind == "indicator":
        properties.setdefault("pattern_type", "stix")
        properties.setdefault("valid_from", now)
    elif kind == "malware":
        properties.setdefault("is_family", False)
    elif kind == "report":
        properties.setdefault("published", now)
    elif kind == "note" and "description" in properties:
        properties.setdefault("content", properties.pop("description"))
    return properties


def _observable(properties: dict[str, Any]) -> dict[str, Any]:
    """A cyber observable built by stix2, which derives its deterministic id from its values."""
    try:
        built = class_for_type(properties["type"], "2.1")(**properties)
    except stix2.exceptions.STIXError as exc:
        raise ItemRefused(stix_errors(exc, "")) from None
    return dict(stix2.parse(built.serialize(), version="2.1").items())


def build(form: SimpleItem, *, home_nation: str, mappings: Mappings) -> list[tuple[str, object]]:
    """The objects to store for ``form``, each with the form path errors in it are reported at.

    Order: marking definitions, the home identity, then the item (last).
    """
    properties = form.stix_properties()
    kind = properties["type"]
    if kind not in SUPPORTED_TYPES:
        raise refuse("type", f"unsupported type {kind!r}")
    errors: list[FieldError] = []
    for name in ("id", "spec_version", "created", "modified", "object_marking_refs", "granular_markings"):
        if name in properties:
            errors.append(FieldError(name, "set by the service from the banner and the clock"))
    if errors:
        raise ItemRefused(errors)

    _spec, definition = label_for(
        form.banner, "banner", originator=home_nation, mappings=mappings, home_nation=home_nation
    )
    located: list[tuple[str, dict[str, Any]]]
    if kind in SCO_TYPES:
        obj = _observable(properties | {"spec_version": "2.1"})
        located = []
    else:
        now = stix_timestamp(now_us())
        obj = _defaults(properties, now) | {
            "id": f"{kind}--{uuid.uuid4()}",
            "spec_version": "2.1",
            "created": now,
            "modified": now,
        }
        obj = created_by_home(obj, home_nation)
        located = [("", home_identity(home_nation))]
    obj["object_marking_refs"] = [definition["id"]]
    definitions = [definition]
    if form.field_banners:
        markings, granular_definitions = granular_for(
            form.field_banners, obj, originator=home_nation, mappings=mappings, home_nation=home_nation
        )
        obj["granular_markings"] = markings
        definitions += [d for d in granular_definitions if d["id"] != definition["id"]]
    return [("banner", definitions[0]), *(("field_banners", d) for d in definitions[1:]), *located, ("", obj)]
