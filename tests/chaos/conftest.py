"""Shared pieces of the fault tests (`make chaos`): a throwaway MariaDB database per module
and the environment of a production-like gunicorn on loopback."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from tests.processes import ROOT, Stack, free_port, throwaway_database


@pytest.fixture(scope="module")
def database(request) -> str:
    """A new, empty MariaDB database for this module (dropped afterwards); its URL."""
    with throwaway_database(f"webapp_chaos_{request.module.__name__.rsplit('.', 1)[-1]}") as url:
        yield url


def server_env(database_url: str, tmp: Path, **overrides: str) -> dict[str, str]:
    """Environment for docker/entrypoint.sh (migrate, seed, gunicorn) in production mode.

    bcrypt is cheap and brute-force limits are out of reach so faults, not logins, are
    what these tests measure; every other setting is production's.
    """
    env = {
        **os.environ,
        "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "FLASK_APP": "wsgi",
        "APP_ENV": "production",
        "SECRET_KEY": uuid.uuid4().hex,
        "PASSWORD_PEPPER": "chaos-pepper",
        "ADMIN_PASSWORD": "chaos-admin-password",
        "BCRYPT_ROUNDS": "4",
        "MAX_FAILURES_PER_ACCOUNT": "1000000",
        "MAX_FAILURES_PER_ADDRESS": "1000000",
        "ACCOUNT_UNDER_ATTACK_FAILURES": "1000000",
        "DATABASE_URL": database_url,
        "HOST": "127.0.0.1",
        "WEB_CONCURRENCY": "3",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp / f"metrics-{uuid.uuid4().hex[:6]}"),
        "LOG_FORMAT": "json",
    }
    env.pop("TEST_DATABASE_URL", None)
    env.update(overrides)
    return env


def proxied_server(database_url: str, tmp: Path, **overrides: str) -> tuple[Stack, dict[str, str]]:
    """A Stack with loopback addresses for gunicorn, its metrics and nginx in front, and the
    gunicorn environment for them (``server_env``, trusting nginx as its one proxy)."""
    api_port, metrics_port, public_port = free_port(), free_port(), free_port()
    stack = Stack(
        tmp=tmp,
        database=database_url.rsplit("/", 1)[1],
        database_url=database_url,
        api=f"http://127.0.0.1:{api_port}",
        metrics=f"http://127.0.0.1:{metrics_port}",
        public=f"http://127.0.0.1:{public_port}",
    )
    env = server_env(
        database_url,
        tmp,
        PORT=str(api_port),
        METRICS_PORT=str(metrics_port),
        TRUSTED_PROXIES="1",
        **overrides,
    )
    return stack, env
