"""Classification names and ranks, read from ``stix_mappings/classifications/``."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

TOP_RANK = 4


class UnknownClassification(ValueError):
    """A classification name that no loaded scheme knows."""

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown classification {name!r}")
        self.name = name


@lru_cache(maxsize=8)
def canonical_scheme(mappings_dir: Path) -> tuple[dict[str, int], tuple[str, ...]]:
    """Map every canonical name, NATO name and abbreviation to its rank; also the names by rank."""
    data = json.loads((mappings_dir / "classifications" / "canonical.json").read_text())
    by_name: dict[str, int] = {}
    names: list[str] = []
    for entry in sorted(data["ranks"], key=lambda e: e["rank"]):
        rank = int(entry["rank"])
        if rank != len(names):
            raise ValueError(f"canonical ranks must be 0..{TOP_RANK} without gaps, found {rank}")
        names.append(entry["name"])
        for name in [entry["name"], entry["nato"], *entry.get("aliases", [])]:
            by_name[name.upper()] = rank
    return by_name, tuple(names)


def rank_of(mappings_dir: Path, name: str | int) -> int:
    """The rank of a classification given by name, abbreviation or rank number."""
    by_name, names = canonical_scheme(mappings_dir)
    if isinstance(name, int) or (isinstance(name, str) and name.strip().isdigit()):
        rank = int(name)
        if 0 <= rank < len(names):
            return rank
        raise UnknownClassification(str(name))
    try:
        return by_name[" ".join(name.upper().split())]
    except KeyError:
        raise UnknownClassification(name) from None


def name_of(mappings_dir: Path, rank: int) -> str:
    """The canonical name of ``rank``."""
    return canonical_scheme(mappings_dir)[1][rank]
