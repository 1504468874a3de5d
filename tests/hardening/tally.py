"""Counts of what the hardening suite tried, printed at the end of the run (see conftest.py).

The issue asks for the figures: inputs tried, attacks refused, faults survived, load figures.
Tests add to these counters as they go; nothing asserts on them.
"""

from __future__ import annotations

from collections import Counter

COUNTS: Counter[str] = Counter()
FIGURES: dict[str, str] = {}


def add(name: str, amount: int = 1) -> None:
    """Count ``amount`` more of ``name`` (e.g. ``inputs tried: taxii body``)."""
    COUNTS[name] += amount


def figure(name: str, value: str) -> None:
    """Record a measured figure (load results) to print in the summary."""
    FIGURES[name] = value
