"""TokenVerifier on its own: the key is chosen by algorithm, and HS256 only when configured."""

from __future__ import annotations

import pytest

from app.auth.tokens import TokenError, TokenVerifier, issue_token


def _token(key: str, algorithm: str, **overrides) -> str:
    arguments = {
        "key": key,
        "algorithm": algorithm,
        "issuer": "iss",
        "audience": "aud",
        "subject": "s",
        "nation": "NLD",
        "roles": ["analyst"],
        "lifetime_s": 60,
    }
    arguments.update(overrides)
    return issue_token(**arguments)


def test_hs256_is_refused_unless_a_secret_is_configured(key_dir):
    public = (key_dir / "jwt-public.pem").read_text()
    token = _token("shared-secret", "HS256")
    closed = TokenVerifier("iss", "aud", public, ("RS256",))
    with pytest.raises(TokenError, match="not accepted"):
        closed.verify(token)
    opened = TokenVerifier("iss", "aud", public, ("RS256",), hs256_secret="shared-secret")
    assert opened.verify(token)["sub"] == "s"


def test_algorithm_outside_the_allow_list_is_refused(key_dir):
    public = (key_dir / "jwt-public.pem").read_text()
    token = _token((key_dir / "jwt-private.pem").read_text(), "RS256")
    with pytest.raises(TokenError):
        TokenVerifier("iss", "aud", public, ("ES256",)).verify(token)
    assert TokenVerifier("iss", "aud", public, ("RS256",)).verify(token)["nation"] == "NLD"


def test_es256_keys_work(tmp_path):
    from app.auth.keys import algorithm_for_key, generate_key_pair

    generate_key_pair(tmp_path / "k.pem", tmp_path / "k.pub", kind="ec")
    private = (tmp_path / "k.pem").read_text()
    assert algorithm_for_key(private) == "ES256"
    verifier = TokenVerifier("iss", "aud", (tmp_path / "k.pub").read_text(), ("RS256", "ES256"))
    assert verifier.verify(_token(private, "ES256"))["roles"] == ["analyst"]
