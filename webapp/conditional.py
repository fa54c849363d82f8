"""Conditional requests (RFC 9110): strong ETags from a row's version column.

A read sends the row's ETag and answers 304 (no body) when If-None-Match already holds it. A
write with If-Match goes ahead only if the row still has that version, and the write itself
compares and swaps it (the models' ``version_id_col``: ``UPDATE ... WHERE version = <read>``),
so of two writes sent with the same If-Match one succeeds and the other gets 412, even when
both passed the check. A write without If-Match behaves as before.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from flask_smorest import abort

# The OpenAPI pieces (components registered in webapp/openapi.py).
ETAG_HEADER = {"ETag": {"description": "The entity tag of this representation", "schema": {"type": "string"}}}
IF_NONE_MATCH = "IfNoneMatch"
IF_MATCH = "IfMatch"


def etag(version: int) -> str:
    """The strong entity tag of a row at ``version``."""
    return f'"{version}"'


def respond(body: Any, version: int):
    """``body`` with its ETag, or 304 Not Modified when If-None-Match already names it."""
    tag = etag(version)
    if request.if_none_match.contains_weak(str(version)):
        return current_app.response_class(status=304, headers={"ETag": tag})
    return body, {"ETag": tag}


def check_if_match(version: int) -> None:
    """412 unless the request's If-Match, when it sends one, names ``version`` (or is ``*``)."""
    if request.if_match and not request.if_match.contains(str(version)):
        abort(
            412,
            message="The resource changed since the version in If-Match; read it again",
            headers={"ETag": etag(version)},
        )


def wants_match() -> bool:
    """Whether the request is conditional on the current version (If-Match)."""
    return bool(request.if_match)
