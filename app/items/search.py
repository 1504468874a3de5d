"""Find items: filters, newest first, stateless keyset paging.

One result per (collection, object): its newest version the analyst may see, and only if that
version matches every filter. Marking definitions and the home identity are left out unless a
``type`` filter asks for them. ``releasable_to`` asks the TAXII decision itself: the label ids
the named partner may see (``VisibilityCache``), so "releasable to USA" means exactly "USA
would be served it". Cursors are the TAXII ones (:mod:`app.taxii.paging`): encrypted, bound to
the filters and the principal.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, TypedDict

from fastapi import Query
from sqlalchemy import ColumnElement, and_, cast, exists, func, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from app.auth.principal import Principal
from app.db.timestamps import parse_us
from app.items.identity import home_identity_id
from app.items.models import StixObject
from app.items.problems import FieldError, ItemRefused
from app.items.service import ItemEnv
from app.items.versions import ROW_COLUMNS, ItemVersion, to_versions, visible_clause
from app.markings.labels import canonical_banner, parse_banner
from app.markings.models import Label
from app.markings.tokens import UnknownToken
from app.partners.models import Partner
from app.policy.visibility import VisibilityCache
from app.taxii.paging import make_cursor, read_cursor
from app.taxii.service import readable_collections

_ENDPOINT = "api/v1/items"
_TEXT_PROPERTIES = ("name", "description")
_INFRASTRUCTURE_TYPES = ("marking-definition", "extension-definition")


@dataclass(frozen=True)
class SearchQuery:
    """The filters of one search; None means "no filter"."""

    types: tuple[str, ...] = ()
    banner: str | None = None
    releasable_to: str | None = None
    originator: str | None = None
    collection: str | None = None
    text: str | None = None
    created_after: str | None = None
    created_before: str | None = None
    modified_after: str | None = None
    modified_before: str | None = None
    limit: int | None = None
    next: str | None = None

    @classmethod
    def from_request(
        cls,
        type: list[str] = Query([], description="STIX types (repeat for several)."),
        banner: str | None = Query(None, description="Exactly this label, e.g. `SECRET//REL TO USA, GBR`."),
        releasable_to: str | None = Query(None, description="A partner nation that would be served the item."),
        originator: str | None = Query(None, description="Originating nation (trigraph)."),
        collection: str | None = Query(None, description="Collection id."),
        q: str | None = Query(None, min_length=1, max_length=200, description="Text in name or description."),
        created_after: str | None = Query(None, description="Inclusive lower bound on `created`."),
        created_before: str | None = Query(None, description="Exclusive upper bound on `created`."),
        modified_after: str | None = Query(None, description="Inclusive lower bound on `modified` (the version)."),
        modified_before: str | None = Query(None, description="Exclusive upper bound on `modified`."),
        limit: int | None = Query(None, ge=1, description="Page size (capped by the server)."),
        next: str | None = Query(None, description="Cursor from the previous page."),
    ) -> SearchQuery:
        """The query parameters of a search request, as a FastAPI dependency."""
        return cls(
            tuple(type),
            banner,
            releasable_to,
            originator,
            collection,
            q,
            created_after,
            created_before,
            modified_after,
            modified_before,
            limit,
            next,
        )

    def binding(self) -> list[tuple[str, Any]]:
        """What a cursor is bound to: every filter, not the page size or the cursor itself."""
        parts = asdict(self)
        parts.pop("limit"), parts.pop("next")
        return sorted(parts.items())


class _CursorBinding(TypedDict):
    """What a search cursor is bound to: the keyword arguments of the TAXII cursor functions."""

    collection_id: str
    endpoint: str
    query: list[Any]
    principal: Principal


@dataclass(frozen=True)
class SearchPage:
    """One page of results."""

    versions: list[ItemVersion]
    more: bool
    next: str | None


def _partner_principal(session: Session, nation: str) -> Principal | None:
    """The principal a partner's token with no clearance claim becomes (as principal_from_claims builds it)."""
    partner = session.get(Partner, nation)
    if partner is None or not partner.active:
        return None
    return Principal(
        f"search:{nation}",
        nation,
        frozenset({"partner"}),
        partner.clearance,
        frozenset(partner.group_list),
        is_home=False,
    )


def _json_text(session: Session, name: str) -> ColumnElement[Any]:
    if session.get_bind().dialect.name == "postgresql":
        # ``astext`` comes from the JSONB comparator, which SQLAlchemy reaches through ``__getattr__`` (typed Any).
        text: ColumnElement[Any] = cast(StixObject.body, JSONB)[name].astext
        return text
    return func.json_extract(StixObject.body, f'$."{name}"')


def _like_pattern(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _conditions(
    session: Session, env: ItemEnv, query: SearchQuery, visibility: VisibilityCache
) -> list[ColumnElement[bool]]:
    errors: list[FieldError] = []
    where: list[ColumnElement[bool]] = []

    def timestamp(path: str, value: str | None) -> int | None:
        if value is None:
            return None
        try:
            return parse_us(value)
        except ValueError as exc:
            errors.append(FieldError(path, str(exc)))
            return None

    if query.types:
        where.append(col(StixObject.type).in_(query.types))
    else:
        # Without a type filter, the service's own objects (labels and the home identity) are noise.
        where.append(col(StixObject.type).not_in(_INFRASTRUCTURE_TYPES))
        where.append(col(StixObject.object_id) != home_identity_id(env.home_nation))
    if query.originator:
        where.append(col(StixObject.originator) == query.originator.strip().upper())
    if query.collection:
        where.append(col(StixObject.collection_id) == query.collection)
    if query.banner:
        try:
            spec = parse_banner(query.banner, originator=query.originator or env.home_nation, mappings=env.mappings)
            key = canonical_banner(spec, env.mappings)
            where.append(col(StixObject.label_id).in_(select(col(Label.id)).where(col(Label.key) == key)))
        except UnknownToken as exc:
            errors.append(FieldError("banner", str(exc)))
    if query.releasable_to:
        partner = _partner_principal(session, query.releasable_to.strip().upper())
        if partner is None:
            errors.append(FieldError("releasable_to", f"{query.releasable_to!r} is not an active partner"))
        else:
            # What TAXII would serve the partner: its labels, and references judged in what it may read.
            readable = readable_collections(session, env.rights, partner)
            where.append(visible_clause(visibility.visible_label_ids(session, partner), readable=readable))
    if query.text:
        pattern = _like_pattern(query.text)
        where.append(
            func.lower(_json_text(session, _TEXT_PROPERTIES[0])).like(pattern, escape="\\")
            | func.lower(_json_text(session, _TEXT_PROPERTIES[1])).like(pattern, escape="\\")
        )
    for path, column, op in (
        ("created_after", col(StixObject.created_us), "ge"),
        ("created_before", col(StixObject.created_us), "lt"),
        ("modified_after", col(StixObject.version_us), "ge"),
        ("modified_before", col(StixObject.version_us), "lt"),
    ):
        bound = timestamp(path, getattr(query, path))
        if bound is not None:
            where.append(column >= bound if op == "ge" else column < bound)
    if errors:
        raise ItemRefused(errors, status=400, lead="The search filters are not valid")
    return where


def _text_still_matches(version: ItemVersion, text: str | None) -> bool:
    """After redaction: a match only in a property the analyst may not see is no match."""
    if not text:
        return True
    needle = text.lower()
    return any(
        isinstance(version.content.get(p), str) and needle in version.content[p].lower() for p in _TEXT_PROPERTIES
    )


def find(
    session: Session,
    env: ItemEnv,
    query: SearchQuery,
    *,
    visibility: VisibilityCache,
    secret: str,
    limit_default: int,
    limit_max: int,
) -> SearchPage:
    """One page of the newest visible version of each matching item, newest first."""
    limit = min(query.limit or limit_default, limit_max)
    binding: _CursorBinding = {
        "collection_id": "",
        "endpoint": _ENDPOINT,
        "query": query.binding(),
        "principal": env.principal,
    }
    after = read_cursor(secret, query.next, **binding) if query.next else None
    if not env.visible:
        return SearchPage([], False, None)
    newer = aliased(StixObject)
    newest = ~exists().where(
        col(newer.collection_id) == StixObject.collection_id,
        col(newer.object_id) == StixObject.object_id,
        col(newer.version_us) > StixObject.version_us,
        visible_clause(env.visible, newer),
    )
    where = [visible_clause(env.visible), newest, *_conditions(session, env, query, visibility)]
    if after is not None:
        where.append(col(StixObject.pk) < after)
    rows = list(
        session.execute(
            select(*ROW_COLUMNS)
            .join(Label, col(Label.id) == StixObject.label_id)
            .where(and_(*where))
            .order_by(col(StixObject.pk).desc())
            .limit(limit + 1)
        )
    )
    more = len(rows) > limit
    rows = rows[:limit]
    versions = [v for v in to_versions(session, rows, env.visible) if _text_still_matches(v, query.text)]
    token = make_cursor(secret, after_us=rows[-1].pk, **binding) if more else None
    return SearchPage(versions, more, token)
