"""Labels: parse and format banners, derive deterministic marking definitions, combine labels.

A label (docs/design.md section 1) is ``(rank, releasable-to, caveats, originator)``. Its
canonical banner is ``CLASSIFICATION//REL TO <originator>, <trigraphs A-Z>,
<groups A-Z>[, ALL][//<caveats A-Z joined by "/">]``; the originator always comes
first and is always present, so two Tearline instances write the same banner, and
hence the same marking-definition id, for the same label.

Everything here is pure: no database, no HTTP, no clock.
"""

from __future__ import annotations

import re
import uuid
from typing import Any, cast

from app.markings.label_spec import LabelSpec
from app.markings.mappings import Mappings
from app.markings.tokens import ALL, UnknownToken, normalise_code

__all__ = [
    "ALL",
    "LABEL_CREATED",
    "LABEL_NAMESPACE",
    "LabelSpec",
    "UnknownToken",
    "canonical_banner",
    "label_marking_definition",
    "label_marking_id",
    "most_restrictive",
    "parse_banner",
]

LABEL_NAMESPACE = uuid.UUID("cb2d5dd4-3554-4528-9ad4-f1635f2e3da5")
"""UUIDv5 namespace of label marking-definition ids. Fixed forever: changing it changes every label id."""

LABEL_CREATED = "2020-01-01T00:00:00.000Z"
"""``created`` of every label marking definition, fixed so that the object is a pure function of the label."""

_REL_TO = re.compile(r"^REL\s+TO(?:\s+(?P<codes>.*))?$")
_CODE_SEPARATORS = re.compile(r"[,\s]+")
_CAVEAT_SEPARATORS = re.compile(r"[/,\s]+")


def _check_originator(originator: str, mappings: Mappings) -> str:
    code = normalise_code(originator)
    if code not in mappings.countries:
        raise UnknownToken("country code", originator, "the originator must be an ISO 3166-1 alpha-3 code")
    return code


def parse_banner(text: str, *, originator: str, mappings: Mappings) -> LabelSpec:
    """Parse a banner such as ``SECRET//REL TO USA, GBR//NOFORN`` into a label.

    Segments are split on ``//`` only (EU names such as ``SECRET UE/EU SECRET``
    contain a single ``/``). The first segment is the classification, in any
    known scheme; a ``REL TO`` segment lists codes separated by commas and/or
    spaces; any other segment lists caveats separated by ``/``. Without ``REL
    TO`` the label is originator-only. The originator in a ``REL TO`` list is
    dropped (it is implied). Anything unknown raises ``UnknownToken`` naming it.
    """
    origin = _check_originator(originator, mappings)
    segments = [segment.strip() for segment in text.split("//")]
    if not segments[0]:
        raise UnknownToken("classification", text.strip(), "a banner starts with a classification")
    rank = mappings.rank_of(segments[0])
    releasable: set[str] | None = None
    caveats: set[str] = set()
    for segment in segments[1:]:
        words = " ".join(segment.split()).upper()
        if not words:
            raise UnknownToken("banner segment", segment, "empty segment between '//'")
        rel = _REL_TO.match(words)
        if rel:
            if releasable is not None:
                raise UnknownToken("banner segment", segment, "a banner has one REL TO segment")
            codes = [code for code in _CODE_SEPARATORS.split(rel.group("codes") or "") if code]
            if not codes:
                raise UnknownToken("banner segment", segment, "REL TO names no country or group")
            releasable = set()
            for code in codes:
                if code != ALL and not mappings.is_code(code):
                    raise UnknownToken("country or group code", code)
                releasable.add(code)
            continue
        for caveat in (c for c in _CAVEAT_SEPARATORS.split(words) if c):
            if caveat not in mappings.caveats:
                raise UnknownToken("caveat", caveat)
            caveats.add(caveat)
    return LabelSpec(
        rank=rank,
        releasable_to=frozenset((releasable or set()) - {origin}),
        caveats=frozenset(caveats),
        originator=origin,
    )


def canonical_banner(spec: LabelSpec, mappings: Mappings) -> str:
    """The canonical banner of ``spec``: originator first, trigraphs A-Z, groups A-Z, then ALL."""
    if not 0 <= spec.rank < len(mappings.rank_names):
        raise UnknownToken("classification", str(spec.rank), "not a canonical rank")
    # The legacy label (originator None) has no canonical banner: None fails in normalise_code, as it always has.
    origin = _check_originator(spec.originator, mappings)  # type: ignore[arg-type]  # see the comment above
    trigraphs, groups, everyone = [], [], False
    for code in spec.releasable_to:
        if code == ALL:
            everyone = True
        elif code in mappings.countries:
            if code != origin:
                trigraphs.append(code)
        elif code in mappings.groups:
            groups.append(code)
        else:
            raise UnknownToken("country or group code", code)
    for caveat in spec.caveats:
        if caveat not in mappings.caveats:
            raise UnknownToken("caveat", caveat)
    codes = [origin, *sorted(trigraphs), *sorted(groups), *([ALL] if everyone else [])]
    banner = f"{mappings.rank_names[spec.rank]}//REL TO {', '.join(codes)}"
    if spec.caveats:
        banner += "//" + "/".join(sorted(spec.caveats))
    return banner


def label_marking_id(banner: str) -> str:
    """The marking-definition id of a label: UUIDv5 of its canonical banner under ``LABEL_NAMESPACE``.

    Pass the canonical banner (``canonical_banner``); other spellings give other ids.
    """
    return f"marking-definition--{uuid.uuid5(LABEL_NAMESPACE, banner)}"


def label_marking_definition(spec: LabelSpec, mappings: Mappings) -> dict[str, Any]:
    """The STIX 2.1 marking definition expressing ``spec`` with Tearline's label extension.

    Deterministic: the same label gives the same object, byte for byte once
    serialised with sorted keys, on every instance.
    """
    banner = canonical_banner(spec, mappings)
    # The extension lists codes in banner order (minus the originator, which has its own field).
    codes = banner.split("//")[1].removeprefix("REL TO ").split(", ")[1:]
    extension: dict[str, Any] = {
        "extension_type": "property-extension",
        "classification": mappings.rank_names[spec.rank],
    }
    # STIX 2.1 forbids empty lists, so an originator-only or caveat-free label omits the property.
    if codes:
        extension["releasable_to"] = codes
    if spec.caveats:
        extension["caveats"] = sorted(spec.caveats)
    extension["originator"] = spec.originator
    extension["banner"] = banner
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": label_marking_id(banner),
        "created": LABEL_CREATED,
        "name": banner,
        "extensions": {mappings.label_extension_id: extension},
    }


def most_restrictive(specs: list[LabelSpec], mappings: Mappings) -> LabelSpec:
    """Combine labels: highest rank, intersection of releasable-to, union of caveats.

    The intersection is taken over the expanded sets (each including its
    originator; ``ALL`` is the identity) and written back with the groups that
    fit inside it whole, plus the remaining trigraphs. All labels must share one
    originator (the third-party rule is per originator); otherwise ValueError.
    """
    if not specs:
        raise ValueError("most_restrictive needs at least one label")
    if len(specs) == 1:
        return specs[0]
    # Originators are trigraphs, or None for the legacy label only: None combines only with itself
    # (origin None then passes through unchanged), and a mix of None and trigraphs raises TypeError here.
    originators = sorted(cast("set[str]", {spec.originator for spec in specs}))
    if len(originators) > 1:
        raise ValueError(f"cannot combine labels of different originators: {', '.join(originators)}")
    origin = originators[0]
    rank = max(spec.rank for spec in specs)
    caveats = frozenset().union(*(spec.caveats for spec in specs))

    expanded = [mappings.expand(spec.releasable_to) for spec in specs]
    finite = [members | {origin} for members in expanded if members is not None]
    if not finite:
        # Every label releases to ALL: keep what they all wrote.
        releasable = frozenset.intersection(*(spec.releasable_to for spec in specs))
        return LabelSpec(rank, releasable, caveats, origin)

    allowed = frozenset.intersection(*finite)
    written = frozenset().union(*(spec.releasable_to for spec in specs)) - {ALL}
    groups = {code for code in written if code in mappings.groups and mappings.groups[code] <= allowed}
    covered = frozenset().union(*(mappings.groups[code] for code in groups))
    releasable = frozenset(groups) | (allowed - covered - {origin})
    return LabelSpec(rank, releasable, caveats, origin)
