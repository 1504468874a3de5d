"""Stateless keyset cursors for TAXII ``next``.

A cursor is a JWE (direct A256GCM, python-jose) over the last ``date_added``
read and digests of the query and the principal. It is encrypted, not only
signed, because the last row read may be a version this principal is not
served (withheld by a granular marking): its ``date_added`` must not show. It works across app instances that
share the secret, and is never trusted: a tampered cursor, or one presented
by another principal or with other filters, is refused, and every page
re-applies the requester's visibility anyway.
"""

from __future__ import annotations

import hashlib
from typing import Any, TypedDict

import orjson
from jose import jwe
from jose.exceptions import JWEError

from app.auth.principal import Principal
from app.http.errors import ApiError


class CursorBinding(TypedDict):
    """What a cursor is bound to, as keyword arguments of :func:`make_cursor` and :func:`read_cursor`."""

    collection_id: str
    endpoint: str
    query: list[Any]
    principal: Principal


def _key(secret: str) -> bytes:
    return hashlib.sha256(b"tearline-cursor:" + secret.encode()).digest()


def _digest(value: object) -> str:
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


def _binding(collection_id: str, endpoint: str, query: list[Any], principal: Principal) -> dict[str, object]:
    return {
        "c": collection_id,
        "e": endpoint,
        "q": _digest(query),
        "p": _digest([principal.subject, principal.nation, sorted(principal.roles), principal.clearance]),
    }


def make_cursor(
    secret: str, *, collection_id: str, endpoint: str, query: list[Any], principal: Principal, after_us: int
) -> str:
    """A signed cursor resuming after ``after_us`` for exactly this query and principal."""
    claims = _binding(collection_id, endpoint, query, principal) | {"k": after_us}
    token: bytes = jwe.encrypt(orjson.dumps(claims), _key(secret), algorithm="dir", encryption="A256GCM")
    return token.decode()


def read_cursor(
    secret: str, token: str, *, collection_id: str, endpoint: str, query: list[Any], principal: Principal
) -> int:
    """The ``date_added`` to resume after; 400 for any cursor not made for this query and principal."""
    invalid = ApiError(400, "The next parameter is not valid for this request.")
    try:
        plaintext = jwe.decrypt(token, _key(secret))
        claims = orjson.loads(plaintext) if plaintext is not None else None
    except (JWEError, orjson.JSONDecodeError, TypeError, ValueError, KeyError):
        raise invalid from None
    if not isinstance(claims, dict) or not isinstance(claims.get("k"), int):
        raise invalid
    expected = _binding(collection_id, endpoint, query, principal)
    if any(claims.get(name) != value for name, value in expected.items()):
        raise invalid
    after_us: int = claims["k"]  # checked to be an int above
    return after_us
