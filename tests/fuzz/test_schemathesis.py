"""schemathesis against the live OpenAPI document of a running server: no 5xx, no answer that
breaks the documented schema, as an admin and as a user, through nginx as deployed and
straight at gunicorn as `make run` serves it."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import urllib.request
from base64 import b64encode
from pathlib import Path

import pytest

from tests.processes import ROOT, Stack, free_port, http_ok, start_nginx, wait_until
from webapp import create_app
from webapp.extensions import db
from webapp.models import Role, User

# Accounts the fuzzer acts as. Their ids are far from the ones it tries first (1, 2, ...),
# so a fuzzed DELETE /users/{id} or password change does not end the run's own access.
ACCOUNTS = {"admin": (900_001, Role.ADMIN), "user": (900_002, Role.USER)}
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))
# A failing run prints its seed; FUZZ_SEED=<seed> replays it.
SEED = os.environ.get("FUZZ_SEED")


@pytest.fixture(scope="module")
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
        start_nginx(stack, port, public_port, prometheus_port=free_port())
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


# Each account through nginx, as deployed; and straight at gunicorn once, for what gunicorn
# refuses itself (its answers to what it cannot parse do not depend on who is calling).
PASSES = [("admin", "nginx"), ("user", "nginx"), ("admin", "gunicorn")]


@pytest.mark.parametrize(("account", "target"), PASSES)
def test_schemathesis_finds_no_server_error_and_no_schema_violation(server, account, target, tmp_path):
    stack, passwords = server
    base_url = stack.public if target == "nginx" else stack.api
    credentials = b64encode(f"fuzz-{account}:{passwords[account]}".encode()).decode()
    request = urllib.request.Request(
        f"{base_url}/openapi.json", headers={"Authorization": f"Basic {credentials}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        schema = tmp_path / "openapi.json"
        schema.write_bytes(response.read())

    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.fuzz.hooks",
        "FUZZ_BASE_URL": base_url,
        "FUZZ_USERNAME": f"fuzz-{account}",
        "FUZZ_PASSWORD": passwords[account],
        "FUZZ_PROTECTED_IDS": ",".join(str(user_id) for user_id, _ in ACCOUNTS.values()),
    }
    command = [
        str(Path(sys.executable).parent / "st"),
        "--config-file",
        str(Path(__file__).parent / "schemathesis.toml"),
        "run",
        str(schema),
        "--url",
        base_url,
        "--checks",
        "all",
        "--max-examples",
        str(EXAMPLES),
        "--workers",
        "1",
        *(["--seed", SEED] if SEED else []),
    ]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    report = ROOT / "artifacts" / "fuzz" / f"{account}-{target}.log"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(result.stdout + result.stderr)
    # A failure prints its reproduction (curl commands) first: CI logs may keep only a part.
    failures = result.stdout.find("FAILURES")
    shown = result.stdout[failures : failures + 6000] if result.returncode and failures >= 0 else ""
    summary = result.stdout[result.stdout.rfind("SUMMARY") - 40 :]
    print(f"\n[fuzz] as {account} through {target} (whole output: {report}):\n{shown}{summary}")
    assert result.returncode == 0, f"schemathesis failed; see {report}"
