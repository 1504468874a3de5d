"""Per-request metrics and the one access-log line, as pure ASGI middleware (no body buffering).

It runs inside :class:`app.request_id.RequestIdMiddleware`, so the request id is already in
``scope["state"]``. At response start it reads the status and the request's audit context
(who asked, which object versions are being served); when the response ends it records the
duration under the route *template* (``/taxii2/{api_root}/collections/{collection_id}/objects/``),
never the raw path, so the number of series stays bounded.
"""

from __future__ import annotations

import logging
import time
from typing import TypedDict

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.observability.logs import ACCESS_LOGGER
from app.observability.metrics import Metrics

UNMATCHED = "<unmatched>"
# Any token is a valid HTTP method: others are counted together, so clients cannot add series.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
log = logging.getLogger(ACCESS_LOGGER)


def route_template(scope: Scope) -> str:
    """The matched route's path template, or ``<unmatched>`` (404s for unknown paths)."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else UNMATCHED


def _who(audit: object) -> tuple[str | None, str | None]:
    if audit is None:
        return None, None
    principal = getattr(audit, "principal", None)
    if principal is not None:
        return principal.subject, principal.nation
    return getattr(audit, "subject", None), getattr(audit, "nation", None)


class _Seen(TypedDict):
    """What the response start told about one request, for its metrics and log line."""

    status: int
    served: int
    subject: str | None
    nation: str | None


class ObservabilityMiddleware:
    """Count requests, served versions and latency; log one line per request."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, watching its response start; count and log it when it ends."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        seen: _Seen = {"status": 500, "served": 0, "subject": None, "nation": None}

        async def observe_start(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
                audit = scope.get("state", {}).get("audit")
                seen["subject"], seen["nation"] = _who(audit)
                served = len(getattr(audit, "served", None) or ())
                # Only a success carries the noted versions: when the audit write fails, the
                # response becomes a bare 503 and nothing noted leaves.
                if served and 200 <= message["status"] < 300:
                    seen["served"] = served
                    self.metrics.objects_served.labels(nation=seen["nation"] or "").inc(served)
            await send(message)

        try:
            await self.app(scope, receive, observe_start)
        finally:
            self._finish(scope, seen, time.perf_counter() - started)

    def _finish(self, scope: Scope, seen: _Seen, elapsed: float) -> None:
        method, route, status = scope["method"], route_template(scope), seen["status"]
        counted_method = method if method in METHODS else "other"
        self.metrics.requests.labels(method=counted_method, route=route, status=str(status)).inc()
        self.metrics.request_seconds.labels(method=counted_method, route=route).observe(elapsed)
        client = scope.get("client")
        log.info(
            "%s %s %s",
            method,
            route,
            status,
            extra={
                "request_id": scope.get("state", {}).get("request_id"),
                "method": method[:16],
                "route": route,
                "path": scope.get("path"),
                "status": status,
                "duration_ms": round(elapsed * 1000, 3),
                "subject": seen["subject"],
                "nation": seen["nation"],
                "client": client[0] if client else None,
                "objects_served": seen["served"],
            },
        )
