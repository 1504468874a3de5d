"""``in_list`` (app.db.lists): ``column IN (a list)`` bound as one parameter, on both stores.

Each test runs in a transaction that is rolled back, so the shared database is left as it was.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, event, select

from app.db.bulk import insert_rows
from app.db.lists import in_list, list_value
from app.items.models import ItemDerivation

TABLE = ItemDerivation.__table__
AWKWARD = ["plain", "quote ' \" ", "back\\slash", "naïve ✓ 日本", "[1, 2]", "", "x" * 250]


@pytest.fixture
def stored(connection) -> list[str]:
    insert_rows(connection, TABLE, [{"derived_id": f"report--{text}", "source_id": text} for text in AWKWARD])
    return AWKWARD


def _sources(connection: Connection, *conditions) -> set[str]:
    return set(connection.execute(select(TABLE.c.source_id).where(*conditions)).scalars())


def test_matches_exactly_the_values_given(connection, stored):
    dialect = connection.dialect.name
    wanted = [*stored[1:5], "absent"]
    assert _sources(connection, in_list(TABLE.c.source_id, dialect, wanted)) == set(stored[1:5])
    assert _sources(connection, in_list(TABLE.c.source_id, dialect, [])) == set()


def test_two_lists_in_one_statement_keep_their_own_values(connection, stored):
    dialect = connection.dialect.name
    both = _sources(
        connection,
        in_list(TABLE.c.source_id, dialect, stored[:4]),
        in_list(TABLE.c.derived_id, dialect, [f"report--{text}" for text in stored[2:]]),
    )
    assert both == set(stored[2:4])


def test_a_list_bound_at_execution_by_name(connection, stored):
    dialect = connection.dialect.name
    statement = select(TABLE.c.source_id).where(in_list(TABLE.c.source_id, dialect, name="wanted"))
    for wanted in (stored[:2], stored[3:], ["absent"]):
        found = set(connection.execute(statement, {"wanted": list_value(wanted, dialect)}).scalars())
        assert found == set(wanted) & set(stored)


def test_one_statement_text_whatever_the_length_of_the_list(connection, stored):
    """The point of the module: an expanded IN list made a new statement text for each length."""
    dialect = connection.dialect.name
    texts: list[str] = []
    event.listen(connection, "before_cursor_execute", lambda *args: texts.append(args[2]))
    for length in (1, 10, 500):
        _sources(connection, in_list(TABLE.c.source_id, dialect, [f"v{i}" for i in range(length)]))
    assert len(texts) == 3
    assert len(set(texts)) == 1
