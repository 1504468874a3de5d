"""Analyst API under ``/api/v1/items``: parse, call the item services, shape, note what was served."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from sqlmodel import Session

from app.audit.context import note_collection, note_served
from app.auth.principal import Principal
from app.config.settings import Settings
from app.http.body import body_docs, json_body
from app.http.dependencies import (
    SESSION,
    get_mappings,
    get_principal,
    get_role_rights,
    get_settings,
    get_visibility,
)
from app.http.errors import ApiError
from app.http.limits import structure_problem
from app.items import preview, search, service, simple_form, tearline
from app.items.problems import join_path, problem_responses, refuse
from app.items.schemas import (
    HistoryOut,
    ItemVersionOut,
    PostResult,
    PreviewOut,
    RevokeRequest,
    SearchPage,
    StixSubmission,
    TearlineRequest,
    TearlineResult,
    UpdateRequest,
)
from app.items.versions import ItemVersion, item_versions, latest_version
from app.markings.mappings import Mappings
from app.policy.enforcer import RoleRights
from app.policy.visibility import VisibilityCache
from app.taxii.models import DEFAULT_COLLECTION_ID

_ERRORS = problem_responses(
    s400="Malformed request",
    s401="No or bad token",
    s403="Not an analyst",
    s404="No such item or collection",
    s409="Conflicts with the item's state",
    s422="Refused; `errors` lists each field with its path",
)
router = APIRouter(prefix="/api/v1/items", tags=["items"], responses=_ERRORS)


class Env:
    """The request's session, principal and app services, for one right on ``items``."""

    def __init__(self, action: str) -> None:
        self.action = action

    def __call__(
        self,
        request: Request,
        principal: Principal = Depends(get_principal),
        session: Session = SESSION,
        settings: Settings = Depends(get_settings),
        rights: RoleRights = Depends(get_role_rights),
        mappings: Mappings = Depends(get_mappings),
        visibility: VisibilityCache = Depends(get_visibility),
    ) -> Ctx:
        """Resolve the request's context; 403 unless a home principal holds the right."""
        # Partners never use this API (they pull TAXII); the role rights say who does.
        if not principal.is_home or not rights.allows(principal.roles, "items", self.action):
            raise ApiError(403, f"You may not {self.action} items through the analyst API.")
        env = service.ItemEnv(
            principal, mappings, rights, settings.home_nation, visibility.visible_label_ids(session, principal)
        )
        return Ctx(request, session, settings, visibility, env)


class Ctx:
    """Everything a route needs, resolved once."""

    def __init__(
        self, request: Request, session: Session, settings: Settings, visibility: VisibilityCache, env: service.ItemEnv
    ) -> None:
        self.request, self.session, self.settings, self.visibility, self.env = (
            request,
            session,
            settings,
            visibility,
            env,
        )

    def served(self, versions: list[ItemVersion]) -> list[dict[str, Any]]:
        """Note the versions for the audit log and return their API form."""
        note_served(self.request, [v.audit_key for v in versions])
        for collection_id in dict.fromkeys(v.collection_id for v in versions):
            note_collection(self.request, collection_id)
        return [v.as_dict() for v in versions]


reader, writer = Env("read"), Env("write")


@router.post(
    "",
    status_code=201,
    response_model=PostResult,
    summary="Post an item in the simple form",
    openapi_extra=body_docs(simple_form.SimpleItem),
)
def post_simple(
    form: simple_form.SimpleItem = Depends(json_body(simple_form.SimpleItem, writer)), ctx: Ctx = Depends(writer)
) -> dict[str, Any]:
    """Build valid STIX 2.1 from a few fields and a banner, and store it with its markings."""
    collection_id = form.collection or DEFAULT_COLLECTION_ID
    note_collection(ctx.request, collection_id)
    service.writable_collection(ctx.session, ctx.env, collection_id)
    _within_limits([("", form.model_dump())], ctx.settings)
    located = simple_form.build(form, home_nation=ctx.env.home_nation, mappings=ctx.env.mappings)
    stored = service.store_objects(ctx.session, ctx.env, collection_id, located, allow_custom=False)
    return {"collection": collection_id, "stored": ctx.served(stored)}


def _within_limits(located: list[tuple[str, object]], settings: Settings) -> None:
    """The structural limits TAXII envelopes obey (object count, string length, nesting), per path."""
    if len(located) > settings.max_objects_per_envelope:
        raise ApiError(413, f"At most {settings.max_objects_per_envelope} objects are accepted per request.")
    for path, obj in located:
        problem = structure_problem(obj, max_depth=settings.max_nesting_depth, max_string=settings.max_string_length)
        if problem is not None:
            status, reason = problem
            raise refuse(path, reason, status=status)


def _submitted_objects(stix: dict[str, Any], settings: Settings) -> list[tuple[str, object]]:
    located: list[tuple[str, object]]
    if stix.get("type") != "bundle":
        located = [("stix", stix)]
    else:
        objects = stix.get("objects")
        if not isinstance(objects, list) or not objects:
            raise refuse("stix.objects", "a bundle must carry a non-empty list of objects")
        located = [(join_path("stix.objects", index), obj) for index, obj in enumerate(objects)]
    _within_limits(located, settings)
    return located


@router.post(
    "/stix",
    status_code=201,
    response_model=PostResult,
    summary="Post full STIX 2.1 (object or bundle)",
    openapi_extra=body_docs(StixSubmission),
)
def post_stix(
    submission: StixSubmission = Depends(json_body(StixSubmission, writer)), ctx: Ctx = Depends(writer)
) -> dict[str, Any]:
    """Store STIX 2.1 objects as given; their markings decide their labels (docs/design.md section 3)."""
    collection_id = submission.collection or DEFAULT_COLLECTION_ID
    note_collection(ctx.request, collection_id)
    service.writable_collection(ctx.session, ctx.env, collection_id)
    located = _submitted_objects(submission.stix, ctx.settings)
    stored = service.store_objects(ctx.session, ctx.env, collection_id, located)
    return {"collection": collection_id, "stored": ctx.served(stored)}


@router.get("", response_model=SearchPage, summary="Find items")
def find_items(
    ctx: Ctx = Depends(reader), query: search.SearchQuery = Depends(search.SearchQuery.from_request)
) -> dict[str, Any]:
    """Newest first; one result per item and collection (its newest version you may see)."""
    page = search.find(
        ctx.session,
        ctx.env,
        query,
        visibility=ctx.visibility,
        secret=ctx.settings.cursor_secret,
        limit_default=ctx.settings.default_page_size,
        limit_max=ctx.settings.max_page_size,
    )
    return {"items": ctx.served(page.versions), "more": page.more, "next": page.next}


@router.get("/{object_id}", response_model=ItemVersionOut, summary="The newest version of an item")
def get_item(object_id: str, ctx: Ctx = Depends(reader), collection: str | None = Query(None)) -> dict[str, Any]:
    """The newest version of the item you may see, in one collection or any."""
    version = latest_version(ctx.session, ctx.env.visible, object_id, collection)
    return ctx.served([version])[0]


@router.get("/{object_id}/versions", response_model=HistoryOut, summary="An item's history")
def get_history(object_id: str, ctx: Ctx = Depends(reader), collection: str | None = Query(None)) -> dict[str, Any]:
    """Every version of the item you may see, oldest first."""
    versions = item_versions(ctx.session, ctx.env.visible, object_id, collection)
    if not versions:
        raise ApiError(404, "No such item.")
    return {"id": object_id, "versions": ctx.served(versions)}


@router.post(
    "/{object_id}/versions",
    status_code=201,
    response_model=ItemVersionOut,
    summary="Store a new version of an item",
    openapi_extra=body_docs(UpdateRequest),
)
def update_item(
    object_id: str, update: UpdateRequest = Depends(json_body(UpdateRequest, writer)), ctx: Ctx = Depends(writer)
) -> dict[str, Any]:
    """Store a new version built from the newest one you may see: changed and removed properties, new labels."""
    _within_limits([("changes", update.changes)], ctx.settings)
    stored = service.update_item(
        ctx.session,
        ctx.env,
        object_id,
        changes=update.changes,
        remove=update.remove,
        banner=update.banner,
        field_banners=update.field_banners,
        collection_id=update.collection,
    )
    return ctx.served(stored)[0]


@router.post(
    "/{object_id}/revoke",
    status_code=201,
    response_model=ItemVersionOut,
    summary="Revoke an item",
    openapi_extra=body_docs(RevokeRequest, required=False),
)
def revoke_item(
    object_id: str,
    body: RevokeRequest | None = Depends(json_body(RevokeRequest, writer, optional=True)),
    ctx: Ctx = Depends(writer),
) -> dict[str, Any]:
    """Store a `revoked: true` version of the newest one you may see, with the same markings."""
    version = service.revoke_item(ctx.session, ctx.env, object_id, body.collection if body else None)
    return ctx.served([version])[0]


@router.post(
    "/{object_id}/tearlines",
    status_code=201,
    response_model=TearlineResult,
    summary="Produce a releasable version (tearline) of an item",
    openapi_extra=body_docs(TearlineRequest),
)
def make_tearline(
    object_id: str, body: TearlineRequest = Depends(json_body(TearlineRequest, writer)), ctx: Ctx = Depends(writer)
) -> dict[str, Any]:
    """Store a copy at the target label, without properties marked above it, and a `derived-from` relationship."""
    result = tearline.produce(
        ctx.session, ctx.env, object_id, target_banner=body.banner, collection_id=body.collection, version=body.version
    )
    stored = ctx.served(result.stored)
    by_id = {item["id"]: item for item in stored}
    return {
        "derived": by_id[result.derived.object_id],
        "relationship": by_id[result.relationship.object_id],
        "removed": result.removed,
        "stored": stored,
    }


@router.get("/{object_id}/preview", response_model=PreviewOut, summary="What each partner would see of an item")
def preview_item(object_id: str, ctx: Ctx = Depends(reader), collection: str | None = Query(None)) -> dict[str, Any]:
    """Per registered partner: collection access, the versions it would be served, what is redacted."""
    result = preview.preview(ctx.session, ctx.env, ctx.visibility, object_id, collection)
    note_collection(ctx.request, result["collection"])
    return result
