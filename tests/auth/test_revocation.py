"""Revoking a subject's tokens: refused at once on every route, accepted again when issued later,
and revoked by the operator's command (an audited change). Open streams: tests/live/test_events.py."""

from __future__ import annotations

import time
import uuid

from sqlalchemy import text
from typer.testing import CliRunner

from app.auth.revocation import revoke_subject
from app.cli import main as cli

runner = CliRunner()


def _taxii_root(client, headers) -> int:
    return client.get("/taxii2/", headers=headers).status_code


def test_a_revoked_subject_is_refused_and_a_later_token_accepted(client, auth, session):
    subject = f"usa-{uuid.uuid4().hex[:8]}"
    before = auth(subject=subject, nation="USA", roles=("partner",))
    other = auth(subject=f"usa-other-{uuid.uuid4().hex[:8]}", nation="USA", roles=("partner",))
    assert _taxii_root(client, before) == 200
    revoke_subject(session, subject, revoked_by="test")
    session.commit()
    refused = client.get("/taxii2/", headers=before)
    assert refused.status_code == 401 and "revoked" in refused.json()["description"]
    assert _taxii_root(client, other) == 200  # only that subject
    time.sleep(1.1)  # iat has a resolution of one second
    assert _taxii_root(client, auth(subject=subject, nation="USA", roles=("partner",))) == 200


def test_the_operator_revokes_with_an_audited_command(app, client, auth, cli_env):
    subject = f"gbr-{uuid.uuid4().hex[:8]}"
    headers = auth(subject=subject, nation="GBR", roles=("partner",))
    assert _taxii_root(client, headers) == 200
    result = runner.invoke(cli.app, ["token", "revoke", "--subject", subject], env=cli_env)
    assert result.exit_code == 0, result.output
    assert _taxii_root(client, headers) == 401
    with app.state.engine.connect() as connection:
        routes = (
            connection.execute(
                text("SELECT route FROM audit_record WHERE method = 'CLI' AND route LIKE :r"), {"r": f"%{subject}%"}
            )
            .scalars()
            .all()
        )
    assert routes == [f"tearline token revoke --subject {subject}"]
    refused = runner.invoke(cli.app, ["token", "revoke", "--subject", ""], env=cli_env)
    assert refused.exit_code != 0 and "Traceback" not in refused.output
