"""Restarts under load: gunicorn (3 workers) behind the shipped nginx, eight clients creating
and reading items without pause, while the master is reloaded (SIGHUP), stopped (SIGTERM)
with requests in flight, and started again with the same command.

One run of that scenario (the `run` fixture) records every request; each test below checks
one property of the record."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pymysql
import pytest

from tests.chaos.conftest import proxied_server
from tests.processes import (
    AUTH_RATE_UNLIMITED,
    DOCKER,
    http_ok,
    mariadb_root,
    start_nginx,
    wait_until,
)
from webapp.models.row_count import SHARDS

WORKERS = 3
CLIENTS = 8
ADMIN_PASSWORD = "chaos-admin-password"
GRACEFUL_TIMEOUT = 20  # docker/gunicorn.conf.py's default, left as it is
# Acknowledged creations to see in each calm phase (before, after the reload, after the restart).
PHASE_CREATES = 40


@dataclass
class Call:
    """One request as the client saw it (times: time.monotonic())."""

    kind: str  # create | read | list
    request_id: str
    started: float
    ended: float
    status: int | None  # None: no HTTP answer at all (refused, reset, timed out)
    error: str | None = None
    name: str | None = None  # the item name, for creations

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class Run:
    """What happened, with the moments the scenario did something."""

    database: str
    master: int
    calls: list[Call] = field(default_factory=list)
    workers_before_reload: set[int] = field(default_factory=set)
    workers_after_reload: set[int] = field(default_factory=set)
    master_alive_after_reload: bool = False
    hup: float = 0.0  # SIGHUP sent
    reloaded: float = 0.0  # every old worker gone, a full set of new ones
    locked: float = 0.0  # item counters locked: creations from here on wait in the workers
    held: int = 0  # creations waiting inside workers when SIGTERM was sent
    term: float = 0.0  # SIGTERM sent
    released: float = 0.0  # counters unlocked: the held creations may finish
    down: float = 0.0  # the master has exited
    exit_code: int | None = None
    restarted: float = 0.0  # the same command started again
    up: float = 0.0  # the new master answers /healthz
    log: Path | None = None  # the first master's
    logs: list[Path] = field(default_factory=list)  # every gunicorn's

    def between(self, start: float, end: float) -> list[Call]:
        """Calls started in [start, end)."""
        return [call for call in self.calls if start <= call.started < end]


def send(port: int, method: str, path: str, body=None, headers: dict | None = None):
    """One request on a new connection: (status or None, parsed JSON or None, error or None)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        payload = json.dumps(body) if body is not None else None
        headers = {**(headers or {}), **({"Content-Type": "application/json"} if payload else {})}
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        raw = response.read()
        parsed = json.loads(raw) if "json" in response.getheader("Content-Type", "") else None
        return response.status, parsed, None
    except (OSError, http.client.HTTPException) as error:
        return None, None, f"{type(error).__name__}: {error}"
    finally:
        connection.close()


class Load:
    """CLIENTS threads through nginx, each in a loop: create an item with a new name, read it
    back, now and then list a page; every request recorded."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.headers = {"Authorization": f"Bearer {token}", "X-Version": "1.0"}
        self.calls: list[Call] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.client, args=(n,), daemon=True) for n in range(CLIENTS)]

    def request(self, kind: str, method: str, path: str, body=None, name: str | None = None):
        request_id = f"chaos-{uuid.uuid4().hex}"
        started = time.monotonic()
        status, parsed, error = send(
            self.port, method, path, body, {**self.headers, "X-Request-ID": request_id}
        )
        call = Call(kind, request_id, started, time.monotonic(), status, error, name)
        with self.lock:
            self.calls.append(call)
        if not call.ok:
            # A client backing off a little (nginx sends Retry-After), not spinning on 502s.
            self.stop.wait(0.05)
        return call, parsed

    def client(self, n: int) -> None:
        sequence = 0
        while not self.stop.is_set():
            sequence += 1
            name = f"restart-{n}-{sequence}"
            body = {"name": name, "description": f"client {n}, item {sequence}"}
            call, item = self.request("create", "POST", "/items", body, name)
            if call.status == 201:
                self.request("read", "GET", f"/items/{item['id']}")
            if sequence % 4 == 0:
                self.request("list", "GET", "/items?limit=5&name=restart")

    def creates_since(self, moment: float) -> int:
        with self.lock:
            return sum(
                1 for c in self.calls if c.kind == "create" and c.status == 201 and c.started >= moment
            )

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=40)
        assert not any(thread.is_alive() for thread in self.threads), "a load client did not stop"


def workers_of(master: int) -> set[int]:
    """The master's child processes (its workers)."""
    children: set[int] = set()
    for task in Path(f"/proc/{master}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):  # a thread that just ended
            children.update(int(pid) for pid in (task / "children").read_text().split())
    return children


def waiting_for_locks(database: str) -> int:
    """Transactions of this database's clients waiting for a row lock."""
    with mariadb_root(database) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM information_schema.INNODB_TRX t "
            "JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id "
            "WHERE t.trx_state = 'LOCK WAIT' AND p.DB = %s",
            (database,),
        )
        return cursor.fetchone()[0]


def lock_item_counters(database: str) -> pymysql.Connection:
    """Hold every shard of the items' kept count (webapp/models/row_count.py) in an open
    transaction: each POST /items inserts its row, then waits on one of these locks, inside a
    worker, until the transaction ends. A request held like that is in flight for sure."""
    locker = mariadb_root(database, autocommit=False)
    with locker.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO row_counts (name, shard, `rows`) VALUES ('items', %s, 0) "
            "ON DUPLICATE KEY UPDATE `rows` = `rows`",
            [(shard,) for shard in range(SHARDS)],
        )
    return locker


def log_mentions(log: Path, text: str) -> bool:
    return text in log.read_text(errors="replace")


@pytest.fixture(scope="module")
def run(database, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("restart")
    stack, env = proxied_server(database, tmp, WEB_CONCURRENCY=str(WORKERS))
    public_port = stack.port("public")
    env.pop("GUNICORN_GRACEFUL_TIMEOUT", None)
    command = [str(DOCKER / "entrypoint.sh")]
    locker = None
    try:
        master = stack.start("gunicorn", command, env)
        wait_until(lambda: http_ok(f"{stack.api}/healthz"), 90, "gunicorn /healthz")
        start_nginx(stack, stack.port("api"), public_port, auth_rate=AUTH_RATE_UNLIMITED)
        status, tokens, error = send(
            public_port, "POST", "/auth/token", {"username": "admin", "password": ADMIN_PASSWORD}
        )
        assert status == 200, (tokens, error)
        record = Run(database=stack.database, master=master.pid, log=stack.logs["gunicorn"])

        with Load(public_port, tokens["access_token"]) as load:
            wait_until(lambda: load.creates_since(0) >= PHASE_CREATES, 30, "load to run")

            # Reload: new workers, same master, same listening socket.
            record.workers_before_reload = workers_of(master.pid)
            assert len(record.workers_before_reload) == WORKERS
            record.hup = time.monotonic()
            os.kill(master.pid, signal.SIGHUP)

            def reloaded():
                workers = workers_of(master.pid)
                return len(workers) == WORKERS and not workers & record.workers_before_reload and workers

            record.workers_after_reload = wait_until(reloaded, 60, "a full set of new workers")
            record.reloaded = time.monotonic()
            record.master_alive_after_reload = master.poll() is None
            wait_until(lambda: load.creates_since(record.reloaded) >= PHASE_CREATES, 30, "load after reload")

            # Stop with requests held inside every worker (and more queued behind them).
            locker = lock_item_counters(stack.database)
            record.locked = time.monotonic()
            record.held = wait_until(
                lambda: (n := waiting_for_locks(stack.database)) >= WORKERS and n, 20, "creations to wait"
            )
            record.term = time.monotonic()
            os.kill(master.pid, signal.SIGTERM)
            wait_until(
                lambda: log_mentions(record.log, "Handling signal: term"), 10, "the master to see TERM"
            )
            locker.rollback()
            locker.close()
            locker = None
            record.released = time.monotonic()
            record.exit_code = master.wait(timeout=GRACEFUL_TIMEOUT + 10)
            record.down = time.monotonic()

            # Down: nginx answers 502 for a moment; then the same command again.
            wait_until(
                lambda: any(c.status == 502 and c.started > record.down for c in list(load.calls)),
                10,
                "nginx to answer 502 while the API is down",
            )
            record.restarted = time.monotonic()
            stack.start("gunicorn-restarted", command, env)
            wait_until(lambda: http_ok(f"{stack.api}/healthz"), 90, "gunicorn /healthz after the restart")
            record.up = time.monotonic()
            wait_until(lambda: load.creates_since(record.up) >= PHASE_CREATES, 30, "load after the restart")
        record.calls = sorted(load.calls, key=lambda c: c.started)
        record.logs = [stack.logs["gunicorn"], stack.logs["gunicorn-restarted"]]
        summarize(record)
        yield record
    finally:
        if locker is not None:
            locker.close()
        stack.stop_all()


def summarize(run: Run) -> None:
    calls = run.calls
    creates = [c for c in calls if c.kind == "create"]
    before_term = run.between(0, run.term)
    in_flight = [c for c in before_term if c.ended > run.term]
    during = run.between(run.hup, run.reloaded)
    slowest = max((c.ended - c.started for c in during), default=0.0)
    print(
        f"\n[chaos] {len(calls)} requests sent by {CLIENTS} clients "
        f"over {calls[-1].ended - calls[0].started:.1f} s: "
        f"{len(creates)} creations, {sum(c.status == 201 for c in creates)} answered 201"
    )
    print(
        f"[chaos] reload (SIGHUP): {run.reloaded - run.hup:.2f} s until {WORKERS} new workers replaced "
        f"{sorted(run.workers_before_reload)} with {sorted(run.workers_after_reload)}; "
        f"{len(during)} requests during it (slowest {slowest:.2f} s), "
        f"{sum(not c.ok for c in run.between(run.hup, run.locked) if c.ended < run.locked)} not 2xx"
    )
    print(
        f"[chaos] stop (SIGTERM): {run.held} creations held in workers; {len(in_flight)} requests in flight "
        f"at the signal: {sum(c.ok for c in in_flight)} completed 2xx, "
        f"{sum(c.status == 502 for c in in_flight)} answered 502, {sum(c.status is None for c in in_flight)} "
        f"without an answer; master exited {run.exit_code} after {run.down - run.term:.2f} s"
    )
    down = run.between(run.term, run.up)
    print(
        f"[chaos] down: {sum(c.status == 502 for c in down)} answers 502 for requests sent after the signal; "
        f"restart took {run.up - run.restarted:.2f} s; after it {len(run.between(run.up, float('inf')))} "
        f"requests, {sum(not c.ok for c in run.between(run.up, float('inf')))} not 2xx"
    )


def describe(calls: list[Call], run: Run) -> list[str]:
    """The calls as readable lines, times relative to SIGTERM, and whether the app logged each."""
    text = "".join(log.read_text(errors="replace") for log in run.logs)
    return [
        f"{c.kind} {c.name or ''} sent {c.started - run.term:+.3f} s, answered {c.ended - run.term:+.3f} s: "
        f"{c.status or c.error} ({'in' if c.request_id in text else 'not in'} the app's access log)"
        for c in calls
    ]


def test_reload_answers_every_request_and_keeps_the_master(run):
    # Everything answered before the counters were locked: the calm phases and the reload.
    answered = [c for c in run.calls if c.ended < run.locked]
    during = run.between(run.hup, run.reloaded)
    after = run.between(run.reloaded, run.locked)
    assert during, "no request was sent during the reload"
    assert sum(c.status == 201 for c in after) >= PHASE_CREATES, "the new workers served too little"
    failed = [c for c in answered if not c.ok]
    assert not failed, describe(failed, run)
    # The pid signalled is gunicorn's master (the entrypoint exec'd it), still alive and serving.
    listening = [line for line in run.log.read_text().splitlines() if "Listening at:" in line]
    assert listening, "gunicorn never logged its address"
    assert f"({run.master})" in listening[0]
    assert "Hang up: Master" in run.log.read_text()
    assert run.master_alive_after_reload
    assert len(run.workers_after_reload) == WORKERS
    assert not run.workers_after_reload & run.workers_before_reload


def test_stop_lets_the_requests_held_in_workers_finish(run):
    # The creations waiting on the lock inside each worker when SIGTERM came: answered 201
    # once the lock was released, within the graceful timeout, not cut off.
    assert run.held >= WORKERS
    finished = [c for c in run.between(0, run.term) if c.status == 201 and c.ended >= run.released]
    assert len(finished) >= WORKERS, describe(run.between(run.locked, run.term), run)
    assert run.exit_code == 0
    assert run.down - run.term < GRACEFUL_TIMEOUT
    # nginx stays up: every request, even while the API is down, gets an HTTP answer.
    unanswered = [c for c in run.calls if c.status is None]
    assert not unanswered, describe(unanswered, run)


def test_stop_answers_every_request_sent_before_the_signal(run):
    # Also those still queued in the listen backlog, not yet taken by a worker.
    refused = [c for c in run.between(0, run.term) if not c.ok]
    assert not refused, describe(refused, run)


def test_the_server_comes_back_and_the_load_continues(run):
    # While it is down nginx answers 502 (expected, nothing acknowledged). Requests sent once
    # the new master has bound the port wait in its backlog and are served when workers boot.
    down = run.between(run.down, run.up)
    assert any(c.status == 502 for c in down), "no request met the API down"
    odd = [c for c in down if c.status != 502 and not c.ok]
    assert not odd, describe(odd, run)
    after = run.between(run.up, float("inf"))
    assert sum(c.status == 201 for c in after) >= PHASE_CREATES
    failed = [c for c in after if not c.ok]
    assert not failed, describe(failed, run)


def test_every_acknowledged_item_exists_exactly_once(run):
    acknowledged = [c.name for c in run.calls if c.kind == "create" and c.status == 201]
    sent = {c.name for c in run.calls if c.kind == "create"}
    assert len(acknowledged) == len(set(acknowledged))
    with mariadb_root(run.database) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT name, COUNT(*) FROM items GROUP BY name")
        stored = dict(cursor.fetchall())
        cursor.execute("SELECT COALESCE(SUM(`rows`), 0) FROM row_counts WHERE name = 'items'")
        kept_total = int(cursor.fetchone()[0])
    missing = sorted(set(acknowledged) - set(stored))
    twice = sorted(name for name, count in stored.items() if count != 1)
    unacknowledged = sorted(set(stored) - set(acknowledged))
    print(
        f"[chaos] items: {len(acknowledged)} acknowledged, {len(stored)} stored, {len(missing)} missing, "
        f"{len(twice)} stored twice, {len(unacknowledged)} stored without a 201"
    )
    assert not missing
    assert not twice
    assert set(stored) <= sent
    # A creation whose answer was lost (stored, but the client saw 502) would be retried as a
    # 409 by the client: a graceful stop must answer every creation it commits.
    assert not unacknowledged, describe([c for c in run.calls if c.name in unacknowledged], run)
    # The kept count moved in the same transactions: the list total is still exact.
    assert kept_total == len(stored)
