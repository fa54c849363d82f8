"""compose.yml with compose.cluster.yml, for real: three Galera containers behind HAProxy, the
API through nginx, and the node HAProxy writes to crashed (SIGKILL) under steady writes, then
brought back by its restart policy. Nothing acknowledged is lost or doubled on any node."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from tests.compose.conftest import Stack, dotenv, scratch_copy, start, write_dotenv
from tests.compose.load import SteadyLoad
from tests.factories import bearer
from tests.processes import http_call, wait_until

NODES = ("galera1", "galera2", "galera3")


@pytest.fixture(scope="module")
def cluster(engine, tmp_path_factory) -> Iterator[Stack]:
    directory = scratch_copy(tmp_path_factory.mktemp("cluster"))
    values = dotenv(WEB_CONCURRENCY="2")
    write_dotenv(directory, values)
    stack = Stack(
        directory=directory,
        env=engine,
        project=f"webapp-cluster-{os.getpid()}",
        files=("compose.yml", "compose.cluster.yml"),
        dotenv=values,
    )
    try:
        seconds = start(stack, "db", "app", "certs", "nginx")
        print(f"[compose] Galera cluster, HAProxy, app and nginx healthy in {seconds:.1f} s")
        yield stack
    finally:
        stack.save_logs("cluster")
        stack.compose("down", "--volumes", "--remove-orphans", "--timeout", "60", check=False)


def stored(stack: Stack, node: str, prefix: str) -> Counter:
    """How many times each item name of this run is stored on ``node``."""
    output = stack.compose(
        "exec",
        "-T",
        node,
        "mariadb",
        "--user=root",
        f"--password={stack.dotenv['DB_ROOT_PASSWORD']}",
        "--batch",
        "--skip-column-names",
        "webapp",
        "--execute",
        f"SELECT name FROM items WHERE name LIKE '{prefix}-%'",  # noqa: S608 (our own prefix)
    ).stdout
    return Counter(output.split())


def test_a_node_crashed_under_writes_loses_no_acknowledged_write(cluster):
    status, _, admin = http_call(
        "POST",
        f"{cluster.public}/auth/token",
        {"username": "admin", "password": cluster.dotenv["ADMIN_PASSWORD"]},
    )
    assert status == 200, admin
    (writer,) = cluster.containers("galera1")
    prefix = f"crash{int(time.time())}"

    with SteadyLoad(
        cluster.public,
        "/items",
        rate=10,
        prefix=prefix,
        method="POST",
        body=lambda request_id: {"name": request_id},
        headers=bearer(admin["access_token"]),
    ) as load:
        time.sleep(5)
        killed_at = time.monotonic()
        os.kill(cluster.inspect(writer)["State"]["Pid"], signal.SIGKILL)
        time.sleep(20)

    wait_until(lambda: cluster.inspect(writer)["RestartCount"] >= 1, 60, "galera1's restart policy")
    cluster.wait_healthy("galera1", 1, timeout=300)
    acknowledged = [outcome.request_id for outcome in load.outcomes if outcome.status == 201]
    failed = [outcome for outcome in load.outcomes if outcome.status != 201]
    after_kill = [outcome.sent - killed_at for outcome in failed]
    print(
        f"[compose] galera1 SIGKILLed under 10 writes/s: {len(load.outcomes)} sent, "
        f"{len(acknowledged)} acknowledged, answers {load.tally()}, failures "
        f"(from {min(after_kill, default=0):.1f} to {max(after_kill, default=0):.1f} s after the kill)"
    )
    for node in NODES:
        copies = stored(cluster, node, prefix)
        assert [name for name in acknowledged if copies[name] != 1] == [], f"{node} lost or doubled writes"
    # What failed was refused as the database being unavailable, never a server error.
    assert {outcome.status for outcome in failed} <= {503}
    assert len(acknowledged) > len(load.outcomes) / 2
