"""Configuration: class defaults, then ``instance/config.py``, then the environment."""

from __future__ import annotations

import os
from typing import Any

# Development-only values; create_app refuses to start in production while they are in use.
DEV_SECRET_KEY = "dev-secret-key-not-for-production"  # noqa: S105
DEV_PASSWORD_PEPPER = "dev-pepper-not-for-production"  # noqa: S105


class Config:
    """Defaults shared by every environment; each one can be set by an env var of the same name."""

    APP_ENV = "development"
    SECRET_KEY = DEV_SECRET_KEY
    # Mixed into every password hash; keep it out of the database and out of source control.
    PASSWORD_PEPPER = DEV_PASSWORD_PEPPER
    BCRYPT_ROUNDS = 12

    # Set with DATABASE_URL. A relative SQLite path lives in the instance folder.
    SQLALCHEMY_DATABASE_URI = "sqlite:///webapp.db"
    # Seconds before a database that does not answer is a 503 (connecting / reading or writing).
    DATABASE_CONNECT_TIMEOUT = 2
    DATABASE_QUERY_TIMEOUT = 10
    # Seconds a list query may run on MySQL/MariaDB before the server stops it (503): a filter
    # the word index cannot serve (under 3 characters, a description) scans the table. Below
    # DATABASE_QUERY_TIMEOUT, so the server's answer comes first; 0: no limit.
    DATABASE_STATEMENT_TIMEOUT = 8.0
    # The Retry-After sent with a 503 while the database is unavailable.
    DATABASE_RETRY_AFTER = 5
    # Tries of a request whose transaction loses a conflict (deadlock, Galera certification
    # failure, lock wait timeout) before it is answered 503; see webapp/transactions.py.
    DATABASE_CONFLICT_ATTEMPTS = 10
    # On a Galera cluster, what each connection's reads wait for (wsrep_sync_wait): 1, reads
    # see every write acknowledged on any node (read-your-writes); 0, no wait (faster, stale).
    GALERA_SYNC_WAIT = 1

    # Brute-force limits on failed logins (and docs logins, refreshes and current-password
    # checks) within a sliding window; beyond them, 429 with Retry-After (webapp/ratelimit.py).
    AUTH_FAILURE_WINDOW = 300
    # Failures of one account from one client address.
    MAX_FAILURES_PER_ACCOUNT = 10
    # Failures from one client address, over every account.
    MAX_FAILURES_PER_ADDRESS = 50
    # Failures of one account from all addresses together, beyond which an address that has
    # failed gets no more guesses (an address without failures still logs in).
    ACCOUNT_UNDER_ATTACK_FAILURES = 20

    # Requests with a larger body are refused with 413 before anything reads it.
    MAX_CONTENT_LENGTH = 1024 * 1024
    # Origins allowed to call the API from a browser (comma-separated); none by default.
    CORS_ORIGINS = ""

    ACCESS_TOKEN_MINUTES = 120
    # A session unused this long ends (its refresh token expires); each refresh renews it.
    REFRESH_TOKEN_DAYS = 200
    # A session ends this many seconds after its login however often it is refreshed: then
    # its tokens are refused and the user logs in again (12 hours meets OWASP ASVS L2).
    SESSION_MAX_AGE = 30 * 86400
    MAX_SESSIONS_PER_USER = 2

    # GET /users and GET /users/{id} answer anyone (the contract); false requires a token,
    # so usernames cannot be listed from outside (recommended in production).
    PUBLIC_USER_DIRECTORY = True

    PAGE_LIMIT_DEFAULT = 20
    PAGE_LIMIT_MAX = 100
    # How long a worker may serve the versions and roles tables from memory.
    VERSION_CACHE_SECONDS = 5

    ADMIN_USERNAME = "admin"
    # Empty outside development: `flask seed` then generates one and prints it once.
    ADMIN_PASSWORD = ""

    # gunicorn workers run the scheduler; the purge runs once per interval across all of them.
    SCHEDULER_ENABLED = True
    PURGE_INTERVAL = 86400

    # Behind the proxy, a request that waited in the queue longer than this (from nginx's
    # X-Request-Start stamp) is answered 503 at once instead of served late; 0: never.
    QUEUE_TIMEOUT_MS = 1000

    # Reverse proxies in front (nginx: 1) whose X-Forwarded-For/-Proto are trusted;
    # 0 means clients talk to gunicorn directly and such headers are ignored.
    TRUSTED_PROXIES = 0

    LOG_LEVEL = "INFO"
    # "text" or "json" (one object per line, for log shippers).
    LOG_FORMAT = "text"

    # flask-smorest: the spec at /openapi.json, ReDoc at /docs, its script served by the app.
    API_TITLE = "Flask reference API"
    API_VERSION = "1.0.0"
    OPENAPI_VERSION = "3.0.3"
    OPENAPI_URL_PREFIX = "/"
    OPENAPI_JSON_PATH = "openapi.json"
    OPENAPI_REDOC_PATH = "docs"
    OPENAPI_REDOC_URL = "/vendor/redoc/redoc.standalone.js"
    API_SPEC_OPTIONS = {
        "info": {
            "description": "Users and items with token sessions, roles and client versioning.",
            "x-logo": {"url": "/logo.png", "altText": "Flask reference API"},
        }
    }
    # What the document tells client developers: where the API is (relative: the document's
    # own origin), whom to ask, and the terms. A deployment sets its own.
    API_SERVER_URL = "/"
    API_CONTACT_NAME = "API support"
    API_CONTACT_EMAIL = ""  # left out of the document while empty
    API_LICENSE_NAME = "MIT"
    API_LICENSE_URL = "https://opensource.org/license/mit"


class DevelopmentConfig(Config):
    """`make run` on a laptop: embedded SQLite and the documented admin/admin account."""

    ADMIN_PASSWORD = "admin"  # noqa: S105 (the documented development account; refused in production)


class TestingConfig(Config):
    """The test suite: cheap hashing, no background work."""

    APP_ENV = "testing"
    TESTING = True
    BCRYPT_ROUNDS = 4
    SCHEDULER_ENABLED = False


class ProductionConfig(Config):
    """A deployment: secrets must come from the environment (checked at start-up)."""

    APP_ENV = "production"


CONFIGS: dict[str, type[Config]] = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}

# Environment names that differ from the config key they set.
ENV_ALIASES = {"DATABASE_URL": "SQLALCHEMY_DATABASE_URI"}


def config_class(app_env: str | None = None) -> type[Config]:
    """Return the config class for APP_ENV (development when unset)."""
    name = (app_env or os.environ.get("APP_ENV") or "development").lower()
    try:
        return CONFIGS[name]
    except KeyError:
        raise RuntimeError(f"APP_ENV must be one of {', '.join(CONFIGS)}, not {name!r}") from None


def _coerce(raw: str, default: Any, name: str) -> Any:
    if isinstance(default, bool):
        if raw.lower() in {"1", "true", "yes", "on"}:
            return True
        if raw.lower() in {"0", "false", "no", "off", ""}:
            return False
        raise RuntimeError(f"{name} must be a boolean, not {raw!r}")
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            raise RuntimeError(f"{name} must be an integer, not {raw!r}") from None
    return raw


def environment_overrides(config_cls: type[Config], current: dict[str, Any]) -> dict[str, Any]:
    """Values from environment variables for every setting ``config_cls`` defines."""
    names = [(key, key) for key in dir(config_cls) if key.isupper()] + list(ENV_ALIASES.items())
    return {
        key: _coerce(os.environ[env_name], current.get(key), env_name)
        for env_name, key in names
        if env_name in os.environ
    }


def validate_config(config: dict[str, Any]) -> None:
    """Refuse to start on settings that cannot work or must not reach production."""
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
    if config["DATABASE_CONFLICT_ATTEMPTS"] < 1:
        raise RuntimeError("DATABASE_CONFLICT_ATTEMPTS must be at least 1")
    if config["PURGE_INTERVAL"] < 1:
        raise RuntimeError("PURGE_INTERVAL must be at least 1 second")
    if config["SESSION_MAX_AGE"] < 60:
        raise RuntimeError("SESSION_MAX_AGE must be at least 60 seconds")
    if config["MAX_SESSIONS_PER_USER"] < 1:
        raise RuntimeError("MAX_SESSIONS_PER_USER must be at least 1")
    if not 1 <= config["PAGE_LIMIT_DEFAULT"] <= config["PAGE_LIMIT_MAX"]:
        raise RuntimeError("PAGE_LIMIT_DEFAULT must be between 1 and PAGE_LIMIT_MAX")
