"""Feed credentials: encrypted at rest with Fernet, or read from an environment variable.

A credential is given as the secret itself (stored as a Fernet token) or as
``env:NAME`` (only the name is stored; the value is read when the feed runs).
The Fernet key is ``TEARLINE_FEED_SECRET_KEY``; in development a key file is
created once under ``data_dir/keys`` so stored credentials survive restarts.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from app.config.keyfiles import persistent_key
from app.config.settings import Settings

KEY_FILE_NAME = "feed-secret.key"
ENV_PREFIX = "env:"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")


class CredentialError(ValueError):
    """A credential cannot be stored or read; the message never contains the secret."""


@dataclass(frozen=True)
class StoredSecret:
    """How a secret is kept: a Fernet token, or the name of an environment variable."""

    ciphertext: str | None = None
    env_name: str | None = None


def feed_key(settings: Settings) -> bytes:
    """The Fernet key: configured, else (development only) a key file created once under data_dir."""
    if settings.feed_secret_key:
        return settings.feed_secret_key.encode()
    if settings.is_production:
        raise CredentialError("TEARLINE_FEED_SECRET_KEY is required in production to store or use feed credentials")
    return persistent_key(Path(settings.data_dir) / "keys" / KEY_FILE_NAME, Fernet.generate_key)


def _fernet(settings: Settings) -> Fernet:
    try:
        return Fernet(feed_key(settings))
    except ValueError:
        raise CredentialError(
            "TEARLINE_FEED_SECRET_KEY is not a Fernet key (32 url-safe base64-encoded bytes)"
        ) from None


def store_secret(settings: Settings, value: str) -> StoredSecret:
    """Keep ``value``: an ``env:NAME`` reference as the name, anything else encrypted."""
    if value.startswith(ENV_PREFIX):
        name = value[len(ENV_PREFIX) :]
        if not _ENV_NAME.fullmatch(name):
            raise CredentialError("an environment reference is env:NAME with NAME of letters, digits and _")
        return StoredSecret(env_name=name)
    if not value:
        raise CredentialError("the credential is empty")
    return StoredSecret(ciphertext=_fernet(settings).encrypt(value.encode()).decode())


def read_secret(settings: Settings, stored: StoredSecret) -> str | None:
    """The secret in clear, for one request; None when there is none."""
    if stored.env_name:
        value = os.environ.get(stored.env_name)
        if not value:
            raise CredentialError(f"environment variable {stored.env_name} is not set")
        return value
    if stored.ciphertext:
        try:
            return _fernet(settings).decrypt(stored.ciphertext.encode()).decode()
        except InvalidToken:
            raise CredentialError("the stored credential cannot be decrypted with the configured key") from None
    return None
