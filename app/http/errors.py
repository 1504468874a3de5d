"""Error responses: TAXII error messages on TAXII routes, RFC 9457 problem details elsewhere.

Nothing internal reaches a client: unexpected exceptions become a bare 500
whose body carries only the request path, never a trace or SQL text.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from app.audit.service import AuditUnavailable

TAXII_MEDIA_TYPE = "application/taxii+json;version=2.1"
PROBLEM_MEDIA_TYPE = "application/problem+json"
TAXII_PREFIX = "/taxii2"

log = logging.getLogger(__name__)
# Seconds a client is asked to wait before retrying while the database is unavailable.
RETRY_AFTER_S = 5

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class ApiError(Exception):
    """An error to return to the client, with a status, a short title and a description."""

    def __init__(
        self,
        status: int,
        description: str,
        *,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        extensions: dict[str, Any] | None = None,
    ):
        super().__init__(description)
        self.status = status
        self.title = title or _TITLES.get(status, "Error")
        self.description = description
        self.headers = headers or {}
        # RFC 9457 extension members (e.g. per-field ``errors``); problem+json bodies only.
        self.extensions = extensions or {}


def not_found(description: str = "The requested resource was not found.") -> ApiError:
    """A 404 that names nothing the requester may not know of."""
    return ApiError(404, description)


def error_response(
    request: Request,
    status: int,
    title: str,
    description: str,
    headers: dict[str, str] | None = None,
    extensions: dict[str, Any] | None = None,
) -> Response:
    """Render an error in the format the route family uses."""
    if request.url.path.startswith(TAXII_PREFIX):
        body: dict[str, Any] = {"title": title, "description": description, "http_status": str(status)}
        media_type = TAXII_MEDIA_TYPE
    else:
        body = {
            "type": "about:blank",
            "title": title,
            "status": status,
            "detail": description,
            "instance": request.url.path,
        }
        if extensions:
            body = {**extensions, **body}  # the standard members always win
        media_type = PROBLEM_MEDIA_TYPE
    return Response(orjson.dumps(body), status_code=status, media_type=media_type, headers=headers)


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        location = ".".join(str(p) for p in error.get("loc", ()) if p not in ("query", "path", "header", "body"))
        parts.append(f"{location or 'request'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def _validation_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    """Per-field errors (RFC 9457 extension member ``errors``): a dotted path and a message each."""
    errors = []
    for error in exc.errors():
        loc = [p for p in error.get("loc", ()) if p not in ("query", "path", "header", "body")]
        path = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in loc).replace(".[", "[")
        errors.append({"path": path, "message": str(error.get("msg", "invalid"))})
    return errors


def _database_problem(exc: Exception) -> str:
    """A description of a database failure that names no table, statement or driver."""
    text = str(getattr(exc, "orig", exc)).lower()
    if "full" in text or "no space" in text:
        return "The database has no space left; nothing was stored. Retry later."
    if "readonly" in text or "read-only" in text or "read only" in text:
        return "The database is read-only at the moment; nothing was stored. Retry later."
    return "The database is unavailable at the moment; nothing was changed. Retry later."


AUDIT_UNAVAILABLE = "The audit log cannot be written at the moment; nothing was stored. Retry later."


def install_error_handlers(app: FastAPI) -> None:
    """Route every error through :func:`error_response`."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return error_response(request, exc.status, exc.title, exc.description, exc.headers, exc.extensions)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        return error_response(
            request, 400, "Bad Request", _describe_validation(exc), extensions={"errors": _validation_errors(exc)}
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        title = _TITLES.get(exc.status_code, "Error")
        description = exc.detail if isinstance(exc.detail, str) and exc.status_code != 404 else title
        if exc.status_code == 404:
            description = "The requested resource was not found."
        return error_response(request, exc.status_code, title, description, getattr(exc, "headers", None))

    @app.exception_handler(OperationalError)
    @app.exception_handler(PoolTimeoutError)
    async def _database_unavailable(request: Request, exc: Exception) -> Response:
        # The database is down, restarting, full or read-only: the request changed nothing
        # (its transaction is rolled back), so say "try again" without naming the cause's SQL.
        log.error("database unavailable on %s %s: %s", request.method, request.url.path, exc)
        return error_response(
            request, 503, "Service Unavailable", _database_problem(exc), {"Retry-After": str(RETRY_AFTER_S)}
        )

    @app.exception_handler(AuditUnavailable)
    async def _audit_unavailable(request: Request, exc: AuditUnavailable) -> Response:
        # A write whose record could not be appended: its transaction was rolled back with it.
        log.error("audit record not written for %s %s: %s", request.method, request.url.path, exc)
        return error_response(
            request, 503, "Service Unavailable", AUDIT_UNAVAILABLE, {"Retry-After": str(RETRY_AFTER_S)}
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(request, 500, "Internal Server Error", "The server could not complete the request.")
