"""Production refuses default secrets and an active admin that still has the development password."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from tests.factories import make_user
from tests.processes import GUNICORN, ROOT, app_environment, free_port
from webapp import check_deployment, create_app
from webapp.config import DEV_PASSWORD_PEPPER, DEV_SECRET_KEY, DevelopmentConfig
from webapp.database import db
from webapp.models import Role

SECRETS = {"SECRET_KEY": "k" * 48, "PASSWORD_PEPPER": "q" * 48}
DEV_PASSWORD = DevelopmentConfig.ADMIN_PASSWORD
WEAK = "still has the development password"


pytestmark = pytest.mark.usefixtures("clean_environment")


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        pytest.param({}, {"SECRET_KEY", "PASSWORD_PEPPER"}, id="neither"),
        pytest.param({"SECRET_KEY": SECRETS["SECRET_KEY"]}, {"PASSWORD_PEPPER"}, id="default-pepper"),
        pytest.param(
            {"PASSWORD_PEPPER": SECRETS["PASSWORD_PEPPER"]}, {"SECRET_KEY"}, id="default-secret-key"
        ),
        pytest.param(
            {"SECRET_KEY": DEV_SECRET_KEY, "PASSWORD_PEPPER": DEV_PASSWORD_PEPPER},
            {"SECRET_KEY", "PASSWORD_PEPPER"},
            id="development-values",
        ),
        pytest.param({**SECRETS, "PASSWORD_PEPPER": ""}, {"PASSWORD_PEPPER"}, id="empty-pepper"),
    ],
)
def test_production_refuses_default_secrets_naming_each(settings, named):
    with pytest.raises(RuntimeError) as error:
        create_app({"APP_ENV": "production", **settings})

    for name in ("SECRET_KEY", "PASSWORD_PEPPER"):
        assert (name in str(error.value)) == (name in named)


def test_production_hashes_at_bcrypt_cost_12_unless_told_otherwise():
    """OWASP ASVS V2.4.4 asks for a work factor of at least 10."""
    assert create_app({"APP_ENV": "production", **SECRETS}).config["BCRYPT_ROUNDS"] == 12


def test_flask_fake_is_refused_in_production():
    app = create_app({"APP_ENV": "production", **SECRETS})

    with app.app_context():
        result = app.test_cli_runner().invoke(args=["fake", "--users", "1", "--items", "1"])

    assert result.exit_code != 0
    assert "refused with APP_ENV=production" in result.output


@pytest.fixture
def production_app(app, migrated_database):
    """A production app (explicit secrets) on the test database, which ``app`` has just emptied."""
    production = create_app(
        {"APP_ENV": "production", **SECRETS, "SQLALCHEMY_DATABASE_URI": migrated_database, "BCRYPT_ROUNDS": 4}
    )
    yield production
    with production.app_context():
        db.engine.dispose()


def make_account(app, username: str, password: str, role: int = Role.ADMIN, activated: bool = True) -> None:
    """Create an account hashed with ``app``'s pepper."""
    with app.app_context():
        make_user(username, role=role, password=password, activated=activated)
        db.session.remove()


def test_deployment_check_refuses_an_active_admin_with_the_development_password(production_app):
    make_account(production_app, "boss", DEV_PASSWORD)
    make_account(production_app, "other-admin", "a long unguessable password")

    with pytest.raises(RuntimeError) as error:
        check_deployment(production_app)

    assert "'boss'" in str(error.value)
    assert WEAK in str(error.value)
    assert "other-admin" not in str(error.value)


@pytest.mark.parametrize(
    ("password", "role", "activated"),
    [
        pytest.param("a long unguessable password", Role.ADMIN, True, id="admin-with-another-password"),
        pytest.param(DEV_PASSWORD, Role.ADMIN, False, id="deactivated-admin"),
        pytest.param(DEV_PASSWORD, Role.USER, True, id="non-admin"),
    ],
)
def test_deployment_check_passes_without_an_active_admin_on_the_development_password(
    production_app, password, role, activated
):
    make_account(production_app, "boss", password, role=role, activated=activated)

    assert check_deployment(production_app) is None


def test_deployment_check_does_nothing_outside_production(app):
    make_account(app, "boss", DEV_PASSWORD)
    assert app.config["APP_ENV"] == "testing"

    assert check_deployment(app) is None


@pytest.mark.slow
def test_gunicorn_in_production_refuses_to_start_with_the_development_admin_password(
    production_app, migrated_database, tmp_path
):
    make_account(production_app, "boss", DEV_PASSWORD)
    env = app_environment(
        **SECRETS,
        APP_ENV="production",
        DATABASE_URL=migrated_database,
        BCRYPT_ROUNDS="4",
        WEB_CONCURRENCY="2",
        SCHEDULER_ENABLED="false",
        HOST="127.0.0.1",
        PORT=str(free_port()),
        METRICS_PORT=str(free_port()),
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
    )
    process = subprocess.Popen(
        GUNICORN,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()

    assert process.returncode != 0
    assert f"'boss' {WEAK}" in output.decode()
