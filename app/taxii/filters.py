"""Parse TAXII 2.1 query parameters into a VersionFilter; bad values are 400s naming the parameter."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from app.config.settings import Settings
from app.db.timestamps import parse_us
from app.http.errors import ApiError
from app.items.store import VERSION_KEYWORDS, VersionFilter

# Filters each TAXII endpoint takes (TAXII 2.1 sections 5.3-5.8); anything else is refused.
ENDPOINT_FILTERS = {
    "objects": {"added_after", "limit", "next", "match[id]", "match[type]", "match[version]", "match[spec_version]"},
    "manifest": {"added_after", "limit", "next", "match[id]", "match[type]", "match[version]", "match[spec_version]"},
    "object": {"added_after", "limit", "next", "match[version]", "match[spec_version]"},
    "versions": {"added_after", "limit", "next", "match[spec_version]"},
    "events": {"added_after"},  # the live stream (app/live): where to start
    "delete": {"match[version]", "match[spec_version]"},
}


# The versions endpoint lists every version, and delete removes every version unless narrowed.
DEFAULT_VERSIONS = {"versions": ("all",), "delete": ("all",)}


@dataclass(frozen=True)
class PageRequest:
    """A parsed request for one page: the filter, the page size and the raw cursor."""

    flt: VersionFilter
    limit: int
    next_token: str | None


def _values(request: Request, name: str) -> tuple[str, ...]:
    values = []
    for raw in request.query_params.getlist(name):
        parts = [p.strip() for p in raw.split(",")]
        if not all(parts):
            raise ApiError(400, f"{name}: empty value")
        values.extend(parts)
    return tuple(values)


def _single(request: Request, name: str) -> str | None:
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise ApiError(400, f"{name}: give it at most once")
    return values[0] if values else None


def _versions(values: tuple[str, ...], default: tuple[str, ...]) -> tuple[str | int, ...]:
    if not values:
        return default
    parsed: list[str | int] = []
    for value in values:
        if value in VERSION_KEYWORDS:
            parsed.append(value)
            continue
        try:
            parsed.append(parse_us(value))
        except ValueError:
            raise ApiError(400, f"match[version]: {value!r} is not first, last, all or a timestamp") from None
    return tuple(parsed)


def _limit(raw: str | None, settings: Settings) -> int:
    if raw is None:
        return settings.default_page_size
    # ASCII digits only: str.isdigit() also accepts characters int() refuses, such as "²".
    digits = raw.lstrip("0") if raw.isascii() and raw.isdigit() else ""
    if not digits:
        raise ApiError(400, f"limit: must be a positive integer, got {raw[:40]!r}")
    if len(digits) > len(str(settings.max_page_size)):  # int() refuses more than 4300 digits
        return settings.max_page_size
    return min(int(digits), settings.max_page_size)


def parse_page_request(request: Request, endpoint: str, settings: Settings) -> PageRequest:
    """Read the query string of a TAXII request to ``endpoint``."""
    allowed = ENDPOINT_FILTERS[endpoint]
    unknown = sorted({name for name in request.query_params if name not in allowed})
    if unknown:
        raise ApiError(400, f"unsupported query parameter(s) for this endpoint: {', '.join(unknown)}")
    if any("\x00" in value for _, value in request.query_params.multi_items()):
        # No id, type or timestamp contains NUL, and PostgreSQL refuses it in a query (a 500).
        raise ApiError(400, "query parameters must not contain NUL characters")

    added_after = _single(request, "added_after")
    try:
        added_after_us = None if added_after is None else parse_us(added_after)
    except ValueError:
        raise ApiError(400, f"added_after: {added_after!r} is not a timestamp") from None

    flt = VersionFilter(
        ids=_values(request, "match[id]"),
        types=_values(request, "match[type]"),
        versions=_versions(_values(request, "match[version]"), DEFAULT_VERSIONS.get(endpoint, ("last",))),
        spec_versions=_values(request, "match[spec_version]"),
        added_after_us=added_after_us,
    )
    return PageRequest(flt, _limit(_single(request, "limit"), settings), _single(request, "next"))
