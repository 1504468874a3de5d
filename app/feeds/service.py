"""Feed configuration and state: add, list, remove, resume, and the view operators see.

Credentials are stored encrypted or as ``env:NAME`` references (:mod:`app.feeds.secrets`)
and never leave this module in clear: :func:`feed_view` reports only how a
credential is kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from app.auth.principal import Principal
from app.config.settings import Settings
from app.db.timestamps import format_us, now_us
from app.feeds.models import AUTH_KINDS, DIRECTIONS, Feed
from app.feeds.secrets import CredentialError, StoredSecret, store_secret
from app.items.models import StixObject
from app.items.store import VersionFilter, version_query
from app.markings.labels import UnknownToken, canonical_banner, parse_banner
from app.markings.mappings import Mappings
from app.partners.models import Partner
from app.policy.visibility import VisibilityCache
from app.taxii.models import Collection

ORIGINATOR_ONLY = "originator-only"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
MAX_POLL_INTERVAL_S = 7 * 24 * 3600


class InvalidFeed(ValueError):
    """The feed configuration is not acceptable; the message says why (never with a secret)."""


class FeedExists(InvalidFeed):
    """A feed of that name exists already."""


class NoSuchFeed(LookupError):
    """No feed of that name."""


@dataclass(frozen=True)
class FeedSpec:
    """What an operator gives to add a feed."""

    name: str
    partner: str
    direction: str
    url: str
    collection_id: str
    local_collection_id: str
    auth_kind: str = "none"
    username: str | None = None
    credential: str | None = None
    poll_interval_s: int = 300
    default_label: str | None = None


def _default_label(text: str | None, partner: str, mappings: Mappings) -> str | None:
    if text is None or not text.strip() or text.strip().lower() == ORIGINATOR_ONLY:
        return None
    try:
        return canonical_banner(parse_banner(text, originator=partner, mappings=mappings), mappings)
    except UnknownToken as exc:
        raise InvalidFeed(f"default label: {exc}") from None


def add_feed(session: Session, settings: Settings, mappings: Mappings, spec: FeedSpec) -> Feed:
    """Validate and store a new feed. Commits."""
    for field_name, value in vars(spec).items():
        # PostgreSQL refuses NUL in text: refuse it here as bad input, never as a database error.
        if isinstance(value, str) and "\x00" in value:
            raise InvalidFeed(f"{field_name}: must not contain NUL characters")
    name = spec.name.strip()
    if not _NAME.fullmatch(name):
        raise InvalidFeed("name: 1-64 characters of a-z, 0-9, '_', '.', '-', starting with a letter or digit")
    if session.get(Feed, name) is not None:
        raise FeedExists(f"a feed named {name!r} exists already")
    partner_code = spec.partner.strip().upper()
    partner = session.get(Partner, partner_code) if re.fullmatch(r"[A-Z]{3}", partner_code) else None
    if partner is None:
        raise InvalidFeed(f"partner: {partner_code!r} is not a registered partner")
    if spec.direction not in DIRECTIONS:
        raise InvalidFeed(f"direction: must be one of {', '.join(DIRECTIONS)}")
    url = spec.url.strip()
    if not re.match(r"^https?://[^\s/]+", url):
        raise InvalidFeed("url: must be an http:// or https:// URL of a TAXII discovery or API root resource")
    if "@" in url.split("//", 1)[1].split("/", 1)[0]:
        raise InvalidFeed("url: put credentials in the credential field, not in the URL")
    remote_collection = spec.collection_id.strip()
    if not remote_collection or len(remote_collection) > 255 or "/" in remote_collection:
        raise InvalidFeed("collection_id: the partner's collection id (1-255 characters, no '/')")
    if session.get(Collection, spec.local_collection_id) is None:
        raise InvalidFeed(f"local_collection_id: no local collection {spec.local_collection_id!r}")
    if spec.auth_kind not in AUTH_KINDS:
        raise InvalidFeed(f"auth: must be one of {', '.join(AUTH_KINDS)}")
    if spec.direction == "push" and spec.default_label:
        raise InvalidFeed("default_label: applies to pull feeds only (what comes in unmarked)")
    if not 0 < spec.poll_interval_s <= MAX_POLL_INTERVAL_S:
        raise InvalidFeed(f"poll_interval_s: 1 to {MAX_POLL_INTERVAL_S} seconds")
    stored = StoredSecret()
    if spec.auth_kind == "none":
        if spec.credential or spec.username:
            raise InvalidFeed("auth none takes no username or credential")
    else:
        if not spec.credential:
            raise InvalidFeed(f"auth {spec.auth_kind} needs a credential (the secret itself or env:NAME)")
        if spec.auth_kind == "basic" and not (spec.username or "").strip():
            raise InvalidFeed("auth basic needs a username")
        if spec.auth_kind == "bearer" and spec.username:
            raise InvalidFeed("auth bearer takes no username")
        try:
            stored = store_secret(settings, spec.credential)
        except CredentialError as exc:
            raise InvalidFeed(f"credential: {exc}") from None
    feed = Feed(
        name=name,
        partner=partner.nation,
        direction=spec.direction,
        url=url,
        remote_collection_id=remote_collection,
        local_collection_id=spec.local_collection_id,
        auth_kind=spec.auth_kind,
        username=(spec.username or "").strip() or None,
        secret_ciphertext=stored.ciphertext,
        secret_env=stored.env_name,
        poll_interval_s=spec.poll_interval_s,
        default_label=_default_label(spec.default_label, partner.nation, mappings),
        created_us=now_us(),
    )
    session.add(feed)
    session.commit()
    session.refresh(feed)
    return feed


def get_feed(session: Session, name: str) -> Feed:
    """The feed called ``name``; NoSuchFeed otherwise."""
    feed = session.get(Feed, name) if _NAME.fullmatch(name) else None
    if feed is None:
        raise NoSuchFeed(name)
    return feed


def list_feeds(session: Session) -> list[Feed]:
    """Every feed, by name."""
    return list(session.execute(select(Feed).order_by(Feed.name)).scalars())


def remove_feed(session: Session, name: str) -> None:
    """Delete a feed and its cursor; objects it brought in stay. Commits."""
    session.delete(get_feed(session, name))
    session.commit()


def resume_feed(session: Session, name: str) -> Feed:
    """Re-enable a feed stopped by a permanent error. Commits."""
    feed = get_feed(session, name)
    feed.enabled, feed.stopped_reason = True, None
    session.add(feed)
    session.commit()
    session.refresh(feed)
    return feed


def partner_principal(partner: Partner, feed_name: str) -> Principal:
    """The partner as the TAXII server would see its own token: its nation, clearance and groups."""
    return Principal(
        subject=f"feed:{feed_name}",
        nation=partner.nation,
        roles=frozenset({"partner"}),
        clearance=partner.clearance,
        groups=frozenset(partner.group_list),
        is_home=False,
    )


def push_backlog(session: Session, feed: Feed, visibility: VisibilityCache) -> int | None:
    """How many versions releasable to the partner wait beyond a push feed's cursor."""
    partner = session.get(Partner, feed.partner)
    if feed.direction != "push" or partner is None or not partner.active:
        return None
    visible = visibility.visible_label_ids(session, partner_principal(partner, feed.name))
    if not visible:
        return 0
    query = version_query(
        feed.local_collection_id,
        visible,
        VersionFilter(versions=("all",), added_after_us=feed.cursor_us),
        (StixObject.pk,),
        own_nation=partner.nation,
    )
    return int(session.execute(select(func.count()).select_from(query.order_by(None).subquery())).scalar_one())


def _time(value: int | None) -> str | None:
    return format_us(value) if value is not None else None


def credential_kind(feed: Feed) -> str:
    """How the credential is kept, never the credential: ``none``, ``encrypted`` or ``env:NAME``."""
    if feed.secret_env:
        return f"env:{feed.secret_env}"
    return "encrypted" if feed.secret_ciphertext else "none"


def feed_view(feed: Feed, backlog: int | None = None) -> dict[str, Any]:
    """The feed as operators see it: configuration without secrets, cursor, counters, last outcome."""
    return {
        "name": feed.name,
        "partner": feed.partner,
        "direction": feed.direction,
        "url": feed.url,
        "collection_id": feed.remote_collection_id,
        "local_collection_id": feed.local_collection_id,
        "auth": feed.auth_kind,
        "credential": credential_kind(feed),
        "poll_interval_s": feed.poll_interval_s,
        "default_label": feed.default_label or ORIGINATOR_ONLY if feed.direction == "pull" else None,
        "enabled": feed.enabled,
        "stopped_reason": feed.stopped_reason,
        "cursor": _time(feed.cursor_us),
        "objects_in": feed.objects_in,
        "objects_out": feed.objects_out,
        "unknown_markings": feed.unknown_markings,
        "refused": feed.refused,
        "pending_backlog": backlog,
        "last_attempt": _time(feed.last_attempt_us),
        "last_success": _time(feed.last_success_us),
        "last_error": feed.last_error,
        "last_error_at": _time(feed.last_error_us),
    }
