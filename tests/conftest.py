"""Fixtures: one app per test on a clean database.

SQLite (a file in a temporary folder) by default; the same suite runs on MariaDB/MySQL
when TEST_DATABASE_URL is set. The schema comes from the migrations, once per run.
"""

from __future__ import annotations

import logging
import os

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from sqlalchemy import delete

from tests.factories import login, make_user
from webapp import create_app
from webapp.cache import clear_caches
from webapp.config import Config
from webapp.database import db
from webapp.models import Role, RowCount, Version
from webapp.models.word_index import SearchPosition

TEST_CONFIG = {"APP_ENV": "testing"}


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    return os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


@pytest.fixture(scope="session")
def migrated_database(database_url) -> str:
    """The test database, upgraded to the newest migration."""
    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": database_url})
    with app.app_context():
        upgrade()
        db.engine.dispose()
    return database_url


def make_app(database_url: str, **overrides):
    return create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": database_url, **overrides})


def reset_database() -> None:
    """Empty every table, then insert the reference rows a fresh deployment has. The kept
    counts go last: emptying the counted tables moves them (their triggers). The positions
    the word index splits names at are the migration's, and stay."""
    kept = (RowCount.__table__, SearchPosition.__table__)
    tables = [table for table in reversed(db.metadata.sorted_tables) if table not in kept]
    for table in [*tables, RowCount.__table__]:
        db.session.execute(delete(table))
    Role.ensure_all()
    db.session.add(Version(version="1.0", supported=True))
    db.session.add(Version(version="0.9", supported=False))
    db.session.commit()


@pytest.fixture
def app_config() -> dict:
    """Config overrides for the ``app`` fixture; override this fixture in a module to change them."""
    return {}


@pytest.fixture(scope="session")
def shared_apps(migrated_database):
    """One app per distinct config, built once and reused (building one costs ~50 ms)."""
    apps: dict[str, Flask] = {}
    yield apps
    for app in apps.values():
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def app(shared_apps, migrated_database, app_config):
    """The app for this test's config, on a freshly emptied database, with cold caches."""
    key = repr(sorted(app_config.items()))
    if key not in shared_apps:
        shared_apps[key] = make_app(migrated_database, **app_config)
    app = shared_apps[key]
    with app.app_context():
        clear_caches()
        reset_database()
        yield app
        db.session.remove()


@pytest.fixture
def fresh_app(migrated_database, app_config):
    """An app of its own, for a test that adds routes or counts metrics from zero."""
    app = make_app(migrated_database, **app_config)
    with app.app_context():
        reset_database()
        yield app
        db.session.remove()
        db.engine.dispose()


def release_connections() -> None:
    """Close the session and the pool: an open connection holds MariaDB metadata locks that block DDL."""
    db.session.remove()
    db.engine.dispose()


@pytest.fixture
def upgraded_afterwards(app):
    """Whatever a test does to the schema (migrations), leave the database at the newest revision."""
    release_connections()
    try:
        yield
    finally:
        release_connections()
        upgrade()
        release_connections()


class IsolatedClient(FlaskClient):
    """Runs each request in its own app context, so it gets its own database session and
    ends it, as in production (the test's own context and session stay separate)."""

    def open(self, *args, **kwargs):
        with self.application.app_context():
            return super().open(*args, **kwargs)


@pytest.fixture
def clean_environment(monkeypatch):
    """No app setting leaks in from the real environment; global logging (which an app that
    is not testing configures) is restored afterwards."""
    for name in [key for key in dir(Config) if key.isupper()] + ["DATABASE_URL"]:
        monkeypatch.delenv(name, raising=False)
    root = logging.getLogger()
    level, handlers = root.level, root.handlers[:]
    yield
    root.setLevel(level)
    root.handlers[:] = handlers


@pytest.fixture
def client(app):
    app.test_client_class = IsolatedClient
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def user(app):
    return make_user("alice")


@pytest.fixture
def admin(app):
    return make_user("root", role=Role.ADMIN)


@pytest.fixture
def auth_headers(client, user) -> dict[str, str]:
    """Bearer headers of a regular account (``user``)."""
    return login(client, user.username)["headers"]


@pytest.fixture
def world(client) -> dict:
    """The actors of the permission tests (tests/helpers.py): another user, the owner and two
    admins; their ids (``user``, ``owner``, ``admin``, ``other_admin``) and each actor's
    headers (the anonymous actor has none)."""
    from tests.helpers import ADMIN, ANONYMOUS, OWNER, USER

    someone = make_user("someone")
    owner = make_user("owner")
    admin = make_user("root", role=Role.ADMIN)
    other_admin = make_user("root2", role=Role.ADMIN)
    return {
        "owner": owner,
        "ids": {"user": someone.id, "owner": owner.id, "admin": admin.id, "other_admin": other_admin.id},
        "headers": {
            ANONYMOUS: {},
            USER: login(client, "someone")["headers"],
            OWNER: login(client, "owner")["headers"],
            ADMIN: login(client, "root")["headers"],
        },
    }


@pytest.fixture
def targets(world) -> dict[str, int]:
    """Ids a module's PERMISSIONS paths name beyond the accounts (``{item}``); a module that
    needs some overrides this with rows owned by ``world["owner"]``."""
    return {}


@pytest.fixture
def admin_headers(client, admin) -> dict[str, str]:
    """Bearer headers of an admin account (``admin``)."""
    return login(client, admin.username)["headers"]
