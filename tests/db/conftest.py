"""Fixtures of the database tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Connection


@pytest.fixture
def connection(app) -> Iterator[Connection]:
    """A connection of the shared database in a transaction that is rolled back afterwards."""
    with app.state.engine.connect() as conn:
        transaction = conn.begin()
        try:
            yield conn
        finally:
            transaction.rollback()
