"""Unit tests of password hashing and token generation in webapp.security."""

from __future__ import annotations

import hashlib
import re

import pytest

from webapp.security import generate_password, hash_password, new_token, token_digest, verify_password

URL_SAFE = re.compile(r"[A-Za-z0-9_-]+")


@pytest.mark.parametrize(
    "password",
    ["correct horse battery", "x", "pässwörd mit ümläuten 🔑", "p" * 1024],
    ids=["ascii", "one-char", "unicode", "long"],
)
def test_hash_then_verify_roundtrip(app, password):
    password_hash = hash_password(password)

    assert verify_password(password, password_hash) is True
    assert verify_password(password + "!", password_hash) is False
    assert verify_password(password[:-1], password_hash) is False


def test_hash_uses_configured_bcrypt_cost(app):
    rounds = app.config["BCRYPT_ROUNDS"]

    assert hash_password("correct horse battery").startswith(f"$2b${rounds:02d}$")


def test_pepper_is_part_of_the_hash(app, monkeypatch):
    password_hash = hash_password("correct horse battery")

    monkeypatch.setitem(app.config, "PASSWORD_PEPPER", "another pepper")
    assert verify_password("correct horse battery", password_hash) is False
    other_hash = hash_password("correct horse battery")

    monkeypatch.undo()
    assert verify_password("correct horse battery", password_hash) is True
    assert verify_password("correct horse battery", other_hash) is False


@pytest.mark.parametrize(
    ("password", "other"),
    [
        ("a" * 72 + "1", "a" * 72 + "2"),
        ("é" * 36 + "1", "é" * 36 + "2"),
        ("a" * 100, "a" * 101),
        ("b" * 200 + "end", "b" * 200 + "END"),
    ],
    ids=["ascii-73", "utf8-73-bytes", "prefix", "differs-at-the-end"],
)
def test_passwords_differing_after_byte_72_are_distinguished(app, password, other):
    assert password.encode()[:72] == other.encode()[:72]
    password_hash = hash_password(password)

    assert verify_password(password, password_hash) is True
    assert verify_password(other, password_hash) is False


def test_two_hashes_of_one_password_differ(app):
    first, second = hash_password("correct horse battery"), hash_password("correct horse battery")

    assert first != second
    assert verify_password("correct horse battery", first) is True
    assert verify_password("correct horse battery", second) is True


@pytest.mark.parametrize("password", ["correct horse battery", ""])
def test_verify_without_hash_is_false(app, password):
    assert verify_password(password, None) is False


def test_generate_password_is_long_and_random():
    passwords = [generate_password() for _ in range(50)]

    assert len(set(passwords)) == len(passwords)
    for password in passwords:
        assert len(password) >= 16
        assert URL_SAFE.fullmatch(password)


def test_generated_password_hashes_and_verifies(app):
    password = generate_password()

    assert verify_password(password, hash_password(password)) is True


def test_new_token_is_unique_url_safe_and_long():
    tokens = [new_token() for _ in range(200)]

    assert len(set(tokens)) == len(tokens)
    for token in tokens:
        assert len(token) >= 43
        assert URL_SAFE.fullmatch(token)


def test_token_digest_is_sha256_hex():
    token = new_token()

    digest = token_digest(token)

    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert digest == hashlib.sha256(token.encode()).hexdigest()
    assert token_digest(token) == digest
    assert token_digest(new_token()) != digest
    assert token not in digest
