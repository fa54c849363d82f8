"""The live server the fuzzing runs attack: gunicorn on SQLite (through docker/entrypoint.sh,
as `make run` serves) with nginx in front on the shipped template, and two accounts."""

from __future__ import annotations

import os
import secrets

import pytest

from tests.processes import AUTH_RATE_UNLIMITED, ROOT, Stack, free_port, http_ok, start_nginx, wait_until
from webapp import create_app
from webapp.database import db
from webapp.models import Role, User

# Accounts the fuzzer acts as. Their ids are far from the ones it tries first (1, 2, ...),
# so a fuzzed DELETE /users/{id} or password change does not end the run's own access.
ACCOUNTS = {"admin": (900_001, Role.ADMIN), "user": (900_002, Role.USER)}


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    database_url = f"sqlite:///{tmp / 'fuzz.db'}"
    port = free_port()
    env = {
        **os.environ,
        "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "FLASK_APP": "wsgi",
        "DATABASE_URL": database_url,
        "BCRYPT_ROUNDS": "4",
        # The fuzzer fails thousands of logins: brute-force limits would only hide the API.
        "MAX_FAILURES_PER_ACCOUNT": "1000000000",
        "MAX_FAILURES_PER_ADDRESS": "1000000000",
        "ACCOUNT_UNDER_ATTACK_FAILURES": "1000000000",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "METRICS_PORT": str(free_port()),
        "WEB_CONCURRENCY": "2",
        "SCHEDULER_ENABLED": "false",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp / "metrics"),
    }
    env.pop("TEST_DATABASE_URL", None)
    public_port = free_port()
    stack = Stack(tmp=tmp, api=f"http://127.0.0.1:{port}", public=f"http://127.0.0.1:{public_port}")
    passwords = {name: secrets.token_urlsafe(16) for name in ACCOUNTS}
    try:
        stack.start("gunicorn", [str(ROOT / "docker" / "entrypoint.sh")], env)
        wait_until(lambda: http_ok(f"{stack.api}/healthz"), 60, "gunicorn")
        # Fuzzed through nginx, as deployed: its limits on URLs, headers and bodies answer first.
        start_nginx(stack, port, public_port, auth_rate=AUTH_RATE_UNLIMITED)
        app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "BCRYPT_ROUNDS": 4})
        with app.app_context():
            for name, (user_id, role) in ACCOUNTS.items():
                user = User(id=user_id, username=f"fuzz-{name}", role_id=role)
                user.set_password(passwords[name])
                db.session.add(user)
            db.session.commit()
            db.engine.dispose()
        yield stack, passwords
    finally:
        stack.stop_all()
