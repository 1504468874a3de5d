"""Run Alembic migrations from code (CLI and tests): the only way the schema is created."""

from __future__ import annotations

from alembic.config import Config

from alembic import command
from app.config.settings import REPO_ROOT


def alembic_config(database_url: str) -> Config:
    """An Alembic config for ``database_url`` that leaves the caller's logging alone."""
    config = Config(str(REPO_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(REPO_ROOT / "alembic"))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["configure_logger"] = False
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Migrate ``database_url`` up to ``revision``."""
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    """Migrate ``database_url`` down to ``revision``."""
    command.downgrade(alembic_config(database_url), revision)
