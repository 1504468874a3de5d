"""Fixtures of the analyst API tests (``test_api_*``): memoised token headers and a shared collection."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from app.taxii import service as taxii_service
from tests.conftest import memoised


@pytest.fixture(scope="session")
def headers_for(make_token) -> Callable[..., dict]:
    """``headers_for()``: an analyst; ``headers_for(nation="USA", roles=("partner",))``: a partner.

    Only the Authorization header (the analyst API answers JSON whatever is accepted), memoised.
    """
    return memoised(lambda **claims: {"Authorization": f"Bearer {make_token(**claims)}"})


@pytest.fixture
def home(headers_for) -> dict:
    return headers_for()


@pytest.fixture
def shared(session):
    """A fresh collection partners read and write (pushes) and analysts read and write."""
    return taxii_service.create_collection(
        session,
        title=f"items {uuid.uuid4().hex[:8]}",
        read_roles={"partner", "analyst"},
        write_roles={"partner", "analyst"},
    )
