"""The server's HS256 signing secrets: a file of one secret per line, the first signs.

The file is created on first start (mode 0600, 32 random bytes, base64url) next to the
database unless a path is configured. Several lines allow rotation: put a new secret
first (new tokens are signed with it) and keep the old one below until the tokens it
signed have expired. Each secret's key id is derived from a hash of it, so tokens name
the secret that signed them without revealing it.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from joserfc.jwk import OctKey

MIN_SECRET_BYTES = 32


class SecretFileError(Exception):
    """The secret file cannot be used; the message says why and how to fix it."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One HS256 secret as a joserfc key with its key id."""

    kid: str
    key: OctKey


def key_id(secret: bytes) -> str:
    return "hs256-" + hashlib.sha256(secret).hexdigest()[:16]


def create_secret_file(path: Path) -> bool:
    """Create the file with a fresh secret unless it exists; True when created now."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = base64.urlsafe_b64encode(secrets.token_bytes(MIN_SECRET_BYTES)).rstrip(b"=")
    # Written aside, then linked into place: a process starting at the same moment sees
    # either no file or the whole secret, never an empty one.
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(secret + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.link(draft, path)
    except FileExistsError:
        return False
    finally:
        draft.unlink(missing_ok=True)
    return True


def load_signing_keys(path: Path) -> list[SigningKey]:
    """The secrets of the file, first (signing) one first.

    Raises:
        SecretFileError: missing, readable by others, empty, or a secret is too short.
    """
    try:
        mode = path.stat().st_mode
        text = path.read_bytes()
    except OSError as exc:
        raise SecretFileError(f"auth secret file {path}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretFileError(
            f"auth secret file {path} is accessible by other users; run `chmod 600 {path}`"
        )
    keys = []
    for number, line in enumerate(text.splitlines(), start=1):
        secret = line.strip()
        if not secret or secret.startswith(b"#"):
            continue
        if len(secret) < MIN_SECRET_BYTES:
            raise SecretFileError(
                f"auth secret file {path}, line {number}: a secret needs at least "
                f"{MIN_SECRET_BYTES} characters"
            )
        keys.append(SigningKey(kid=key_id(secret), key=OctKey.import_key(secret)))
    if not keys:
        raise SecretFileError(f"auth secret file {path} holds no secret")
    return keys
