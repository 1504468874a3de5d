"""Fixtures local to the TAXII endpoint tests.

Signing an RS256 token costs tens of milliseconds, and these tests ask for hundreds of headers,
so ``auth`` here memoises the headers per set of claims (same signing key, same claims, a
lifetime long enough for the whole session). ``analyst`` and ``partner_usa`` of the top-level
conftest pick this ``auth`` up.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import memoised


@pytest.fixture(scope="session")
def auth(auth) -> Callable[..., dict]:
    return memoised(auth)
