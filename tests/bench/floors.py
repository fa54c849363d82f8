"""The floors the benchmark measures the API against, served by the same gunicorn settings.

F0: Flask returning a constant JSON list: what Flask and gunicorn cost.
F2: a hand-written Flask view doing the authenticated item read's two SQL statements (the
session joined to its user, then the item) with SQLAlchemy Core, returning the row as JSON:
what the database round trips add.
F3: a hand-written Flask view doing an item creation's session lookup, one INSERT and its
COMMIT with SQLAlchemy Core, returning the new row as JSON (201): what a write costs.
"""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime

from flask import Flask, abort, jsonify, request
from sqlalchemy import create_engine, text

from webapp.dialects import engine_options

ROLES = [{"id": 1, "name": "admin"}, {"id": 2, "name": "user"}]
SESSION = text(
    "SELECT tokens.id, tokens.access_expires_at, users.id AS user_id, users.activated "
    "FROM tokens JOIN users ON users.id = tokens.user_id WHERE tokens.access_hash = :digest"
)
ITEM = text("SELECT id, name, description, user_id, created_at, updated_at FROM items WHERE id = :id")
INSERT_ITEM = text(
    "INSERT INTO items (name, description, user_id, created_at, updated_at) "
    "VALUES (:name, :description, :user_id, :created_at, :updated_at)"
)


def _bare_app() -> Flask:
    app = Flask(__name__)
    # Read by docker/gunicorn.conf.py's worker hooks: nothing to check or schedule here.
    app.config.update(APP_ENV="bench", SCHEDULER_ENABLED=False)
    return app


def f0() -> Flask:
    app = _bare_app()

    @app.get("/roles")
    def roles():
        return jsonify(ROLES)

    return app


def _engine():
    url = os.environ["DATABASE_URL"]
    return create_engine(url, **engine_options(url, connect_timeout=5))


def _caller(connection):
    """The session behind the request's bearer token, or 401."""
    token = request.headers.get("Authorization", "")[len("Bearer ") :]
    session = connection.execute(SESSION, {"digest": hashlib.sha256(token.encode()).hexdigest()}).first()
    if session is None:
        abort(401)
    return session


def f2() -> Flask:
    app = _bare_app()
    engine = _engine()

    @app.get("/items/<int:item_id>")
    def item(item_id: int):
        with engine.connect() as connection:
            _caller(connection)
            row = connection.execute(ITEM, {"id": item_id}).mappings().first()
        if row is None:
            abort(404)
        body = dict(row)
        body["created_at"] = body["created_at"].isoformat()
        body["updated_at"] = body["updated_at"].isoformat()
        return jsonify(body)

    return app


def f3() -> Flask:
    app = _bare_app()
    engine = _engine()

    @app.post("/items")
    def create():
        data = request.get_json()
        now = datetime.now(UTC).replace(tzinfo=None)
        with engine.connect() as connection:
            caller = _caller(connection)
            row = {
                "name": data["name"],
                "description": data.get("description"),
                "user_id": caller.user_id,
                "created_at": now,
                "updated_at": now,
            }
            item_id = connection.execute(INSERT_ITEM, row).lastrowid
            connection.commit()
        body = {"id": item_id, **row, "created_at": now.isoformat(), "updated_at": now.isoformat()}
        return jsonify(body), 201

    return app
