"""Release rules (``policies/disclosure.toml``): which home-nation items wait for a disclosure officer.

The file is data, validated against :data:`SCHEMA` when it is loaded; an invalid file stops the app
with the reason (a rule that cannot be read must not silently release). docs/disclosure.md
documents the format.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

from app.markings.label_spec import LabelSpec
from app.markings.mappings import Mappings
from app.markings.tokens import UnknownToken

RULES_FILE = "disclosure.toml"
EVERY_COLLECTION = "*"
TLP_LEVELS = ("clear", "white", "green", "amber", "amber+strict", "red")

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "two_person_from": {"type": "string", "minLength": 1},
        "rule": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["collections", "review"],
                "properties": {
                    "collections": {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
                    "tlp": {"type": "array", "minItems": 1, "items": {"enum": list(TLP_LEVELS)}},
                    "min_classification": {"type": "string", "minLength": 1},
                    "rel_to": {"type": "boolean"},
                    "review": {"type": "boolean"},
                },
            },
        },
    },
}


class RulesInvalid(ValueError):
    """The rules file cannot be read as release rules; the message says where."""


@dataclass(frozen=True)
class Rule:
    """One release rule: where it applies, its conditions, and whether a match is held."""

    collections: frozenset[str]
    review: bool
    tlp: frozenset[str] | None = None
    min_rank: int | None = None
    rel_to: bool | None = None

    def applies_to(self, collection_keys: Iterable[str]) -> bool:
        """The rule names one of the collection's keys (id, alias) or every collection."""
        return EVERY_COLLECTION in self.collections or not self.collections.isdisjoint(collection_keys)

    def matches(self, item: ItemMarks) -> bool:
        """Every condition holds for the item."""
        if self.tlp is not None and (item.tlp_levels is None or not item.tlp_levels <= self.tlp):
            return False
        if self.min_rank is not None and item.rank < self.min_rank:
            return False
        return self.rel_to is None or self.rel_to == item.names_partners


@dataclass(frozen=True)
class ItemMarks:
    """What the rules read of an item: its object label and granular labels taken together."""

    rank: int
    """The highest classification of its object and granular markings."""
    names_partners: bool
    """Some release among them names nations or groups (REL TO ...), rather than ALL or nobody."""
    tlp_levels: frozenset[str] | None
    """The TLP levels of its markings when every one of them, granular ones included, is TLP; else None."""

    @classmethod
    def of(cls, labels: Iterable[LabelSpec], tlp_levels: frozenset[str] | None) -> ItemMarks:
        """The marks of an item whose object label and granular labels are ``labels``."""
        specs = list(labels)
        return cls(max(spec.rank for spec in specs), any(spec.releasable_to - {"ALL"} for spec in specs), tlp_levels)


@dataclass(frozen=True)
class ReleaseRules:
    """The loaded rules and the two-person threshold."""

    rules: tuple[Rule, ...]
    two_person_rank: int | None

    def reviews(self, collection_keys: Iterable[str], item: ItemMarks) -> bool:
        """Whether the item, stored in the collection, waits for an officer."""
        keys = frozenset(collection_keys)
        named = [rule for rule in self.rules if rule.applies_to(keys)]
        if not named:
            return False
        return next((rule.review for rule in named if rule.matches(item)), True)

    def needs_two(self, rank: int) -> bool:
        """Releasing an item of this classification rank takes two different officers."""
        return self.two_person_rank is not None and rank >= self.two_person_rank


def parse_rules(data: dict[str, Any], mappings: Mappings) -> ReleaseRules:
    """Validate loaded TOML data and build the rules; RulesInvalid with the reason."""
    try:
        jsonschema.validate(data, SCHEMA)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top)"
        raise RulesInvalid(f"{where}: {exc.message}") from None

    def rank(name: str, where: str) -> int:
        try:
            return mappings.rank_of(name)
        except UnknownToken:
            raise RulesInvalid(f"{where}: unknown classification {name!r}") from None

    rules = tuple(
        Rule(
            collections=frozenset(raw["collections"]),
            review=raw["review"],
            tlp=frozenset(raw["tlp"]) if "tlp" in raw else None,
            min_rank=rank(raw["min_classification"], f"rule/{i}/min_classification")
            if "min_classification" in raw
            else None,
            rel_to=raw.get("rel_to"),
        )
        for i, raw in enumerate(data.get("rule", []))
    )
    two = data.get("two_person_from")
    return ReleaseRules(rules, rank(two, "two_person_from") if two is not None else None)


def load_rules(policies_dir: Path, mappings: Mappings) -> ReleaseRules:
    """The rules in ``policies_dir/disclosure.toml``; no file means no collection is reviewed."""
    path = policies_dir / RULES_FILE
    if not path.exists():
        return ReleaseRules((), None)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise RulesInvalid(f"{path}: {exc}") from None
    try:
        return parse_rules(data, mappings)
    except RulesInvalid as exc:
        raise RulesInvalid(f"{path}: {exc}") from None
