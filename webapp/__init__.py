"""The application factory."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask
from sqlalchemy import event

from webapp import cli, docs, errors, health, logs, versioning
from webapp.auth.routes import blp as auth_blp
from webapp.config import DEV_PASSWORD_PEPPER, DEV_SECRET_KEY, config_class, environment_overrides
from webapp.database import engine_options, sqlite_pragmas
from webapp.extensions import api, db, migrate
from webapp.items.routes import blp as items_blp
from webapp.roles.routes import blp as roles_blp
from webapp.users.routes import blp as users_blp
from webapp.versions.routes import blp as versions_blp


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: config -> extensions -> blueprints -> hooks -> CLI.

    ``config`` overrides everything else (tests use it); otherwise settings come from the
    class for APP_ENV, then ``instance/config.py``, then environment variables.
    """
    config = dict(config or {})
    app = Flask(__name__, instance_relative_config=True, static_url_path="")
    settings = config_class(config.get("APP_ENV"))
    app.config.from_object(settings)
    app.config.from_pyfile("config.py", silent=True)
    app.config.update(environment_overrides(settings, app.config))
    app.config.update(config)
    _check_config(app)
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
        **engine_options(app.config["SQLALCHEMY_DATABASE_URI"], app.config["DATABASE_CONNECT_TIMEOUT"]),
        **app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}),
    }

    db.init_app(app)
    migrate.init_app(app, db)
    api.init_app(app)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            event.listen(db.engine, "connect", sqlite_pragmas)

    for blueprint in (auth_blp, users_blp, items_blp, roles_blp, versions_blp, health.blp):
        api.register_blueprint(blueprint)

    logs.init_app(app)
    versioning.init_app(app)
    docs.init_app(app)
    errors.init_app(app)
    cli.init_app(app)
    return app


def _check_config(app: Flask) -> None:
    """Refuse to start on settings that cannot work or must not reach production."""
    config = app.config
    if config["APP_ENV"] == "production":
        defaults = [
            name
            for name, dev_value in (("SECRET_KEY", DEV_SECRET_KEY), ("PASSWORD_PEPPER", DEV_PASSWORD_PEPPER))
            if not config.get(name) or config[name] == dev_value
        ]
        if defaults:
            raise RuntimeError(
                f"APP_ENV=production needs {' and '.join(defaults)} set to a secret value "
                "(environment variable or instance/config.py)"
            )
    if config["MAX_SESSIONS_PER_USER"] < 1:
        raise RuntimeError("MAX_SESSIONS_PER_USER must be at least 1")
    if not 1 <= config["PAGE_LIMIT_DEFAULT"] <= config["PAGE_LIMIT_MAX"]:
        raise RuntimeError("PAGE_LIMIT_DEFAULT must be between 1 and PAGE_LIMIT_MAX")
