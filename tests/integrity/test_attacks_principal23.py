"""Attacks on how a bearer token becomes a Principal (7cbf73e: one Core statement for the subject's
revocation and the nation's partner agreement; d2eb4af: get_session a coroutine). Both stores."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from jose import jwt
from sqlalchemy import delete, select
from sqlmodel import Session

from app.audit.models import AuditRecord
from app.auth.principal import HOME_ROLES, Principal
from app.auth.revocation import TokenRevocation, revoke_subject, revoked, revoked_before_of
from app.auth.tokens import MAX_NUMERIC_DATE
from app.http import dependencies as deps
from app.http.errors import ApiError
from app.markings.classification import TOP_RANK
from app.partners.models import Partner
from tests.conftest import HOME, TAXII

ROOT = "/taxii2/"


@pytest.fixture
def raw_client(app):
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def sign(key_dir, settings):
    """``sign(sub=..., nation=..., roles=[...], iat=...)``: an honestly signed token; ``iat=None`` drops it."""
    private_key = (key_dir / "jwt-private.pem").read_text()

    def _sign(**changes) -> str:
        now = int(time.time())
        claims = {
            "iss": settings.jwt_issuer,
            "aud": settings.jwt_audience,
            "sub": "principal23",
            "iat": now,
            "nbf": now - 5,
            "exp": now + 600,
            "nation": "USA",
            "roles": ["partner"],
        }
        claims.update(changes)
        return jwt.encode({k: v for k, v in claims.items() if v is not None}, private_key, algorithm="RS256")

    return _sign


def _get(client, token: str):
    return client.get(ROOT, headers={"Authorization": f"Bearer {token}", "Accept": TAXII})


def _audit(app, response) -> list[tuple[str, int]]:
    with Session(app.state.engine) as session:
        rows = session.execute(
            select(AuditRecord.decision, AuditRecord.status).where(
                AuditRecord.request_id == response.headers["x-request-id"]
            )
        ).all()
    return [tuple(r) for r in rows]


def _set_revocation(app, subject: str, moment: int) -> None:
    with Session(app.state.engine) as session:
        session.merge(TokenRevocation(subject=subject, revoked_before=moment, revoked_by="principal23"))
        session.commit()


def _set_partner(app, nation: str, clearance: int, groups: str, active: bool = True) -> None:
    """Write a partner row as it stands in the database (no normalisation, no epoch bump)."""
    with Session(app.state.engine) as session:
        partner = session.get(Partner, nation) or Partner(nation=nation, clearance=clearance)
        partner.clearance, partner.groups, partner.active = clearance, groups, active
        session.add(partner)
        session.commit()


def _drop_partner(app, nation: str) -> None:
    with Session(app.state.engine) as session:
        session.execute(delete(Partner).where(Partner.nation == nation))
        session.commit()


def _principal(app, claims: dict) -> Principal | tuple[int, str]:
    """The new code's outcome, each call on a fresh session (as each request has)."""
    with Session(app.state.engine) as session:
        try:
            return deps.principal_from_claims(claims, session, app.state.settings, app.state.mappings)
        except ApiError as exc:
            return exc.status, exc.description


def _old_principal(app, claims: dict) -> Principal | tuple[int, str]:
    """The reference: principal_from_claims as it was before 7cbf73e (two ORM queries)."""
    settings, mappings = app.state.settings, app.state.mappings
    nation, roles, subject = claims.get("nation"), claims.get("roles"), claims.get("sub")
    with Session(app.state.engine) as session:
        try:
            if not isinstance(subject, str) or not subject or len(subject) > deps.MAX_SUBJECT_LENGTH:
                raise deps._unauthorized("subject")
            if not isinstance(nation, str) or len(nation) != 3 or not nation.isalpha() or not nation.isupper():
                raise deps._unauthorized("nation")
            if not isinstance(roles, list) or not roles:
                raise deps._unauthorized("roles")
            role_set = frozenset(roles)
            if revoked(session.execute(select(revoked_before_of(subject))).scalar_one(), claims.get("iat")):
                raise deps._unauthorized("The token has been revoked.")
            claimed = claims.get("clearance")
            rank = None if claimed is None else deps._clearance_rank(claimed, mappings)
            if nation == settings.home_nation:
                if not role_set <= HOME_ROLES:
                    raise ApiError(403, "home partner")
                return Principal(subject, nation, role_set, TOP_RANK if rank is None else rank, frozenset(), True)
            if role_set != {"partner"}:
                raise ApiError(403, "partner roles")
            partner = session.get(Partner, nation)
            if partner is None or not partner.active or (rank is not None and rank > partner.clearance):
                raise ApiError(403, "partner")
            clearance = partner.clearance if rank is None else rank
            return Principal(subject, nation, role_set, clearance, frozenset(partner.group_list), False)
        except ApiError as exc:
            return exc.status, exc.description


def _same(new, old) -> bool:
    return new == old if isinstance(new, Principal) or isinstance(old, Principal) else new[0] == old[0]


def test_revocation_boundaries_match_the_documented_rule(app, raw_client, sign):
    """revoked_before=M: iat < M and iat == M and no iat are refused (401, audited deny), iat M+1 admitted;
    iat as a string, a bool or beyond year 9999 never gets past the verifier; another subject is untouched."""
    subject = f"rev-{uuid.uuid4().hex[:8]}"
    moment = int(time.time()) - 100
    _set_revocation(app, subject, moment)
    cases = [
        (moment - 1, 401),
        (moment, 401),
        (None, 401),
        (moment + 1, 200),
        (str(moment + 50), 401),
        (True, 401),
        (MAX_NUMERIC_DATE + 1, 401),
        (moment + 1.0, 200),
        (moment - 0.5, 401),
        (moment * 1.0, 401),
    ]
    for iat, expected in cases:
        response = _get(raw_client, sign(sub=subject, iat=iat))
        assert response.status_code == expected, (iat, response.text)
        assert _audit(app, response) == [("deny" if expected != 200 else "allow", expected)], iat
    assert _get(raw_client, sign(sub=subject + "-other", iat=moment)).status_code == 200


def test_a_fractional_iat_issued_before_the_revocation_is_still_refused(app, raw_client, sign):
    """A token issued (float iat, RFC 7519 NumericDate) before the operator revokes its subject in the same
    second must be refused: revoke_subject stores int(time.time()), the floor, so iat M+0.x > M passes."""
    subject = f"frac-{uuid.uuid4().hex[:8]}"
    while time.time() % 1 > 0.3:  # leave room in this second for the issue then the revocation
        time.sleep(0.05)
    token = sign(sub=subject, iat=time.time(), nbf=int(time.time()) - 5)
    time.sleep(0.2)
    with Session(app.state.engine) as session:
        moment = revoke_subject(session, subject, revoked_by="principal23")
        session.commit()
    assert jwt.get_unverified_claims(token)["iat"] < time.time()  # issued before the revocation
    response = _get(raw_client, token)
    assert response.status_code == 401, f"revoked at {moment}, token iat {jwt.get_unverified_claims(token)['iat']}"


@pytest.mark.parametrize("base", ["alice", "o'brien\"; --", "Zoë 測試 \u202e", "x" * 255])
def test_revocation_matches_the_subject_exactly(app, raw_client, sign, base):
    """Revoking S refuses S only: case, leading/trailing spaces, NBSP, a different last character all pass."""
    subject = base[:-8] + uuid.uuid4().hex[:8] if len(base) == 255 else f"{base}-{uuid.uuid4().hex[:6]}"
    _set_revocation(app, subject, int(time.time()) + 5)
    assert _get(raw_client, sign(sub=subject)).status_code == 401
    for other in (
        subject.upper(),
        subject + " ",
        " " + subject[:-1] if len(subject) == 255 else " " + subject,
        subject[:-1] + "\u00a0",
        subject[:-1] + ("0" if subject[-1] != "0" else "1"),
    ):
        if other != subject and len(other) <= 255:
            assert _get(raw_client, sign(sub=other)).status_code == 200, repr(other)


def test_revocation_then_reissue(app, raw_client, sign):
    """A revoked subject's old token stays refused; a token issued in a later second is admitted."""
    subject = f"re-{uuid.uuid4().hex[:8]}"
    old = sign(sub=subject)
    assert _get(raw_client, old).status_code == 200
    with Session(app.state.engine) as session:
        revoke_subject(session, subject, revoked_by="principal23")
        session.commit()
    assert _get(raw_client, old).status_code == 401
    time.sleep(1.05)
    assert _get(raw_client, sign(sub=subject)).status_code == 200
    assert _get(raw_client, old).status_code == 401


def test_new_and_old_principal_code_agree_on_every_case(app):
    """Differential: over nations (home, registered, unknown, inactive, odd groups, home with a partner row,
    a nation that is a group code), roles, clearances and revocations, the one-statement code gives the same
    principal or refusal status as the two ORM queries did."""
    _set_partner(app, "QQA", 2, " NATO,,FVEY,FVEY, ,EU")
    _set_partner(app, "QQB", 3, "FVEY", active=False)
    _set_partner(app, "QQC", 0, "")
    _set_partner(app, "EUX", 1, "EU,EUX")
    _set_partner(app, HOME, 0, "FVEY", active=False)
    revoked = f"dif-{uuid.uuid4().hex[:6]}"
    _set_revocation(app, revoked, int(time.time()) - 50)
    now = int(time.time())
    try:
        seen = 0
        for nation in ("USA", "CAN", "QQA", "QQB", "QQC", "EUX", HOME, "ZZZ", "FVE", "USB"):
            for roles in (["partner"], ["analyst"], ["partner", "analyst"], ["admin", "officer"], ["partner"] * 2):
                for clearance in (None, 0, 1, 3, 4, "SECRET", "UNCLASSIFIED"):
                    for sub, iat in ((f"ok-{nation}", now), (revoked, now - 60), (revoked, now)):
                        claims = {"sub": sub, "nation": nation, "roles": roles, "iat": iat, "clearance": clearance}
                        new, old = _principal(app, claims), _old_principal(app, claims)
                        assert _same(new, old), (claims, new, old)
                        if isinstance(new, Principal):
                            assert "" not in new.groups and (new.nation != HOME or new.groups == frozenset())
                            seen += 1
        assert seen > 20
        qqa = _principal(app, {"sub": "q", "nation": "QQA", "roles": ["partner"], "iat": now})
        assert isinstance(qqa, Principal) and qqa.clearance == 2 and "FVEY" in qqa.groups
        home = _principal(app, {"sub": "h", "nation": HOME, "roles": ["analyst"], "iat": now})
        assert isinstance(home, Principal) and home.is_home and home.clearance == TOP_RANK and not home.groups
    finally:
        for nation in ("QQA", "QQB", "QQC", "EUX", HOME):
            _drop_partner(app, nation)


def test_partner_changes_apply_on_the_very_next_request(app, raw_client, sign):
    """Deactivate, reactivate, lower clearance, change groups between requests: each applies at once."""
    nation = "QQD"
    _set_partner(app, nation, 3, "FVEY,NATO")
    token, secret = sign(sub="qqd", nation=nation), sign(sub="qqd", nation=nation, clearance="SECRET")
    claims = {"sub": "qqd", "nation": nation, "roles": ["partner"], "iat": int(time.time())}
    try:
        assert _get(raw_client, token).status_code == 200 and _get(raw_client, secret).status_code == 200
        _set_partner(app, nation, 3, "FVEY,NATO", active=False)
        for t in (token, secret):
            response = _get(raw_client, t)
            assert response.status_code == 403 and _audit(app, response) == [("deny", 403)]
        _set_partner(app, nation, 3, "FVEY,NATO", active=True)
        assert _get(raw_client, token).status_code == 200
        _set_partner(app, nation, 1, "NATO")
        response = _get(raw_client, secret)
        assert response.status_code == 403 and _audit(app, response) == [("deny", 403)]
        assert _principal(app, claims) == Principal(
            "qqd", nation, frozenset({"partner"}), 1, frozenset({"NATO"}), False
        )
        _set_partner(app, nation, 2, "")
        assert _principal(app, claims) == Principal("qqd", nation, frozenset({"partner"}), 2, frozenset(), False)
        _drop_partner(app, nation)
        assert _get(raw_client, token).status_code == 403
    finally:
        _drop_partner(app, nation)


def test_every_refusal_is_refused_and_audited(app, raw_client, sign):
    """No token, a bad token, revoked, unknown nation, inactive, clearance above, partner with a home role,
    home with the partner role: 401/403 with one deny record of that status; the control is allowed."""
    _set_partner(app, "QQE", 1, "NATO", active=False)
    revoked = f"aud-{uuid.uuid4().hex[:6]}"
    _set_revocation(app, revoked, int(time.time()) + 5)
    try:
        cases = [
            (None, 401),
            ("Bearer not.a.token", 401),
            (sign(sub=revoked), 401),
            (sign(nation="ZZZ"), 403),
            (sign(nation="QQE"), 403),
            (sign(nation="CAN", clearance="SECRET"), 403),
            (sign(roles=["partner", "analyst"]), 403),
            (sign(nation=HOME), 403),
            (sign(nation=HOME, roles=["analyst", "partner"]), 403),
            (sign(), 200),
        ]
        for token, expected in cases:
            headers = {"Accept": TAXII}
            if token:
                headers["Authorization"] = token if token.startswith("Bearer") else f"Bearer {token}"
            response = raw_client.get(ROOT, headers=headers)
            assert response.status_code == expected, (token, response.text)
            assert _audit(app, response) == [("deny" if expected != 200 else "allow", expected)], token
    finally:
        _drop_partner(app, "QQE")


@pytest.mark.parametrize("subject", ["nul\x00byte", "surrogate\ud800x"])
def test_unstorable_subjects_are_refused_not_crashed(app, raw_client, sign, subject):
    """A signed subject the database cannot hold (NUL on PostgreSQL, a lone surrogate) is refused and audited,
    not a 500 (pre-existing: the old is_revoked bound the same subject; fails closed, but unaudited)."""
    response = _get(raw_client, sign(sub=subject))
    assert response.status_code in (200, 401, 403), (response.text, dict(response.headers))
    assert _audit(app, response) == [("allow" if response.status_code == 200 else "deny", response.status_code)]


def test_no_request_is_admitted_after_the_revocation_commits(app, sign):
    """Many requests with one token in flight while the revocation commits: every request that started after
    the commit returned is refused, and requests before it were admitted (the test means something)."""
    subject = f"race-{uuid.uuid4().hex[:8]}"
    token = sign(sub=subject)
    committed: list[float] = []
    results: list[tuple[float, int]] = []
    stop = threading.Event()

    def worker(client) -> None:
        while not stop.is_set():
            started = time.monotonic()
            results.append((started, _get(client, token).status_code))

    with TestClient(app, raise_server_exceptions=False) as client, ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(worker, client) for _ in range(8)]
        time.sleep(0.6)
        with Session(app.state.engine) as session:
            revoke_subject(session, subject, revoked_by="principal23")
            session.commit()
        committed.append(time.monotonic())
        time.sleep(0.8)
        stop.set()
        for future in futures:
            future.result()
    before = [status for started, status in results if started < committed[0]]
    after = [status for started, status in results if started > committed[0]]
    assert before.count(200) > 5 and len(after) > 5
    assert set(after) == {401}, sorted(set(after))
    assert set(before) <= {200, 401}
