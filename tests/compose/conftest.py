"""The shipped compose stack on a real Docker engine: a scratch copy of the repository, a
generated .env, `docker compose up --build --wait`, and helpers to drive it (compose and
docker commands, SQL in the database container, Python inside the network)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.compose.engine import ROOT, StandinError, build_standins, ensure_engine
from tests.processes import free_port, http_ok, wait_until

COMPOSE = ROOT / ".venv" / "bin" / "docker-compose"
# The services a test stack runs: all but Grafana, which has no stand-in here (its files are
# checked against Prometheus instead: test_stack.py).
SERVICES = ("db", "app", "certs", "nginx", "prometheus")
ARTIFACTS = ROOT / "artifacts" / "compose"


@pytest.fixture(scope="session")
def engine() -> dict[str, str]:
    """The environment for docker commands, on an engine with every stand-in built."""
    if not COMPOSE.exists():
        pytest.fail(f"{COMPOSE} is missing: run the tests with `make compose`", pytrace=False)
    try:
        env = ensure_engine()
        started = time.monotonic()
        built = build_standins(env)
    except (StandinError, TimeoutError) as error:
        pytest.fail(f"the stand-in images could not be built: {error}", pytrace=False)
    print(f"[compose] stand-ins ready in {time.monotonic() - started:.1f} s ({len(built)} images)")
    return env


def scratch_copy(destination: Path) -> Path:
    """The repository's files as a clone would have them, with the working tree's changes:
    what `docker compose up --build` builds from, apart from the checkout (a test may add a
    migration to it)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


@dataclass
class Stack:
    """One compose project: its folder, files, .env and the commands to drive it."""

    directory: Path
    env: dict[str, str]
    project: str
    files: tuple[str, ...] = ("compose.yml",)
    dotenv: dict[str, str] = field(default_factory=dict)

    def compose(self, *args: str, timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess:
        command = [str(COMPOSE), "--project-name", self.project]
        for file in self.files:
            command += ["--file", file]
        completed = subprocess.run(
            [*command, *args],
            cwd=self.directory,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and completed.returncode:
            raise AssertionError(
                f"docker compose {' '.join(args)} failed ({completed.returncode}):\n"
                f"{completed.stdout[-4000:]}\n{completed.stderr[-4000:]}"
            )
        return completed

    def docker(self, *args: str, check: bool = True, timeout: float = 120) -> str:
        completed = subprocess.run(
            ["docker", *args], env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and completed.returncode:
            raise AssertionError(f"docker {' '.join(args)} failed:\n{completed.stderr[-4000:]}")
        return completed.stdout

    def containers(self, service: str, *, all_states: bool = False) -> list[str]:
        """The ids of a service's containers (running ones unless ``all_states``)."""
        args = ["ps", "--quiet", *(["--all"] if all_states else []), service]
        return self.compose(*args).stdout.split()

    def inspect(self, container: str) -> dict:
        return json.loads(self.docker("inspect", container))[0]

    def wait_healthy(self, service: str, replicas: int, timeout: float = 180) -> None:
        def healthy() -> bool:
            states = [self.inspect(c)["State"] for c in self.containers(service)]
            return len(states) == replicas and all(
                s.get("Health", {}).get("Status") == "healthy" for s in states
            )

        wait_until(healthy, timeout, f"{replicas} healthy {service} container(s)")

    def sql(self, query: str) -> list[list[str]]:
        """Rows of a query run as root in the database container (tab-separated text)."""
        output = self.compose(
            "exec",
            "-T",
            "db",
            "mysql",
            "--user=root",
            f"--password={self.dotenv['DB_ROOT_PASSWORD']}",
            "--batch",
            "--skip-column-names",
            "webapp",
            "--execute",
            query,
        ).stdout
        return [line.split("\t") for line in output.splitlines()]

    def inside(self, code: str, service: str = "app") -> str:
        """Run Python in a container of ``service`` (on the compose network); its output."""
        return self.compose("exec", "-T", service, "python", "-c", code).stdout

    def fetch_inside(self, url: str) -> dict:
        """GET a JSON document from inside the network (Prometheus's API, a replica's metrics)."""
        code = (
            "import sys, urllib.request; "
            f"sys.stdout.write(urllib.request.urlopen({url!r}, timeout=10).read().decode())"
        )
        return json.loads(self.inside(code))

    def logs(self, container: str) -> str:
        completed = subprocess.run(
            ["docker", "logs", container], env=self.env, capture_output=True, text=True, check=False
        )
        return completed.stdout + completed.stderr

    def port(self, name: str) -> int:
        return int(self.dotenv[name])

    @property
    def public(self) -> str:
        return f"http://127.0.0.1:{self.port('PUBLIC_PORT')}"

    @property
    def public_tls(self) -> str:
        return f"https://localhost:{self.port('PUBLIC_TLS_PORT')}"

    @property
    def prometheus(self) -> str:
        return f"http://127.0.0.1:{self.port('PROMETHEUS_PORT')}"

    def save_logs(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        output = self.compose("logs", "--no-color", "--timestamps", check=False)
        (ARTIFACTS / f"{name}.log").write_text(output.stdout + output.stderr)


def dotenv(**overrides: str) -> dict[str, str]:
    """A .env as an operator fills it in (.env.example): fresh secrets, ports free here."""
    values = {
        name: secrets.token_urlsafe(24)
        for name in (
            "DB_PASSWORD",
            "DB_ROOT_PASSWORD",
            "SECRET_KEY",
            "PASSWORD_PEPPER",
            "ADMIN_PASSWORD",
            "GRAFANA_ADMIN_PASSWORD",
        )
    }
    values.update(
        {
            name: str(free_port())
            for name in ("PUBLIC_PORT", "PUBLIC_TLS_PORT", "PROMETHEUS_PORT", "GRAFANA_PORT")
        }
    )
    values.update(overrides)
    return values


def write_dotenv(directory: Path, values: dict[str, str]) -> None:
    (directory / ".env").write_text("".join(f"{name}={value}\n" for name, value in values.items()))


def start(stack: Stack, *services: str, scale: int = 1) -> float:
    """`docker compose up --build --wait` for ``services``; returns the seconds it took."""
    started = time.monotonic()
    stack.compose("up", "--build", "--detach", "--wait", "--scale", f"app={scale}", *services)
    return time.monotonic() - started


@pytest.fixture(scope="module")
def stack(engine, tmp_path_factory) -> Iterator[Stack]:
    """compose.yml as shipped, from a scratch copy with a generated .env: every service but
    Grafana, one app replica, the purge every 2 seconds (so a test can count its runs)."""
    directory = scratch_copy(tmp_path_factory.mktemp("compose"))
    values = dotenv(PURGE_INTERVAL="2", WEB_CONCURRENCY="2")
    write_dotenv(directory, values)
    stack = Stack(directory=directory, env=engine, project=f"webapp-test-{os.getpid()}", dotenv=values)
    try:
        seconds = start(stack, *SERVICES)
        print(f"[compose] {', '.join(SERVICES)} healthy in {seconds:.1f} s (build included)")
        wait_until(lambda: http_ok(f"{stack.public}/healthz"), 60, "nginx to answer")
        yield stack
    finally:
        stack.save_logs("stack")
        stack.compose("down", "--volumes", "--remove-orphans", "--timeout", "30", check=False)
