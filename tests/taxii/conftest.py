"""Fixtures local to the TAXII endpoint tests.

Signing an RS256 token costs tens of milliseconds, and these tests ask for hundreds of headers,
so ``auth`` here memoises the headers per set of claims (same signing key, same claims, a
lifetime long enough for the whole session). ``analyst`` and ``partner_usa`` of the top-level
conftest pick this ``auth`` up.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest


@pytest.fixture(scope="session")
def auth(auth) -> Callable[..., dict]:
    cache: dict[tuple, dict] = {}

    def _headers(**claims) -> dict:
        claims.setdefault("lifetime_s", 3600)
        key = tuple(sorted(claims.items()))
        if key not in cache:
            cache[key] = auth(**claims)
        return dict(cache[key])

    return _headers
