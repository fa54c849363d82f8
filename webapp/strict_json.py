"""Request bodies as strict JSON: one meaning per document, and nothing a database or a log
cannot hold.

Python's ``json`` module accepts more than RFC 8259 asks of an interoperable document, and
each extra is a way in: duplicate keys (two parsers, two meanings), ``NaN`` and
``Infinity``, numbers that overflow (``1e999999`` is ``inf``; 5,000 digits raise
``ValueError``), nesting deep enough to exhaust the stack (``RecursionError``), and ``\\u``
escapes naming a lone surrogate, which no UTF-8 text can hold. Each is refused here with a
reason, before any schema or query sees the body. (NUL characters are valid JSON text: the
schemas refuse them field by field, as their OpenAPI patterns say.)
"""

from __future__ import annotations

import json
from typing import Any

# Integers a 64-bit column holds; anything longer is no id, count or flag of this API.
INT_LIMIT = 2**63


class InvalidJson(ValueError):
    """A body that is not strict JSON; the message says why, for the client."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        keys = [key for key, _ in pairs]
        duplicate = next(key for index, key in enumerate(keys) if key in keys[:index])
        raise InvalidJson(f"The key {json.dumps(duplicate)} appears twice in one object")
    return document


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > 19 or not -INT_LIMIT <= (value := int(text)) < INT_LIMIT:
        raise InvalidJson("A number is too large (integers must fit in 64 bits)")
    return value


def _real(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise InvalidJson("A number is too large")
    return value


def _constant(name: str) -> float:
    raise InvalidJson(f"{name} is not a JSON number")


def _check_strings(document: Any) -> None:
    """Refuse a lone surrogate in any key or string (a loop, not recursion: the document may
    be nested as deeply as the parser allows)."""
    pending = [document]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidJson("Text must not contain unpaired surrogates") from None


def loads(data: bytes) -> Any:
    """The JSON document in ``data`` (UTF-8), or InvalidJson saying what is wrong with it."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidJson("The body is not valid UTF-8") from None
    try:
        document = json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_int=_integer,
            parse_float=_real,
            parse_constant=_constant,
        )
    except json.JSONDecodeError as error:
        raise InvalidJson(f"The body is not valid JSON ({error.msg} at character {error.pos})") from None
    except RecursionError:
        raise InvalidJson("The body is nested too deeply") from None
    # Only an escape can put a surrogate into a string: the raw bytes were valid UTF-8.
    if "\\u" in text:
        _check_strings(document)
    return document
