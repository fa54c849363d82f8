"""A node SIGKILLed under continuous writes through every instance, then restarted: once with
one instance on each node, once with every instance behind HAProxy. Then a node cut off from
the others (isolated, not killed) under mixed load, one instance on each node. No acknowledged
write is lost or doubled, and only what lost its database answers 503, for as long as it has
none.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter

import pytest

from tests.cluster.instances import (
    MixedLoad,
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
PARTITION_SECONDS = 14  # how long the isolated node stays cut off
# The others drop a silent node after evs.suspect_timeout (3 s, tests/cluster/galera.py), at
# most evs.inactive_timeout (6 s); the isolated node then finds itself alone, non-Primary.
CUT_OFF_BOUND = 15
# Meanwhile the majority's commits, and its reads (wsrep_sync_wait), wait: the stall, at most
# evs.inactive_timeout (6 s) and the view change (4.5 s measured). No answer of theirs takes
# longer than this, nor fails (past the query timeout, 10 s, it would).
STALL_BOUND = 10
# Healed, the node rejoins by IST; its instance serves again within this many seconds.
HEAL_BOUND = 20


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
    return assert_stored_once(cluster, database, writers.prefix, acknowledged)


def assert_stored_once(
    cluster, database: str, prefix: str, acknowledged: list[str], refused: list[str] = ()
) -> int:
    """Every node stores each acknowledged item once, and none of the ``refused`` ones (their
    creation answered an error); the number of acknowledged items."""
    for node, stored in zip(cluster.nodes, stored_names(cluster, prefix, database), strict=True):
        missing = [name for name in acknowledged if stored[name] == 0]
        doubled = [name for name, times in stored.items() if times > 1]
        phantoms = [name for name in refused if stored[name] > 0]
        assert missing == [], f"node {node.index} lacks {len(missing)} acknowledged writes: {missing[:5]}"
        assert doubled == [], f"node {node.index} stores writes twice: {doubled[:5]}"
        assert phantoms == [], f"node {node.index} stores {len(phantoms)} refused writes: {phantoms[:5]}"
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


def first(replies, after: float, keep=lambda reply: True) -> float | None:
    """When the first of ``replies`` that ``keep`` accepts was answered after ``after``."""
    return min((reply.at for reply in replies if reply.at > after and keep(reply)), default=None)


def seconds(moment: float | None, since: float) -> str:
    return "never" if moment is None else f"{moment - since:.1f} s"


def test_a_partition_cutting_off_a_node_costs_only_its_own_instance_503s(cluster, database, direct):
    """Node 3 isolated (gmcast.isolate: a partition, the node keeps running) for 14 s under
    mixed load through a, b and c on nodes 1, 2 and 3: c answers 503 problems with Retry-After
    while its node is non-Primary (never 500) and its /readyz says 503; a and b only wait while
    the group drops node 3 (the stall), and fail nothing."""
    node, majority, cut_off = cluster.nodes[2], direct[:2], direct[2]
    load = MixedLoad(direct, admin_token(direct[0]), probed=[cut_off]).start()
    isolated = False
    try:
        time.sleep(3)
        isolated_at = load.elapsed()
        node.isolate()
        isolated = True
        non_primary_at = dropped_at = None
        deadline = time.monotonic() + CUT_OFF_BOUND
        while (non_primary_at is None or dropped_at is None) and time.monotonic() < deadline:
            if non_primary_at is None and node.status().get("wsrep_ready") == "OFF":
                non_primary_at = load.elapsed()
            if dropped_at is None and cluster.nodes[0].status().get("wsrep_cluster_size") == "2":
                dropped_at = load.elapsed()
            time.sleep(0.1)
        assert non_primary_at is not None, node.failure(f"still ready {CUT_OFF_BOUND} s after its isolation")
        assert dropped_at is not None, (
            f"the majority still counts node 3 {CUT_OFF_BOUND} s after its isolation"
        )
        time.sleep(max(0.0, isolated_at + PARTITION_SECONDS - load.elapsed()))
        healed_at = load.elapsed()
        node.isolate(False)
        isolated = False
        node.wait_synced(60)
        cluster.wait_synced(60)
        synced_at = load.elapsed()
        deadline = time.monotonic() + HEAL_BOUND + 5
        while (
            time.monotonic() < deadline
            and first(load.of(cut_off.name), healed_at, lambda r: r.status == 201) is None
        ):
            time.sleep(0.2)
        time.sleep(2)
    finally:
        load.stop()
        if isolated:
            node.isolate(False)
            cluster.wait_synced(60)

    replies = {instance.name: load.of(instance.name) for instance in direct}
    statuses = {
        name: dict(sorted(Counter(r.status for r in answers).items())) for name, answers in replies.items()
    }
    served_again = first(replies[cut_off.name], healed_at, lambda reply: reply.status == 201)
    # The majority's stall: its slowest answer from the isolation on.
    stall = max(r.at - r.sent for instance in majority for r in replies[instance.name] if r.at >= isolated_at)
    readiness = load.readiness
    while_cut_off = [r for r in readiness if r.sent >= non_primary_at and r.at <= healed_at]
    ready_again = first(readiness, healed_at, lambda reply: reply.status == 200)
    after_heal = [r for r in readiness if r.sent >= synced_at + 1]
    refused = [r.item for r in load.replies if r.request == "POST /items" and r.status != 201]
    acknowledged = assert_stored_once(cluster, database, load.prefix, load.acknowledged(), refused)
    unavailable = sum(r.unavailable for r in replies[cut_off.name])
    print(
        f"[cluster] node 3 isolated (gmcast.isolate) at {isolated_at:.1f} s under mixed load through "
        f"a, b, c on nodes 1, 2, 3: non-Primary (wsrep_ready OFF) "
        f"after {non_primary_at - isolated_at:.1f} s, "
        f"dropped by the majority after {dropped_at - isolated_at:.1f} s; "
        f"healed after {healed_at - isolated_at:.1f} s, "
        f"Synced {synced_at - healed_at:.1f} s later ({node.last_transfer}); "
        f"requests by status: a {statuses['a']}, b {statuses['b']}, c {statuses['c']}; "
        f"c: {unavailable} 503 problems with Retry-After, /readyz 503 x {len(while_cut_off)} while cut off, "
        f"200 again {seconds(ready_again, healed_at)} after the heal, served again (201) "
        f"{seconds(served_again, healed_at)} after the heal; majority stall (slowest answer) {stall:.1f} s; "
        f"{acknowledged} acknowledged writes, each stored once on every node, none of the "
        f"{len(refused)} refused ones"
    )
    for survivor in majority:
        failures = [(r.request, r.status, round(r.at, 1)) for r in replies[survivor.name] if r.failed]
        assert failures == [], f"{survivor.name}, whose node kept the majority, answered {failures[:5]}"
    assert stall <= STALL_BOUND
    # The cut-off instance: its answers are served or 503 problems saying when to retry.
    wrong = [
        (r.request, r.status, r.retry_after, r.problem, round(r.at, 1))
        for r in replies[cut_off.name]
        if not (200 <= r.status < 300 or r.unavailable)
    ]
    assert wrong == [], f"{cut_off.name} answered {len(wrong)} times otherwise: {wrong[:5]}"
    assert unavailable > 0
    for sign in ("Error handling request", "Exception on "):
        assert sign not in cut_off.log(), f"{cut_off.name}: {sign!r} in its log"
    # Its readiness follows its node's: 503 while cut off, 200 once the node is back.
    assert len(while_cut_off) >= 5, readiness
    assert {(r.status, r.problem) for r in while_cut_off} == {(503, True)}
    assert after_heal
    assert {r.status for r in after_heal} == {200}
    assert served_again is not None
    assert served_again - healed_at <= HEAL_BOUND
