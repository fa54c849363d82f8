"""Two gunicorn instances on one MariaDB database, as `docker compose up --scale app=2` runs
them: nothing that matters may live in one process. Sessions, deactivations, client
versions and the purge's run claims must be shared through the database."""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from dataclasses import dataclass

import pytest

from tests.chaos.conftest import server_env
from tests.factories import bearer
from tests.processes import (
    DOCKER,
    ROOT,
    Stack,
    free_port,
    http_call,
    http_ok,
    mariadb_root,
    metric_total,
    wait_until,
)

WORKERS = 2  # per instance
PURGE_INTERVAL = 2
PURGE_WINDOW = 12
VERSION_CACHE_SECONDS = 2
# Process start-up, a request in flight and the poll period, on top of the cache's bound.
VERSION_MARGIN = 1.0
ADMIN_PASSWORD = "chaos-admin-password"


@dataclass
class Instance:
    name: str
    stack: Stack
    env: dict[str, str]

    @property
    def url(self) -> str:
        return self.stack.api


@dataclass
class Cluster:
    a: Instance
    b: Instance
    env: dict[str, str]  # the shared settings (secrets, database), for the CLI
    database: str
    started: float  # wall clock once both instances answer
    purge_runs_at_start: float


def call(method: str, url: str, body=None, headers: dict | None = None):
    """One HTTP request on a new connection: (status, parsed JSON or text)."""
    status, _, answer = http_call(method, url, body, headers)
    return status, answer


def login(instance: Instance, username: str = "admin", password: str = ADMIN_PASSWORD) -> dict:
    status, body = call("POST", f"{instance.url}/auth/token", {"username": username, "password": password})
    assert status == 200, body
    return body


def statuses(instance: Instance, path: str, headers: dict, times: int) -> list[int]:
    """``times`` requests, each on its own connection, so each worker of the instance gets some."""
    return [call("GET", f"{instance.url}{path}", headers=headers)[0] for _ in range(times)]


def purge_runs(*instances: Instance) -> float:
    """Purges run so far, counted by the job itself in every worker of these instances."""
    return sum(metric_total(i.stack.metrics, "webapp_purge_runs_total") for i in instances)


def query(cluster: Cluster, sql: str, args: tuple = ()) -> tuple:
    """Rows of one statement on the instances' database, on a connection of its own."""
    connection = mariadb_root(cluster.database)
    with connection, connection.cursor() as cursor:
        cursor.execute(sql, args)
        return cursor.fetchall()


def cli_env(cluster: Cluster) -> dict[str, str]:
    """The servers' settings (database, secrets, production) for a one-off flask command,
    kept out of the metrics directory as docker/entrypoint.sh does."""
    env = {**cluster.env, "FLASK_APP": "wsgi", "APP_ENV": "production"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env


FLASK = str(ROOT / ".venv" / "bin" / "flask")


def flask_cli(cluster: Cluster, *args: str) -> str:
    result = subprocess.run(
        [FLASK, *args],
        cwd=ROOT,
        env=cli_env(cluster),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def cluster(database, tmp_path_factory):
    """Instances a and b, both through docker/entrypoint.sh, started at the same moment (the
    one migrates and seeds under `flask deploy`'s lock while the other waits)."""
    tmp = tmp_path_factory.mktemp("instances")
    shared = server_env(
        database,
        tmp,
        WEB_CONCURRENCY=str(WORKERS),
        PURGE_INTERVAL=str(PURGE_INTERVAL),
        VERSION_CACHE_SECONDS=str(VERSION_CACHE_SECONDS),
    )
    instances = []
    for name in ("a", "b"):
        port, metrics_port = free_port(), free_port()
        (tmp / name).mkdir()
        stack = Stack(
            tmp=tmp / name,
            database=database.rsplit("/", 1)[1],
            database_url=database,
            api=f"http://127.0.0.1:{port}",
            metrics=f"http://127.0.0.1:{metrics_port}",
        )
        env = {
            **shared,
            "PORT": str(port),
            "METRICS_PORT": str(metrics_port),
            "PROMETHEUS_MULTIPROC_DIR": str(tmp / name / "metrics"),
        }
        instances.append(Instance(name, stack, env))
    try:
        for instance in instances:
            instance.stack.start(f"gunicorn-{instance.name}", [str(DOCKER / "entrypoint.sh")], instance.env)
        for instance in instances:
            wait_until(
                lambda i=instance: http_ok(f"{i.url}/healthz"), 90, f"instance {instance.name} /healthz"
            )
            wait_until(
                lambda i=instance: http_ok(f"{i.stack.metrics}/metrics"),
                30,
                f"instance {instance.name} metrics",
            )
        a, b = instances
        yield Cluster(a, b, shared, a.stack.database, time.time(), purge_runs(a, b))
    finally:
        for instance in instances:
            instance.stack.stop_all()
            log = instance.stack.logs.get(f"gunicorn-{instance.name}")
            if log is not None and log.exists():
                errors = [line for line in log.read_text().splitlines() if '"ERROR"' in line]
                print(f"[chaos] instance {instance.name}: {len(errors)} ERROR lines", *errors[:5], sep="\n  ")


def test_both_instances_start_together_on_one_database(cluster):
    # Started at the same moment: one migrated and seeded, the other waited and found it done.
    for instance in (cluster.a, cluster.b):
        status, roles = call("GET", f"{instance.url}/roles")
        assert status == 200
        assert sorted(role["name"] for role in roles) == ["admin", "user"]
        status, versions = call("GET", f"{instance.url}/versions")
        assert [v["version"] for v in versions] == ["1.0"]
    assert query(cluster, "SELECT COUNT(*) FROM users WHERE username = 'admin'") == ((1,),)


def test_a_token_issued_by_one_instance_works_on_the_other(cluster):
    for issuer, other in ((cluster.a, cluster.b), (cluster.b, cluster.a)):
        tokens = login(issuer)
        assert statuses(other, "/auth/me", bearer(tokens["access_token"]), 2 * WORKERS) == [200] * (
            2 * WORKERS
        )
        # The refreshed pair too, and the old access token dies everywhere at once.
        status, pair = call("POST", f"{other.url}/auth/refresh", {"refresh_token": tokens["refresh_token"]})
        assert status == 200, pair
        assert statuses(issuer, "/auth/me", bearer(pair["access_token"]), 2 * WORKERS) == [200] * (
            2 * WORKERS
        )
        for instance in (issuer, other):
            assert statuses(instance, "/auth/me", bearer(tokens["access_token"]), 2 * WORKERS) == [401] * (
                2 * WORKERS
            )
        call("POST", f"{issuer.url}/auth/logout", headers=bearer(pair["access_token"]))


def test_logout_on_one_instance_ends_the_session_on_the_other_at_once(cluster):
    tokens = login(cluster.a)
    # Every worker of both instances has seen the token (a per-process cache would keep it).
    for instance in (cluster.a, cluster.b):
        assert statuses(instance, "/auth/me", bearer(tokens["access_token"]), 3 * WORKERS) == [200] * (
            3 * WORKERS
        )
    status, body = call("POST", f"{cluster.a.url}/auth/logout", headers=bearer(tokens["access_token"]))
    assert status == 200, body
    # The very next requests, on either instance and any of its workers.
    assert statuses(cluster.b, "/auth/me", bearer(tokens["access_token"]), 3 * WORKERS) == [401] * (
        3 * WORKERS
    )
    assert statuses(cluster.a, "/auth/me", bearer(tokens["access_token"]), 3 * WORKERS) == [401] * (
        3 * WORKERS
    )
    status, _ = call("POST", f"{cluster.b.url}/auth/refresh", {"refresh_token": tokens["refresh_token"]})
    assert status == 401


def test_deactivating_a_user_on_one_instance_locks_them_out_of_the_other_at_once(cluster):
    admin = login(cluster.a)
    username = f"chaos-{uuid.uuid4().hex[:12]}"
    status, created = call(
        "POST", f"{cluster.a.url}/users", {"username": username, "role_id": 2}, bearer(admin["access_token"])
    )
    assert status == 201, created
    user = login(cluster.b, username, created["password"])
    for instance in (cluster.a, cluster.b):
        assert statuses(instance, "/auth/me", bearer(user["access_token"]), 3 * WORKERS) == [200] * (
            3 * WORKERS
        )

    status, body = call(
        "DELETE", f"{cluster.b.url}/users/{created['id']}", headers=bearer(admin["access_token"])
    )
    assert status == 200, body
    assert statuses(cluster.a, "/auth/me", bearer(user["access_token"]), 3 * WORKERS) == [401] * (3 * WORKERS)
    assert statuses(cluster.b, "/auth/me", bearer(user["access_token"]), 3 * WORKERS) == [401] * (3 * WORKERS)
    status, _ = call(
        "POST", f"{cluster.a.url}/items", {"name": f"{username} item"}, bearer(user["access_token"])
    )
    assert status == 401
    status, _ = call(
        "POST", f"{cluster.a.url}/auth/token", {"username": username, "password": created["password"]}
    )
    assert status == 401
    call("POST", f"{cluster.a.url}/auth/logout", headers=bearer(admin["access_token"]))


def poll_roles(instance: Instance, stop: threading.Event, seen: list, lock: threading.Lock) -> None:
    """GET /roles with X-Version: 1.0 on new connections until ``stop``: (name, start, end, status)."""
    while not stop.is_set():
        started = time.monotonic()
        status, _ = call("GET", f"{instance.url}/roles", headers={"X-Version": "1.0"})
        with lock:
            seen.append((instance.name, started, time.monotonic(), status))


def version_supported(cluster: Cluster, version: str) -> bool:
    return bool(query(cluster, "SELECT supported FROM versions WHERE version = %s", (version,))[0][0])


def test_a_version_unsupported_with_the_cli_is_enforced_by_both_instances_within_the_bound(cluster):
    header = {"X-Version": "1.0"}
    # Every worker of both instances has the version table cached as "supported".
    for instance in (cluster.a, cluster.b):
        assert statuses(instance, "/roles", header, 4 * WORKERS) == [200] * (4 * WORKERS)

    seen: list[tuple[str, float, float, int]] = []
    lock, stop = threading.Lock(), threading.Event()
    bound = VERSION_CACHE_SECONDS + VERSION_MARGIN
    pollers = [
        threading.Thread(target=poll_roles, args=(i, stop, seen, lock)) for i in (cluster.a, cluster.b)
    ]
    try:
        for poller in pollers:
            poller.start()
        cli_started = time.monotonic()
        with subprocess.Popen(
            [FLASK, "versions", "unsupport", "1.0"],
            cwd=ROOT,
            env=cli_env(cluster),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ) as cli:
            # The moment the change is committed: the table, watched every 10 ms.
            while version_supported(cluster, "1.0") and time.monotonic() < cli_started + 60:
                time.sleep(0.01)
            committed = time.monotonic()
            output, _ = cli.communicate(timeout=60)
        assert cli.returncode == 0, output
        print(f"[chaos] {output.strip()}")
        print(f"[chaos] CLI committed {committed - cli_started:.2f} s after it started")
        wait_until(lambda: time.monotonic() > committed + bound + 1.0, bound + 2, "the bound to pass")
    finally:
        stop.set()
        for poller in pollers:
            poller.join()
    try:
        assert {status for *_, status in seen} <= {200, 426}
        for name in ("a", "b"):
            mine = [entry for entry in seen if entry[0] == name]
            stale = [end for _, _, end, status in mine if status == 200 and end > committed]
            delay = max(stale, default=committed) - committed
            late = [
                (round(start - committed, 2), status)
                for _, start, _, status in mine
                if start > committed + bound
            ]
            print(
                f"[chaos] instance {name}: {len(stale)} of {len(mine)} polls served 1.0 after the commit, "
                f"the last {delay:.2f} s after it (cache bound {VERSION_CACHE_SECONDS} s)"
            )
            assert late, f"instance {name} was not polled after the bound"
            assert all(status == 426 for _, status in late), f"instance {name} still serves 1.0: {late[:5]}"
            assert delay <= bound
        # Settled: every worker of both instances refuses it; requests without X-Version pass.
        for instance in (cluster.a, cluster.b):
            assert statuses(instance, "/roles", header, 4 * WORKERS) == [426] * (4 * WORKERS)
            assert statuses(instance, "/roles", {}, 2) == [200] * 2
    finally:
        flask_cli(cluster, "versions", "support", "1.0")
        for instance in (cluster.a, cluster.b):
            wait_until(
                lambda i=instance: statuses(i, "/roles", header, 2 * WORKERS) == [200] * (2 * WORKERS),
                bound + 2,
                f"instance {instance.name} to serve 1.0 again",
            )


def test_the_purge_runs_once_per_interval_across_both_instances(cluster):
    # The window began when both instances were up; the tests above ran inside it.
    remaining = cluster.started + PURGE_WINDOW - time.time()
    if remaining > 0:
        time.sleep(remaining)
    finished = time.time()
    runs = purge_runs(cluster.a, cluster.b) - cluster.purge_runs_at_start
    window = finished - cluster.started

    first, last = int(cluster.started // PURGE_INTERVAL) + 1, int(finished // PURGE_INTERVAL) - 1
    slots = query(
        cluster,
        "SELECT slot, COUNT(*) FROM job_runs WHERE job = 'purge_expired_sessions' "
        "AND slot BETWEEN %s AND %s GROUP BY slot ORDER BY slot",
        (first, last),
    )
    expected = window / PURGE_INTERVAL
    workers = 2 * WORKERS
    print(
        f"[chaos] purge: {runs:.0f} runs in {window:.1f} s with 2 instances x {WORKERS} workers "
        f"(expected ~{expected:.0f}, {workers * expected:.0f} if every worker ran it); "
        f"job_runs slots {first}..{last}: {len(slots)} claimed"
    )
    # Every full slot of the window claimed exactly once...
    assert [slot for slot, _ in slots] == list(range(first, last + 1))
    assert all(count == 1 for _, count in slots)
    # ...and the job itself ran once per slot, not once per worker or per instance.
    assert expected - 1.5 <= runs <= expected + 1.5
    assert runs < workers * expected / 2
