"""Wire metrics, the request middleware and ``/metrics`` into one app."""

from __future__ import annotations

from fastapi import FastAPI

from app.observability.metrics import Metrics
from app.observability.middleware import ObservabilityMiddleware
from app.observability.routes import router


def install_observability(app: FastAPI) -> Metrics:
    """Give ``app`` its own metrics (``app.state.metrics``), the middleware and ``/metrics``.

    Call it after ``app.state.engine`` and ``app.state.visibility`` exist and before the
    request-id middleware is added, so that this middleware runs inside it and sees the id.
    """
    metrics = Metrics()
    app.state.metrics = metrics
    metrics.count_ingested(app.state.engine)
    # Looked up at scrape time: the cache object may be replaced, the counters must follow it.
    metrics.watch_policy_cache(lambda: getattr(app.state, "visibility", None))
    app.include_router(router)
    app.add_middleware(ObservabilityMiddleware, metrics=metrics)
    return metrics
