"""What several benches set up alike: a served app with the workload's partners and one collection,
and RS256 tokens for its principals."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlmodel import Session

from app.auth.tokens import issue_token
from app.config.settings import Settings
from app.db import migrations
from app.main import create_app
from app.partners.service import save_partner
from app.taxii import service
from bench.releasability import HOME
from bench.workload import PARTNERS

Partner = tuple[str, int, list[str]]
"""(nation, clearance rank, groups) of a registered partner."""
TokenMaker = Callable[[str, str, str], str]
"""``token(subject, nation, role)``: a signed bearer token."""


def token_maker(settings: Settings, key_dir: Path, lifetime_s: int = 24 * 3600) -> TokenMaker:
    """Tokens signed with the bench's private key (RS256 signing costs tens of ms: sign each once)."""
    private_key = (key_dir / "jwt-private.pem").read_text()

    def token(subject: str, nation: str, role: str) -> str:
        return issue_token(
            key=private_key,
            algorithm="RS256",
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            subject=subject,
            nation=nation,
            roles=[role],
            lifetime_s=lifetime_s,
        )

    return token


def app_with_collection(
    stack: contextlib.ExitStack, settings: Settings, title: str, partners: Sequence[Partner] = PARTNERS
) -> tuple[Any, str]:
    """A migrated store with ``partners`` and one collection partners read and analysts write; the
    app's engines are disposed when ``stack`` closes. Returns the app and the collection id."""
    migrations.upgrade(settings.database_url)
    app = create_app(settings)
    stack.callback(app.state.audit_engine.dispose)
    stack.callback(app.state.engine.dispose)
    with Session(app.state.engine) as session:
        for nation, clearance, groups in partners:
            save_partner(
                session,
                nation=nation,
                clearance=clearance,
                groups=groups,
                home_nation=HOME,
                mappings=app.state.mappings,
            )
        collection_id = service.create_collection(
            session, title=title, read_roles={"partner", "analyst"}, write_roles={"analyst"}
        ).id
    return app, collection_id
