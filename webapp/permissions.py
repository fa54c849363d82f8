"""Who is calling and what they may do: bearer authentication, roles and ownership."""

from __future__ import annotations

from functools import wraps

from flask import current_app, g, request
from flask_smorest import abort

from webapp.conditional import check_if_match, wants_match
from webapp.extensions import db
from webapp.models import Token
from webapp.openapi import OPTIONAL, document


def _unauthorized(message: str):
    abort(401, message=message, headers={"WWW-Authenticate": "Bearer"})


def authenticate() -> None:
    """Put the caller (account and session) on ``g.current_user``, or answer 401."""
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    credentials = credentials.strip()
    if scheme.lower() != "bearer" or not credentials:
        _unauthorized("Not authenticated")
    caller = Token.authenticate(credentials)
    if caller is None:
        _unauthorized("Invalid or expired token")
    g.current_user = caller


def login_required(view):
    """Any active account."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        authenticate()
        return view(*args, **kwargs)

    return document(security=True, responses=(401,))(wrapper)


def admin_required(view):
    """An active account with the admin role."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        authenticate()
        if not g.current_user.is_admin:
            abort(403, message="Admin role required")
        return view(*args, **kwargs)

    return document(security=True, responses=(401, 403))(wrapper)


def directory_access(view):
    """The user directory: public as the contract has it, or any active account's when
    PUBLIC_USER_DIRECTORY is false (no listing of usernames from outside)."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        if not current_app.config["PUBLIC_USER_DIRECTORY"]:
            authenticate()
        return view(*args, **kwargs)

    return document(security=OPTIONAL, responses=(401,))(wrapper)


def get_or_404(model: type[db.Model], ident: int, *, lock: bool = False):
    """The row ``ident`` of ``model`` (locked until commit if ``lock``), or a 404 naming it."""
    row = db.session.get(model, ident, with_for_update=lock)
    if row is None:
        abort(404, message=f"{model.__name__} not found")
    return row


def get_owned_or_404(model: type[db.Model], ident: int):
    """The row ``ident`` of ``model``, to change, if the caller is an admin or its owner; else
    404 or 403, and 412 when If-Match names another version of it.

    With If-Match the write that follows compares and swaps the version; without, the row is
    locked until commit, so concurrent changes take turns (the last one wins, as always).
    """
    row = get_or_404(model, ident, lock=not wants_match())
    if not (g.current_user.is_admin or row.is_owned_by(g.current_user)):
        abort(403, message=f"Only an admin or the owner may change this {model.__name__.lower()}")
    check_if_match(row.version)
    return row
