"""Alembic environment: the schema is created only by these migrations, in tests too."""

from __future__ import annotations

from logging.config import fileConfig

from sqlmodel import SQLModel

import app.audit.models
import app.auth.revocation
import app.disclosure.models
import app.feeds.models
import app.items.models
import app.markings.models
import app.partners.models
import app.policy.models
import app.recall.models
import app.taxii.models  # noqa: F401
from alembic import context
from app.config.settings import Settings
from app.db.engine import make_engine

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

# The models, for `alembic check` and for drafting a revision with --autogenerate (to be reviewed
# by hand): the schema itself is still created only by the migrations.
target_metadata = SQLModel.metadata


def _database_url() -> str:
    return config.get_main_option("sqlalchemy.url") or Settings().database_url


def run_migrations_offline() -> None:
    """Emit SQL to stdout instead of running it."""
    context.configure(
        url=_database_url(), target_metadata=target_metadata, literal_binds=True, dialect_opts={"paramstyle": "named"}
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run migrations on a live connection."""
    engine = make_engine(_database_url())
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=connection.dialect.name == "sqlite",
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
