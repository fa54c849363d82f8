"""create_app itself: config layering, start-up checks and a factory that connects to nothing."""

import json
import subprocess
import sys

import pytest
from flask import Flask, request

from tests.processes import ROOT
from webapp import create_app
from webapp.config import (
    DEV_PASSWORD_PEPPER,
    DEV_SECRET_KEY,
    Config,
    DevelopmentConfig,
    ProductionConfig,
    TestingConfig,
    config_class,
    environment_overrides,
)
from webapp.database import db

UNREACHABLE_MYSQL = "mysql+pymysql://nobody@127.0.0.1:1/x"
SECRETS = {"SECRET_KEY": "s" * 48, "PASSWORD_PEPPER": "p" * 48}


@pytest.fixture(autouse=True)
def isolated(clean_environment, monkeypatch, tmp_path):
    """No setting leaks in from the real environment or instance folder."""
    instance = tmp_path / "instance"
    instance.mkdir()
    monkeypatch.setattr(Flask, "auto_find_instance_path", lambda self: str(instance))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'app.db'}")
    return instance


def build(config: dict | None = None) -> Flask:
    """create_app, with the engine it made disposed of afterwards (it never connected)."""
    app = create_app(config)
    with app.app_context():
        db.engine.dispose()
    return app


def test_testing_config_is_applied(app):
    assert app.testing
    assert app.config["APP_ENV"] == "testing"
    assert app.config["BCRYPT_ROUNDS"] == TestingConfig.BCRYPT_ROUNDS < DevelopmentConfig.BCRYPT_ROUNDS
    assert app.config["SCHEDULER_ENABLED"] is False


def test_default_is_development_with_the_documented_admin_password():
    app = build()

    assert app.config["APP_ENV"] == "development"
    assert not app.testing
    assert app.config["ADMIN_PASSWORD"] == "admin"
    assert app.config["SECRET_KEY"] == DEV_SECRET_KEY


@pytest.mark.parametrize(
    ("instance_value", "env_value", "explicit_value", "expected"),
    [
        (None, None, None, Config.PAGE_LIMIT_MAX),
        (50, None, None, 50),
        (50, "40", None, 40),
        (None, "40", None, 40),
        (50, "40", 30, 30),
        (None, None, 30, 30),
    ],
    ids=["class", "instance", "env-over-instance", "env", "explicit-over-all", "explicit"],
)
def test_config_layers_class_instance_environment_explicit(
    monkeypatch, isolated, instance_value, env_value, explicit_value, expected
):
    if instance_value is not None:
        (isolated / "config.py").write_text(f"PAGE_LIMIT_MAX = {instance_value}\n")
    if env_value is not None:
        monkeypatch.setenv("PAGE_LIMIT_MAX", env_value)
    explicit = {} if explicit_value is None else {"PAGE_LIMIT_MAX": explicit_value}

    app = build({"APP_ENV": "testing", **explicit})

    assert app.config["PAGE_LIMIT_MAX"] == expected


def test_database_url_environment_variable_sets_the_database(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'elsewhere.db'}")

    app = build({"APP_ENV": "testing"})

    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'elsewhere.db'}"
    with app.app_context():
        assert db.engine.url.database == str(tmp_path / "elsewhere.db")


def test_app_env_environment_variable_selects_the_config_class(monkeypatch):
    monkeypatch.setenv("APP_ENV", "testing")

    app = build()

    assert app.testing
    assert app.config["BCRYPT_ROUNDS"] == TestingConfig.BCRYPT_ROUNDS


@pytest.mark.parametrize(
    ("name", "expected"),
    [(None, DevelopmentConfig), ("testing", TestingConfig), ("PRODUCTION", ProductionConfig)],
)
def test_config_class_maps_app_env(name, expected):
    assert config_class(name) is expected


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"ACCESS_TOKEN_MINUTES": "15"}, {"ACCESS_TOKEN_MINUTES": 15}),
        ({"LOG_LEVEL": "DEBUG"}, {"LOG_LEVEL": "DEBUG"}),
        ({"SCHEDULER_ENABLED": "yes"}, {"SCHEDULER_ENABLED": True}),
        ({"SCHEDULER_ENABLED": "off"}, {"SCHEDULER_ENABLED": False}),
        ({"SCHEDULER_ENABLED": "false"}, {"SCHEDULER_ENABLED": False}),
        ({"DATABASE_URL": "sqlite:///x.db"}, {"SQLALCHEMY_DATABASE_URI": "sqlite:///x.db"}),
        ({"NOT_A_SETTING": "1"}, {}),
    ],
)
def test_environment_overrides_coerce_to_the_setting_type(monkeypatch, env, expected):
    monkeypatch.delenv("DATABASE_URL")
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    assert environment_overrides(Config, vars(Config)) == expected


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("MAX_SESSIONS_PER_USER", "two", "MAX_SESSIONS_PER_USER must be an integer, not 'two'"),
        ("PAGE_LIMIT_MAX", "1.5", "PAGE_LIMIT_MAX must be an integer, not '1.5'"),
        ("SCHEDULER_ENABLED", "maybe", "SCHEDULER_ENABLED must be a boolean, not 'maybe'"),
    ],
)
def test_malformed_environment_value_refuses_to_start(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)

    with pytest.raises(RuntimeError) as error:
        create_app({"APP_ENV": "testing"})

    assert str(error.value) == message


@pytest.mark.parametrize(
    ("settings", "named", "not_named"),
    [
        ({}, ["SECRET_KEY", "PASSWORD_PEPPER"], []),
        ({"SECRET_KEY": SECRETS["SECRET_KEY"]}, ["PASSWORD_PEPPER"], ["SECRET_KEY"]),
        ({"PASSWORD_PEPPER": SECRETS["PASSWORD_PEPPER"]}, ["SECRET_KEY"], ["PASSWORD_PEPPER"]),
        (
            {"SECRET_KEY": "", "PASSWORD_PEPPER": SECRETS["PASSWORD_PEPPER"]},
            ["SECRET_KEY"],
            ["PASSWORD_PEPPER"],
        ),
        (
            {"SECRET_KEY": DEV_SECRET_KEY, "PASSWORD_PEPPER": DEV_PASSWORD_PEPPER},
            ["SECRET_KEY", "PASSWORD_PEPPER"],
            [],
        ),
    ],
)
def test_production_refuses_default_secrets_and_names_them(monkeypatch, settings, named, not_named):
    monkeypatch.setenv("APP_ENV", "production")
    for name, value in settings.items():
        monkeypatch.setenv(name, value)

    with pytest.raises(RuntimeError, match="APP_ENV=production") as error:
        create_app()

    for name in named:
        assert name in str(error.value)
    for name in not_named:
        assert name not in str(error.value)


def test_production_refuses_default_secrets_from_an_explicit_mapping():
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app({"APP_ENV": "production", "PASSWORD_PEPPER": SECRETS["PASSWORD_PEPPER"]})


def test_production_secrets_from_instance_config_are_accepted(isolated):
    (isolated / "config.py").write_text("".join(f"{k} = {v!r}\n" for k, v in SECRETS.items()))

    app = build({"APP_ENV": "production"})

    assert app.config["SECRET_KEY"] == SECRETS["SECRET_KEY"]


def test_production_with_both_secrets_set_starts(monkeypatch):
    monkeypatch.setenv("APP_ENV", "production")
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)

    app = build()

    assert app.config["APP_ENV"] == "production"
    assert not app.testing
    assert app.config["ADMIN_PASSWORD"] == ""
    assert app.test_client().get("/healthz").status_code == 200


@pytest.mark.parametrize("source", ["environment", "mapping"])
def test_invalid_app_env_refuses_to_start(monkeypatch, source):
    if source == "environment":
        monkeypatch.setenv("APP_ENV", "staging")
        config = None
    else:
        config = {"APP_ENV": "staging"}

    with pytest.raises(RuntimeError) as error:
        create_app(config)

    assert str(error.value) == "APP_ENV must be one of development, testing, production, not 'staging'"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"MAX_SESSIONS_PER_USER": 0}, "MAX_SESSIONS_PER_USER must be at least 1"),
        ({"MAX_SESSIONS_PER_USER": -3}, "MAX_SESSIONS_PER_USER must be at least 1"),
        ({"PAGE_LIMIT_DEFAULT": 0}, "PAGE_LIMIT_DEFAULT must be between 1 and PAGE_LIMIT_MAX"),
        (
            {"PAGE_LIMIT_DEFAULT": 50, "PAGE_LIMIT_MAX": 10},
            "PAGE_LIMIT_DEFAULT must be between 1 and PAGE_LIMIT_MAX",
        ),
    ],
)
def test_unworkable_settings_refuse_to_start(settings, message):
    with pytest.raises(RuntimeError) as error:
        create_app({"APP_ENV": "testing", **settings})

    assert str(error.value) == message


def test_max_sessions_zero_from_the_environment_refuses_to_start(monkeypatch):
    monkeypatch.setenv("MAX_SESSIONS_PER_USER", "0")

    with pytest.raises(RuntimeError, match="MAX_SESSIONS_PER_USER must be at least 1"):
        create_app({"APP_ENV": "testing"})


def test_create_app_does_not_connect_to_the_database():
    app = build(
        {"APP_ENV": "testing", "SQLALCHEMY_DATABASE_URI": UNREACHABLE_MYSQL, "DATABASE_CONNECT_TIMEOUT": 1}
    )

    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    # The database really is unreachable: the first query fails, not create_app.
    assert client.get("/readyz").status_code == 503


def test_each_create_app_is_independent():
    first = build({"APP_ENV": "testing", "PAGE_LIMIT_MAX": 70})
    second = build({"APP_ENV": "testing"})

    assert first is not second
    assert first.config["PAGE_LIMIT_MAX"] == 70
    assert second.config["PAGE_LIMIT_MAX"] == Config.PAGE_LIMIT_MAX


def test_importing_webapp_and_creating_an_app_start_no_thread_and_no_connection():
    """In a fresh interpreter: no scheduler, metrics server or database connection before a request."""
    settings = {"APP_ENV": "development", "SQLALCHEMY_DATABASE_URI": UNREACHABLE_MYSQL}
    code = (
        "import threading\n"
        "import webapp, webapp.cli, webapp.jobs, webapp.extensions\n"
        "assert threading.active_count() == 1, threading.enumerate()\n"
        f"app = webapp.create_app({settings!r})\n"
        "assert threading.active_count() == 1, threading.enumerate()\n"
        "assert not webapp.extensions.scheduler.running\n"
    )
    # A fixed interpreter running code written here: nothing untrusted reaches the command line.
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )

    assert result.returncode == 0, result.stderr


# What the HTTP layer brings in; the models must load none of it, however indirectly.
HTTP_MODULES = ("flask_smorest", "webargs", "apispec", "marshmallow", "prometheus_client")
HTTP_APP_MODULES = (
    "webapp.openapi",
    "webapp.openapi_conventions",
    "webapp.errors",
    "webapp.extensions",
    "webapp.logs",
    "webapp.metrics",
)


def test_the_models_know_nothing_of_http():
    """In a fresh interpreter, importing the models (as a script, a migration or a job does)
    loads no web framework piece and none of the app's HTTP modules."""
    code = "import json, sys, webapp.models; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)

    http = [name for name in loaded if name.split(".")[0] in HTTP_MODULES or name in HTTP_APP_MODULES]
    assert "webapp.models.item" in loaded
    assert http == []


@pytest.mark.parametrize("trusted", [0, 1])
def test_behind_a_trusted_proxy_the_client_address_and_scheme_are_believed_but_never_the_host(trusted):
    """nginx passes the client's own Host on, and would pass an X-Forwarded-Host it sent too:
    believing it would let a client choose the host the app thinks it serves."""
    app = build({"APP_ENV": "testing", "TRUSTED_PROXIES": trusted})
    app.add_url_rule(
        "/whoami",
        "whoami",
        lambda: {"host": request.host, "scheme": request.scheme, "ip": request.remote_addr},
    )
    forwarded = {
        "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-For": "203.0.113.7",
    }

    seen = app.test_client().get("/whoami", headers=forwarded, base_url="http://api.example").get_json()

    assert seen["host"] == "api.example"
    assert (seen["scheme"], seen["ip"]) == (("https", "203.0.113.7") if trusted else ("http", "127.0.0.1"))
