"""Tokens shared by the mapping tables and the label parser: ``ALL``, ``UnknownToken``, name normalisation.

Kept apart from ``labels`` and ``mappings`` so both can use them without importing
each other; ``app.markings.labels`` re-exports ``ALL`` and ``UnknownToken``.
"""

from __future__ import annotations

import re
import unicodedata

ALL = "ALL"
"""Releasable-to code meaning every partner nation."""

# Dash look-alikes that national texts use interchangeably ("VS — VERTRAULICH", "VS-VERTRAULICH").
_DASHES = dict.fromkeys(map(ord, "\u2010\u2011\u2012\u2013\u2014\u2015\u2212"), "-")
# Spaces around joiners are not significant: "SECRET UE / EU SECRET" is "SECRET UE/EU SECRET".
_JOINER_SPACES = re.compile(r"\s*([-/:])\s*")
_SPACES = re.compile(r"\s+")


class UnknownToken(ValueError):
    """A token no mapping table knows; the message names it and what kind of token it was.

    ``kind`` is e.g. ``classification``, ``country or group code``, ``caveat`` or
    ``marking definition``; ``token`` is the offending text as written.
    """

    def __init__(self, kind: str, token: str, detail: str | None = None) -> None:
        message = f"unknown {kind} {token!r}"
        if detail:
            message = f"{message}: {detail}"
        super().__init__(message)
        self.kind = kind
        self.token = token


def strip_accents(text: str) -> str:
    """``text`` without combining marks (NFKD), so "TRÈS" and "TRES" compare equal."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def normalise_name(text: str) -> str:
    """The comparison form of a classification name: upper case, no accents, tidy spacing and dashes."""
    text = strip_accents(text).translate(_DASHES).upper()
    text = _JOINER_SPACES.sub(r"\1", text)
    return _SPACES.sub(" ", text).strip()


def split_codes(text: str) -> frozenset[str]:
    """The codes of a comma-joined database column (releasable-to, caveats, group members)."""
    return frozenset(code for code in text.split(",") if code)


def normalise_code(text: str) -> str:
    """The comparison form of a country, group or caveat code: upper case, no surrounding space."""
    return text.strip().upper()
