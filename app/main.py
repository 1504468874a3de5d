"""Assemble the Tearline application: settings, database, policy, token verification, routes."""

from __future__ import annotations

from fastapi import FastAPI

from app.audit.index import install_indexer
from app.audit.live import router as audit_live_router
from app.audit.middleware import AuditMiddleware
from app.audit.routes import router as audit_router
from app.audit.service import AuditSigner, bind_signer
from app.audit.writer import RecordWriter
from app.auth.tokens import TokenVerifier
from app.config.settings import Settings
from app.console.apidocs import router as apidocs_router
from app.console.routes import router as console_router
from app.db.engine import make_engine
from app.db.statistics import install_statistics_keeper
from app.disclosure.metrics import DisclosureMetrics
from app.disclosure.routes import router as disclosure_router
from app.disclosure.setup import bind_disclosure
from app.feeds.routes import router as feeds_router
from app.feeds.scheduler import install_scheduler
from app.http.errors import install_error_handlers
from app.http.health import router as health_router
from app.http.request_id import RequestIdMiddleware
from app.http.security_headers import install_security_headers
from app.items.changes import watch_commits
from app.items.routes import router as items_router
from app.live.routes import router as live_router
from app.live.setup import install_live
from app.markings.mappings import load_mappings
from app.observability.setup import install_observability
from app.policy.enforcer import RoleRights
from app.policy.visibility import VisibilityCache
from app.recall.report_routes import router as recall_report_router
from app.recall.routes import router as recall_router
from app.recall.setup import bind_recall
from app.recall.sweep import install_recall_sweep
from app.taxii.admin_routes import router as collections_router
from app.taxii.routes import router as taxii_router


def _token_verifier(settings: Settings) -> TokenVerifier:
    key_path = settings.public_key_path()
    return TokenVerifier(
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        public_key=key_path.read_text() if key_path else None,
        asymmetric_algorithms=tuple(settings.jwt_algorithms),
        hs256_secret=settings.jwt_hs256_secret,
        key_id=settings.jwt_key_id,
        max_token_length=settings.max_token_length,
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; refuses to start when the configuration lacks a key or secret it needs."""
    settings = settings or Settings()
    settings.check_startup()
    app = FastAPI(
        title="Tearline",
        summary="Intelligence-sharing exchange: STIX 2.1 over TAXII 2.1 with releasability control.",
        version="0.1.0",
        # FastAPI's own pages load Swagger UI and ReDoc from a CDN; /docs is served offline instead.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = make_engine(settings.database_url, sqlite_cache_mib=settings.sqlite_cache_mib)
    app.state.role_rights = RoleRights(settings.policies_dir)
    app.state.mappings = load_mappings(settings.mappings_dir)
    app.state.visibility = VisibilityCache(settings.policies_dir, app.state.mappings, settings.home_nation)
    app.state.token_verifier = _token_verifier(settings)
    # Audit records get a pool of their own: a request holds its session's connection while its
    # record is written, so sharing one pool lets concurrent requests starve each other's audit.
    app.state.audit_engine = make_engine(
        settings.database_url, pool_size=4, max_overflow=4, sqlite_cache_mib=settings.sqlite_cache_mib
    )
    # Checkpoints must verify after a restart: the key comes from settings or a persistent file.
    signer = AuditSigner.from_settings(settings)
    bind_signer(app.state.engine, signer)
    bind_signer(app.state.audit_engine, signer)
    app.state.audit_writer = RecordWriter(app.state.audit_engine)
    install_error_handlers(app)
    app.include_router(health_router)
    app.include_router(taxii_router)
    app.include_router(live_router)  # the TAXII collections' event streams
    app.include_router(items_router)
    app.include_router(recall_router)  # explicit recalls (analysts), notices and acknowledgements (partners)
    app.include_router(disclosure_router)  # officers' queue and decisions, analysts' items, auditors' record
    app.include_router(collections_router)
    app.include_router(audit_router)
    app.include_router(recall_report_router)  # /api/v1/audit/recalls: who was told, received, acknowledged
    app.include_router(audit_live_router)  # /api/v1/audit/live: records as they are written (SSE)
    app.include_router(feeds_router)
    app.include_router(console_router)  # the auditor web page; static, not audited
    app.include_router(apidocs_router)  # /docs: Swagger UI from an installed package; static, not audited
    install_indexer(app)  # the recipients index follows the audit's served lists in the background
    # Commits that stored versions: wake event streams and push feeds (app/items/changes.py).
    app.state.stored_signal = watch_commits(app.state.engine)
    # Versions stored that withdraw earlier ones, or recall them, notify past recipients (app/recall/).
    app.state.recall_env = bind_recall(app.state.engine, settings, app.state.mappings, app.state.visibility)
    # Before recall: versions the release rules hold wait for a disclosure officer (app/disclosure/).
    app.state.disclosure_env = bind_disclosure(app.state.engine, settings, app.state.mappings)
    install_recall_sweep(app)  # late recipients of withdrawn versions (reads that raced the withdrawal)
    install_statistics_keeper(app)  # PostgreSQL: the read path's plans never wait for autovacuum
    install_live(app)  # event streams wake when versions commit, on every instance
    install_scheduler(app)  # due partner feeds run in the background (TEARLINE_FEED_SCHEDULER)
    install_security_headers(app)
    # Inside the request-id layer: one audit record per request, written before any byte is sent.
    app.add_middleware(AuditMiddleware)
    install_observability(app)  # metrics, /metrics and the access log; outside audit, it sees the final status
    app.state.disclosure_metrics = DisclosureMetrics(app.state.metrics.registry, app.state.engine, app.state.mappings)
    # Added last, so it is outermost: every other layer sees the request id.
    app.add_middleware(RequestIdMiddleware)
    return app


def _app_from_environment() -> FastAPI:
    return create_app()


def __getattr__(name: str) -> FastAPI:
    # `app` is built on first access (uvicorn's "app.main:app"), not at import, so that
    # importing this module never needs keys or a database.
    if name == "app":
        application = _app_from_environment()
        globals()["app"] = application
        return application
    raise AttributeError(name)
