"""FastAPI dependencies shared by every domain: settings, role rights, the authenticated principal."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, cast

from fastapi import Depends, Request
from jose import JWTError, jwt
from sqlalchemy import bindparam, literal, select
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from app.audit.context import audit_context
from app.audit.middleware import is_audited, write_facts
from app.audit.transaction import audit_writes
from app.auth.principal import HOME_ROLES, ROLES, Principal
from app.auth.revocation import revoked, revoked_before_of
from app.auth.tokens import TokenError, TokenVerifier
from app.config.settings import Settings
from app.db.written import note_actor
from app.http.errors import ApiError
from app.markings.classification import TOP_RANK
from app.markings.mappings import Mappings
from app.markings.tokens import UnknownToken
from app.partners.models import Partner, group_codes
from app.policy.enforcer import RoleRights
from app.policy.visibility import VisibilityCache

MAX_SUBJECT_LENGTH = 255  # the width of the columns that record who posted
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="tearline"'}
# taxii2-client's TokenAuth sends "Token <jwt>"; it carries the same bearer JWT.
_TOKEN_SCHEMES = {"bearer", "token"}


# The dependencies that only read app.state are coroutines: FastAPI runs a plain function
# dependency in the thread pool, and a page request paid a thread hop for each of them.


async def get_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    return cast(Settings, request.app.state.settings)


async def get_role_rights(request: Request) -> RoleRights:
    """The loaded Casbin role rights."""
    return cast(RoleRights, request.app.state.role_rights)


async def get_mappings(request: Request) -> Mappings:
    """The validated marking and code tables."""
    return cast(Mappings, request.app.state.mappings)


async def get_visibility(request: Request) -> VisibilityCache:
    """The per-principal cache of visible label ids."""
    return cast(VisibilityCache, request.app.state.visibility)


_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One session per request on the app's engine.

    A write request's session commits its audit record with its data (app.audit.transaction): both
    or neither, and the audit middleware then writes no second record.

    A coroutine: opening a session touches no database (its connection is taken at the first
    query), so it needs no thread; closing it gives the connection back with a rollback, a round
    trip that must not block the event loop, so it runs in the thread pool.
    """
    session = Session(request.app.state.engine)
    if request.method not in _READ_METHODS and is_audited(request.url.path):
        context = audit_context(request)
        audit_writes(session, lambda: write_facts(request.scope, context), context.write_records.append)
    try:
        yield session
    finally:
        await run_in_threadpool(_close, session)


def _close(session: Session) -> None:
    try:
        session.close()
    except SQLAlchemyError:
        # The connection died under the request (a database restart): closing it cannot roll
        # back. Drop it from the pool instead; the request itself has been answered already.
        session.invalidate()


REQUEST_SESSIONS = 10
"""Requests that may hold a database session at once: the engine's ``pool_size`` (``make_engine``).

A request holds its pooled connection from its first query until its path function returns, and
in between its sync dependencies and endpoint each need a worker thread. With more requests than
connections, those waiting for a connection could take every worker thread while those holding one
had none to finish on, and the instance stalled until the pool's timeout. Requests beyond this wait
for a place without a thread; the pool's overflow is left to the connections a request opens
beside its session (exports, live reads, the audit writer has a pool of its own)."""

SESSION: Any = Depends(get_session, scope="function", max_concurrency=REQUEST_SESSIONS)
"""How every route and dependency takes the request's session: one shared limit (see
:data:`REQUEST_SESSIONS`), and closed when the path function returns, so that a stream (live events,
an export) holds no pooled connection and the connection is back in the pool before the request's
audit record is written."""


def _unauthorized(reason: str) -> ApiError:
    return ApiError(401, reason, headers=_CHALLENGE)


def _bearer_token(request: Request) -> str:
    header = request.headers.get("authorization")
    if not header:
        raise _unauthorized("A bearer token is required.")
    scheme, _, token = header.partition(" ")
    if scheme.lower() not in _TOKEN_SCHEMES or not token.strip():
        raise _unauthorized("The Authorization header must carry a bearer token.")
    return token.strip()


def _clearance_rank(claim: object, mappings: Mappings) -> int:
    """A clearance claim: a rank number 0-4 or a classification name of any loaded scheme."""
    if isinstance(claim, int) and not isinstance(claim, bool) and 0 <= claim <= TOP_RANK:
        return claim
    if isinstance(claim, str):
        return mappings.rank_of(claim)
    raise UnknownToken("classification", str(claim))


# Both facts a principal rests on, in one statement built once: when its subject's tokens were last
# revoked, and its nation's partner agreement (NULLs for a nation that has none). Two ORM queries,
# each built per request, were about a seventh of a small request's CPU.
_PARTNER = Partner.__table__.c
_PRINCIPAL_FACTS = select(
    revoked_before_of(bindparam("subject")), _PARTNER.clearance, _PARTNER.active, _PARTNER.groups
).select_from(
    select(literal(1).label("one")).subquery().outerjoin(Partner.__table__, _PARTNER.nation == bindparam("nation"))
)


def _storable(text: str) -> bool:
    """Text both databases can bind: PostgreSQL refuses NUL, and a lone surrogate encodes to no UTF-8."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def principal_from_claims(
    claims: dict[str, Any], session: Session, settings: Settings, mappings: Mappings
) -> Principal:
    """Turn verified claims into a Principal, or refuse: unknown roles, nations and clearances never pass."""
    nation, roles, subject = claims.get("nation"), claims.get("roles"), claims.get("sub")
    if not isinstance(subject, str) or not subject or len(subject) > MAX_SUBJECT_LENGTH:
        raise _unauthorized(f"The token's subject must be 1 to {MAX_SUBJECT_LENGTH} characters.")
    if not _storable(subject):
        raise _unauthorized("The token's subject must be text without NUL or unpaired surrogate characters.")
    if not isinstance(nation, str) or len(nation) != 3 or not nation.isalpha() or not nation.isupper():
        raise _unauthorized("The token's nation claim must be an ISO 3166-1 alpha-3 code.")
    if not isinstance(roles, list) or not roles or not all(isinstance(r, str) and r in ROLES for r in roles):
        raise _unauthorized(f"The token's roles claim must be a non-empty list of {sorted(ROLES)}.")
    role_set = frozenset(roles)
    facts = session.connection().execute(_PRINCIPAL_FACTS, {"subject": subject, "nation": nation}).one()
    revoked_before, partner_clearance, partner_active, partner_groups = facts
    if revoked(revoked_before, claims.get("iat")):
        raise _unauthorized("The token has been revoked.")

    claimed = claims.get("clearance")
    try:
        claimed_rank = None if claimed is None else _clearance_rank(claimed, mappings)
    except UnknownToken:
        raise _unauthorized("The token's clearance claim is not a known classification.") from None

    if nation == settings.home_nation:
        if not role_set <= HOME_ROLES:
            raise ApiError(403, "The partner role is for partner nations only.")
        clearance = TOP_RANK if claimed_rank is None else claimed_rank
        return Principal(subject, nation, role_set, clearance, frozenset(), is_home=True)

    if role_set != {"partner"}:
        raise ApiError(403, "Principals of partner nations may hold only the partner role.")
    if partner_clearance is None or not partner_active:
        raise ApiError(403, "The token's nation is not an active partner of this exchange.")
    if claimed_rank is not None and claimed_rank > partner_clearance:
        raise ApiError(403, "The token claims a clearance above the partner agreement.")
    clearance = partner_clearance if claimed_rank is None else claimed_rank
    return Principal(subject, nation, role_set, clearance, frozenset(group_codes(partner_groups)), is_home=False)


def get_principal(request: Request, session: Session = SESSION) -> Principal:
    """Authenticate the request's bearer token; 401 for a missing or bad token, 403 for a refused principal.

    The audit context learns who asked (or who the refused token claimed to be) and why a refusal happened.
    """
    verifier: TokenVerifier = request.app.state.token_verifier
    audit = audit_context(request)
    try:
        token = _bearer_token(request)
    except ApiError as exc:
        audit.deny(f"bad token: {exc.description}")
        raise
    try:
        claims = verifier.verify(token)
    except TokenError as exc:
        audit.subject = _unverified_subject(token)
        audit.deny(f"bad token: {exc}")
        raise _unauthorized(str(exc)) from None
    subject, nation = claims.get("sub"), claims.get("nation")
    audit.subject = subject[:MAX_SUBJECT_LENGTH] if isinstance(subject, str) else None
    audit.nation = nation if isinstance(nation, str) and len(nation) == 3 else None
    try:
        principal = principal_from_claims(claims, session, request.app.state.settings, request.app.state.mappings)
    except ApiError as exc:
        audit.deny(f"{'bad token' if exc.status == 401 else 'no right'}: {exc.description}")
        raise
    audit.principal = principal
    note_actor(session, principal.subject)  # who stored a version held for review (it may not release it)
    return principal


def _unverified_subject(token: str) -> str | None:
    """The subject a refused token claims, for the audit record only (it proves nothing)."""
    try:
        subject = jwt.get_unverified_claims(token).get("sub")
    except (JWTError, AttributeError):
        return None
    return f"unverified:{subject}"[:MAX_SUBJECT_LENGTH] if isinstance(subject, str) else None


def require_right(resource: str, action: str) -> Callable[[Request, Principal, RoleRights], Principal]:
    """Dependency factory: the principal, if one of its roles holds (resource, action); else 403, audited."""

    def _check(
        request: Request, principal: Principal = Depends(get_principal), rights: RoleRights = Depends(get_role_rights)
    ) -> Principal:
        if not rights.allows(principal.roles, resource, action):
            audit_context(request).deny(f"no right: {resource} {action}")
            raise ApiError(403, f"This requires the right to {action} {resource}.")
        audit_context(request).allow()
        return principal

    return _check
