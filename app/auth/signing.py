"""Signing bearer tokens with the configured (or development) private key: the CLI's and the demo's tokens."""

from __future__ import annotations

from app.auth.keys import algorithm_for_key
from app.auth.tokens import issue_token
from app.config.settings import ConfigurationError, Settings


def sign_token(
    settings: Settings, *, subject: str, nation: str, roles: list[str], lifetime_s: int, clearance: str | None = None
) -> str:
    """Sign a bearer token with the configured (or development) private key.

    Raises ConfigurationError when there is no private key, or when its algorithm
    is one the server would not accept, since such a token could never be used.
    """
    key_path = settings.private_key_path()
    if key_path is None:
        raise ConfigurationError(
            "no private key to sign with: run `tearline keys generate` or set TEARLINE_JWT_PRIVATE_KEY_FILE"
        )
    if not key_path.is_file():
        raise ConfigurationError(f"private key file not found: {key_path}")
    pem = key_path.read_text()
    try:
        algorithm = algorithm_for_key(pem)
    except ValueError as exc:
        raise ConfigurationError(f"cannot sign with {key_path}: {exc}") from None
    if algorithm not in settings.jwt_algorithms:
        raise ConfigurationError(
            f"the private key {key_path} signs {algorithm}, which TEARLINE_JWT_ALGORITHMS "
            f"({', '.join(settings.jwt_algorithms)}) does not accept"
        )
    return issue_token(
        key=pem,
        algorithm=algorithm,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        subject=subject,
        nation=nation,
        roles=roles,
        lifetime_s=lifetime_s,
        clearance=clearance,
    )
