"""The API documentation (ReDoc and the OpenAPI JSON) behind HTTP Basic auth."""

from __future__ import annotations

from flask import Flask, Response, redirect, request, url_for
from flask_smorest import abort

from webapp import ratelimit
from webapp.database import db

DOCS_BLUEPRINT = "api-docs"


def require_basic_auth() -> None:
    """Only an active account's username and password open the docs."""
    auth = request.authorization
    if auth is None or auth.type != "basic" or not auth.username or auth.password is None:
        _challenge()
    if ratelimit.check_login(auth.username, auth.password) is None:
        _challenge()
    db.session.commit()  # a forgiven failure count


def _challenge():
    abort(
        401,
        message="Documentation requires a username and password",
        headers={"WWW-Authenticate": 'Basic realm="API documentation", charset="UTF-8"'},
    )


# What ReDoc needs from its own origin (scripts, the spec, a search worker, its inline
# styles) and nothing more: it cannot load or send anything elsewhere.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src blob:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


def add_docs_policy(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = DOCS_CSP
    response.headers["Cache-Control"] = "no-store"
    return response


def index():
    return redirect(url_for(f"{DOCS_BLUEPRINT}.openapi_redoc"))


def init_app(app: Flask) -> None:
    # Hooks of flask-smorest's docs blueprint only: API requests never run them.
    app.before_request_funcs.setdefault(DOCS_BLUEPRINT, []).append(require_basic_auth)
    app.after_request_funcs.setdefault(DOCS_BLUEPRINT, []).append(add_docs_policy)
    app.add_url_rule("/", "index", index)
