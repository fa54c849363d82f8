"""`flask deploy`: migrations and the seed, by exactly one of the instances starting together."""

from __future__ import annotations

import subprocess
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import delete, func, insert, select

from tests.processes import ROOT, app_environment, throwaway_database
from webapp.database import db, utcnow
from webapp.deploy_lock import LOCK_NAME, lock_table
from webapp.models import User

DEVELOPMENT = {"APP_ENV": "development", "TESTING": True, "BCRYPT_ROUNDS": 4}
FLASK = str(ROOT / ".venv" / "bin" / "flask")


def lock_rows() -> list[tuple]:
    return db.session.execute(select(lock_table.c.holder, lock_table.c.expires_at)).all()


@pytest.fixture
def another_holder(app):
    """Insert a lock row as another instance would, expiring in ``lease`` seconds (negative:
    a holder that died); removed afterwards."""
    holder = f"elsewhere:{uuid.uuid4().hex[:6]}"

    def hold(lease: float) -> str:
        with db.engine.begin() as connection:
            connection.execute(
                insert(lock_table).values(
                    name=LOCK_NAME, holder=holder, expires_at=utcnow() + timedelta(seconds=lease)
                )
            )
        return holder

    yield hold
    with db.engine.begin() as connection:
        connection.execute(delete(lock_table))


@pytest.mark.parametrize("app_config", [DEVELOPMENT])
def test_deploy_seeds_what_is_missing_then_finds_the_database_up_to_date(runner):
    first = runner.invoke(args=["deploy"])
    assert first.exit_code == 0, first.output
    assert "deploy: no migration to apply" in first.output
    assert "admin account 'admin' created" in first.output
    assert lock_rows() == []  # released

    second = runner.invoke(args=["deploy"])
    assert second.exit_code == 0, second.output
    assert second.output == "deploy: the database is up to date\n"


def test_deploy_without_admin_password_creates_no_admin_and_prints_no_password(runner):
    """Its output is a service's log: a password made up there would be a secret in the log."""
    assert runner.app.config["ADMIN_PASSWORD"] == ""

    result = runner.invoke(args=["deploy"])

    assert result.exit_code == 0, result.output
    assert "set ADMIN_PASSWORD for this first deploy" in result.output
    assert "password (shown once)" not in result.output
    assert db.session.scalar(select(func.count()).select_from(User)) == 0


@pytest.mark.parametrize("app_config", [DEVELOPMENT])
def test_deploy_waits_for_a_live_holder_and_gives_up_with_a_clear_message(runner, another_holder):
    holder = another_holder(60)

    result = runner.invoke(args=["deploy", "--timeout", "1"])

    assert result.exit_code == 1
    assert f"another instance ({holder}) has been deploying for over 1 s" in result.output
    assert "Traceback" not in result.output
    # It changed nothing, and the holder still holds the lock.
    assert db.session.scalar(select(func.count()).select_from(User)) == 0
    assert [row.holder for row in lock_rows()] == [holder]


@pytest.mark.parametrize("app_config", [DEVELOPMENT])
def test_deploy_takes_over_the_lock_of_a_holder_that_died(runner, another_holder):
    another_holder(-1)  # its lease ran out: it stopped renewing

    result = runner.invoke(args=["deploy", "--timeout", "5"])

    assert result.exit_code == 0, result.output
    assert "admin account 'admin' created" in result.output
    assert lock_rows() == []


@pytest.fixture
def empty_database(database_url, tmp_path):
    """A URL of a new, empty database of the suite's kind (SQLite file or MariaDB)."""
    if not database_url.startswith("mysql"):
        yield f"sqlite:///{tmp_path / 'deploy.db'}"
        return
    with throwaway_database("webapp_deploy") as url:
        yield url


@pytest.mark.slow
def test_instances_starting_at_once_migrate_and_seed_exactly_once(empty_database):
    env = app_environment(
        DATABASE_URL=empty_database, APP_ENV="development", BCRYPT_ROUNDS="4", FLASK_APP="wsgi"
    )
    start = {"cwd": ROOT, "env": env, "stdout": subprocess.PIPE, "stderr": subprocess.STDOUT}
    processes = [subprocess.Popen([FLASK, "deploy"], **start) for _ in range(4)]
    outputs = [process.communicate(timeout=120)[0].decode() for process in processes]

    assert [process.returncode for process in processes] == [0] * 4, outputs
    migrated = [output for output in outputs if "deploy: migrations applied (empty -> " in output]
    assert len(migrated) == 1, outputs
    assert migrated[0].count("admin account 'admin' created") == 1
    for output in outputs:
        if output is not migrated[0]:
            assert "done by another instance" in output or "up to date" in output, output
            assert "Running upgrade" not in output, output
            assert "admin account" not in output, output
    # And the result serves: the same command the servers run finds nothing left to do.
    again = subprocess.run([FLASK, "deploy"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert again.stdout == "deploy: the database is up to date\n", again.stdout + again.stderr


def test_make_run_and_the_container_start_through_the_same_command():
    """One code path: `make run` and docker/entrypoint.sh both run `flask deploy`, then gunicorn."""
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\nrun:", 1)[1].split("\n\n", 1)[0]
    assert [line.split()[0] for line in recipe.strip().splitlines()[1:]] == ["$(BIN)/flask", "PORT=$(PORT)"]
    assert "$(BIN)/flask deploy\n" in recipe
    lines = (ROOT / "docker" / "entrypoint.sh").read_text().splitlines()
    entrypoint = [line for line in lines if line and not line.startswith("#")]
    assert entrypoint[1:] == [
        "env -u PROMETHEUS_MULTIPROC_DIR flask deploy",
        'exec gunicorn -c docker/gunicorn.conf.py wsgi:app "$@"',
    ]
