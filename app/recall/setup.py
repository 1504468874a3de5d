"""Binding recall to an engine: every process that stores versions (the server, `tearline feed sync`,
the demo's seeding) withdraws and notifies on the same path, in the storing transaction."""

from __future__ import annotations

from functools import partial

from sqlalchemy import Engine

from app.config.settings import Settings
from app.items.changes import bind_after_store
from app.markings.mappings import Mappings
from app.policy.visibility import VisibilityCache
from app.recall.detect import on_stored
from app.recall.notice import recall_extension
from app.recall.service import RecallEnv


def bind_recall(engine: Engine, settings: Settings, mappings: Mappings, visibility: VisibilityCache) -> RecallEnv:
    """Run recall detection in every transaction on ``engine`` that stores versions; returns its environment."""
    env = RecallEnv(mappings, settings.home_nation, visibility, recall_extension(settings.mappings_dir))
    bind_after_store(engine, "recall", partial(on_stored, env=env), order=20)
    return env
