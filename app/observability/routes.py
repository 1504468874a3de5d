"""``GET /metrics``: this instance's metrics in the Prometheus text format.

Open by default, as Prometheus scrapes expect: keep it off public networks (the proxy does
not forward ``/metrics``). With ``TEARLINE_METRICS_TOKEN`` set it needs
``Authorization: Bearer <token>`` (Prometheus ``authorization: credentials_file``).
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
    token = request.app.state.settings.metrics_token
    if token:
        _check_token(request, token)
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
