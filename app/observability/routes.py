"""``GET /metrics``: this instance's metrics in the Prometheus text format.

Closed by default, like every other route: it needs ``Authorization: Bearer <token>`` with
``TEARLINE_METRICS_TOKEN`` (Prometheus ``authorization: credentials_file``). An operator whose
scraper alone reaches the port may open it with ``TEARLINE_METRICS_PUBLIC=true``. Request counts
and latencies per route say what partners do, so they are not for everyone.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from app.http.errors import ApiError

router = APIRouter(tags=["operations"])


def _check_token(request: Request, expected: str) -> None:
    scheme, _, offered = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(offered.strip().encode(), expected.encode()):
        raise ApiError(401, "The metrics token is required.", headers={"WWW-Authenticate": 'Bearer realm="metrics"'})


@router.get("/metrics", summary="Prometheus metrics of this instance", response_class=Response)
def metrics(request: Request) -> Response:
    """Requests, served and stored object versions, policy cache, audit writes and feed lag."""
    settings = request.app.state.settings
    if settings.metrics_token:
        _check_token(request, settings.metrics_token)
    elif not settings.metrics_public:
        raise ApiError(
            401,
            "The metrics token is required (TEARLINE_METRICS_TOKEN), or an operator opens /metrics with "
            "TEARLINE_METRICS_PUBLIC.",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
