"""Issue and verify bearer JWTs with an explicit algorithm allow-list.

The key is chosen from the algorithm named in the token header, and each key
serves only its own algorithms, so the public key can never be used as an
HMAC secret (algorithm confusion) and ``none`` is never accepted. Oversized
tokens are refused before any parsing, a ``kid`` other than the configured one
is refused, and headers that point at or embed a key (``jku``, ``jwk``, ``x5u``,
``x5c``) are refused: only the configured key ever verifies a token.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from jose import JWTError, jwt

REQUIRED_CLAIMS = ("exp", "iss", "aud", "sub")
# Header parameters by which a token would choose its own verification key.
KEY_SELECTING_HEADERS = ("jku", "jwk", "x5u", "x5c")
DEFAULT_MAX_TOKEN_LENGTH = 8 * 1024


class TokenError(Exception):
    """The token is missing, malformed, unsigned, expired or otherwise not acceptable."""


@dataclass(frozen=True)
class TokenVerifier:
    """Verifies tokens against the configured public key and, if enabled, an HS256 secret."""

    issuer: str
    audience: str
    public_key: str | None
    asymmetric_algorithms: tuple[str, ...]
    hs256_secret: str | None = None
    key_id: str | None = None
    max_token_length: int = DEFAULT_MAX_TOKEN_LENGTH

    def _key_for(self, algorithm: str) -> str:
        if algorithm == "HS256" and self.hs256_secret:
            return self.hs256_secret
        if algorithm in self.asymmetric_algorithms and self.public_key:
            return self.public_key
        raise TokenError(f"token algorithm {algorithm!r} is not accepted")

    def verify(self, token: str) -> dict[str, Any]:
        """Return the claims of a valid token, or raise TokenError saying why not."""
        if len(token) > self.max_token_length:
            raise TokenError(f"token longer than {self.max_token_length} bytes")
        try:
            header = jwt.get_unverified_header(token)
        except JWTError as exc:
            raise TokenError("malformed token") from exc
        algorithm = header.get("alg")
        if not isinstance(algorithm, str):
            raise TokenError("token header has no algorithm")
        if any(name in header for name in KEY_SELECTING_HEADERS):
            raise TokenError("token header must not name or embed a key")
        if header.get("kid") != self.key_id and "kid" in header:
            raise TokenError("token key id is not known")
        key = self._key_for(algorithm)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self.audience,
                issuer=self.issuer,
                options={f"require_{claim}": True for claim in REQUIRED_CLAIMS},
            )
        except JWTError as exc:
            raise TokenError(f"invalid token: {exc}") from exc
        return claims


def issue_token(
    *,
    key: str,
    algorithm: str,
    issuer: str,
    audience: str,
    subject: str,
    nation: str,
    roles: list[str],
    lifetime_s: int,
    clearance: str | None = None,
) -> str:
    """Sign a token for ``subject`` of ``nation`` with ``roles``, valid for ``lifetime_s`` seconds."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime_s,
        "nation": nation,
        "roles": roles,
    }
    if clearance is not None:
        claims["clearance"] = clearance
    token: str = jwt.encode(claims, key, algorithm=algorithm)
    return token
