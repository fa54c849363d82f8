"""The API documentation (ReDoc and the OpenAPI JSON) behind HTTP Basic auth."""

from __future__ import annotations

from flask import Flask, redirect, request, url_for
from flask_smorest import abort
from sqlalchemy import select

from webapp.extensions import db
from webapp.models import User
from webapp.security import verify_password

DOCS_BLUEPRINT = "api-docs"


def require_basic_auth() -> None:
    """Only an active account's username and password open the docs."""
    if request.blueprint != DOCS_BLUEPRINT:
        return
    auth = request.authorization
    if auth is None or auth.type != "basic" or not auth.username or auth.password is None:
        _challenge()
    user = db.session.scalar(select(User).where(User.username == auth.username))
    active_hash = user.password_hash if user is not None and user.activated else None
    if not verify_password(auth.password, active_hash):
        _challenge()


def _challenge():
    abort(
        401,
        message="Documentation requires a username and password",
        headers={"WWW-Authenticate": 'Basic realm="API documentation", charset="UTF-8"'},
    )


def index():
    return redirect(url_for(f"{DOCS_BLUEPRINT}.openapi_redoc"))


def init_app(app: Flask) -> None:
    app.before_request(require_basic_auth)
    app.add_url_rule("/", "index", index)
