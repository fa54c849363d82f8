"""The API image as a container engineer would judge it: built from a scratch copy of the
repository with docker/Dockerfile, then inspected and run on its own."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import pytest

from tests.compose.conftest import scratch_copy
from tests.compose.engine import run
from tests.processes import wait_until


@pytest.fixture(scope="module")
def image(engine, tmp_path_factory) -> Iterator[dict]:
    """The image, built twice (the second time from the cache), with the seconds each took."""
    context = scratch_copy(tmp_path_factory.mktemp("image"))
    tag = f"webapp-image-test:{uuid.uuid4().hex[:8]}"
    seconds = []
    for _ in range(2):
        started = time.monotonic()
        run(["docker", "build", "--file", "docker/Dockerfile", "--tag", tag, "."], engine, cwd=context)
        seconds.append(time.monotonic() - started)
    inspected = json.loads(run(["docker", "image", "inspect", tag], engine))[0]
    print(
        f"[compose] API image: {inspected['Size'] / 1e6:.0f} MB, built in {seconds[0]:.1f} s "
        f"(layers unchanged since earlier builds reused), again in {seconds[1]:.1f} s (all reused)"
    )
    yield {"tag": tag, "inspected": inspected, "env": engine}
    run(["docker", "rmi", tag], engine)


def in_image(image: dict, code: str) -> str:
    """Run Python in a throwaway container of the image, as its own user."""
    return run(["docker", "run", "--rm", "--entrypoint", "python", image["tag"], "-c", code], image["env"])


def test_it_runs_as_a_user_of_its_own_not_root(image):
    assert image["inspected"]["Config"]["User"] == "app"
    assert in_image(image, "import os; print(os.getuid(), os.getgid())").split() != ["0", "0"]


def test_it_holds_the_app_and_nothing_of_the_checkout_or_the_build(image):
    listed = in_image(
        image,
        "import os, shutil; print(sorted(os.listdir('/app'))); print(sorted(os.listdir('/app/instance'))); "
        "print([tool for tool in ('gcc', 'cc', 'make', 'git') if shutil.which(tool)])",
    ).splitlines()

    assert listed[0] == str(sorted(["wsgi.py", ".flaskenv", "webapp", "migrations", "docker", "instance"]))
    assert listed[1] == "[]"  # no database file of a developer's
    assert listed[2] == "[]"  # no compiler, no build tools, no git


def test_its_health_check_follows_the_port_it_is_told_to_serve_on(image, engine):
    """A container told PORT=9123 (SQLite, development settings) turns healthy: the check asks
    the port the server really listens on."""
    healthcheck = image["inspected"]["Config"]["Healthcheck"]
    assert healthcheck["Test"] == ["CMD", "python", "docker/healthcheck.py"]
    name = f"webapp-health-{uuid.uuid4().hex[:8]}"
    run(
        [
            "docker",
            "run",
            "--detach",
            "--name",
            name,
            "--env",
            "PORT=9123",
            "--env",
            "APP_ENV=development",
            "--health-interval=1s",
            "--health-start-period=60s",
            image["tag"],
        ],
        engine,
    )
    try:

        def health() -> str:
            return run(["docker", "inspect", "--format", "{{.State.Health.Status}}", name], engine).strip()

        wait_until(lambda: health() == "healthy", 90, "the container to report healthy on port 9123")
        listening = run(
            ["docker", "exec", name, "python", "-c", "print(open('/proc/net/tcp').read())"], engine
        )
        assert f":{9123:04X} " in listening  # the server is on 9123, where the check asked
    finally:
        run(["docker", "rm", "--force", name], engine)
