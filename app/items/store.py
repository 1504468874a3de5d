"""The one query that reads stored object versions.

Every read of ``stix_object`` (TAXII objects, object, manifest, versions,
delete) goes through :func:`version_query`, which takes the principal's
*visible label ids* and puts them in SQL. A version whose label is not in that
set is never loaded, so it cannot leak through a page, a count, a header or a
cursor. ``first``/``last`` are chosen among visible versions only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    BindParameter,
    ColumnElement,
    Row,
    Select,
    String,
    and_,
    bindparam,
    exists,
    false,
    or_,
    select,
)
from sqlalchemy.orm import aliased
from sqlalchemy.orm.util import AliasedClass
from sqlmodel import Session, col

from app.items.models import ObjectMarkingRef, StixObject
from app.items.predicates import (
    CLOSURE_DEPTH,
    READABLE,
    Labels,
    label_visible,
    withheld_by_granular,
    withheld_by_refs,
)

MARKING_DEFINITION = "marking-definition"
SHARED_TYPES = frozenset({MARKING_DEFINITION, "identity", "extension-definition", "language-content"})
"""Types whose ids are shared or computable (TLP, labels, identities): whoever stored one first does
not own it, and such objects are served only beside what they describe."""
VERSION_KEYWORDS = frozenset({"first", "last", "all"})


@dataclass(frozen=True)
class VersionFilter:
    """The TAXII filters on object versions. Empty tuples mean "no filter on that field"."""

    ids: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    versions: tuple[str | int, ...] = ("last",)
    spec_versions: tuple[str, ...] = ()
    added_after_us: int | None = None

    def digest_parts(self) -> list[object]:
        """A stable, JSON-serialisable form, used to bind paging cursors to the query."""
        return [
            sorted(self.ids),
            sorted(self.types),
            sorted(map(str, self.versions)),
            sorted(self.spec_versions),
            self.added_after_us,
        ]


@dataclass(frozen=True)
class Page:
    """Rows of one page and whether more follow."""

    rows: Sequence[Row[*tuple[Any, ...]]] = field(default_factory=list)
    more: bool = False


OWN_NATION = "own_nation"
"""The bound parameter naming a partner requester's nation in the page query (NULL for the home nation)."""


def _visible(
    row: type[StixObject] | AliasedClass[StixObject],
    labels: Labels,
    readable: tuple[str, ...] | None = None,
    *,
    closure: bool = True,
) -> ColumnElement[bool]:
    """A version is visible when its label is and no required reference names a stored object the
    requester may not see; a marking definition also needs a visible version in the collection that
    references it, so it never tells of the hidden versions it marks.

    ``closure`` False leaves reference closure out: for choosing ``first``/``last`` among an object's
    versions (see :func:`_selected_version`)."""
    ref = ObjectMarkingRef
    # OFFSET 0 keeps PostgreSQL from turning this EXISTS into a hashed subplan: that hashes every
    # reference in the table (O(stored objects)) for the few definition rows of a page. Without
    # it a page holding definitions cost 18 ms at 20k objects and grew with the store; with it
    # each definition row is one probe of ix_object_marking_ref_lookup. SQLite ignores it.
    referenced = (
        select(col(ref.object_pk))
        .where(
            col(ref.collection_id) == row.collection_id,
            col(ref.marking_id) == row.object_id,
            labels.has(col(ref.label_id)),
            ~withheld_by_granular(ref.object_pk, labels),
        )
        .limit(1)
        .offset(0)
        .exists()
    )
    clauses = [label_visible(row, labels), or_(col(row.type) != MARKING_DEFINITION, referenced)]
    if closure:
        clauses.append(
            or_(
                col(row.has_refs).is_(False),
                # A partner's own version is served as it wrote it: withholding it over a reference it
                # wrote itself would tell it that the object named is stored here, hidden from it.
                col(row.submitter) == bindparam(OWN_NATION, None, type_=String),
                ~withheld_by_refs(row, labels, readable, CLOSURE_DEPTH),
            )
        )
    return and_(*clauses)


def _selected_version(
    row: type[StixObject], labels: Labels, flt: VersionFilter, readable: tuple[str, ...] | None
) -> ColumnElement[bool] | None:
    """The match[version] condition on ``row``, comparing only with visible versions of the same object."""
    if "all" in flt.versions:
        return None
    conditions: list[ColumnElement[bool]] = []
    timestamps = [v for v in flt.versions if isinstance(v, int)]
    if timestamps:
        conditions.append(col(row.version_us).in_(timestamps))
    newer_or_older: Callable[[AliasedClass[StixObject]], ColumnElement[bool]]
    for keyword, newer_or_older in (
        ("last", lambda o: col(o.version_us) > row.version_us),
        ("first", lambda o: col(o.version_us) < row.version_us),
    ):
        if keyword in flt.versions:
            other = aliased(StixObject)
            clauses = [
                col(other.collection_id) == row.collection_id,
                col(other.object_id) == row.object_id,
                # Reference closure is left out here: with it the statement nests beyond SQLite's parser
                # stack. So `last` is the newest version of visible label; in the rare case that closure
                # withholds it (a newer report naming only hidden objects), no version is served for
                # `last`, while `all` still lists the older one: under-serving, never a leak.
                _visible(other, labels, readable, closure=False),
                newer_or_older(other),
            ]
            if flt.spec_versions:
                clauses.append(col(other.spec_version).in_(flt.spec_versions))
            conditions.append(~exists().where(*clauses))
    return or_(*conditions) if conditions else false()


def version_query(
    collection_id: str,
    visible_label_ids: list[int],
    flt: VersionFilter,
    columns: tuple[Any, ...] = (),
    *,
    labels_for: str | None = None,
    readable: tuple[str, ...] | None = None,
    own_nation: str | None = None,
) -> Select[*tuple[Any, ...]]:
    """SELECT the visible versions of ``collection_id`` that match ``flt``, ordered by date_added.

    ``labels_for`` names the database that will run it, to pass the visible label ids as one
    parameter there (see :class:`Labels`); None writes them as an ``IN`` list that any database runs.
    ``own_nation``: a partner requester's nation, whose own versions reference closure leaves whole.
    """
    row = StixObject
    labels = Labels(visible_label_ids, dialect=labels_for)
    # Collection, ids and added_after are bound parameters carrying their values, so that
    # _page_queries can build the statement once and rebind them for every collection and object.
    where = [col(row.collection_id) == bindparam("collection_id", collection_id), _visible(row, labels, readable)]
    if flt.ids:
        where.append(col(row.object_id).in_(bindparam("object_ids", list(flt.ids), expanding=True)))
    if flt.types:
        where.append(col(row.type).in_(flt.types))
    if flt.spec_versions:
        # Only STIX 2.1 is accepted, so the spec's default (latest spec_version per object)
        # is every version; an explicit filter still narrows.
        where.append(col(row.spec_version).in_(flt.spec_versions))
    if flt.added_after_us is not None:
        where.append(col(row.date_added_us) > bindparam("added_after_us", flt.added_after_us, type_=BigInteger))
    version_condition = _selected_version(row, labels, flt, readable)
    if version_condition is not None:
        where.append(version_condition)
    query = select(*(columns or (row,))).where(and_(*where)).order_by(col(row.date_added_us))
    return query.params({OWN_NATION: own_nation})


def _statement_shape(flt: VersionFilter) -> VersionFilter:
    """``flt`` with the values :func:`version_query` binds as parameters blanked: the cache key of
    :func:`_page_queries`, so one statement serves every object id and ``added_after``."""
    return replace(flt, ids=("",) if flt.ids else (), added_after_us=0 if flt.added_after_us is not None else None)


def _statement_parameters(
    collection_id: str, flt: VersionFilter, readable: tuple[str, ...] | None, own_nation: str | None
) -> dict[str, Any]:
    """The values of the parameters :func:`_statement_shape` blanked, the readable collections and
    the requester's own nation."""
    parameters: dict[str, Any] = {"collection_id": collection_id, OWN_NATION: own_nation}
    if readable is not None:
        parameters[READABLE] = list(readable)
    if flt.ids:
        parameters["object_ids"] = list(flt.ids)
    if flt.added_after_us is not None:
        parameters["added_after_us"] = flt.added_after_us
    return parameters


@lru_cache(maxsize=512)
def _page_queries(
    visible_label_ids: tuple[int, ...],
    shape: VersionFilter,
    columns: tuple[Any, ...],
    labels_for: str,
    by_collection: bool,
) -> tuple[Select[*tuple[Any, ...]], Select[*tuple[Any, ...]]]:
    """:func:`version_query` for a first page and for the pages after a cursor, built once per
    (visible labels, filter shape, columns, whether readable collections bind).

    Building the statement (nested EXISTS clauses over ~100 label ids) cost more per page than
    running it; a Select is immutable, so a principal's successive pages share these two, whose
    cursor and limit are bound parameters. ``columns`` must be constant expressions for this to
    hit (see ``app.taxii.service``); other callers simply miss. Visibility is part of the key, so a
    principal never gets another's statement.
    """
    readable: tuple[str, ...] | None = () if by_collection else None  # bound at execution
    query = version_query("", list(visible_label_ids), shape, columns, labels_for=labels_for, readable=readable)
    limit: BindParameter[Any] = bindparam("page_limit")
    return (query.limit(limit), query.where(col(StixObject.date_added_us) > bindparam("after_us")).limit(limit))


def read_page(
    session: Session,
    collection_id: str,
    visible_label_ids: list[int],
    flt: VersionFilter,
    *,
    after_us: int | None,
    limit: int,
    columns: tuple[Any, ...],
    readable: tuple[str, ...] | None = None,
    own_nation: str | None = None,
) -> Page:
    """One keyset page: rows with date_added after ``after_us``, at most ``limit``, and whether more follow.

    ``readable`` are the collections the requester may read (None: every one), where a referenced
    object must be visible for a version naming it to be served (reference closure); ``own_nation``
    a partner requester's nation, whose own versions closure leaves whole.
    """
    if not visible_label_ids:
        return Page()
    connection = session.connection()
    first, after = _page_queries(
        tuple(visible_label_ids), _statement_shape(flt), columns, connection.dialect.name, readable is not None
    )
    parameters = _statement_parameters(collection_id, flt, readable, own_nation)
    # Core execution on the session's connection (same transaction): the rows are plain columns,
    # and the ORM's result processing cost a third of the query's time. fetchall, not iteration:
    # one driver call instead of one per row.
    if after_us is None:
        rows = connection.execute(first, parameters | {"page_limit": limit + 1}).fetchall()
    else:
        rows = connection.execute(after, parameters | {"page_limit": limit + 1, "after_us": after_us}).fetchall()
    return Page(rows=rows[:limit], more=len(rows) > limit)
