"""Hostile bodies for every JSON operation: what an attacker sends that no schema-driven fuzzer
generates. The suite sends them through the test client (tests/test_hostile_input.py) and
`make security` sends them to a live server through nginx and straight at gunicorn
(tests/fuzz/test_hostile_corpus.py). Every one must be a 4xx problem that changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from tests.factories import PASSWORD
from webapp.models import Role

# A valid body for each JSON operation of the OpenAPI document ({"method path": body}), so
# each hostile value lands in fields the operation really reads. tests/test_hostile_input.py
# fails while an operation with a request body is missing here.
VALID_BODIES: dict[str, dict] = {
    "post /auth/token": {"username": "alice", "password": PASSWORD},
    "post /auth/refresh": {"refresh_token": "r" * 43},
    "post /users": {"username": "newbie", "role_id": Role.USER},
    "patch /users/{user_id}": {"username": "renamed", "role_id": Role.USER},
    "post /items": {"name": "lamp", "description": "a desk lamp"},
    "patch /items/{item_id}": {"name": "lamp 2", "description": "a brighter lamp"},
}

FORTY_DIGITS = "1" * 40


def _with_strings(raw_value: str) -> Callable[[dict], bytes]:
    """Every string field of the body set to ``raw_value``, JSON text written as is."""

    def build(body: dict) -> bytes:
        marker = "\x00HOSTILE\x00"
        changed = {key: marker if isinstance(value, str) else value for key, value in body.items()}
        return json.dumps(changed).replace(json.dumps(marker), raw_value).encode()

    return build


def _with_numbers(raw_value: str) -> Callable[[dict], bytes]:
    """Every field of the body set to the JSON number ``raw_value``."""

    def build(body: dict) -> bytes:
        return ("{" + ", ".join(f"{json.dumps(key)}: {raw_value}" for key in body) + "}").encode()

    return build


def _with_bytes(raw: bytes) -> Callable[[dict], bytes]:
    """Every string field of the body holding the raw bytes ``raw`` (not valid UTF-8 text)."""

    def build(body: dict) -> bytes:
        return _with_strings('"@"')(body).replace(b"@", raw)

    return build


def _duplicate_keys(body: dict) -> bytes:
    key, value = next(iter(body.items()))
    return json.dumps(body)[:-1].encode() + f", {json.dumps(key)}: {json.dumps(value)}}}".encode()


@dataclass(frozen=True)
class Hostile:
    """A hostile body, made from an operation's valid body."""

    name: str
    build: Callable[[dict], bytes]
    content_type: str = "application/json"


DEEP = 100_000
CASES = [
    Hostile("nested-arrays", lambda _: b"[" * DEEP + b"]" * DEEP),
    Hostile("nested-objects", lambda _: b'{"a":' * (DEEP // 2) + b"1" + b"}" * (DEEP // 2)),
    Hostile("nested-unclosed", lambda _: b"[" * DEEP),
    Hostile("nested-in-a-field", _with_strings("[" * DEEP + "]" * DEEP)),
    Hostile("lone-high-surrogate", _with_strings('"\\ud800"')),
    Hostile("lone-low-surrogate", _with_strings('"x\\udfff"')),
    Hostile("reversed-surrogate-pair", _with_strings('"\\udc00\\ud800"')),
    Hostile("nul-character", _with_strings('"a\\u0000b"')),
    Hostile("invalid-utf8", _with_bytes(b"\xff\xfe")),
    Hostile("utf8-encoded-surrogate", _with_bytes(b"\xed\xa0\x80")),
    Hostile("overlong-utf8", _with_bytes(b"\xc0\xaf")),
    Hostile("truncated-utf8", _with_bytes(b"\xe2\x82")),
    Hostile("nan", _with_numbers("NaN")),
    Hostile("infinity", _with_numbers("Infinity")),
    Hostile("minus-infinity", _with_numbers("-Infinity")),
    Hostile("huge-exponent", _with_numbers("1e999999")),
    Hostile("huge-negative-exponent-float", _with_numbers("-1.5e999999")),
    Hostile("forty-digit-integer", _with_numbers(FORTY_DIGITS)),
    Hostile("five-thousand-digit-integer", _with_numbers("9" * 5000)),
    Hostile("duplicate-keys", _duplicate_keys),
    Hostile("byte-order-mark", lambda body: b"\xef\xbb\xbf" + json.dumps(body).encode()),
    Hostile("utf16", lambda body: json.dumps(body).encode("utf-16")),
    Hostile("trailing-garbage", lambda body: json.dumps(body).encode() + b"\x00garbage"),
    Hostile("json-in-a-string", lambda body: json.dumps(json.dumps(body)).encode()),
]


def paths(operation: str, ids: dict[str, int]) -> list[str]:
    """The URLs to send an operation's hostile bodies to: the real id, and a 40-digit one."""
    path = operation.split(" ", 1)[1]
    if "{" not in path:
        return [path]
    name = path[path.index("{") + 1 : path.index("}")]
    return [path.replace(f"{{{name}}}", str(ids[name])), path.replace(f"{{{name}}}", FORTY_DIGITS)]
