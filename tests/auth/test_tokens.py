"""Bearer token verification over HTTP: every bad token is a 401, every refused principal a 403."""

from __future__ import annotations

import base64
import time

import orjson
import pytest
from jose import jwt

from tests.conftest import HOME


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(data)).rstrip(b"=").decode()


def _claims(settings, **overrides) -> dict:
    now = int(time.time())
    claims = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": "analyst-1",
        "iat": now,
        "exp": now + 600,
        "nation": HOME,
        "roles": ["analyst"],
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _signed(key_dir, claims: dict, algorithm: str = "RS256") -> str:
    return jwt.encode(claims, (key_dir / "jwt-private.pem").read_text(), algorithm=algorithm)


def _get_collections(client, api, token: str | None, scheme: str = "Bearer"):
    headers = {"Authorization": f"{scheme} {token}"} if token is not None else {}
    return client.get(f"{api}/collections/", headers=headers)


def test_valid_token_is_accepted(client, api, key_dir, settings):
    assert _get_collections(client, api, _signed(key_dir, _claims(settings))).status_code == 200


@pytest.mark.parametrize("scheme", ["Basic", "Digest", "JWT"])
def test_other_schemes_are_refused(client, api, key_dir, settings, scheme):
    response = _get_collections(client, api, _signed(key_dir, _claims(settings)), scheme=scheme)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_token_scheme_of_taxii2_client_is_accepted(client, api, key_dir, settings):
    """taxii2-client's TokenAuth sends the JWT as ``Authorization: Token <jwt>``."""
    assert _get_collections(client, api, _signed(key_dir, _claims(settings)), scheme="Token").status_code == 200


def test_missing_token_is_401_with_challenge(client, api):
    response = _get_collections(client, api, None)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["http_status"] == "401"


@pytest.mark.parametrize(
    "overrides",
    [
        {"exp": int(time.time()) - 10},
        {"iss": "someone-else"},
        {"aud": "another-service"},
        {"sub": None},
        {"sub": ""},
        {"sub": "x" * 256},
        {"exp": None},
        {"iss": None},
        {"aud": None},
        {"nbf": int(time.time()) + 3600},
        {"nation": None},
        {"nation": "nld"},
        {"roles": None},
        {"roles": []},
        {"roles": ["analyst", "superuser"]},
        {"roles": "analyst"},
        {"clearance": "SUPER SECRET"},
    ],
    # exp and nbf are clock-relative: name them by key, so every pytest-xdist worker collects the same ids.
    ids=lambda o: ",".join(k if k in ("exp", "nbf") else f"{k}={v}" for k, v in o.items()),
)
def test_bad_claims_are_401(client, api, key_dir, settings, overrides):
    assert _get_collections(client, api, _signed(key_dir, _claims(settings, **overrides))).status_code == 401


def test_unsigned_alg_none_is_refused(client, api, settings):
    token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims(settings))}."
    assert _get_collections(client, api, token).status_code == 401


def test_hs256_signed_with_the_public_key_is_refused(client, api, key_dir, settings):
    """Algorithm confusion: the verification key used as an HMAC secret."""
    public_pem = (key_dir / "jwt-public.pem").read_text()
    header = _b64({"alg": "HS256", "typ": "JWT"})
    payload = _b64(_claims(settings))
    import hashlib
    import hmac

    signature = hmac.new(public_pem.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    token = f"{header}.{payload}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"
    assert _get_collections(client, api, token).status_code == 401


def test_tampered_payload_is_refused(client, api, key_dir, settings):
    header, _, signature = _signed(key_dir, _claims(settings)).split(".")
    forged = _b64(_claims(settings, roles=["admin"]))
    assert _get_collections(client, api, f"{header}.{forged}.{signature}").status_code == 401


def test_garbage_token_is_refused(client, api):
    for token in ["not-a-token", "a.b.c", "", "....."]:
        assert _get_collections(client, api, token).status_code == 401


def test_token_from_another_key_is_refused(client, api, settings, tmp_path):
    from app.auth.keys import generate_key_pair

    generate_key_pair(tmp_path / "other.pem", tmp_path / "other.pub")
    token = jwt.encode(_claims(settings), (tmp_path / "other.pem").read_text(), algorithm="RS256")
    assert _get_collections(client, api, token).status_code == 401


def test_unregistered_partner_nation_is_403(client, api, key_dir, settings):
    token = _signed(key_dir, _claims(settings, nation="PRK", roles=["partner"]))
    assert _get_collections(client, api, token).status_code == 403


def test_partner_may_lower_but_not_raise_its_clearance(client, api, key_dir, settings):
    # FRA is registered at CONFIDENTIAL (rank 2) in tests/conftest.py.
    lower = _signed(key_dir, _claims(settings, nation="FRA", roles=["partner"], clearance="RESTRICTED"))
    higher = _signed(key_dir, _claims(settings, nation="FRA", roles=["partner"], clearance="SECRET"))
    assert _get_collections(client, api, lower).status_code == 200
    assert _get_collections(client, api, higher).status_code == 403


def test_home_nation_cannot_hold_partner_role(client, api, key_dir, settings):
    token = _signed(key_dir, _claims(settings, roles=["partner"]))
    assert _get_collections(client, api, token).status_code == 403


def test_partner_nation_cannot_hold_home_roles(client, api, key_dir, settings):
    token = _signed(key_dir, _claims(settings, nation="USA", roles=["analyst"]))
    assert _get_collections(client, api, token).status_code == 403


def test_inactive_partner_is_refused(client, api, key_dir, settings, session):
    from app.partners.service import save_partner

    save_partner(session, nation="NOR", clearance=2, home_nation=HOME, active=False)
    token = _signed(key_dir, _claims(settings, nation="NOR", roles=["partner"]))
    assert _get_collections(client, api, token).status_code == 403
