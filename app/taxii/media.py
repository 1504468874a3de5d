"""TAXII 2.1 media types: what requests may accept and send, and the response class."""

from __future__ import annotations

from fastapi import Request
from starlette.responses import Response

from app.http.errors import TAXII_MEDIA_TYPE, ApiError

STIX_MEDIA_TYPE = "application/stix+json;version=2.1"
# Real clients send loose Accept headers; all of these get a TAXII 2.1 answer.
_ACCEPTABLE = {"application/taxii+json", "application/json", "application/*", "*/*"}
_SENDABLE = {"application/taxii+json", "application/json"}


def media_ranges(header: str) -> list[tuple[str, dict[str, str]]]:
    """The media ranges of an Accept or Content-Type header: (type, parameters) each, lower-cased."""
    ranges = []
    for part in header.split(","):
        kind, *params = [p.strip() for p in part.split(";")]
        parsed = {}
        for param in params:
            name, _, value = param.partition("=")
            parsed[name.strip().lower()] = value.strip().strip('"')
        if kind:
            ranges.append((kind.lower(), parsed))
    return ranges


def _taxii_21(kind: str, params: dict[str, str], allowed: set[str]) -> bool:
    if kind not in allowed or params.get("q") in {"0", "0.0", "0.00", "0.000"}:
        return False
    return kind != "application/taxii+json" or params.get("version", "2.1") == "2.1"


async def require_taxii_accept(request: Request) -> None:
    """406 unless the Accept header admits TAXII 2.1 JSON (a missing header does)."""
    header = request.headers.get("accept")
    if header and not any(_taxii_21(k, p, _ACCEPTABLE) for k, p in media_ranges(header)):
        raise ApiError(406, f"This server answers only with {TAXII_MEDIA_TYPE}.")


async def require_taxii_content_type(request: Request) -> None:
    """415 unless the body is declared as TAXII 2.1 JSON (or plain JSON)."""
    header = request.headers.get("content-type")
    ranges = media_ranges(header) if header else []
    if len(ranges) != 1 or not _taxii_21(*ranges[0], _SENDABLE):
        raise ApiError(415, f"Send the request body as {TAXII_MEDIA_TYPE}.")


class TaxiiResponse(Response):
    """A response already serialised to JSON bytes, typed as TAXII 2.1."""

    media_type = TAXII_MEDIA_TYPE
