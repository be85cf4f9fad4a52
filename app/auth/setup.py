"""Builds the token verifier from the settings: the secret file, an optional JWKS."""

from __future__ import annotations

from pathlib import Path

from app.auth.jwks import JwksSource
from app.auth.signing_keys import create_secret_file, load_signing_keys
from app.auth.tokens import TokenRules, TokenVerifier
from app.settings import Settings

SECRET_FILE_NAME = "taskgate.secret"  # noqa: S105 - a file name, not a secret


def secret_path(settings: Settings) -> Path:
    """Where the HS256 secrets live: the setting, or next to the database."""
    if settings.auth_secret_file:
        return Path(settings.auth_secret_file).expanduser()
    return settings.database_path.resolve().parent / SECRET_FILE_NAME


def token_rules(settings: Settings) -> TokenRules:
    return TokenRules(
        issuer=settings.auth_issuer,
        audience=settings.auth_audience,
        leeway_seconds=settings.auth_leeway_seconds,
    )


def ensure_secret(settings: Settings) -> bool:
    """Create the secret file on first start; True when it was created now."""
    return create_secret_file(secret_path(settings))


def build_verifier(settings: Settings) -> TokenVerifier | None:
    """The verifier, or None when authentication is off.

    Raises:
        SecretFileError, JwksError: the keys cannot be loaded (the message says why).
    """
    if not settings.auth:
        return None
    ensure_secret(settings)
    jwks = None
    if settings.auth_jwks:
        jwks = JwksSource(settings.auth_jwks)
        if not jwks.is_url:
            jwks.load_file()
    return TokenVerifier(load_signing_keys(secret_path(settings)), token_rules(settings), jwks)
