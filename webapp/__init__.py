"""The application factory.

The app's modules are imported inside ``create_app``: importing ``webapp`` alone loads
nothing, so gunicorn's master can read ``webapp.logs`` without pinning the app's code
(workers import it fresh, which is what makes a HUP reload pick up new code).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from flask import Flask
from flask.sessions import SessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import PathConverter


def resources() -> list[str]:
    """The resources: every package of webapp/ with a routes.py, whose blueprint is ``blp``
    (a new resource is registered by being there)."""
    return sorted(routes.parent.name for routes in Path(__file__).parent.glob("*/routes.py"))


T = TypeVar("T")


class App(Flask):
    """Flask, with each request's database work retried whole when it loses a conflict
    (``retrying``: webapp/transactions.py, plugged in by create_app).

    The hooks and the view are retried separately: a hook that commits (the docs' password
    check) is one unit, the view another.
    """

    retrying: Callable[[Callable[[], T]], T]

    def preprocess_request(self):
        return self.retrying(super().preprocess_request)

    def dispatch_request(self):
        return self.retrying(super().dispatch_request)

    def ensure_sync(self, func):
        # No view or hook here is async: skip Flask's per-call coroutine check.
        return func


def create_app(config: Mapping[str, Any] | None = None) -> App:
    """Build the app: config -> extensions -> blueprints -> hooks -> CLI.

    ``config`` overrides everything else (tests use it); otherwise settings come from the
    class for APP_ENV, then ``instance/config.py``, then environment variables.
    """
    from webapp.config import config_class, environment_overrides, validate_config
    from webapp.transactions import retrying

    config = dict(config or {})
    app = App(__name__, instance_relative_config=True, static_folder=None)
    app.retrying = retrying
    app.session_interface = NoCookieSessions()
    # Fields in the order the schemas declare them (id first), and no sorting work per response.
    app.json.sort_keys = False
    settings = config_class(config.get("APP_ENV"))
    app.config.from_object(settings)
    app.config.from_pyfile("config.py", silent=True)
    app.config.update(environment_overrides(settings, app.config))
    app.config.update(config)
    validate_config(app.config)
    if app.config["TRUSTED_PROXIES"]:
        # The client's address and scheme as the proxy saw them. Not X-Forwarded-Host: a
        # proxy that passes the client's own Host on (as nginx does) would let it choose.
        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=0)

    _init_extensions(app)
    _register_static_files(app)
    _register_blueprints(app)
    _register_hooks(app)
    return app


def check_deployment(app: Flask) -> None:
    """Refuse to serve in production while an active admin still has the development
    password (gunicorn runs this in each worker before it takes requests)."""
    from sqlalchemy.exc import SQLAlchemyError

    from webapp.config import DevelopmentConfig
    from webapp.models import User

    if app.config["APP_ENV"] != "production":
        return
    with app.app_context():
        try:
            weak = User.active_admins_with_password(DevelopmentConfig.ADMIN_PASSWORD)
        except SQLAlchemyError as error:
            # A worker replaced during a database outage must still boot (and answer 503);
            # the next worker to boot with the database up runs the check.
            app.logger.warning("deployment check skipped, database unavailable: %s", type(error).__name__)
            return
    if weak:
        names = ", ".join(repr(user.username) for user in weak)
        raise RuntimeError(
            f"admin account {names} still has the development password; set another one "
            "(PATCH /users/<id> with a new password) before serving with APP_ENV=production"
        )


def _init_extensions(app: Flask) -> None:
    from functools import partial

    from sqlalchemy import event

    from webapp.dialects import bounded_statements, engine_options, galera_session, sqlite_pragmas
    from webapp.extensions import api, db, metrics, migrate, scheduler
    from webapp.transactions import track_commits

    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
        **engine_options(
            app.config["SQLALCHEMY_DATABASE_URI"],
            app.config["DATABASE_CONNECT_TIMEOUT"],
            app.config["DATABASE_QUERY_TIMEOUT"],
        ),
        **app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}),
    }
    db.init_app(app)
    migrate.init_app(app, db)
    api.init_app(app)
    scheduler.init_app(app)
    metrics.init_app(app)
    track_commits()
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            event.listen(db.engine, "connect", sqlite_pragmas)
        elif db.engine.dialect.name in ("mysql", "mariadb"):
            sync_wait = app.config["GALERA_SYNC_WAIT"]
            event.listen(db.engine, "connect", partial(galera_session, sync_wait=sync_wait))
            limit = partial(bounded_statements, seconds=app.config["DATABASE_STATEMENT_TIMEOUT"])
            event.listen(db.engine, "before_cursor_execute", limit, retval=True)


class NoCookieSessions(SessionInterface):
    """Bearer tokens only: no request reads or signs a cookie session."""

    def open_session(self, app: Flask, request):
        return None  # Flask then uses its cheap null session

    def save_session(self, app: Flask, session, response) -> None:
        return None


class StaticFileConverter(PathConverter):
    """A path that ends in a file extension. Static files are served from the root, and this
    keeps ``GET /auth/token`` a 405 (wrong method) instead of a missing file."""

    regex = r"[^/].*\.[A-Za-z0-9]{1,10}"


def _register_static_files(app: Flask) -> None:
    app.static_folder = "static"
    app.url_map.converters["static_file"] = StaticFileConverter
    app.add_url_rule("/<static_file:filename>", endpoint="static", view_func=app.send_static_file)


def _register_blueprints(app: Flask) -> None:
    from importlib import import_module

    from webapp import health
    from webapp.extensions import api

    for name in resources():
        api.register_blueprint(import_module(f"webapp.{name}.routes").blp)
    api.register_blueprint(health.blp)


def _register_hooks(app: Flask) -> None:
    from webapp import cli, client_versions, docs, errors, headers, logs, overload

    logs.init_app(app)  # first: the request id exists before any other hook can fail
    overload.init_app(app)  # then: shed what waited too long, before any work is done
    headers.init_app(app)
    client_versions.init_app(app)
    docs.init_app(app)
    errors.init_app(app)
    cli.init_app(app)
