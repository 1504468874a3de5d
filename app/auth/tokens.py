"""Issue and verify bearer JWTs with an explicit algorithm allow-list.

The key is chosen from the algorithm named in the token header, and each key
serves only its own algorithms, so the public key can never be used as an
HMAC secret (algorithm confusion) and ``none`` is never accepted. Oversized
tokens are refused before any parsing, a ``kid`` other than the configured one
is refused, and headers that point at or embed a key (``jku``, ``jwk``, ``x5u``,
``x5c``) are refused: only the configured key ever verifies a token.

Details RFC 7515 and 7519 leave to the recipient are read strictly: any ``crit`` header is
refused (Tearline implements no critical extension, so it understands none that a token could
list), a ``kid`` must be a string, and ``exp``, ``nbf`` and ``iat`` must be numbers between the
epoch and the end of year 9999. These refusals share one message, so a client learns nothing
about which detail failed.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jose import JWTError, jwk, jwt
from jose.backends.base import Key
from jose.exceptions import JOSEError

REQUIRED_CLAIMS = ("exp", "iss", "aud", "sub")
# Header parameters by which a token would choose its own verification key.
KEY_SELECTING_HEADERS = ("jku", "jwk", "x5u", "x5c")
DEFAULT_MAX_TOKEN_LENGTH = 8 * 1024
TIME_CLAIMS = ("exp", "nbf", "iat")
# 9999-12-31T23:59:59Z: the last second a datetime can hold, far inside 63 bits.
MAX_NUMERIC_DATE = 253402300799
# One message for every refusal of a detail (crit, a time claim's type or range).
INVALID = "invalid token"


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

    def _key_for(self, algorithm: str) -> Key:
        if algorithm == "HS256" and self.hs256_secret:
            return _key_object(self.hs256_secret, algorithm)
        if algorithm in self.asymmetric_algorithms and self.public_key:
            return _key_object(self.public_key, algorithm)
        raise TokenError(f"token algorithm {algorithm!r} is not accepted")

    def _check_header(self, header: dict[str, Any]) -> None:
        if any(name in header for name in KEY_SELECTING_HEADERS):
            raise TokenError("token header must not name or embed a key")
        if "crit" in header:
            raise TokenError(INVALID)
        if "kid" in header and (not isinstance(header["kid"], str) or header["kid"] != self.key_id):
            raise TokenError("token key id is not known")

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
        self._check_header(header)
        key = self._key_for(algorithm)
        # Before python-jose reads them: it converts with int(), so it takes "123" as a time,
        # accepts 1e30, and raises TypeError or OverflowError (a 500) on null, [] or Infinity.
        try:
            unverified = jwt.get_unverified_claims(token)
        except JWTError as exc:
            raise TokenError("malformed token") from exc
        if not all(_sane_time(unverified[name]) for name in TIME_CLAIMS if name in unverified):
            raise TokenError(INVALID)
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


@lru_cache(maxsize=8)
def _key_object(material: str, algorithm: str) -> Key:
    """The key, parsed once for the (allow-listed) algorithm: python-jose otherwise parses the PEM
    on every verification, a tenth of a small request's time."""
    try:
        key: Key = jwk.construct(material, algorithm)
    except JOSEError as exc:  # a key that does not fit the algorithm: refused like any bad token
        raise TokenError(f"token algorithm {algorithm!r} is not accepted") from exc
    return key


def _sane_time(value: object) -> bool:
    """Whether a time claim is a NumericDate Tearline accepts: a finite number from the epoch to year 9999."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and 0 <= value <= MAX_NUMERIC_DATE


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
