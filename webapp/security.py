"""Password hashing and token generation: small pure functions over the app's config."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

import bcrypt
from flask import current_app

TOKEN_BYTES = 32


def _prehash(password: str) -> bytes:
    """HMAC-SHA256 with the pepper, base64: 44 bytes, so bcrypt's 72-byte limit never truncates."""
    pepper = current_app.config["PASSWORD_PEPPER"].encode()
    digest = hmac.new(pepper, password.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest)


def hash_password(password: str) -> str:
    """A salted, peppered bcrypt hash of ``password``."""
    salt = bcrypt.gensalt(rounds=current_app.config["BCRYPT_ROUNDS"])
    return bcrypt.hashpw(_prehash(password), salt).decode()


def verify_password(password: str, password_hash: str | None) -> bool:
    """Whether ``password`` matches; without a hash, spends the same time and says no."""
    if password_hash is None:
        bcrypt.checkpw(_prehash(password), _dummy_hash())
        return False
    return bcrypt.checkpw(_prehash(password), password_hash.encode())


def needs_rehash(password_hash: str) -> bool:
    """Whether a bcrypt hash ("$2b$<cost>$...") was made at another cost than BCRYPT_ROUNDS."""
    return password_hash.split("$")[2] != f"{current_app.config['BCRYPT_ROUNDS']:02d}"


def _dummy_hash() -> bytes:
    """A hash at the configured cost, so an unknown username costs as much as a wrong password."""
    key = ("dummy_hash", current_app.config["BCRYPT_ROUNDS"])
    dummy = current_app.extensions.get(key)
    if dummy is None:
        dummy = current_app.extensions[key] = hash_password(secrets.token_urlsafe()).encode()
    return dummy


def new_token() -> str:
    """An opaque bearer token with 256 bits from the OS's CSPRNG."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_digest(token: str) -> str:
    """What the database stores for a token. Lookups compare digests, never the token:
    a timing difference reveals nothing about a stored value's preimage."""
    return hashlib.sha256(token.encode()).hexdigest()


def generate_password() -> str:
    """A random password of 24 URL-safe characters (144 bits)."""
    return secrets.token_urlsafe(18)
