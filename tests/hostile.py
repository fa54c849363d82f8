"""Hostile bodies for every JSON operation: what an attacker sends that no schema-driven fuzzer
generates. The suite sends them through the test client (tests/test_hostile_input.py) and
`make security` sends them to a live server through nginx and straight at gunicorn
(tests/fuzz/test_hostile_corpus.py). Every one must be a 4xx problem that changes nothing.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from tests.test_docs import operations
from tests.test_permissions import route_key, rows_of

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


def valid_bodies(spec: dict) -> dict[str, dict]:
    """A body for each JSON operation of the OpenAPI document (``{"post /items": {...}}``):
    the bodies of the operation's permission rows (PERMISSIONS in tests/test_<blueprint>.py)
    merged, so hostile values land in every field the operation reads. A new resource needs
    nothing here: its permission rows are its valid bodies."""
    bodies = {}
    for path, method, operation in operations(spec):
        if "requestBody" not in operation:
            continue
        route = route_key(method.upper(), path)
        merged: dict = {}
        for row in rows_of(operation["tags"][0]) or []:
            if row.body and route_key(row.method, row.path) == route:
                merged.update(row.body)
        bodies[f"{method} {path}"] = merged
    return bodies


def target_ids(bodies: dict[str, dict], create: Callable[[str, dict], int]) -> dict[str, int]:
    """A real id for each path parameter of the operations in ``bodies``: a row its collection's
    POST makes (``create(path, body)`` sends it and returns the new id). The body's first string
    (the name, by the permission rows' habit) is made unique, so that a database already
    holding the rows' names takes it."""
    ids: dict[str, int] = {}
    for operation in bodies:
        path = operation.split(" ", 1)[1]
        name = path[path.index("{") + 1 : path.index("}")] if "{" in path else None
        if name is None or name in ids:
            continue
        collection = f"post {path[: path.index('/{')]}"
        assert collection in bodies, f"{operation}: no {collection} to make a row to send it to"
        body = dict(bodies[collection])
        first = next(key for key, value in body.items() if isinstance(value, str))
        body[first] += "-" + secrets.token_hex(3)
        ids[name] = create(collection.split(" ", 1)[1], body)
    return ids
