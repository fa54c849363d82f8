"""API instances on the cluster, each started as the container starts one (docker/entrypoint.sh:
`flask deploy`, then gunicorn with 2 workers), all at the same moment."""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from tests.chaos.conftest import server_env
from tests.processes import (
    DOCKER,
    Answer,
    Call,
    Stack,
    free_port,
    http_ok,
    metric_total,
    ready_workers,
    send,
    wait_until,
)

WORKERS = 2
MAX_SESSIONS = 2
PURGE_INTERVAL = 2
ADMIN = {"username": "admin", "password": "chaos-admin-password"}


@dataclass
class Instance:
    """One API instance (gunicorn master and workers) and the database address it uses."""

    name: str
    stack: Stack
    database_url: str
    env: dict[str, str] = field(default_factory=dict)
    started: float = 0.0
    ready_after: float = 0.0

    @property
    def base(self) -> str:
        return self.stack.api

    def call(
        self, method: str, path: str, body=None, token: str | None = None, timeout: float = 30
    ) -> Answer:
        return send(Call(self.base, method, path, body, token), timeout=timeout)

    def log(self) -> str:
        return self.stack.logs["gunicorn"].read_text(errors="replace")

    def metric(self, name: str, labels: str = "") -> float:
        return metric_total(self.stack.metrics, name, labels)

    def stop(self) -> None:
        self.stack.stop_all()


def start_instances(tmp: Path, database_urls: dict[str, str], **settings: str) -> list[Instance]:
    """One instance per ``{name: database_url}``, all launched at the same moment; returns
    once every one answers /healthz with its workers ready (each gets 60 s)."""
    instances = []
    secret = uuid.uuid4().hex  # one deployment: every instance shares the secrets
    for name, url in database_urls.items():
        port, metrics_port = free_port(), free_port()
        folder = tmp / name
        folder.mkdir(parents=True, exist_ok=True)
        stack = Stack(
            tmp=folder,
            database_url=url,
            api=f"http://127.0.0.1:{port}",
            metrics=f"http://127.0.0.1:{metrics_port}",
        )
        env = server_env(
            url,
            folder,
            SECRET_KEY=secret,
            PORT=str(port),
            METRICS_PORT=str(metrics_port),
            WEB_CONCURRENCY=str(WORKERS),
            MAX_SESSIONS_PER_USER=str(MAX_SESSIONS),
            PURGE_INTERVAL=str(PURGE_INTERVAL),
            **settings,
        )
        instances.append(Instance(name, stack, url, env))
    barrier = threading.Barrier(len(instances))

    def launch(instance: Instance) -> None:
        barrier.wait(timeout=10)
        instance.started = time.monotonic()
        instance.stack.start("gunicorn", [str(DOCKER / "entrypoint.sh")], instance.env)

    threads = [threading.Thread(target=launch, args=(instance,)) for instance in instances]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        for instance in instances:
            wait_until(lambda i=instance: http_ok(f"{i.base}/healthz"), 60, f"{instance.name} /healthz")
            wait_until(lambda i=instance: ready_workers(i.stack) == WORKERS, 30, f"{instance.name} workers")
            instance.ready_after = time.monotonic() - instance.started
    except BaseException:
        stop_instances(instances)
        raise
    return instances


def one_per_node(cluster, database: str) -> dict[str, str]:
    """Instances a, b and c, each talking to its own node (1, 2 and 3) directly."""
    return {name: node.url(database) for name, node in zip("abc", cluster.nodes, strict=True)}


def behind_haproxy(cluster, database: str) -> dict[str, str]:
    """Instances h1, h2 and h3, all talking to the cluster through HAProxy."""
    return dict.fromkeys(
        ("h1", "h2", "h3"), f"mysql+pymysql://root@127.0.0.1:{cluster.haproxy_port}/{database}"
    )


def stop_instances(instances: list[Instance]) -> None:
    for instance in instances:
        instance.stop()


def admin_token(instance: Instance) -> str:
    answer = instance.call("POST", "/auth/token", ADMIN)
    assert answer.status == 200, str(answer)
    return answer.json()["access_token"]


class Written(NamedTuple):
    """One creation by the writers: its instance, status (0: no answer) and item name, and
    when it was sent and answered, in seconds since the writers started."""

    instance: str
    status: int
    item: str
    sent: float
    at: float

    @property
    def failed(self) -> bool:
        return self.status >= 500 or self.status == 0


@dataclass
class Writers:
    """Clients that keep creating items through the instances, one thread per instance, and
    write down every answer."""

    instances: list[Instance]
    token: str
    prefix: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    answers: list[Written] = field(default_factory=list)
    stopped: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    started: float = 0.0
    pause: float = 0.02

    def _write(self, instance: Instance) -> None:
        number = 0
        while not self.stopped.is_set():
            number += 1
            name = f"{self.prefix}-{instance.name}-{number}"
            sent = self.elapsed()
            try:
                status = instance.call("POST", "/items", {"name": name}, self.token, timeout=15).status
            except OSError:  # the instance itself unreachable: no answer at all
                status = 0
            self.answers.append(Written(instance.name, status, name, sent, self.elapsed()))
            time.sleep(self.pause)

    def start(self) -> Writers:
        self.started = time.monotonic()
        self.threads = [threading.Thread(target=self._write, args=(instance,)) for instance in self.instances]
        for thread in self.threads:
            thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        for thread in self.threads:
            thread.join(30)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def of(self, name: str, keep: Callable[[float], bool] = lambda _: True) -> list[Written]:
        """The answers through instance ``name``, answered at a time ``keep`` accepts."""
        return [answer for answer in self.answers if answer.instance == name and keep(answer.at)]


PROBLEM = "application/problem+json"


class Reply(NamedTuple):
    """One answer of the mixed load: its instance, the request ("POST /items"), the status
    (0: no answer), the Retry-After header, whether it is a problem document, the item name a
    creation sent, and when it was sent and answered, in seconds since the load started."""

    instance: str
    request: str
    status: int
    retry_after: str | None
    problem: bool
    item: str | None
    sent: float
    at: float

    @property
    def failed(self) -> bool:
        return self.status >= 500 or self.status == 0

    @property
    def unavailable(self) -> bool:
        """A 503 problem that says when to retry: the answer of an instance without a database."""
        return self.status == 503 and self.problem and bool(self.retry_after)


def ask(instance: Instance, method: str, path: str, body=None, token: str | None = None, timeout: float = 15):
    """(status, Retry-After, problem document?, parsed body or None); status 0 when the instance
    itself does not answer."""
    connection = http.client.HTTPConnection(
        "127.0.0.1", int(instance.base.rsplit(":", 1)[1]), timeout=timeout
    )
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        connection.request(method, path, json.dumps(body) if body is not None else None, headers)
        response = connection.getresponse()
        data = response.read()
    except OSError:
        return 0, None, False, None
    finally:
        connection.close()
    kind = response.headers.get_content_type()
    parsed = json.loads(data) if kind in ("application/json", PROBLEM) and data else None
    return response.status, response.headers.get("Retry-After"), kind == PROBLEM, parsed


@dataclass
class MixedLoad:
    """One client per instance, each repeating a mix of requests that all need the database:
    create an item, read it back, a page of items, a page of users, the caller's account.
    Every answer is written down; ``probed`` instances also get their /readyz polled (by a
    client of their own) into ``readiness``."""

    instances: list[Instance]
    token: str
    probed: list[Instance] = field(default_factory=list)
    prefix: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    replies: list[Reply] = field(default_factory=list)
    readiness: list[Reply] = field(default_factory=list)
    stopped: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    started: float = 0.0
    pause: float = 0.02
    probe_every: float = 0.2

    def _call(self, instance: Instance, into: list, request: str, path: str, body=None, item=None):
        """Send ``request`` ("GET /items/{id}") to ``path``; write the answer down in ``into``."""
        method = request.split()[0]
        sent = self.elapsed()
        status, retry_after, problem, parsed = ask(instance, method, path, body, self.token)
        into.append(Reply(instance.name, request, status, retry_after, problem, item, sent, self.elapsed()))
        return status, parsed

    def _load(self, instance: Instance) -> None:
        number, last_id = 0, None
        while not self.stopped.is_set():
            number += 1
            name = f"{self.prefix}-{instance.name}-{number}"
            status, parsed = self._call(instance, self.replies, "POST /items", "/items", {"name": name}, name)
            if status == 201:
                last_id = parsed["id"]
            if last_id is not None:
                self._call(instance, self.replies, "GET /items/{id}", f"/items/{last_id}")
            self._call(instance, self.replies, "GET /items", "/items?limit=5")
            self._call(instance, self.replies, "GET /users", "/users?limit=5")
            self._call(instance, self.replies, "GET /auth/me", "/auth/me")
            time.sleep(self.pause)

    def _probe(self, instance: Instance) -> None:
        while not self.stopped.is_set():
            self._call(instance, self.readiness, "GET /readyz", "/readyz")
            time.sleep(self.probe_every)

    def start(self) -> MixedLoad:
        self.started = time.monotonic()
        self.threads = [threading.Thread(target=self._load, args=(instance,)) for instance in self.instances]
        self.threads += [threading.Thread(target=self._probe, args=(instance,)) for instance in self.probed]
        for thread in self.threads:
            thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        for thread in self.threads:
            thread.join(30)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def of(self, name: str, keep: Callable[[float], bool] = lambda _: True) -> list[Reply]:
        """The answers through instance ``name``, answered at a time ``keep`` accepts."""
        return [reply for reply in self.replies if reply.instance == name and keep(reply.at)]

    def acknowledged(self) -> list[str]:
        """The names of the items whose creation was answered 201."""
        return [
            reply.item for reply in self.replies if reply.request == "POST /items" and reply.status == 201
        ]
