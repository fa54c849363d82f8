"""Who is calling and what they may do: bearer tokens, roles and owners, and the row a request
reads or changes (404 when there is none)."""

from __future__ import annotations

from functools import wraps

from flask import current_app, g, request
from flask_smorest import abort

from webapp.conditional import wants_match
from webapp.database import db
from webapp.models import Token
from webapp.openapi import document
from webapp.openapi_conventions import OPTIONAL


def _unauthorized(message: str):
    abort(401, message=message, headers={"WWW-Authenticate": "Bearer"})


def require_bearer() -> None:
    """Put the caller (its account and session: a ``Caller``) on ``g.caller``, or answer 401."""
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    credentials = credentials.strip()
    if scheme.lower() != "bearer" or not credentials:
        _unauthorized("Not authenticated")
    caller = Token.find_caller(credentials)
    if caller is None:
        _unauthorized("Invalid or expired token")
    g.caller = caller


def login_required(view):
    """Any active account."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        require_bearer()
        return view(*args, **kwargs)

    return document(security=True, responses=(401,))(wrapper)


def admin_required(view):
    """An active account with the admin role."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        require_bearer()
        if not g.caller.is_admin:
            abort(403, message="Admin role required")
        return view(*args, **kwargs)

    return document(security=True, responses=(401, 403))(wrapper)


def directory_access(view):
    """The user directory: public as the contract has it, or any active account's when
    PUBLIC_USER_DIRECTORY is false (no listing of usernames from outside)."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        if not current_app.config["PUBLIC_USER_DIRECTORY"]:
            require_bearer()
        return view(*args, **kwargs)

    return document(security=OPTIONAL, responses=(401,))(wrapper)


def get_or_404(model: type[db.Model], ident: int):
    """The row ``ident`` of ``model``, or a 404 naming the model."""
    row = db.session.get(model, ident)
    if row is None:
        abort(404, message=f"{model.__name__} not found")
    return row


def get_for_update(model: type[db.Model], ident: int):
    """The row ``ident`` of ``model``, to change, or a 404. Locked until commit, so concurrent
    changes take turns (the last one wins, as always); under If-Match, on a model with a
    version column, not locked: the write compares and swaps the version instead
    (webapp/conditional.py)."""
    conditional = wants_match() and model.__mapper__.version_id_col is not None
    row = db.session.get(model, ident, with_for_update=not conditional)
    if row is None:
        abort(404, message=f"{model.__name__} not found")
    return row


def require_owner_or_admin(owner_id: int, what: str) -> None:
    """403 unless the caller is an admin or the account ``owner_id``; ``what`` names the
    thing in the message ("item", "account")."""
    if not (g.caller.is_admin or g.caller.id == owner_id):
        abort(403, message=f"Only an admin or the {what}'s owner may do this")
