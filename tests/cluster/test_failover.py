"""A node SIGKILLed under continuous writes through every instance, then restarted: once with
one instance on each node, once with every instance behind HAProxy. No acknowledged write is
lost or doubled, and only what lost its database answers 503, for as long as it has none.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter

import pytest

from tests.cluster.instances import (
    Writers,
    admin_token,
    behind_haproxy,
    one_per_node,
    start_instances,
    stop_instances,
)

DOWN_SECONDS = 8  # how long the killed node stays down
REJOIN_BOUND = 10  # an instance serves again within this many seconds of its node's rejoin
# Through HAProxy, every write sent this long after the writer's death succeeds: HAProxy
# marks a node down after 2 failed checks a second apart, and until the cluster drops the dead
# node (evs.inactive_timeout, 6 s, tests/cluster/galera.py) a commit on a survivor may wait.
FAILOVER_BOUND = 8
# No answer, failed or not, takes longer than the query timeout (DATABASE_QUERY_TIMEOUT, 10 s)
# and a retry's pause.
ANSWER_BOUND = 12


@pytest.fixture(scope="module")
def database(cluster) -> str:
    return cluster.create_database(f"webapp_failover_{uuid.uuid4().hex[:8]}")


def stored_names(cluster, prefix: str, database: str) -> list[Counter]:
    """Per node, how many times each item name of this run is stored there."""
    counts = []
    for node in cluster.nodes:
        with node.connect(database) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT name FROM items WHERE name LIKE %s", (f"{prefix}-%",))
            counts.append(Counter(name for (name,) in cursor.fetchall()))
    return counts


def assert_nothing_acknowledged_is_lost(cluster, database: str, writers: Writers) -> int:
    acknowledged = [answer.item for answer in writers.answers if answer.status == 201]
    for node, stored in zip(cluster.nodes, stored_names(cluster, writers.prefix, database), strict=True):
        missing = [name for name in acknowledged if stored[name] == 0]
        doubled = [name for name, times in stored.items() if times > 1]
        assert missing == [], f"node {node.index} lacks {len(missing)} acknowledged writes: {missing[:5]}"
        assert doubled == [], f"node {node.index} stores writes twice: {doubled[:5]}"
    return len(acknowledged)


def summary(writers: Writers, name: str) -> str:
    statuses = Counter(answer.status for answer in writers.of(name))
    return f"{name} {dict(sorted(statuses.items()))}"


@pytest.fixture
def direct(cluster, database, tmp_path):
    running = start_instances(tmp_path, one_per_node(cluster, database))
    yield running
    stop_instances(running)


def test_a_node_killed_under_writes_costs_only_its_own_instance(cluster, database, direct):
    writers = Writers(direct, admin_token(direct[0])).start()
    victim, orphan = cluster.nodes[2], direct[2]
    try:
        time.sleep(3)
        killed_at = writers.elapsed()
        victim.kill()
        time.sleep(DOWN_SECONDS)
        restarting_at = writers.elapsed()
        rejoin_seconds = victim.start()
        rejoined_at = writers.elapsed()
        deadline = time.monotonic() + REJOIN_BOUND + 5
        while time.monotonic() < deadline and not any(
            answer.status == 201 for answer in writers.of(orphan.name, lambda at: at > rejoined_at)
        ):
            time.sleep(0.2)
        time.sleep(2)
    finally:
        writers.stop()

    served_again = min(
        (
            answer.at
            for answer in writers.of(orphan.name, lambda at: at > rejoined_at)
            if answer.status == 201
        ),
        default=None,
    )
    acknowledged = assert_nothing_acknowledged_is_lost(cluster, database, writers)
    orphan_errors = Counter(answer.status for answer in writers.of(orphan.name) if answer.failed)
    print(
        f"[cluster] node 3 SIGKILLed at {killed_at:.1f} s under writes through a, b, c on nodes 1, 2, 3; "
        f"restarted at {restarting_at:.1f} s, Synced after {rejoin_seconds:.1f} s ({victim.last_transfer}); "
        f"{summary(writers, 'a')}, {summary(writers, 'b')}, {summary(writers, 'c')}; "
        f"c served again {served_again - rejoined_at:.1f} s after the rejoin; "
        f"{acknowledged} acknowledged writes, each stored once on every node"
    )
    for survivor in direct[:2]:
        failures = [(answer.status, answer.at) for answer in writers.of(survivor.name) if answer.failed]
        assert failures == [], f"{survivor.name}, whose node stayed up, answered {failures[:5]}"
    # The orphan answered 503 (a problem, not a hang) while its node was down ...
    assert set(orphan_errors) == {503}, orphan_errors
    assert all(killed_at <= answer.at for answer in writers.of(orphan.name) if answer.status == 503)
    # ... and serves again soon after the node is back, with nothing restarted.
    assert served_again is not None
    assert served_again - rejoined_at <= REJOIN_BOUND


@pytest.fixture
def proxied(cluster, database, tmp_path):
    running = start_instances(tmp_path, behind_haproxy(cluster, database))
    yield running
    stop_instances(running)


def test_through_haproxy_losing_the_writer_costs_only_the_failover_pause(cluster, database, proxied):
    writers = Writers(proxied, admin_token(proxied[0])).start()
    writer = cluster.haproxy_backend()
    victim = next(node for node in cluster.nodes if f"node{node.index}" == writer)
    try:
        time.sleep(3)
        killed_at = writers.elapsed()
        victim.kill()
        time.sleep(DOWN_SECONDS)
        rejoin_seconds = victim.start()
        time.sleep(3)
    finally:
        writers.stop()
    new_writer = cluster.haproxy_backend()

    acknowledged = assert_nothing_acknowledged_is_lost(cluster, database, writers)
    failures = [answer for answer in writers.answers if answer.failed]
    # The failover pause: how long after the kill the last write that failed was sent.
    pause = max(answer.sent for answer in failures) - killed_at if failures else 0.0
    slowest = max(answer.at - answer.sent for answer in writers.answers)
    print(
        f"[cluster] through HAProxy: writer {writer} SIGKILLed at {killed_at:.1f} s, traffic moved to "
        f"{new_writer}; {len(failures)} failed answers, the last sent {pause:.1f} s after the kill "
        f"(failover pause), slowest answer {slowest:.1f} s; "
        f"rejoin Synced after {rejoin_seconds:.1f} s ({victim.last_transfer}); "
        f"{summary(writers, 'h1')}, {summary(writers, 'h2')}, {summary(writers, 'h3')}; "
        f"{acknowledged} acknowledged writes, each stored once on every node"
    )
    assert new_writer != writer
    statuses = {answer.status for answer in writers.answers}
    assert statuses <= {201, 503}, statuses
    assert all(answer.at >= killed_at for answer in failures)
    assert pause <= FAILOVER_BOUND, f"writes sent {pause:.1f} s after the kill still failed"
    assert slowest <= ANSWER_BOUND
