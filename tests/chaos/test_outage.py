"""Database outage: gunicorn (three workers) reaches MariaDB through a TCP proxy in this
process; cutting the proxy is the database going away, restoring it is the database back.

While the database is away every request that needs it is a quick 503 problem with
Retry-After, /readyz is 503 and /healthz 200, and no worker dies; once it is back the very
next requests succeed, stale pooled connections included, and nothing was ever a 500.
A worker replaced during the outage boots and serves too.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass

import pytest

from tests.chaos.conftest import server_env
from tests.chaos.proxy import TcpProxy
from tests.processes import Stack, free_port, start_api, wait_until

WORKERS = 3
ADMIN = {"username": "admin", "password": "chaos-admin-password"}
OUTAGE_SECONDS = 5
BOUND_SECONDS = 2.0  # the longest a request may take while the database is away
PROBLEM = "application/problem+json"


@dataclass
class Answer:
    method: str
    path: str
    status: int
    headers: http.client.HTTPMessage
    body: bytes
    seconds: float

    def json(self):
        return json.loads(self.body)

    def __str__(self) -> str:
        return f"{self.method} {self.path} -> {self.status} in {self.seconds:.2f}s: {self.body[:200]!r}"


@dataclass
class Server:
    stack: Stack
    proxy: TcpProxy
    port: int
    master: int
    workers: set[int]
    log_offset: int  # where the log stood once every worker had booted
    answers: list[Answer]  # every answer of the module, to check that none was a 500

    def call(self, method: str, path: str, body=None, token: str | None = None) -> Answer:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        started = time.monotonic()
        try:
            connection.request(method, path, json.dumps(body) if body is not None else None, headers)
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        answer = Answer(method, path, response.status, response.headers, data, time.monotonic() - started)
        self.answers.append(answer)
        return answer

    def live_workers(self) -> set[int]:
        result = subprocess.run(
            ["pgrep", "-P", str(self.master)], capture_output=True, text=True, check=False
        )
        return {int(pid) for pid in result.stdout.split()}

    def log_since_start(self) -> str:
        with self.stack.logs["gunicorn"].open("rb") as log:
            log.seek(self.log_offset)
            return log.read().decode(errors="replace")


@pytest.fixture(scope="module")
def server(database, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("outage")
    proxy = TcpProxy().start()
    name = database.rsplit("/", 1)[1]
    url = f"mysql+pymysql://root@127.0.0.1:{proxy.port}/{name}"
    port = free_port()
    stack = Stack(tmp=tmp, database=name, database_url=url, api=f"http://127.0.0.1:{port}")
    env = server_env(url, tmp, WEB_CONCURRENCY=str(WORKERS), PORT=str(port), METRICS_PORT=str(free_port()))
    try:
        # Migrations and seed run through the proxy too.
        master = start_api(stack, env, WORKERS)
        instance = Server(stack, proxy, port, master.pid, set(), stack.logs["gunicorn"].stat().st_size, [])

        def all_workers():
            pids = instance.live_workers()
            return pids if len(pids) == WORKERS else None

        instance.workers = wait_until(all_workers, 30, "worker pids")
        yield instance
        statuses = dict(Counter(answer.status for answer in instance.answers))
        print(f"[chaos] outage: {len(instance.answers)} requests in all, statuses {statuses}")
    finally:
        try:
            stack.stop_all()
        finally:
            proxy.close()


def _assert_no_worker_died(server: Server) -> None:
    assert server.live_workers() == server.workers, "a gunicorn worker died or was replaced"
    log = server.log_since_start()
    for sign in ("Worker exiting", "Booting worker", "WORKER TIMEOUT"):
        assert sign not in log, f"gunicorn log after start-up has {sign!r}:\n{log[-3000:]}"


def _assert_no_500(server: Server) -> None:
    errors = [str(answer) for answer in server.answers if answer.status >= 500 and answer.status != 503]
    assert not errors, "5xx other than 503:\n" + "\n".join(errors[:10])


def _assert_unavailable(answer: Answer, *, retry_after: bool = True) -> None:
    assert answer.status == 503, str(answer)
    assert answer.headers.get_content_type() == PROBLEM, str(answer)
    body = answer.json()
    assert body["status"] == 503, str(answer)
    assert body["detail"], str(answer)
    if retry_after:
        assert answer.headers.get("Retry-After", "").isdigit(), f"no Retry-After: {answer}"
    assert answer.seconds < BOUND_SECONDS, f"503 too slow: {answer}"


def _baseline(server: Server) -> dict:
    login = server.call("POST", "/auth/token", ADMIN)
    assert login.status == 200, str(login)
    token = login.json()["access_token"]
    created = server.call("POST", "/items", {"name": "outage-item", "description": "before"}, token)
    assert created.status == 201, str(created)
    item_id = created.json()["id"]
    read = server.call("GET", f"/items/{item_id}", token=token)
    assert read.status == 200, str(read)
    assert read.json()["name"] == "outage-item", str(read)
    # A second account for the login probes, so they do not evict the admin's session.
    prober = server.call("POST", "/users", {"username": "outage-prober", "role_id": 2}, token)
    assert prober.status == 201, str(prober)
    credentials = {"username": "outage-prober", "password": prober.json()["password"]}
    assert server.call("GET", "/users").status == 200
    assert server.call("GET", "/readyz").status == 200
    return {"token": token, "item": f"/items/{item_id}", "login": credentials}


def test_database_outage_is_503_and_recovers_without_restart(server):
    state = _baseline(server)
    print(f"[chaos] outage baseline: login, create, read ok; {server.proxy.live} pooled connections")

    reset = server.proxy.cut()
    cut_at = time.monotonic()
    unavailable = Counter()
    slowest = 0.0
    while time.monotonic() - cut_at < OUTAGE_SECONDS:
        for answer in (
            server.call("GET", state["item"], token=state["token"]),
            server.call("POST", "/auth/token", state["login"]),
            server.call("GET", "/users"),
        ):
            _assert_unavailable(answer)
            unavailable[answer.path] += 1
            slowest = max(slowest, answer.seconds)
        ready = server.call("GET", "/readyz")
        _assert_unavailable(ready, retry_after=False)
        healthy = server.call("GET", "/healthz")
        assert healthy.status == 200, str(healthy)
        assert healthy.seconds < BOUND_SECONDS, str(healthy)
    _assert_no_worker_died(server)
    print(
        f"[chaos] outage cut ({reset} connections reset) for {OUTAGE_SECONDS}s: "
        f"{sum(unavailable.values())} API requests all 503 + Retry-After (slowest {slowest:.2f}s), "
        f"/readyz 503, /healthz 200, workers {sorted(server.workers)} unchanged"
    )

    server.proxy.restore()
    statuses = Counter()
    for index in range(20):
        answer = [
            lambda: server.call("GET", state["item"], token=state["token"]),
            lambda: server.call("POST", "/auth/token", state["login"]),
            lambda: server.call("GET", "/users"),
            lambda: server.call("GET", "/readyz"),
        ][index % 4]()
        assert answer.status == 200, f"request {index + 1} after restore: {answer}"
        statuses[answer.status] += 1
    assert server.call("GET", state["item"], token=state["token"]).json()["description"] == "before"
    _assert_no_worker_died(server)
    _assert_no_500(server)
    print(f"[chaos] outage restored: {sum(statuses.values())} requests right after, all 200; no 500 at all")


def test_stale_pooled_connections_are_replaced_after_a_blip(server):
    """Every worker holds a pooled connection; the line drops and comes straight back with no
    request in between. Without pre-ping each worker's next request would use its dead
    connection (a 503 at best); with it, every request succeeds."""
    login = server.call("POST", "/auth/token", ADMIN)
    assert login.status == 200, str(login)
    token = login.json()["access_token"]

    def every_worker_pooled():
        server.call("GET", "/users")
        return server.proxy.live >= WORKERS

    wait_until(every_worker_pooled, 20, "a pooled connection in every worker")
    reset = server.proxy.cut()
    server.proxy.restore()
    reconnected_before = server.proxy.accepted

    answers = 0

    def every_worker_reconnected():
        nonlocal answers
        answer = server.call("GET", "/items?limit=1", token=token)
        answers += 1
        assert answer.status == 200, f"request {answers} after the blip: {answer}"
        return server.proxy.accepted - reconnected_before >= WORKERS

    wait_until(every_worker_reconnected, 20, "every worker past its stale connection")
    _assert_no_worker_died(server)
    _assert_no_500(server)
    print(
        f"[chaos] outage blip: {reset} pooled connections reset and restored; "
        f"{answers} requests after, all 200, {server.proxy.accepted - reconnected_before} reconnections"
    )


def test_worker_replaced_during_an_outage_boots_and_serves(server):
    """A worker that ends while the database is away (recycled by GUNICORN_MAX_REQUESTS,
    killed by the OOM killer, ...) is replaced, and the replacement answers 503 until the
    database is back, then 200. Runs last: it replaces a worker."""
    master = server.stack.processes["gunicorn"]
    login = server.call("POST", "/auth/token", ADMIN)
    assert login.status == 200, str(login)
    token = login.json()["access_token"]
    booted_before = server.log_since_start().count("Booting worker")

    server.proxy.cut()
    try:
        victim = min(server.live_workers())
        os.kill(victim, signal.SIGTERM)

        def settled():
            if master.poll() is not None:
                return True
            log = server.log_since_start()
            booted = log.count("Booting worker") > booted_before
            return booted and victim not in server.live_workers() and "scheduler started" in log

        wait_until(settled, 20, "a replacement worker (or gunicorn's exit)")
        log = server.log_since_start()
        assert master.poll() is None, (
            f"gunicorn exited ({master.returncode}) when a worker was replaced during the outage:\n"
            + "\n".join(line[:300] for line in log.splitlines() if "gunicorn.error" in line)
        )
        wait_until(lambda: len(server.live_workers()) == WORKERS, 10, f"{WORKERS} workers")
        for _ in range(2 * WORKERS):
            _assert_unavailable(server.call("GET", "/items?limit=1", token=token))
    finally:
        server.proxy.restore()
    for index in range(4 * WORKERS):
        answer = server.call("GET", "/items?limit=1", token=token)
        assert answer.status == 200, f"request {index + 1} after restore: {answer}"
    _assert_no_500(server)
    print(
        f"[chaos] outage worker replaced: pid {victim} ended in the cut; its replacement served 503, then 200"
    )
