"""``column IN (a list)`` with the list bound as one parameter, whatever its length.

SQLAlchemy writes an ``IN`` list as one placeholder per value. For the lists a page or an envelope
holds (hundreds to a thousand ids) that made a new statement text at every execution: psycopg
converted it again (its cache stops at long statements), and the database parsed and planned it
again; on PostgreSQL the planner also estimated the selectivity of every value, a cost that grew
with the list. Bound as one parameter, a statement keeps one text:

- PostgreSQL: an array, behind ``ARRAY(SELECT unnest(...))``, which the planner does not look into:
  it plans in a fraction of a millisecond and probes the column's index once per value.
- SQLite: a JSON text read with ``json_each``.
- any other database: SQLAlchemy's expanding ``IN``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import orjson
from sqlalchemy import ColumnElement, Select, String, any_, bindparam, func, select
from sqlalchemy.types import ARRAY, TypeEngine


def json_members(name: str | None, value: str | None = None) -> Select[Any]:
    """The elements of the JSON array text bound as ``name`` (SQLite's ``json_each``), for ``IN``;
    without a name, ``value`` is bound under a name of its own."""
    return select(func.json_each(bindparam(name, value)).table_valued("value").c.value)


def in_list(
    column: Any,
    dialect: str,
    values: Iterable[Any] | None = None,
    *,
    name: str | None = None,
    item_type: TypeEngine[Any] | None = None,
) -> ColumnElement[bool]:
    """``column`` is one of ``values``, bound as one parameter on ``dialect`` (see the module).

    Without ``values`` the list is bound at execution under ``name``, converted by :func:`list_value`
    (for statements built once and run many times).
    """
    given = None if values is None else list_value(values, dialect)
    if dialect == "postgresql":
        array = bindparam(name, given, type_=ARRAY(item_type if item_type is not None else _unbounded(column.type)))
        return cast("ColumnElement[bool]", column == any_(func.array(select(func.unnest(array)).scalar_subquery())))
    if dialect == "sqlite":
        return cast("ColumnElement[bool]", column.in_(json_members(name, given)))
    return cast("ColumnElement[bool]", column.in_(bindparam(name, given, expanding=True)))


def _unbounded(column_type: TypeEngine[Any]) -> TypeEngine[Any]:
    # The array is cast to its element type, and PostgreSQL cuts a string cast to VARCHAR(n) to n
    # characters without an error: an id longer than the column would then match the stored id it
    # begins with, where IN compared it whole. Strings are bound as TEXT.
    return String() if isinstance(column_type, String) else column_type


def list_value(values: Iterable[Any], dialect: str) -> Any:
    """``values`` as :func:`in_list` binds them on ``dialect``: a JSON text on SQLite, else a list."""
    return orjson.dumps(list(values)).decode() if dialect == "sqlite" else list(values)
