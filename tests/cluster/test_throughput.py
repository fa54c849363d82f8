"""Throughput on this machine, in one run: creations (POST /items) and reads (GET /items/{id})
through 3 instances of 2 workers, with the instances on the 3 nodes (3 writers), behind
HAProxy (one writer), and on a single MariaDB server; the retry rate of the writes on the
cluster; and what read-your-writes (wsrep_sync_wait) costs a read. Figures, not targets:
the assertions only check that every request succeeded. artifacts/cluster/results.json keeps them.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests.bench.run import WRK_SCRIPT, wrk
from tests.cluster.instances import admin_token, behind_haproxy, one_per_node, start_instances, stop_instances
from tests.processes import ROOT, throwaway_database

SECONDS = 5
CONNECTIONS_PER_INSTANCE = 4
ARTIFACTS = ROOT / "artifacts" / "cluster"
RESULTS: dict = {}


def load(instances, path: str, env: dict[str, str], script: Path, seconds: int) -> dict:
    """wrk on every instance at once; their requests per second summed."""
    runs: list[dict] = []

    def one(instance) -> None:
        # Each wrk names its items apart (it seeds its random names from the clock's second).
        own = {**env, "BENCH_RUN": f"{env.get('BENCH_RUN', '')}-{instance.name}"}
        runs.append(wrk(f"{instance.base}{path}", seconds, own, script, connections=CONNECTIONS_PER_INSTANCE))

    threads = [threading.Thread(target=one, args=(instance,)) for instance in instances]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {
        "rps": round(sum(run["rps"] for run in runs), 1),
        "p50_ms": round(max(run["p50_ms"] for run in runs), 2),
        "errors": sum(run["errors"] for run in runs),
        "requests": sum(run["requests"] for run in runs),
    }


def measure(name: str, instances, tmp: Path) -> dict:
    token = admin_token(instances[0])
    auth = {"BENCH_AUTHORIZATION": f"Bearer {token}"}
    script = tmp / "load.lua"
    script.write_text(WRK_SCRIPT)
    created = instances[0].call("POST", "/items", {"name": f"read-me-{uuid.uuid4().hex[:8]}"}, token)
    assert created.status == 201, str(created)
    write_env = {**auth, "BENCH_METHOD": "POST", "BENCH_UNIQUE_ITEM": "1", "BENCH_RUN": uuid.uuid4().hex[:8]}

    def retried() -> float:
        return sum(instance.metric("webapp_db_retries_total", 'outcome="retried"') for instance in instances)

    load(instances, "/items", write_env, script, 1)  # warm-up
    retried_before = retried()
    writes = load(instances, "/items", write_env, script, SECONDS)
    writes["retries_per_1000"] = round(1000 * (retried() - retried_before) / max(1, writes["requests"]), 2)
    load(instances, f"/items/{created.json()['id']}", auth, script, 1)
    reads = load(instances, f"/items/{created.json()['id']}", auth, script, SECONDS)
    result = {"create": writes, "read": reads}
    print(
        f"[cluster] throughput, {name}: POST /items {writes['rps']} req/s (p50 {writes['p50_ms']} ms, "
        f"{writes['retries_per_1000']} retries per 1,000 writes); GET /items/{{id}} {reads['rps']} req/s "
        f"(p50 {reads['p50_ms']} ms)"
    )
    assert writes["errors"] == reads["errors"] == 0, result
    RESULTS[name] = result
    return result


@pytest.fixture(scope="module", autouse=True)
def report():
    yield
    if RESULTS:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "results.json").write_text(json.dumps(RESULTS, indent=2) + "\n")
        print(f"[cluster] results: {ARTIFACTS / 'results.json'}")


@pytest.fixture
def database(cluster) -> str:
    return cluster.create_database(f"webapp_load_{uuid.uuid4().hex[:8]}")


@pytest.mark.parametrize(
    ("name", "topology"),
    [
        ("cluster, 3 writers (an instance on each node)", one_per_node),
        ("cluster behind HAProxy, 1 writer", behind_haproxy),
    ],
    ids=["instance-on-each-node", "behind-haproxy"],
)
def test_throughput_on_the_cluster(cluster, database, tmp_path, name, topology):
    instances = start_instances(tmp_path, topology(cluster, database))
    try:
        measure(name, instances, tmp_path)
    finally:
        stop_instances(instances)


@pytest.fixture
def single_server_database():
    with throwaway_database("webapp_load_single") as url:
        yield url


def test_throughput_on_a_single_server(single_server_database, tmp_path):
    instances = start_instances(tmp_path, dict.fromkeys(("s1", "s2", "s3"), single_server_database))
    try:
        measure("single MariaDB server (no cluster)", instances, tmp_path)
    finally:
        stop_instances(instances)


def test_what_read_your_writes_costs_a_read(cluster, database):
    """A write on node 1, then the primary-key read of it on node 2, one client at a time, with
    and without wsrep_sync_wait: what the wait costs, and that only with it the read is sure
    to see the write (checked on every round)."""
    rounds = 500
    timings: dict[int, list[float]] = {0: [], 1: []}
    with (
        cluster.nodes[0].connect(database) as writer,
        cluster.nodes[1].connect(database) as reader,
        writer.cursor() as write,
        reader.cursor() as read,
    ):
        write.execute("CREATE TABLE ryw_probe (id INT PRIMARY KEY, name VARCHAR(32))")
        for n in range(4 * rounds):
            sync_wait = n // rounds % 2  # blocks of rounds: 0, 1, 0, 1
            if n % rounds == 0:
                read.execute("SET SESSION wsrep_sync_wait = %s", (sync_wait,))
            write.execute("INSERT INTO ryw_probe VALUES (%s, 'probe')", (n,))
            started = time.perf_counter()
            read.execute("SELECT id, name FROM ryw_probe WHERE id = %s", (n,))
            seen = read.fetchall()
            timings[sync_wait].append(time.perf_counter() - started)
            if sync_wait:
                assert seen == ((n, "probe"),), f"round {n}: node 2 did not see node 1's write"
        write.execute("DROP TABLE ryw_probe")
    without, with_wait = (1e6 * sorted(times)[len(times) // 2] for times in (timings[0], timings[1]))
    RESULTS["read_your_writes"] = {
        "read_p50_us_without_sync_wait": round(without, 1),
        "read_p50_us_with_sync_wait": round(with_wait, 1),
    }
    print(
        f"[cluster] read-your-writes: a primary-key read on node 2 right after a write on node 1 takes "
        f"{without:.0f} us (p50) without wsrep_sync_wait and {with_wait:.0f} us with it"
    )
