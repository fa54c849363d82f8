"""The local stand-ins (tests/compose/engine.py) behave as the upstream images do where the
deployment files rely on them. Each runs as compose would run it, from the compose files'
own settings where they have them, in containers on a throwaway network, removed afterwards.

The network has the subnet compose.cluster.yml gives its Galera network, so that the shipped
HAProxy check account (docker/galera/haproxy-user.sql) works here as it does there."""

from __future__ import annotations

import re
import secrets
import shlex
import subprocess
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pymysql
import pytest

from tests.compose.engine import (
    ROOT,
    images_used,
    repository,
    run,
)
from tests.compose_files import load_compose, plain
from tests.processes import wait_until

# The deployment's .env, for these tests.
DOTENV = {"DB_PASSWORD": secrets.token_urlsafe(16), "DB_ROOT_PASSWORD": secrets.token_urlsafe(16)}
# Compose's interpolation: $$, ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}...
VARIABLE = re.compile(r"\$\$|\$\{(?P<name>\w+)(?:(?P<kind>:?[-?])(?P<fallback>[^}]*))?\}")


def interpolate(value: str) -> str:
    """A value of a compose file as compose gives it, variables from DOTENV or their default."""

    def substitute(match: re.Match) -> str:
        if match[0] == "$$":
            return "$"
        if match["name"] in DOTENV:
            return DOTENV[match["name"]]
        if match["kind"] in (":-", "-"):
            return match["fallback"]
        raise KeyError(f"{match[0]} needs {match['name']} in DOTENV")

    return VARIABLE.sub(substitute, value)


def service(name: str, file: str = "compose.yml") -> dict:
    """A service of a compose file, its values interpolated."""
    return _interpolated(plain(load_compose(ROOT / file)["services"][name]))


def _interpolated(value):
    if isinstance(value, dict):
        return {key: _interpolated(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_interpolated(item) for item in value]
    return interpolate(value) if isinstance(value, str) else value


def healthcheck(definition: dict) -> list[str]:
    """A service's health check as a command to run in its container."""
    kind, *command = definition["healthcheck"]["test"]
    return ["sh", "-c", command[0]] if kind == "CMD-SHELL" else command


def bind_mounts(definition: dict) -> list[str]:
    """A service's volumes that are files of the repository (./...), as `docker run` options;
    named volumes are left out (the image's own anonymous volumes stand in for them)."""
    mounts = []
    for volume in definition.get("volumes", []):
        source, _, target = volume.partition(":")
        if source.startswith("./"):
            mounts.append(f"--volume={ROOT / source[2:]}:{target}")
    return mounts


def service_image(name: str, file: str = "compose.yml") -> str:
    """The image of a service of a compose file."""
    return load_compose(ROOT / file)["services"][name]["image"]


# --- Docker ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def network(engine) -> Iterator[str]:
    name = f"webapp-standins-{uuid.uuid4().hex[:8]}"
    subnet = load_compose(ROOT / "compose.cluster.yml")["networks"]["galera"]["ipam"]["config"][0]["subnet"]
    run(["docker", "network", "create", "--subnet", subnet, name], engine)
    yield name
    run(["docker", "network", "rm", name], engine)


@contextmanager
def container(
    engine: dict[str, str], network: str, image: str, *command: str, options: Iterable[str] = ()
) -> Iterator[str]:
    """A container of ``image`` in the background for the block; its id. It is removed after,
    with its anonymous volumes."""
    container_id = run(
        ["docker", "run", "--detach", f"--network={network}", *options, image, *command], engine
    )
    container_id = container_id.strip()
    try:
        yield container_id
    finally:
        run(["docker", "rm", "--force", "--volumes", container_id], engine)


def environment(variables: dict[str, str]) -> list[str]:
    return [f"--env={name}={value}" for name, value in variables.items()]


def execute(engine: dict[str, str], container_id: str, *command: str) -> subprocess.CompletedProcess:
    """A command in a running container; its outcome, success or not."""
    return subprocess.run(
        ["docker", "exec", container_id, *command], env=engine, capture_output=True, text=True
    )


def passes(engine: dict[str, str], container_id: str, command: list[str]) -> bool:
    return execute(engine, container_id, *command).returncode == 0


def logs(engine: dict[str, str], container_id: str) -> str:
    output = subprocess.run(["docker", "logs", container_id], env=engine, capture_output=True, text=True)
    return output.stdout + output.stderr


def wait_for(engine: dict[str, str], container_id: str, check, timeout: float, what: str) -> None:
    """wait_until, with the container's log in the failure."""
    try:
        wait_until(check, timeout, what)
    except TimeoutError as error:
        raise AssertionError(f"{error}; the container's log:\n{logs(engine, container_id)[-4000:]}") from None


def address(engine: dict[str, str], container_id: str) -> str:
    template = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
    return run(["docker", "inspect", "--format", template, container_id], engine).strip()


def init_directory(tmp_path: Path, files: dict[str, str]) -> Path:
    """A /docker-entrypoint-initdb.d/ to mount: ``files`` by name, readable by the server's
    account (scripts executable)."""
    directory = tmp_path / "initdb"
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)
    for name, text in files.items():
        (directory / name).write_text(text)
        (directory / name).chmod(0o755 if name.endswith(".sh") else 0o644)
    return directory


def reporter(check: list[str]) -> str:
    """An init script that logs whether ``check`` passes while the temporary server runs."""
    return f"""#!/bin/sh
if {shlex.join(check)}; then
    echo "health check while initialising: passed"
else
    echo "health check while initialising: failed"
fi
"""


@contextmanager
def built(engine: dict[str, str], dockerfile: str) -> Iterator[str]:
    """An image of one of the repository's Dockerfiles, built on the stand-ins, for the block."""
    tag = f"webapp-standin-test/{Path(dockerfile).parent.name}:{uuid.uuid4().hex[:8]}"
    run(["docker", "build", "--force-rm", "--file", str(ROOT / dockerfile), "--tag", tag, str(ROOT)], engine)
    try:
        yield tag
    finally:
        run(["docker", "rmi", tag], engine)


# --- mysql: compose.yml's db -----------------------------------------------------------------


def test_mysql_refuses_to_initialise_without_a_root_password_option(engine):
    started = subprocess.run(
        ["docker", "run", "--rm", service_image("db")],
        env=engine,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert started.returncode == 1
    assert "Database is uninitialized and password option is not specified" in started.stderr
    assert "- MYSQL_ROOT_PASSWORD" in started.stderr


def test_mysql_initialises_from_the_environment_for_the_app(engine, network, tmp_path):
    db = service("db")
    settings = db["environment"]
    check = healthcheck(db)
    initdb = init_directory(
        tmp_path, {"10-health.sh": reporter(check), "20-seed.sql": "CREATE TABLE seeded (id INT);\n"}
    )
    options = [*environment(settings), f"--volume={initdb}:/docker-entrypoint-initdb.d:ro"]

    with container(engine, network, db["image"], *db["command"], options=options) as db_id:
        wait_for(engine, db_id, lambda: passes(engine, db_id, check), 60, "the health check to pass")
        with pymysql.connect(
            host=address(engine, db_id),
            user=settings["MYSQL_USER"],
            password=settings["MYSQL_PASSWORD"],
            database=settings["MYSQL_DATABASE"],
            connect_timeout=5,
        ) as connection:
            cursor = connection.cursor()
            cursor.execute("SELECT @@character_set_server, @@collation_server")
            server_settings = cursor.fetchone()
            cursor.execute("SHOW TABLES")
            tables = cursor.fetchall()
            # Binary logging is on, as in MySQL: the trigger needs the trust compose.yml gives.
            cursor.execute("CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(20))")
            cursor.execute("CREATE TRIGGER items_added AFTER INSERT ON items FOR EACH ROW SET @added = 1")
            cursor.execute(
                "SELECT TABLE_COLLATION FROM information_schema.TABLES WHERE TABLE_NAME = 'items'"
                " AND TABLE_SCHEMA = DATABASE()"
            )
            collation = cursor.fetchone()
        with pymysql.connect(
            host=address(engine, db_id),
            user="root",
            password=settings["MYSQL_ROOT_PASSWORD"],
            connect_timeout=5,
        ) as root:
            root.cursor().execute("SELECT 1")
        log = logs(engine, db_id)

    assert server_settings == ("utf8mb4", "utf8mb4_bin")
    assert tables == (("seeded",),)
    assert collation == ("utf8mb4_bin",)
    assert "health check while initialising: failed" in log


# --- mariadb: the base of docker/galera/Dockerfile --------------------------------------------


def test_mariadb_initialises_from_the_environment(engine, network):
    galera1 = service("galera1", "compose.cluster.yml")
    settings = {name: value for name, value in galera1["environment"].items() if name.startswith("MARIADB_")}
    # The image docker/galera/Dockerfile starts from.
    mariadb = next(image for image in images_used() if repository(image) == "mariadb")

    with container(engine, network, mariadb, options=environment(settings)) as db_id:
        wait_for(
            engine,
            db_id,
            lambda: passes(engine, db_id, ["healthcheck.sh", "--connect", "--innodb_initialized"]),
            60,
            "healthcheck.sh --connect --innodb_initialized to pass",
        )
        not_galera = execute(engine, db_id, "healthcheck.sh", "--galera_online")
        as_mysql = execute(engine, db_id, "gosu", "mysql", "mariadb", "--batch", "--execute", "SHOW GRANTS")
        with pymysql.connect(
            host=address(engine, db_id),
            user=settings["MARIADB_USER"],
            password=settings["MARIADB_PASSWORD"],
            database=settings["MARIADB_DATABASE"],
            connect_timeout=5,
        ) as connection:
            connection.cursor().execute("CREATE TABLE items (id INT PRIMARY KEY)")

    assert not_galera.returncode == 1
    # MARIADB_MYSQL_LOCALHOST_USER: mysql@localhost, by its socket's credentials, no privilege.
    assert as_mysql.stdout.splitlines()[1:] == [
        "GRANT USAGE ON *.* TO `mysql`@`localhost` IDENTIFIED VIA unix_socket"
    ], as_mysql.stderr


@pytest.fixture(scope="module")
def galera1(engine, network) -> Iterator[str]:
    """compose.cluster.yml's galera1, on docker/galera/Dockerfile built on the stand-in:
    bootstrapping a cluster of its own (no other node answers), Synced."""
    node = service("galera1", "compose.cluster.yml")
    options = [*environment(node["environment"]), "--network-alias=galera1"]
    options += bind_mounts(node)
    check = healthcheck(node)
    with (
        built(engine, "docker/galera/Dockerfile") as image,
        container(engine, network, image, *node["command"], options=options) as node_id,
    ):
        wait_for(
            engine, node_id, lambda: passes(engine, node_id, check), 120, "galera1's health check to pass"
        )
        yield node_id


def test_galera_node_bootstraps_and_turns_healthy(engine, galera1):
    query = "SHOW STATUS WHERE Variable_name IN ('wsrep_cluster_size', 'wsrep_local_state_comment')"
    status = execute(
        engine, galera1, "gosu", "mysql", "mariadb", "--batch", "--skip-column-names", "-e", query
    )

    assert dict(line.split("\t") for line in status.stdout.splitlines()) == {
        "wsrep_cluster_size": "1",
        "wsrep_local_state_comment": "Synced",
    }


# --- haproxy: compose.cluster.yml's db --------------------------------------------------------


def test_haproxy_accepts_the_shipped_configuration(engine, network):
    db = service("db", "compose.cluster.yml")
    options = [*environment(db["environment"]), *bind_mounts(db)]
    configuration = "/usr/local/etc/haproxy/haproxy.cfg"

    checked = subprocess.run(
        ["docker", "run", "--rm", f"--network={network}", *options, db["image"], "-c", "-f", configuration],
        env=engine,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Configuration file is valid" in checked.stdout + checked.stderr


def test_haproxy_routes_the_app_to_the_synced_node(engine, network, galera1):
    db = service("db", "compose.cluster.yml")
    options = [*environment(db["environment"]), *bind_mounts(db)]
    check = healthcheck(db)
    app = service("galera1", "compose.cluster.yml")["environment"]

    with container(engine, network, db["image"], options=options) as proxy_id:
        wait_for(engine, proxy_id, lambda: passes(engine, proxy_id, check), 30, "the db health check to pass")
        command = execute(engine, proxy_id, "cat", "/proc/1/cmdline").stdout.split("\0")
        user = execute(engine, proxy_id, "id", "-un").stdout.strip()
        with pymysql.connect(
            host=address(engine, proxy_id),
            user=app["MARIADB_USER"],
            password=app["MARIADB_PASSWORD"],
            database=app["MARIADB_DATABASE"],
            connect_timeout=5,
        ) as connection:
            cursor = connection.cursor()
            cursor.execute("SELECT @@wsrep_node_name")
            node = cursor.fetchone()

    assert command[:3] == ["haproxy", "-W", "-db"]
    assert user == "haproxy"
    assert node == ("galera1",)


# --- nginx: compose.yml's nginx ----------------------------------------------------------------

PROBE_TEMPLATE = """\
# resolvers: ${NGINX_LOCAL_RESOLVERS}
server {
    listen ${PROBE_PORT};
    set $foo "from-nginx";
    location / {
        return 200 "greeting=${GREETING} foo=$foo\\n";
    }
}
"""


def test_nginx_renders_templates_with_the_environment_only(engine, network, tmp_path):
    templates = tmp_path / "templates"
    templates.mkdir(mode=0o755)
    (templates / "probe.conf.template").write_text(PROBE_TEMPLATE)
    mounted_script = tmp_path / "40-mounted.sh"
    mounted_script.write_text("#!/bin/sh\necho 'mounted script ran'\n")
    mounted_script.chmod(0o755)
    options = [
        *environment(
            {
                "PROBE_PORT": "8081",
                "GREETING": "hello",
                "NGINX_ENTRYPOINT_LOCAL_RESOLVERS": "1",
                "NGINX_ENTRYPOINT_WORKER_PROCESSES_AUTOTUNE": "1",
            }
        ),
        f"--volume={templates}:/etc/nginx/templates:ro",
        f"--volume={mounted_script}:/docker-entrypoint.d/40-mounted.sh:ro",
        "--cpus=1",
    ]

    with container(engine, network, service_image("nginx"), options=options) as nginx_id:
        served = ["curl", "-fsS", "http://127.0.0.1:8081/"]
        wait_for(
            engine, nginx_id, lambda: passes(engine, nginx_id, served), 30, "nginx to serve the template"
        )
        answer = execute(engine, nginx_id, *served).stdout
        rendered = execute(engine, nginx_id, "cat", "/etc/nginx/conf.d/probe.conf").stdout
        main = execute(engine, nginx_id, "cat", "/etc/nginx/nginx.conf").stdout
        log = logs(engine, nginx_id)

    assert answer == "greeting=hello foo=from-nginx\n"
    assert 'set $foo "from-nginx";' in rendered
    assert 'return 200 "greeting=hello foo=$foo\\n";' in rendered
    # Docker's DNS, the name server of a container on a network of its own.
    assert "# resolvers: 127.0.0.11\n" in rendered
    assert "worker_processes 1;" in main
    assert "mounted script ran" in log


# --- prometheus: compose.yml's prometheus ------------------------------------------------------


def test_prometheus_starts_with_the_compose_flags(engine, network):
    prometheus = service("prometheus")
    options = bind_mounts(prometheus)
    flags = dict(flag.partition("=")[::2] for flag in prometheus["command"])
    ready = f"http://127.0.0.1:9090{flags.get('--web.route-prefix', '').rstrip('/')}/-/ready"

    with container(engine, network, prometheus["image"], *prometheus["command"], options=options) as prom_id:
        check = ["wget", "-qO-", ready]
        wait_for(engine, prom_id, lambda: passes(engine, prom_id, check), 60, f"{ready} to answer")
        answer = execute(engine, prom_id, *check).stdout
        user = execute(engine, prom_id, "id", "-un").stdout.strip()

    assert "Ready" in answer
    assert user == "nobody"


# --- python: docker/Dockerfile -------------------------------------------------------------------


def test_python_builds_the_api_image(engine):
    with built(engine, "docker/Dockerfile") as image:
        imported = subprocess.run(
            ["docker", "run", "--rm", "--entrypoint", "python", image, "-c", "import flask, webapp"],
            env=engine,
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert imported.returncode == 0, imported.stderr
