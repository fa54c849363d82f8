"""Conditional requests (RFC 9110): strong ETags from a row's version column.

``@with_etag`` on the view of one row declares it all: a read sends the row's ETag and
answers 304 (no body) when If-None-Match already holds it; a change sends the new ETag, and
``check_if_match`` refuses it (412) when If-Match names another version. The write itself
compares and swaps the version (the model's ``version_id_col``: ``UPDATE ... WHERE version =
<read>``), so of two writes sent with the same If-Match one succeeds and the other gets 412,
even when both passed the check. A write without If-Match behaves as before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import wraps
from typing import Any

from flask import current_app, request
from flask_smorest import abort

from webapp.openapi import document
from webapp.openapi_conventions import IF_MATCH, IF_NONE_MATCH, header_refs

ETAG_HEADER = header_refs(["ETag"])


def etag(version: int) -> str:
    """The strong entity tag of a row at ``version``."""
    return f'"{version}"'


def _version(row: Any) -> int | None:
    return row.get("version") if isinstance(row, Mapping) else getattr(row, "version", None)


def with_etag(view: Callable) -> Callable:
    """The ETag of the row a ``get``, ``patch`` or ``delete`` view returns, in its answer and
    in the OpenAPI document: a get answers 304 while If-None-Match names the row's version;
    a change documents If-Match and its 412 (the view calls ``check_if_match``). Put it below
    ``@blp.response``: it hands the row on with its header. A row is a model object or a
    mapping with a ``version``; anything else (a delete's message) passes through."""
    reading = view.__name__ == "get"
    if view.__name__ not in ("get", "patch", "delete"):
        raise TypeError(f"with_etag decorates a get, patch or delete view, not {view.__name__}")

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any):
        row = view(*args, **kwargs)
        version = _version(row)
        if version is None:
            return row
        tag = etag(version)
        if reading and request.if_none_match.contains_weak(str(version)):
            return current_app.response_class(status=304, headers={"ETag": tag})
        return row, {"ETag": tag}

    if reading:
        return document(responses=(304,), parameters=(IF_NONE_MATCH,), headers=ETAG_HEADER)(wrapper)
    headers = ETAG_HEADER if view.__name__ == "patch" else None
    return document(responses=(412,), parameters=(IF_MATCH,), headers=headers)(wrapper)


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
