"""The API on the 3-node Galera cluster, one instance per node (each with 2 gunicorn workers):
a simultaneous start applies the schema once, races spread over the nodes keep every
invariant, a client reads its writes through any node, and the purge runs once per interval.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from tests.cluster.instances import (
    ADMIN,
    MAX_SESSIONS,
    PURGE_INTERVAL,
    admin_token,
    one_per_node,
    start_instances,
    stop_instances,
)
from tests.processes import Call, race, tally
from webapp.deploy_lock import DEPLOY_LOCK_TABLE
from webapp.jobs import PURGE_JOB

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def database(cluster) -> str:
    return cluster.create_database(f"webapp_api_{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="module")
def instances(cluster, database, tmp_path_factory):
    """Instances a, b and c on nodes 1, 2 and 3, started at the same moment on an empty database."""
    started = time.monotonic()
    running = start_instances(tmp_path_factory.mktemp("api"), one_per_node(cluster, database))
    print(
        f"[cluster] 3 instances on 3 nodes, started together: all ready in {time.monotonic() - started:.1f} s"
    )
    yield running
    stop_instances(running)
    for instance in running:
        for sign in ("unhandled exception", "WORKER TIMEOUT", "Traceback"):
            assert sign not in instance.log(), f"{instance.name}: {sign!r} in its log"


@pytest.fixture(scope="module")
def token(instances) -> str:
    return admin_token(instances[0])


def spread(instances, method: str, path: str, bodies: list, token: str | None = None) -> list[Call]:
    """One call per body, dealt round-robin over the instances (so over the nodes)."""
    return [
        Call(instances[n % len(instances)].base, method, path, body, token) for n, body in enumerate(bodies)
    ]


def on_every_node(cluster, database: str, sql: str, *args) -> list:
    """The same query's rows on each node, read there directly once the node has applied
    every write the cluster certified (a slow node may otherwise still be a write behind)."""
    rows = []
    for node in cluster.nodes:
        with node.connect(database) as connection, connection.cursor() as cursor:
            cursor.execute("SET SESSION wsrep_sync_wait = 1")
            cursor.execute(sql, args)
            rows.append(list(cursor.fetchall()))
    return rows


def assert_problems(answers, status: int) -> None:
    for answer in answers:
        assert answer.status == status, str(answer)
        assert answer.content_type == PROBLEM, str(answer)


def test_instances_started_at_once_apply_the_schema_exactly_once(cluster, database, instances):
    for instance in instances:
        assert instance.ready_after < 60, f"{instance.name} took {instance.ready_after:.1f} s"
    outputs = {instance.name: instance.log() for instance in instances}
    migrated = [name for name, log in outputs.items() if "deploy: migrations applied (empty -> " in log]
    seeded = [name for name, log in outputs.items() if "admin account 'admin' created" in log]
    waited = [
        name for name, log in outputs.items() if "done by another instance" in log or "up to date" in log
    ]
    print(
        f"[cluster] start: migrated and seeded by {migrated}, {seeded}; the others waited: {waited}; "
        f"ready after {', '.join(f'{i.name} {i.ready_after:.1f} s' for i in instances)}"
    )
    assert len(migrated) == 1, outputs
    assert seeded == migrated
    assert sorted(migrated + waited) == ["a", "b", "c"]
    # Every node has the schema at the one head and nobody holds the lock.
    versions = on_every_node(cluster, database, "SELECT version_num FROM alembic_version")
    assert len({tuple(rows) for rows in versions}) == 1
    assert len(versions[0]) == 1
    lock = f"SELECT * FROM {DEPLOY_LOCK_TABLE}"  # noqa: S608 (a constant)
    assert on_every_node(cluster, database, lock) == [[], [], []]


def test_same_item_name_from_every_node_exactly_one_wins(cluster, database, instances, token):
    name = f"race-{uuid.uuid4().hex[:8]}"
    answers = race(spread(instances, "POST", "/items", [{"name": name}] * 50, token))
    print(f"[cluster] race item name: 50 x POST /items over 3 nodes -> {tally(answers)}")
    assert tally(answers) == {201: 1, 409: 49}
    assert_problems([answer for answer in answers if answer.status == 409], 409)
    assert (
        on_every_node(cluster, database, "SELECT COUNT(*) FROM items WHERE name = %s", name) == [[(1,)]] * 3
    )


def test_same_username_from_every_node_exactly_one_wins(cluster, database, instances, token):
    username = f"race-{uuid.uuid4().hex[:8]}"
    answers = race(spread(instances, "POST", "/users", [{"username": username, "role_id": 2}] * 30, token))
    print(f"[cluster] race username: 30 x POST /users over 3 nodes -> {tally(answers)}")
    assert tally(answers) == {201: 1, 409: 29}
    assert_problems([answer for answer in answers if answer.status == 409], 409)
    assert (
        on_every_node(cluster, database, "SELECT COUNT(*) FROM users WHERE username = %s", username)
        == [[(1,)]] * 3
    )


def new_account(instances, token) -> tuple[int, dict]:
    username = f"racer-{uuid.uuid4().hex[:8]}"
    created = instances[0].call("POST", "/users", {"username": username, "role_id": 2}, token)
    assert created.status == 201, str(created)
    return created.json()["id"], {"username": username, "password": created.json()["password"]}


def test_same_refresh_token_from_every_node_is_spent_once(instances, token):
    _, credentials = new_account(instances, token)
    login = instances[1].call("POST", "/auth/token", credentials)
    assert login.status == 200, str(login)
    refresh = {"refresh_token": login.json()["refresh_token"]}

    answers = race(spread(instances, "POST", "/auth/refresh", [refresh] * 20))

    print(f"[cluster] race refresh: 20 x POST /auth/refresh (one token) over 3 nodes -> {tally(answers)}")
    assert [answer.status for answer in answers].count(200) == 1, tally(answers)
    assert_problems([answer for answer in answers if answer.status != 200], 401)


def list_total(instance, token) -> int:
    answer = instance.call("GET", "/items?limit=1", token=token)
    assert answer.status == 200, str(answer)
    return answer.json()["total"]


def test_distinct_creations_from_every_node_all_succeed_and_every_total_counts_them(
    cluster, database, instances, token
):
    before = [list_total(instance, token) for instance in instances]
    assert len(set(before)) == 1
    run = uuid.uuid4().hex[:8]

    answers = race(spread(instances, "POST", "/items", [{"name": f"{run}-{n}"} for n in range(60)], token))

    after = [list_total(instance, token) for instance in instances]
    print(
        f"[cluster] 60 distinct POST /items over 3 nodes -> {tally(answers)}; "
        f"list total {before[0]} -> {after} on instances a, b, c"
    )
    assert tally(answers) == {201: 60}
    assert after == [before[0] + 60] * 3
    stored = on_every_node(cluster, database, "SELECT COUNT(*) FROM items WHERE name LIKE %s", f"{run}-%")
    assert stored == [[(60,)]] * 3


def test_logins_of_one_account_from_every_node_keep_the_session_cap(cluster, database, instances, token):
    user_id, credentials = new_account(instances, token)

    answers = race(spread(instances, "POST", "/auth/token", [credentials] * 12))

    sessions = on_every_node(cluster, database, "SELECT COUNT(*) FROM tokens WHERE user_id = %s", user_id)
    working = [
        answer
        for n, answer in enumerate(answers)
        if answer.status == 200
        and instances[n % 3].call("GET", "/auth/me", token=answer.json()["access_token"]).status == 200
    ]
    retried = sum(instance.metric("webapp_db_retries_total", 'outcome="retried"') for instance in instances)
    print(
        f"[cluster] 12 x POST /auth/token of one account over 3 nodes (cap {MAX_SESSIONS}) "
        f"-> {tally(answers)}; "
        f"sessions stored per node {[rows[0][0] for rows in sessions]}, {len(working)} tokens work; "
        f"retries so far on all instances: {retried:.0f}"
    )
    assert all(answer.status < 500 for answer in answers), tally(answers)
    assert tally(answers) == {200: 12}
    assert len({rows[0][0] for rows in sessions}) == 1
    assert 1 <= sessions[0][0][0] <= MAX_SESSIONS
    assert len(working) == sessions[0][0][0]


def test_a_client_reads_its_writes_through_a_node_that_has_not_applied_them_yet(
    cluster, database, instances, token
):
    """Node 2's applier is held (FLUSH TABLES WITH READ LOCK desyncs and pauses it) while a
    client logs in and creates an item through node 1; its reads through node 2 wait until
    node 2 has applied them (wsrep_sync_wait), instead of answering 401 and 404."""
    with cluster.nodes[1].connect(database) as connection, connection.cursor() as node2:
        node2.execute("FLUSH TABLES WITH READ LOCK")
        login = instances[0].call("POST", "/auth/token", ADMIN)
        created = instances[0].call("POST", "/items", {"name": f"ryw-{uuid.uuid4().hex[:8]}"}, token)
        release = threading.Timer(1.0, node2.execute, ("UNLOCK TABLES",))
        release.start()
        started = time.monotonic()
        me = instances[1].call("GET", "/auth/me", token=login.json()["access_token"])
        item = instances[1].call("GET", f"/items/{created.json()['id']}", token=token)
        waited = time.monotonic() - started
        release.join()
    print(
        f"[cluster] read-your-writes: reads through node 2 waited {waited:.1f} s for its applier, "
        "then saw both writes"
    )
    assert (login.status, created.status) == (200, 201)
    assert me.status == 200, str(me)
    assert me.json()["username"] == "admin"
    assert item.status == 200, str(item)
    assert item.json() == created.json()


def test_the_purge_runs_once_per_interval_across_the_nodes(cluster, database, instances):
    """Every slot of the window is claimed once, and every run is a claim: of the six workers
    on three nodes, none ran the job without winning its slot. Ticks may come late on a busy
    host, so runs and claims are compared only when no tick is under way."""

    def runs() -> float:
        return sum(instance.metric("webapp_purge_runs_total") for instance in instances)

    def settled() -> tuple[float, int, int]:
        """Runs, claims and the latest slot claimed, read while no run is in progress: every
        claim finished, and no run counted during the read (after the first claim)."""
        for _ in range(100):
            ran = runs()
            rows = on_every_node(
                cluster,
                database,
                "SELECT COUNT(*), COUNT(`rows`), MAX(slot) FROM job_runs WHERE job = %s",
                PURGE_JOB,
            )
            assert len(set(map(tuple, rows))) == 1, rows
            claims, finished, latest = rows[0][0]
            if latest is not None and claims == finished and runs() == ran:
                return ran, claims, latest
            time.sleep(0.1)
        raise AssertionError("no moment without a purge run under way in 10 s")

    ran_before, claimed_before, first = settled()
    time.sleep(5 * PURGE_INTERVAL)
    ran_after, claimed_after, last = settled()
    slots = on_every_node(
        cluster,
        database,
        "SELECT slot FROM job_runs WHERE job = %s AND slot > %s AND slot <= %s ORDER BY slot",
        PURGE_JOB,
        first,
        last,
    )
    assert len(set(map(tuple, slots))) == 1, slots
    ran, claimed = ran_after - ran_before, claimed_after - claimed_before
    print(
        f"[cluster] purge: {ran:.0f} runs and {claimed} claims over slots {first + 1}..{last} "
        f"with 3 instances x 2 workers on 3 nodes (interval {PURGE_INTERVAL} s)"
    )
    assert ran == claimed  # no worker ran the job without its claim
    # One claim per slot, none skipped: the job ran once in every interval of the window.
    assert [row[0] for row in slots[0]] == list(range(first + 1, last + 1))
    assert claimed == last - first >= 4
