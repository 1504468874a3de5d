"""Token details (issue 19, item 5): `crit`, `kid` and the time claims of tokens signed with the real key.

Each token below carries a valid signature of the configured key and differs from an accepted
token in one header parameter or one claim, so a refusal can only come from that detail. A
refusal is a TokenError (a 401 over HTTP) with the same generic message for every detail, never
an unexpected exception (a 500).
"""

from __future__ import annotations

import time

import pytest
from jose import jwt

from app.auth.tokens import TokenError, TokenVerifier
from tests.conftest import HOME

GENERIC = "invalid token"
YEAR_10000 = 253402300800  # 10000-01-01T00:00:00Z


@pytest.fixture(scope="module")
def private_key(key_dir) -> str:
    return (key_dir / "jwt-private.pem").read_text()


@pytest.fixture(scope="module")
def verifier(key_dir) -> TokenVerifier:
    return TokenVerifier("iss", "aud", (key_dir / "jwt-public.pem").read_text(), ("RS256",))


def _claims(**changes: object) -> dict:
    now = int(time.time())
    claims = {"iss": "iss", "aud": "aud", "sub": "s", "iat": now, "nbf": now, "exp": now + 600}
    return {**claims, **changes}


def _signed(private_key: str, claims: dict, **headers: object) -> str:
    return jwt.encode(claims, private_key, algorithm="RS256", headers=headers or None)


def test_the_control_token_and_fractional_times_are_accepted(verifier, private_key):
    """NumericDate may be fractional (RFC 7519, 2): a float within range is a valid time."""
    now = time.time()
    assert verifier.verify(_signed(private_key, _claims()))["sub"] == "s"
    assert verifier.verify(_signed(private_key, _claims(iat=now - 1.5, nbf=now - 1.5, exp=now + 600.25)))


@pytest.mark.parametrize(
    "crit",
    [["exp"], ["http://example.com/unknown"], [], "exp", None],
    ids=["registered-name", "unknown-extension", "empty-list", "string", "null"],
)
def test_any_crit_header_is_refused(verifier, private_key, crit):
    """RFC 7515, 4.1.11: a recipient that does not understand a listed extension must reject the token;
    Tearline understands none, so a token carrying `crit` in any form is refused."""
    with pytest.raises(TokenError) as refused:
        verifier.verify(_signed(private_key, _claims(), crit=crit))
    assert str(refused.value) == GENERIC


@pytest.mark.parametrize("kid", [None, 0, 1.5, True, ["key-2026"], {"id": "key-2026"}])
@pytest.mark.parametrize("configured", [None, "key-2026"], ids=["no-kid-configured", "kid-configured"])
def test_a_kid_that_is_not_a_string_is_refused(key_dir, private_key, kid, configured):
    verifier = TokenVerifier("iss", "aud", (key_dir / "jwt-public.pem").read_text(), ("RS256",), key_id=configured)
    with pytest.raises(TokenError, match="key id"):
        verifier.verify(_signed(private_key, _claims(), kid=kid))


def test_a_string_kid_still_follows_the_configuration(key_dir, private_key):
    configured = TokenVerifier("iss", "aud", (key_dir / "jwt-public.pem").read_text(), ("RS256",), key_id="k1")
    assert configured.verify(_signed(private_key, _claims(), kid="k1"))
    assert configured.verify(_signed(private_key, _claims()))  # kid is optional


BAD_TIMES = {
    "string": lambda now: str(now + 600),
    "numeric-string-float": lambda now: f"{now + 600}.0",
    "null": lambda now: None,
    "true": lambda now: True,
    "list": lambda now: [now + 600],
    "object": lambda now: {"at": now + 600},
    "negative": lambda now: -1,
    "1e30": lambda now: 1e30,
    "beyond-63-bits": lambda now: 2**63,
    "year-10000": lambda now: YEAR_10000,
    "infinity": lambda now: float("inf"),
    "nan": lambda now: float("nan"),
}


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("bad", list(BAD_TIMES), ids=list(BAD_TIMES))
def test_a_time_claim_that_is_not_a_sane_number_is_refused(verifier, private_key, claim, bad):
    value = BAD_TIMES[bad](int(time.time()))
    with pytest.raises(TokenError) as refused:
        verifier.verify(_signed(private_key, _claims(**{claim: value})))
    assert str(refused.value) == GENERIC


def test_the_last_second_of_year_9999_is_still_a_time(verifier, private_key):
    assert verifier.verify(_signed(private_key, _claims(exp=YEAR_10000 - 1)))


@pytest.mark.parametrize(
    "header, claims, description",
    [
        ({"crit": ["exp"]}, {}, GENERIC),
        ({"kid": None}, {}, "token key id is not known"),
        ({}, {"exp": "4102444800"}, GENERIC),
        ({}, {"exp": 1e30}, GENERIC),
        ({}, {"exp": None}, GENERIC),
        ({}, {"iat": []}, GENERIC),
        ({}, {"exp": float("inf")}, GENERIC),
    ],
    ids=["crit", "kid-null", "exp-string", "exp-1e30", "exp-null", "iat-list", "exp-infinity"],
)
def test_over_http_each_is_the_usual_401(client, api, key_dir, settings, header, claims, description):
    now = int(time.time())
    token = jwt.encode(
        {
            "iss": settings.jwt_issuer,
            "aud": settings.jwt_audience,
            "sub": "analyst-1",
            "iat": now,
            "exp": now + 600,
            "nation": HOME,
            "roles": ["analyst"],
            **claims,
        },
        (key_dir / "jwt-private.pem").read_text(),
        algorithm="RS256",
        headers=header or None,
    )
    response = client.get(f"{api}/collections/", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["description"] == description
