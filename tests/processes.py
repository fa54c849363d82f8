"""The deployment's programs on loopback, from the repository's own files: gunicorn through
docker/entrypoint.sh, nginx on docker/nginx/templates/default.conf.template, Prometheus on
docker/prometheus/prometheus.yml; used by the end-to-end, fuzzing and benchmark runs."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pymysql

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
# The production server as `make run` and the container start it (run from ROOT).
GUNICORN = [str(ROOT / ".venv" / "bin" / "gunicorn"), "-c", "docker/gunicorn.conf.py", "wsgi:app"]


def app_environment(**settings: str) -> dict[str, str]:
    """This process's environment without any of the app's settings (nor
    TEST_DATABASE_URL), plus ``settings``: a server started with it sees only those."""
    from webapp.config import Config

    env = {k: v for k, v in os.environ.items() if not (k.isupper() and hasattr(Config, k))}
    env.pop("TEST_DATABASE_URL", None)
    env.update(settings)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check()
        except (OSError, urllib.error.URLError):
            result = None
        if result:
            return result
        time.sleep(0.2)
    raise TimeoutError(f"timed out waiting for {what}")


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return response.status == 200


def http_call(
    method: str,
    url: str,
    body=None,
    headers: dict | None = None,
    timeout: float = 10,
    context: ssl.SSLContext | None = None,
):
    """One HTTP request on a new connection (HTTPS trusting ``context``): (status, headers,
    parsed JSON, text, or the bytes of anything else)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            status, response_headers, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        with error:
            status, response_headers, raw = error.code, error.headers, error.read()
    content_type = response_headers.get("Content-Type", "")
    if "json" in content_type:
        return status, response_headers, json.loads(raw)
    return status, response_headers, raw.decode() if content_type.startswith("text/") or not raw else raw


@dataclass
class Answer:
    """One HTTP answer, kept whole for assertions and messages."""

    status: int
    content_type: str
    body: bytes

    def json(self):
        return json.loads(self.body)

    def __str__(self) -> str:
        return f"{self.status} {self.content_type}: {self.body[:200]!r}"


@dataclass(frozen=True)
class Call:
    """A request to send: ``base`` is the server's URL (``http://127.0.0.1:8080``)."""

    base: str
    method: str
    path: str
    body: object = None
    token: str | None = None


def _connect(base: str, timeout: float) -> http.client.HTTPConnection:
    address = urllib.parse.urlsplit(base)
    return http.client.HTTPConnection(address.hostname, address.port, timeout=timeout)


def _send(connection: http.client.HTTPConnection, call: Call) -> Answer:
    headers = {"Content-Type": "application/json"} if call.body is not None else {}
    if call.token:
        headers["Authorization"] = f"Bearer {call.token}"
    connection.request(
        call.method, call.path, json.dumps(call.body) if call.body is not None else None, headers
    )
    response = connection.getresponse()
    return Answer(response.status, response.headers.get_content_type(), response.read())


def send(call: Call, timeout: float = 60) -> Answer:
    """One request on a connection of its own."""
    connection = _connect(call.base, timeout)
    try:
        return _send(connection, call)
    finally:
        connection.close()


def race(calls: list[Call], timeout: float = 60) -> list[Answer]:
    """Every call from its own thread, each connected first, then all released together by a
    barrier (only the requests are left to race); answers in the order of ``calls``."""
    barrier = threading.Barrier(len(calls))

    def client(call: Call) -> Answer:
        connection = _connect(call.base, timeout)
        try:
            connection.connect()
            barrier.wait(timeout=30)
            return _send(connection, call)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(client, calls))


def tally(answers: list[Answer]) -> dict[int, int]:
    """How many answers of each status, by status."""
    return dict(sorted(Counter(answer.status for answer in answers).items()))


def metric_total(metrics_url: str, name: str, labels: str = "") -> float:
    """Sum of a metric's samples as one gunicorn master serves them (all its workers); with
    ``labels`` (``outcome="retried"``), of the samples that carry them."""
    _, _, text = http_call("GET", f"{metrics_url}/metrics")
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if re.match(rf"{name}(\{{| )", line) and labels in line
    )


def render_template(path: Path, values: dict[str, str]) -> str:
    """What the nginx image's entrypoint does: substitute ${NAME} for the given names only."""
    text = path.read_text()
    for name, value in values.items():
        text = text.replace("${" + name + "}", value)
    return text


@dataclass
class Stack:
    """The processes of one run, their addresses and logs."""

    tmp: Path
    database: str = ""
    database_url: str = ""
    api: str = ""
    metrics: str = ""
    public: str = ""
    public_tls: str = ""
    prometheus: str = ""
    admin_password: str = field(default_factory=lambda: "e2e-" + uuid.uuid4().hex)
    nginx_conf: Path | None = None
    logs: dict[str, Path] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def port(self, address: str) -> int:
        """The port of one of the addresses: ``stack.port("public")``."""
        return urllib.parse.urlsplit(getattr(self, address)).port

    def start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        log = self.tmp / f"{name}.log"
        self.logs[name] = log
        with log.open("wb") as output:
            process = subprocess.Popen(
                args, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.processes[name] = process
        return process

    def stop_all(self) -> None:
        for name, process in reversed(list(self.processes.items())):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
            print(f"[e2e] {name} stopped (exit {process.returncode}); log: {self.logs[name]}")


def mariadb_root(database: str | None = None, port: int = 3306, **options) -> pymysql.Connection:
    """A connection as root to a MariaDB on loopback (the one on 3306 unless told otherwise),
    autocommit unless told otherwise."""
    options.setdefault("autocommit", True)
    return pymysql.connect(
        host="127.0.0.1", port=port, user="root", password="", database=database, **options
    )


@contextmanager
def throwaway_database(prefix: str) -> Iterator[str]:
    """A new, empty utf8mb4/utf8mb4_bin database on the loopback MariaDB for the block (dropped
    afterwards); yields its URL."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with mariadb_root() as connection:
        connection.cursor().execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    try:
        yield f"mysql+pymysql://root@127.0.0.1/{name}"
    finally:
        with mariadb_root() as connection:
            connection.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")


def ready_workers(stack: Stack) -> int:
    """gunicorn workers past post_worker_init (its deployment check queries the database, and
    a worker that fails it halts gunicorn): each logs that its scheduler started."""
    log = stack.logs["gunicorn"].read_text(errors="replace")
    return min(log.count("Booting worker"), log.count("scheduler started"))


def start_api(stack: Stack, env: dict[str, str], workers: int | None = None) -> subprocess.Popen:
    """docker/entrypoint.sh (migrations, seed, gunicorn) until it answers, and until
    ``workers`` workers are ready if given; returns gunicorn's master."""
    master = stack.start("gunicorn", [str(DOCKER / "entrypoint.sh")], env)
    wait_until(lambda: http_ok(f"{stack.api}/healthz"), 60, "gunicorn /healthz")
    if workers is not None:
        wait_until(lambda: ready_workers(stack) == workers, 30, f"{workers} workers ready")
    return master


# compose.yml's defaults for nginx's API_MAX_IN_FLIGHT, AUTH_RATE and AUTH_BURST.
API_MAX_IN_FLIGHT = "24"
AUTH_RATE = "5"
AUTH_BURST = "10"
# For runs that log in far more often than a client would (load, fuzzing): the per-client
# limit on /auth/ would only hide what they measure.
AUTH_RATE_UNLIMITED = "100000"


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1 from docker/tls.py, as compose
    makes one: (certificate, key)."""
    subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), str(DOCKER / "tls.py"), str(directory)],
        check=True,
        capture_output=True,
    )
    return directory / "certificate.pem", directory / "key.pem"


def start_nginx(
    stack: Stack,
    api_port: int,
    public_port: int,
    *,
    tls_port: int | None = None,
    max_in_flight: str = API_MAX_IN_FLIGHT,
    auth_rate: str = AUTH_RATE,
) -> Path:
    """nginx on the shipped template, in front of gunicorn on ``api_port``: HTTP on
    ``public_port`` and HTTPS (a certificate of docker/tls.py) on ``tls_port``."""
    conf_dir = stack.tmp / "nginx"
    (conf_dir / "conf.d").mkdir(parents=True)
    certificate, key = make_certificate(conf_dir)
    (conf_dir / "conf.d" / "default.conf").write_text(
        render_template(
            DOCKER / "nginx" / "templates" / "default.conf.template",
            {
                "API_UPSTREAM": f"127.0.0.1:{api_port}",
                # Never asked: the API's address above needs no lookup.
                "NGINX_RESOLVER": "127.0.0.1",
                "NGINX_PORT": f"127.0.0.1:{public_port}",
                "NGINX_TLS_PORT": f"127.0.0.1:{tls_port or free_port()}",
                "TLS_CERTIFICATE": str(certificate),
                "TLS_CERTIFICATE_KEY": str(key),
                "API_MAX_IN_FLIGHT": max_in_flight,
                "AUTH_RATE": auth_rate,
                "AUTH_BURST": AUTH_BURST,
            },
        )
    )
    # The container image's nginx.conf, reduced to what a non-container run needs.
    main = conf_dir / "nginx.conf"
    main.write_text(
        f"""
        worker_processes 2;
        pid {conf_dir}/nginx.pid;
        error_log {conf_dir}/error.log warn;
        events {{ worker_connections 1024; }}
        http {{
            access_log {conf_dir}/access.log;
            client_body_temp_path {conf_dir}/body;
            proxy_temp_path {conf_dir}/proxy;
            fastcgi_temp_path {conf_dir}/fastcgi;
            uwsgi_temp_path {conf_dir}/uwsgi;
            scgi_temp_path {conf_dir}/scgi;
            include /etc/nginx/mime.types;
            include {conf_dir}/conf.d/*.conf;
        }}
        """
    )
    if os.geteuid() == 0:
        main.write_text("user root;\n" + main.read_text())
    stack.start("nginx", ["nginx", "-c", str(main), "-p", str(conf_dir), "-g", "daemon off;"])
    wait_until(lambda: http_ok(f"{stack.public}/healthz"), 20, "nginx")
    return main


def start_prometheus(stack: Stack, prometheus_port: int, metrics_port: int) -> None:
    prom_dir = stack.tmp / "prometheus"
    (prom_dir / "targets").mkdir(parents=True)
    # The shipped file unchanged; only the target list (compose's says app:8000) differs.
    shutil.copy(DOCKER / "prometheus" / "prometheus.yml", prom_dir / "prometheus.yml")
    (prom_dir / "targets" / "webapp.json").write_text(
        f'[{{"targets": ["127.0.0.1:{metrics_port}"], "labels": {{"service": "webapp"}}}}]'
    )
    stack.start(
        "prometheus",
        [
            "prometheus",
            f"--config.file={prom_dir / 'prometheus.yml'}",
            f"--storage.tsdb.path={prom_dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{prometheus_port}",
            f"--web.external-url=http://127.0.0.1:{prometheus_port}/",
        ],
    )
    wait_until(lambda: http_ok(f"{stack.prometheus}/-/ready"), 60, "prometheus")
