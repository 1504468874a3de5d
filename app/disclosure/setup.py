"""Binding disclosure review to an engine: every process that stores versions (the server, `tearline
feed sync`, the demo's seeding) holds what the release rules hold, before recall detection runs."""

from __future__ import annotations

from functools import partial

from sqlalchemy import Engine

from app.config.settings import Settings
from app.disclosure.hold import DisclosureEnv, on_stored
from app.items.changes import bind_after_store
from app.markings.mappings import Mappings

HOLD_ORDER = 10
"""Before recall detection (order 20): a held version withdraws nothing until it is released."""


def bind_disclosure(engine: Engine, settings: Settings, mappings: Mappings) -> DisclosureEnv:
    """Hold versions for review in every storing transaction on ``engine``; returns the environment.

    The rules file is read now, so an invalid one stops the process at start, with the reason.
    """
    env = DisclosureEnv(settings.policies_dir, mappings, settings.home_nation)
    env.rules()
    bind_after_store(engine, "disclosure", partial(on_stored, env=env), order=HOLD_ORDER)
    return env
