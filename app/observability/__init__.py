"""Operations: Prometheus metrics, one structured log line per request, readiness.

``install_observability(app)`` (:mod:`app.observability.setup`, called once in
:func:`app.main.create_app`) gives each app its own :class:`~app.observability.metrics.Metrics`
(``app.state.metrics``), the request middleware and the ``/metrics`` route.
"""
