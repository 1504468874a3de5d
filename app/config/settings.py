"""Configuration: one settings class, read from ``TEARLINE_*`` environment variables.

Every setting has a documented default for development. In production
(``TEARLINE_ENV=production``) the secrets and keys have no default: a missing
one refuses to start with a message that names it.
"""

from __future__ import annotations

import re
import secrets
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]
_TRIGRAPH = re.compile(r"^[A-Z]{3}$")


class ConfigurationError(RuntimeError):
    """The configuration cannot be used; the message says which setting and why."""


class Settings(BaseSettings):
    """All of Tearline's configuration. Environment variables use the ``TEARLINE_`` prefix."""

    model_config = SettingsConfigDict(env_prefix="TEARLINE_", extra="ignore")

    env: Literal["development", "production"] = Field(
        "development", description="`production` removes every default secret and key."
    )
    database_url: str = Field(
        "sqlite:///./data/tearline.sqlite",
        description="SQLAlchemy URL: SQLite (WAL mode) or `postgresql+psycopg://`.",
    )
    sqlite_cache_mib: int = Field(
        64,
        ge=1,
        le=4096,
        description="Page cache of each SQLite connection, in MiB (SQLite's default is 2). Index look-ups "
        "of a large store stay in memory: ingest at 300k objects ran 19% faster with 64 than with 2. "
        "Memory is bounded by this times the open SQLite connections (up to 30: request and audit pools).",
    )
    home_nation: str = Field("NLD", description="ISO 3166-1 alpha-3 code of the nation running this instance.")
    data_dir: Path = Field(Path("./data"), description="Where development keys and the SQLite file live.")
    policies_dir: Path = Field(REPO_ROOT / "policies", description="Casbin model and policy files.")
    mappings_dir: Path = Field(REPO_ROOT / "stix_mappings", description="Marking and code tables.")

    jwt_public_key_file: Path | None = Field(None, description="PEM public key that verifies bearer tokens.")
    jwt_private_key_file: Path | None = Field(
        None, description="PEM private key used only by `tearline token issue` (development)."
    )
    jwt_hs256_secret: str | None = Field(
        None, description="Shared secret; set it to allow HS256 tokens (off by default)."
    )
    jwt_algorithms: list[str] = Field(
        ["RS256", "ES256"], description="Asymmetric algorithms accepted for bearer tokens."
    )
    jwt_issuer: str = Field("tearline", description="Required `iss` claim.")
    jwt_audience: str = Field("tearline", description="Required `aud` claim.")
    jwt_key_id: str | None = Field(
        None,
        description="`kid` of the verification key; a token naming any other `kid` is refused. "
        "Unset: tokens must not name a `kid`.",
    )

    secret_key: str | None = Field(
        None,
        description="Signs TAXII `next` cursors. Share it between app instances. "
        "Development default: random per process.",
    )

    api_root: str = Field("api1", description="Path segment of the single TAXII API root.")
    api_root_title: str = Field("Tearline", description="Title of the TAXII API root.")
    max_content_length: int = Field(10 * 1024 * 1024, gt=0, description="Largest request body in bytes.")
    max_objects_per_envelope: int = Field(
        10_000, gt=0, description="Most objects one TAXII Add Objects envelope may carry."
    )
    max_string_length: int = Field(
        1024 * 1024, gt=0, description="Longest JSON string (property value or name) in a posted object, in characters."
    )
    max_nesting_depth: int = Field(
        32, gt=0, description="Deepest nesting of JSON objects and arrays inside one posted STIX object."
    )
    max_token_length: int = Field(
        8 * 1024, gt=0, description="Longest bearer token in bytes; longer ones are refused before parsing."
    )
    default_page_size: int = Field(100, gt=0, description="Objects per page when `limit` is absent.")
    max_page_size: int = Field(1000, gt=0, description="Largest page; larger `limit` values are lowered.")

    live_keepalive_seconds: float = Field(
        15, gt=0, description="Seconds between keep-alive comments on an idle event stream (proxies cut silent ones)."
    )
    live_recheck_seconds: float = Field(
        5,
        gt=0,
        description="Seconds between re-checks of a streaming principal (token expiry, partner deactivated or "
        "its agreement changed: the stream closes); also the longest wait for versions stored by another process "
        "when no notification arrives.",
    )
    live_send_timeout_seconds: float = Field(
        30,
        gt=0,
        description="A subscriber that reads nothing for this long while an event waits is disconnected; it "
        "resumes with Last-Event-ID.",
    )
    live_max_streams: int = Field(256, gt=0, description="Open event streams per app instance; more are refused.")
    live_max_streams_per_principal: int = Field(
        4, gt=0, description="Open event streams per principal (subject and nation); more are refused."
    )

    audit_key: str | None = Field(
        None,
        description="HMAC key for audit checkpoints and the chain head. Required in production; "
        "development default: a key file generated once under data_dir/keys.",
    )
    audit_checkpoint_interval: int = Field(
        1000, gt=0, description="Write an HMAC checkpoint of the audit chain every N records."
    )
    feed_secret_key: str | None = Field(
        None,
        description="Fernet key that encrypts stored feed credentials. Required in production to store "
        "or use a credential (`env:NAME` references need none); development default: a key file "
        "generated once under data_dir/keys.",
    )
    feed_scheduler: bool = Field(
        True, description="Run due partner feeds inside `tearline serve` (off in the test suite)."
    )
    feed_scheduler_tick_s: float = Field(5.0, gt=0, description="How often the scheduler looks for due feeds.")
    feed_page_size: int = Field(100, gt=0, description="Objects asked for per page when pulling a feed.")
    feed_retry_attempts: int = Field(5, gt=0, description="Tries per feed request on transient errors.")
    feed_retry_initial_s: float = Field(
        1.0, ge=0, description="First back-off wait after a transient feed error (doubles each try)."
    )
    feed_retry_max_s: float = Field(60.0, ge=0, description="Longest back-off wait between feed tries.")
    feed_timeout_s: float = Field(30.0, gt=0, description="HTTP timeout of one feed request.")
    feed_push_on_post: bool = Field(
        True,
        description="Push feeds send newly stored versions at once, from the outbox written with them, "
        "not on their next scheduled run (runs with TEARLINE_FEED_SCHEDULER).",
    )
    feed_outbox_sweep_s: float = Field(
        30.0,
        gt=0,
        description="How often the push outbox is swept without a wake-up (versions stored by another "
        "instance, retries); each commit on this instance wakes it at once.",
    )
    feed_push_concurrency: int = Field(
        4, gt=0, description="Push feeds the outbox delivers at the same time (one slow partner delays no other)."
    )
    feed_live_pull: bool = Field(
        True,
        description="Pull feeds from another Tearline follow its event stream and pull as soon as it announces "
        "objects; other servers are polled on schedule (runs with TEARLINE_FEED_SCHEDULER).",
    )
    feed_live_check_s: float = Field(
        30.0, gt=0, description="How often new, changed or removed pull feeds are looked for to follow live."
    )
    feed_live_reprobe_s: float = Field(
        900.0, gt=0, description="How long a pull feed whose server has no event stream is polled before asking again."
    )
    feed_live_idle_timeout_s: float = Field(
        60.0,
        gt=0,
        description="A followed event stream silent this long (no event, no keep-alive) is reconnected.",
    )
    host: str = Field("127.0.0.1", description="Address `tearline serve` listens on.")
    port: int = Field(8000, description="Port `tearline serve` listens on.")

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Least severe log level `tearline serve` writes."
    )
    log_format: Literal["json", "text"] = Field(
        "json", description="`json`: one JSON object per line (for log collectors); `text`: plain lines."
    )
    metrics_token: str | None = Field(
        None,
        description="`/metrics` requires `Authorization: Bearer <this value>`; unset, `/metrics` answers 401 "
        "unless TEARLINE_METRICS_PUBLIC opens it (see docs/operators/observability.md).",
    )
    metrics_public: bool = Field(
        False,
        description="Serve `/metrics` without a token (only where nothing but the scraper can reach the port); "
        "ignored when TEARLINE_METRICS_TOKEN is set.",
    )

    @field_validator("home_nation")
    @classmethod
    def _trigraph(cls, value: str) -> str:
        value = value.strip().upper()
        if not _TRIGRAPH.match(value):
            raise ValueError(f"home nation must be an ISO 3166-1 alpha-3 code, got {value!r}")
        return value

    @field_validator("jwt_algorithms")
    @classmethod
    def _asymmetric_only(cls, value: list[str]) -> list[str]:
        allowed = {"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512"}
        bad = [alg for alg in value if alg not in allowed]
        if bad:
            raise ValueError(f"jwt_algorithms accepts asymmetric algorithms only; refused: {bad}")
        return value

    @model_validator(mode="after")
    def _page_sizes(self) -> Settings:
        if self.default_page_size > self.max_page_size:
            raise ValueError("default_page_size must not exceed max_page_size")
        return self

    @property
    def is_production(self) -> bool:
        """Whether ``env`` is ``production``."""
        return self.env == "production"

    @property
    def is_sqlite(self) -> bool:
        """Whether the database is SQLite."""
        return self.database_url.startswith("sqlite")

    @cached_property
    def cursor_secret(self) -> str:
        """Secret for signing cursors: configured, or random per process in development."""
        return self.secret_key or secrets.token_urlsafe(32)

    def default_key_paths(self) -> tuple[Path, Path]:
        """Where `tearline keys generate` writes a development key pair."""
        keys = self.data_dir / "keys"
        return keys / "jwt-private.pem", keys / "jwt-public.pem"

    def public_key_path(self) -> Path | None:
        """The configured verification key, or the development key pair's if it exists."""
        if self.jwt_public_key_file:
            return self.jwt_public_key_file
        if not self.is_production:
            candidate = self.default_key_paths()[1]
            if candidate.exists():
                return candidate
        return None

    def private_key_path(self) -> Path | None:
        """The signing key for `tearline token issue`, configured or the development one."""
        if self.jwt_private_key_file:
            return self.jwt_private_key_file
        candidate = self.default_key_paths()[0]
        return candidate if candidate.exists() else None

    def check_startup(self) -> None:
        """Refuse to start without the secrets and keys a server needs."""
        problems: list[str] = []
        if self.is_production:
            if not self.secret_key:
                problems.append("TEARLINE_SECRET_KEY is required in production")
            if not self.jwt_public_key_file and not self.jwt_hs256_secret:
                problems.append("TEARLINE_JWT_PUBLIC_KEY_FILE (or TEARLINE_JWT_HS256_SECRET) is required in production")
            if "database_url" not in self.model_fields_set:
                problems.append("TEARLINE_DATABASE_URL is required in production")
            if "home_nation" not in self.model_fields_set:
                problems.append("TEARLINE_HOME_NATION is required in production")
            if not self.audit_key:
                problems.append("TEARLINE_AUDIT_KEY is required in production")
        key = self.public_key_path()
        if key is not None and not key.exists():
            problems.append(f"JWT public key file not found: {key}")
        if key is None and not self.jwt_hs256_secret and not self.is_production:
            problems.append("no JWT verification key: run `tearline keys generate` or set TEARLINE_JWT_PUBLIC_KEY_FILE")
        if problems:
            raise ConfigurationError("; ".join(problems))
