"""Token attacks (issue 8, item 2): every forged, stale, misdirected or over-claiming token is refused
with 401 or 403 in the TAXII error format, and a well-formed control token is accepted.

Tokens are built by hand (python-jose for the honest signatures, raw base64url and HMAC for the
forgeries) so that each attack is exactly one deviation from a valid token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jose import jwt
from sqlalchemy import select
from sqlmodel import Session

from app.auth import tokens as tokens_module
from app.auth.keys import generate_key_pair
from app.auth.tokens import TokenError, TokenVerifier
from tests.conftest import HOME, TAXII
from tests.hardening import tally
from tests.taxii.helpers import assert_taxii_error, objects_url


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(document: dict) -> str:
    return _b64(json.dumps(document, separators=(",", ":")).encode())


def _claims(settings, **changes) -> dict:
    now = int(time.time())
    claims = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": "attacker",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "nation": "USA",
        "roles": ["partner"],
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


def _hs256(secret: bytes, claims: dict, header: dict | None = None) -> str:
    signing_input = f"{_segment(header or {'alg': 'HS256', 'typ': 'JWT'})}.{_segment(claims)}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


@pytest.fixture(scope="module")
def private_key(key_dir) -> str:
    return (key_dir / "jwt-private.pem").read_text()


@pytest.fixture(scope="module")
def public_key(key_dir) -> str:
    return (key_dir / "jwt-public.pem").read_text()


def _signed(private_key: str, claims: dict, **headers) -> str:
    return jwt.encode(claims, private_key, algorithm="RS256", headers=headers or None)


def _attacker_rsa() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _attacks(settings, private_key: str, public_key: str) -> dict[str, tuple[str, int]]:
    """name -> (token, expected status)."""
    valid = _claims(settings)
    good = _signed(private_key, valid)
    head, payload, signature = good.split(".")
    now = int(time.time())
    attacker = _attacker_rsa()
    attacks = {
        "alg none": (f"{_segment({'alg': 'none', 'typ': 'JWT'})}.{_segment(valid)}.", 401),
        "alg None (case)": (f"{_segment({'alg': 'None', 'typ': 'JWT'})}.{_segment(valid)}.", 401),
        "alg NONE with signature": (f"{_segment({'alg': 'NONE'})}.{_segment(valid)}.{signature}", 401),
        "no alg": (f"{_segment({'typ': 'JWT'})}.{_segment(valid)}.{signature}", 401),
        "HS256 keyed with the RSA public key": (_hs256(public_key.encode(), valid), 401),
        "HS256 keyed with the public key DER": (
            _hs256(
                serialization.load_pem_public_key(public_key.encode()).public_bytes(
                    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
                ),
                valid,
            ),
            401,
        ),
        "HS512 keyed with the public key": (jwt.encode(valid, "x" * 64, algorithm="HS512"), 401),
        "expired": (_signed(private_key, _claims(settings, iat=now - 7200, nbf=now - 7200, exp=now - 3600)), 401),
        "not yet valid": (_signed(private_key, _claims(settings, nbf=now + 3600, exp=now + 7200)), 401),
        "no exp": (_signed(private_key, _claims(settings, exp=None)), 401),
        "wrong issuer": (_signed(private_key, _claims(settings, iss="someone-else")), 401),
        "no issuer": (_signed(private_key, _claims(settings, iss=None)), 401),
        "wrong audience": (_signed(private_key, _claims(settings, aud="another-service")), 401),
        "no audience": (_signed(private_key, _claims(settings, aud=None)), 401),
        "no sub": (_signed(private_key, _claims(settings, sub=None)), 401),
        "empty sub": (_signed(private_key, _claims(settings, sub="")), 401),
        "no nation": (_signed(private_key, _claims(settings, nation=None)), 401),
        "lower-case nation": (_signed(private_key, _claims(settings, nation="usa")), 401),
        "nation list": (_signed(private_key, _claims(settings, nation=["USA"])), 401),
        "no roles": (_signed(private_key, _claims(settings, roles=None)), 401),
        "unknown role": (_signed(private_key, _claims(settings, roles=["superuser"])), 401),
        "tampered signature": (
            f"{head}.{payload}.{signature[:-4]}{'AAAA' if signature[-4:] != 'AAAA' else 'BBBB'}",
            401,
        ),
        "tampered payload (nation USA -> GBR)": (f"{head}.{_segment(valid | {'nation': 'GBR'})}.{signature}", 401),
        "tampered payload (partner -> analyst)": (
            f"{head}.{_segment(valid | {'nation': HOME, 'roles': ['analyst']})}.{signature}",
            401,
        ),
        "signed by an unknown key": (jwt.encode(valid, attacker, algorithm="RS256"), 401),
        "unknown kid": (_signed(private_key, valid, kid="rotated-out-2019"), 401),
        "embedded jwk": (_signed(private_key, valid, jwk={"kty": "RSA", "n": "AQAB", "e": "AQAB"}), 401),
        "jku pointing elsewhere": (_signed(private_key, valid, jku="http://127.0.0.1:9/keys.json"), 401),
        "x5u pointing elsewhere": (_signed(private_key, valid, x5u="http://127.0.0.1:9/cert.pem"), 401),
        "clearance above the partner agreement": (
            _signed(private_key, _claims(settings, nation="CAN", clearance="SECRET")),
            403,
        ),
        "clearance TOP SECRET for a SECRET partner": (
            _signed(private_key, _claims(settings, clearance="TOP SECRET")),
            403,
        ),
        "clearance as an out-of-range rank": (_signed(private_key, _claims(settings, clearance=9)), 401),
        "unknown clearance name": (_signed(private_key, _claims(settings, clearance="ULTRA")), 401),
        "unregistered nation": (_signed(private_key, _claims(settings, nation="AUS")), 403),
        "partner nation with the analyst role": (_signed(private_key, _claims(settings, roles=["analyst"])), 403),
        "home nation with the partner role": (_signed(private_key, _claims(settings, nation=HOME)), 403),
        "oversized token": (_signed(private_key, _claims(settings, padding="x" * settings.max_token_length)), 401),
        "garbage": ("not.a.token", 401),
        "empty segments": ("..", 401),
        "one segment": (head, 401),
        "non-base64 header": ("%%%%." + payload + "." + signature, 401),
        "header that is not JSON": (_b64(b"[1,2") + "." + payload + "." + signature, 401),
    }
    return attacks


@pytest.fixture(scope="module")
def attacks(settings, private_key, public_key) -> dict[str, tuple[str, int]]:
    return _attacks(settings, private_key, public_key)


def _check_refused(raw_client, url: str, token: str, expected: int) -> None:
    response = raw_client.get(url, headers={"Authorization": f"Bearer {token}", "Accept": TAXII})
    body = assert_taxii_error(response, expected)
    if expected == 401:
        assert response.headers.get("www-authenticate", "").startswith("Bearer")
    assert "Traceback" not in body.get("description", "")
    _assert_audited_deny(raw_client.app, response, expected)


def _assert_audited_deny(app, response, expected: int) -> None:
    """The refusal left an audit record: decision deny, the same status (issue 8: "refused and audited")."""
    from app.audit.models import AuditRecord

    request_id = response.headers["x-request-id"]
    with Session(app.state.engine) as session:
        records = session.execute(
            select(AuditRecord.decision, AuditRecord.status).where(AuditRecord.request_id == request_id)
        ).all()
    assert [tuple(r) for r in records] == [("deny", expected)], (request_id, records)


def test_every_token_attack_is_refused(raw_client, settings, attacks, api, collection, private_key):
    """Each attack against discovery and a collection's objects: 401/403, TAXII format, nothing served."""
    control = _signed(private_key, _claims(settings))
    for url in ("/taxii2/", objects_url(api, collection.id)):
        ok = raw_client.get(url, headers={"Authorization": f"Bearer {control}", "Accept": TAXII})
        assert ok.status_code == 200, ok.text  # the control token works, so refusals below mean something
        for name, (token, expected) in attacks.items():
            try:
                _check_refused(raw_client, url, token, expected)
            except AssertionError as exc:
                raise AssertionError(f"attack {name!r} on {url}: {exc}") from None
            tally.add("token attacks refused")


def test_a_lower_clearance_claim_is_accepted_and_a_higher_one_never_raises_it(
    raw_client, settings, api, collection, private_key
):
    """CAN's agreement clears RESTRICTED: claiming UNCLASSIFIED works, claiming SECRET is refused."""
    lower = _signed(private_key, _claims(settings, nation="CAN", clearance="UNCLASSIFIED"))
    higher = _signed(private_key, _claims(settings, nation="CAN", clearance="SECRET"))
    url = objects_url(api, collection.id)
    assert raw_client.get(url, headers={"Authorization": f"Bearer {lower}", "Accept": TAXII}).status_code == 200
    _check_refused(raw_client, url, higher, 403)


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "bearer\tabc", "Digest x", ""])
def test_malformed_authorization_headers_are_401(raw_client, header):
    response = raw_client.get("/taxii2/", headers={"Authorization": header, "Accept": TAXII})
    assert_taxii_error(response, 401)
    _assert_audited_deny(raw_client.app, response, 401)
    tally.add("token attacks refused")


def test_oversized_tokens_are_refused_before_parsing(monkeypatch, public_key):
    """The verifier never hands an oversized token to the JOSE parser."""
    verifier = TokenVerifier("iss", "aud", public_key, ("RS256",), max_token_length=1024)

    def parser_called(*args, **kwargs):
        raise AssertionError("an oversized token reached the JOSE parser")

    monkeypatch.setattr(tokens_module.jwt, "get_unverified_header", parser_called)
    monkeypatch.setattr(tokens_module.jwt, "decode", parser_called)
    with pytest.raises(TokenError, match="longer than"):
        verifier.verify("a" * 1025 + ".b.c")


def test_ec_public_key_cannot_be_used_as_an_hmac_secret(tmp_path):
    """Algorithm confusion with an ES256 deployment: the EC public key as HS256 secret is refused."""
    generate_key_pair(tmp_path / "ec.pem", tmp_path / "ec.pub", kind="ec")
    public = (tmp_path / "ec.pub").read_text()
    private = (tmp_path / "ec.pem").read_text()
    verifier = TokenVerifier("iss", "aud", public, ("ES256",))
    now = int(time.time())
    claims = {"iss": "iss", "aud": "aud", "sub": "s", "exp": now + 60, "nation": "USA", "roles": ["partner"]}
    assert verifier.verify(jwt.encode(claims, private, algorithm="ES256"))["sub"] == "s"  # the control
    for forged in (
        _hs256(public.encode(), claims),
        _hs256(
            serialization.load_pem_public_key(public.encode()).public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
            claims,
        ),
    ):
        with pytest.raises(TokenError):
            verifier.verify(forged)
        tally.add("token attacks refused")
    # An ES256 token signed by another P-256 key.
    other = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode()
    )
    with pytest.raises(TokenError):
        verifier.verify(jwt.encode(claims, other, algorithm="ES256"))


def test_a_configured_kid_is_required_to_match(key_dir, private_key, public_key):
    now = int(time.time())
    claims = {"iss": "iss", "aud": "aud", "sub": "s", "exp": now + 60}
    verifier = TokenVerifier("iss", "aud", public_key, ("RS256",), key_id="key-2026")
    assert verifier.verify(jwt.encode(claims, private_key, algorithm="RS256", headers={"kid": "key-2026"}))
    with pytest.raises(TokenError, match="key id"):
        verifier.verify(jwt.encode(claims, private_key, algorithm="RS256", headers={"kid": "key-2019"}))
