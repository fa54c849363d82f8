"""The one error renderer: every 4xx and 5xx answer is an RFC 9457 problem document."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import cache
from http import HTTPStatus
from itertools import chain
from typing import Any

from flask import Flask, current_app, g, json
from marshmallow import INCLUDE, Schema, fields
from sqlalchemy import MetaData, UniqueConstraint, event
from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    InterfaceError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException

from webapp.dialects import drop_connections_of_unready_nodes, is_conflict, is_statement_timeout
from webapp.logs import describe_exception

logger = logging.getLogger(__name__)

PROBLEM_MIMETYPE = "application/problem+json"
_LOCATIONS = {"json", "query", "querystring", "headers", "view_args", "form", "files"}


class ProblemSchema(Schema):
    """An RFC 9457 problem document: ``type``, ``title``, ``status`` and ``detail`` always;
    other members may be added (RFC 9457 extension members), so clients keep them."""

    class Meta:
        unknown = INCLUDE

    type = fields.String(required=True, metadata={"example": "about:blank"})
    title = fields.String(required=True, metadata={"example": "Not Found"})
    status = fields.Integer(required=True, metadata={"example": 404})
    detail = fields.String(required=True, metadata={"example": "Item not found"})
    instance = fields.String(metadata={"description": "The request id (also in X-Request-ID)"})
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={"description": "Messages by field (422 only)"},
    )


def problem(status: int, detail: str, *, errors: dict | None = None, headers: Any = None):
    """Build a problem+json response."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if g.get("request_id"):
        body["instance"] = g.request_id
    if errors:
        body["errors"] = errors
    response = current_app.response_class(json.dumps(body), status=status, mimetype=PROBLEM_MIMETYPE)
    for name, value in headers or ():
        response.headers[name] = value
    return response


def _flatten(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """{"json": {"user": {"name": [...]}}} -> {"user.name": [...]}; locations are dropped."""
    if isinstance(messages, dict):
        flat: dict[str, list[str]] = {}
        for key, value in messages.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            flat.update(_flatten(value, path))
        return flat
    items = messages if isinstance(messages, list) else [messages]
    return {prefix or "_schema": [str(item) for item in items]}


def _field_errors(messages: Any) -> dict[str, list[str]]:
    """Messages by field; webargs' location level ("json", "query") is dropped."""
    if isinstance(messages, dict) and messages.keys() <= _LOCATIONS:
        merged: dict[str, list[str]] = {}
        for location_messages in messages.values():
            merged.update(_flatten(location_messages))
        return merged
    return _flatten(messages)


def _describe(errors: dict[str, list[str]]) -> str:
    parts = [
        " ".join(msgs) if field == "_schema" else f"{field}: {' '.join(msgs)}"
        for field, msgs in errors.items()
    ]
    return "Invalid request. " + "; ".join(parts)


def handle_http_exception(error: HTTPException):
    """abort() and werkzeug errors, including webargs validation failures."""
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    headers = [(k, v) for k, v in error.get_headers() if k.lower() != "content-type"]
    headers += list((data.get("headers") or {}).items())
    detail = data.get("message") or error.description or HTTPStatus(status).phrase
    errors = None
    messages = data.get("errors") or data.get("messages")
    if messages:
        errors = _field_errors(messages)
        if "message" not in data:
            detail = _describe(errors) if status == 422 else " ".join(chain.from_iterable(errors.values()))
        if status != 422:
            errors = None
    return problem(status, detail, errors=errors, headers=headers)


@cache
def unique_keys(metadata: MetaData) -> dict[str, tuple[str, ...]]:
    """The columns a client chose of every unique constraint and unique index of the models,
    under both names a duplicate is reported by: the constraint's (MySQL: "for key
    'uq_items_name'") and its columns' (SQLite: "UNIQUE constraint failed: items.name"). A key
    scoped by a foreign key (a title unique per owner) names its other columns: the title."""
    keys: dict[str, tuple[str, ...]] = {}
    for table in metadata.tables.values():
        uniques = [c for c in table.constraints if isinstance(c, UniqueConstraint)]
        uniques += [index for index in table.indexes if index.unique]
        for unique in uniques:
            columns = tuple(column.name for column in unique.columns)
            chosen = tuple(column.name for column in unique.columns if not column.foreign_keys) or columns
            keys[f"'{unique.name}'"] = keys[f".{unique.name}'"] = chosen
            keys[": " + ", ".join(f"{table.name}.{column}" for column in columns)] = chosen
    return keys


def duplicated_fields(error: IntegrityError, metadata: MetaData) -> tuple[str, ...] | None:
    """The columns of the unique key of ``metadata`` that a write collided with, if any."""
    args = getattr(error.orig, "args", ())
    message = str(args[-1] if args else error.orig)  # PyMySQL: (1062, "Duplicate entry ...")
    return next((columns for key, columns in unique_keys(metadata).items() if message.endswith(key)), None)


def _unless_dropped(end: Callable[[], None]) -> None:
    """Run ``end`` (the session's rollback or close). A rollback that fails because its
    connection is gone (lost, or closed as a Galera node's that refused the ROLLBACK:
    webapp.database.drop_connections_of_unready_nodes) has nothing left to end: the server
    ended the transaction with the connection. So it is not an error of the request."""
    try:
        end()
    except DBAPIError as failure:
        if not failure.connection_invalidated:
            raise
        logger.warning("rollback failed, connection dropped: %s", _name(failure))


def end_transaction() -> None:
    """Roll back the session's failed transaction, so nothing later in the request trips over it."""
    _unless_dropped(current_app.extensions["sqlalchemy"].session.rollback)


def close_session(_error: BaseException | None = None) -> None:
    """Close the context's session, if it has one: Flask-SQLAlchemy's teardown does too, but
    would let a failed rollback escape the app, after the answer was made."""
    session = current_app.extensions["sqlalchemy"].session
    if session.registry.has():
        _unless_dropped(session.close)


def _name(error: BaseException) -> str:
    """The error's class, and the database's error number when it has one ("OperationalError
    1047"): never its message, which may quote SQL parameters."""
    args = getattr(getattr(error, "orig", None), "args", ())
    return f"{type(error).__name__} {args[0]}" if args and isinstance(args[0], int) else type(error).__name__


def handle_integrity_error(error: IntegrityError):
    """A unique constraint the database enforced (a lost race included): 409, naming the field
    from the models' own unique constraints, never quoting the SQL."""
    # End the failed transaction now, so nothing later in this request trips over it.
    end_transaction()
    fields_ = duplicated_fields(error, current_app.extensions["sqlalchemy"].metadata)
    if fields_ is not None:
        what = fields_[0] if len(fields_) == 1 else "combination of " + " and ".join(fields_)
        return problem(409, f"This {what} is already taken.")
    logger.warning("integrity error: %s", type(error.orig).__name__)
    return problem(409, "The request conflicts with the current state of the data.")


def handle_database_unavailable(error: Exception):
    """The database is down, unreachable or timing out, or a transaction kept losing
    conflicts: 503, and a hint when to retry.

    The pool's pre-ping replaces connections the server dropped, so once the database is
    back the next requests succeed without a restart. A Galera node cut off from the
    cluster's primary component answers the same way: it refuses the data (error 1047), and
    the ROLLBACK too, so its connection is dropped instead
    (webapp.database.drop_connections_of_unready_nodes).
    """
    end_transaction()
    if is_statement_timeout(error):
        seconds = current_app.config["DATABASE_STATEMENT_TIMEOUT"]
        logger.warning("statement stopped at its time limit (%g s)", seconds)
        # No Retry-After: the same query would run as long again.
        return problem(
            503,
            f"The query ran past its time limit of {seconds:g} s; a longer or narrower filter "
            "answers faster (names are searched by words of 3 characters or more).",
        )
    if is_conflict(error):
        # Every attempt lost to concurrent transactions (see webapp/transactions.py).
        attempts = current_app.config["DATABASE_CONFLICT_ATTEMPTS"]
        code = error.orig.args[0] if isinstance(error, OperationalError) else type(error).__name__
        logger.warning("transaction conflict: %d attempts failed (%s)", attempts, code)
        return problem(
            503, "The request conflicted with concurrent ones; try again.", headers=[("Retry-After", "1")]
        )
    logger.error("database unavailable: %s", _name(error))
    retry_after = str(current_app.config["DATABASE_RETRY_AFTER"])
    return problem(
        503, "The database is unavailable; try again shortly.", headers=[("Retry-After", retry_after)]
    )


def handle_unexpected_error(error: Exception):
    """Anything else: a bare 500, and a log line that locates the fault without leaking data."""
    # Named and located only: the message or traceback may quote SQL parameters.
    logger.error("unhandled exception: %s", describe_exception((type(error), error, error.__traceback__)))
    return problem(500, "The server could not complete the request.")


def init_app(app: Flask) -> None:
    """Register the renderer for every error the app can raise, and what keeps a database
    that fails while a request ends from turning its answer into a 500."""
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(IntegrityError, handle_integrity_error)
    # Connection lost or refused, timeouts, lock waits: DBAPI OperationalError and friends.
    for error in (OperationalError, InterfaceError, DisconnectionError, PoolTimeoutError, StaleDataError):
        app.register_error_handler(error, handle_database_unavailable)
    app.register_error_handler(Exception, handle_unexpected_error)
    with app.app_context():
        engine = app.extensions["sqlalchemy"].engine
    event.listen(engine, "handle_error", drop_connections_of_unready_nodes)
    # Before Flask-SQLAlchemy's own teardown (registered earlier, so run later) closes the
    # session: its rollback would raise out of the app, after the answer was made, if the
    # connection failed on the way (a Galera node that left the primary component since the
    # request's last statement refuses the ROLLBACK).
    app.teardown_appcontext(close_session)
