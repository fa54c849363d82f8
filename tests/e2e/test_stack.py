"""End to end on loopback: the shipped nginx, gunicorn, Prometheus and compose files, for real."""

from __future__ import annotations

import base64
import json
import re
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml

from tests.compose_files import load_compose
from tests.e2e.conftest import ARTIFACTS, PURGE_INTERVAL, WORKERS
from tests.factories import bearer
from tests.processes import DOCKER, ROOT, mariadb_root, metric_total, wait_until
from tests.processes import http_call as call


def login(stack, username: str = "admin", password: str | None = None) -> dict:
    body = {"username": username, "password": password or stack.admin_password}
    status, _, body = call("POST", f"{stack.public}/auth/token", body)
    assert status == 200, body
    return body


def prometheus_value(stack, query: str) -> float | None:
    _, _, body = call("GET", f"{stack.prometheus}/api/v1/query?query={urllib.parse.quote(query)}")
    result = body["data"]["result"]
    return float(result[0]["value"][1]) if result else None


# --- the shipped configuration files -------------------------------------------------


def test_nginx_accepts_the_shipped_config(stack):
    result = subprocess.run(
        ["nginx", "-t", "-c", str(stack.nginx_conf), "-p", str(stack.nginx_conf.parent)],
        capture_output=True,
        text=True,
        check=False,
    )
    print(result.stderr)
    assert result.returncode == 0
    assert "syntax is ok" in result.stderr
    assert "test is successful" in result.stderr


def test_promtool_accepts_the_shipped_config():
    result = subprocess.run(
        ["promtool", "check", "config", str(DOCKER / "prometheus" / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    print(result.stdout, result.stderr)
    assert result.returncode == 0
    assert "SUCCESS" in result.stdout + result.stderr


def test_compose_file_parses_and_every_mounted_file_exists():
    compose = yaml.safe_load((ROOT / "compose.yml").read_text())
    assert set(compose["services"]) == {"db", "app", "certs", "nginx", "prometheus", "grafana"}
    assert (ROOT / compose["services"]["app"]["build"]["dockerfile"]).is_file()
    mounts = [
        volume.split(":")[0]
        for service in compose["services"].values()
        for volume in service.get("volumes", [])
        if volume.startswith(".")
    ]
    assert mounts, "compose mounts no repository files"
    for source in mounts:
        assert (ROOT / source).exists(), f"compose mounts {source}, which does not exist"
    # Only nginx is published to the world; Prometheus and Grafana on the host's loopback
    # only; the API's and the metrics' ports stay internal.
    ports = {name: service["ports"] for name, service in compose["services"].items() if service.get("ports")}
    assert set(ports) == {"nginx", "prometheus", "grafana"}
    for name in ("prometheus", "grafana"):
        assert all(port.startswith("127.0.0.1:") for port in ports[name]), ports[name]


def test_compose_takes_every_secret_from_the_environment_and_refuses_to_start_without_it():
    """Service accounts never fall back to a default password (OWASP ASVS V2.10.2)."""
    text = (ROOT / "compose.yml").read_text()

    for name in (
        "DB_PASSWORD",
        "DB_ROOT_PASSWORD",
        "SECRET_KEY",
        "PASSWORD_PEPPER",
        "GRAFANA_ADMIN_PASSWORD",
    ):
        assert f"${{{name}:?set {name} in .env}}" in text, name
    assert "root@" not in load_compose(ROOT / "compose.yml")["services"]["app"]["environment"]["DATABASE_URL"]


def test_every_image_is_pinned_to_a_patch_release():
    """A tag that moves (latest, 8.4, 2.6) rebuilds differently tomorrow; a pinned one is
    updated on purpose, like the other pins."""
    references = [
        service["image"]
        for path in ("compose.yml", "compose.cluster.yml")
        for service in load_compose(ROOT / path)["services"].values()
        if "image" in service
    ]
    references += [
        line.split()[1]
        for path in ("docker/Dockerfile", "docker/galera/Dockerfile")
        for line in (ROOT / path).read_text().splitlines()
        if line.startswith("FROM ")
    ]

    unpinned = [image for image in references if not re.search(r":v?\d+\.\d+\.\d+(-[a-z0-9.-]+)?$", image)]
    assert len(references) >= 8
    assert unpinned == []


# --- the API through nginx -------------------------------------------------------------


def test_the_main_flows_work_through_nginx(stack):
    base = stack.public
    admin = login(stack)
    status, _, created = call(
        "POST", f"{base}/users", {"username": "e2e-user", "role_id": 2}, bearer(admin["access_token"])
    )
    assert status == 201, created
    user = login(stack, "e2e-user", created["password"])

    status, _, item = call(
        "POST", f"{base}/items", {"name": f"lamp {uuid.uuid4().hex}"}, bearer(user["access_token"])
    )
    assert status == 201
    assert item["user_id"] == created["id"]
    status, _, page = call(
        "GET", f"{base}/items?limit=500", headers={**bearer(user["access_token"]), "X-Version": "1.0"}
    )
    assert status == 200
    assert page["limit"] == 100
    assert page["total"] >= 1
    status, _, patched = call(
        "PATCH", f"{base}/items/{item['id']}", {"description": None}, bearer(admin["access_token"])
    )
    assert status == 200
    assert patched["description"] is None
    # An admin may rename another user's item.
    status, _, renamed = call(
        "PATCH", f"{base}/items/{item['id']}", {"name": "x"}, bearer(login(stack)["access_token"])
    )
    assert status == 200
    assert renamed["name"] == "x"

    status, _, refreshed = call("POST", f"{base}/auth/refresh", {"refresh_token": user["refresh_token"]})
    assert status == 200
    assert call("GET", f"{base}/auth/me", headers=bearer(user["access_token"]))[0] == 401
    assert call("GET", f"{base}/auth/me", headers=bearer(refreshed["access_token"]))[0] == 200
    status, _, problem = call("GET", f"{base}/roles", headers={"X-Version": "0.1"})
    assert status == 426
    assert problem["detail"] == "Version not supported anymore"
    assert call("POST", f"{base}/auth/logout", headers=bearer(refreshed["access_token"]))[0] == 200
    assert call("GET", f"{base}/auth/me", headers=bearer(refreshed["access_token"]))[0] == 401
    status, _, _ = call("DELETE", f"{base}/items/{item['id']}", headers=bearer(admin["access_token"]))
    assert status == 200


def test_a_list_whose_link_header_carries_long_filters_passes_through_nginx(stack):
    # A Link header just under the app's cap (pagination.LINK_MAX_BYTES) must fit nginx's
    # header buffer (proxy_buffer_size), or nginx answers 502 in the API's place.
    user = login(stack)
    query = "&".join(["name=kept"] * 380) + "&unknown=" + "x" * 2000
    status, headers, page = call(
        "GET", f"{stack.public}/items?{query}", headers={**bearer(user["access_token"]), "X-Version": "1.0"}
    )

    assert status == 200, page
    assert 7000 < len(headers["Link"]) <= 8192
    assert "unknown" not in headers["Link"]


def test_a_body_the_app_answers_without_reading_is_not_reset_on_its_way(stack):
    # The app answers a PATCH to an id out of range from the URL alone, before nginx has
    # finished writing a large body. A worker that then closed on the unread rest would reset
    # the connection, and nginx would answer 502 in the app's place.
    body = {"name": "n" * (900 * 1024)}
    statuses = Counter(call("PATCH", f"{stack.public}/items/{2**64}", body=body)[0] for _ in range(100))

    assert statuses == {404: 100}


def test_nginx_passes_the_request_id_and_the_client_address(stack):
    status, headers, _ = call("GET", f"{stack.public}/roles", headers={"X-Request-ID": "e2e-request-42"})
    assert status == 200
    assert headers["X-Request-ID"] == "e2e-request-42"
    _, headers, _ = call("GET", f"{stack.public}/roles")
    assert re.fullmatch(r"[0-9a-f]{32}", headers["X-Request-ID"])  # nginx's $request_id

    access = [
        json.loads(line)
        for line in stack.logs["gunicorn"].read_text().splitlines()
        if line.startswith("{") and '"webapp.access"' in line
    ]
    line = next(entry for entry in access if entry["request_id"] == "e2e-request-42")
    assert line["path"] == "/roles"
    assert line["status"] == 200
    assert line["remote_addr"] == "127.0.0.1"


def raw_request(url: str, request: bytes) -> tuple[int, str, dict, dict[str, str]]:
    """Send bytes no HTTP library would; return the status, content type, JSON body and
    headers."""
    host, port = urllib.parse.urlsplit(url).netloc.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(request)
        connection.shutdown(socket.SHUT_WR)
        response = b"".join(iter(lambda: connection.recv(65536), b""))
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers["Content-Type"], json.loads(body), headers


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"POST /items HTTP/1.1\r\nHost: a\r\nContent-Length: 2000000\r\n\r\n", 413),
        (b"GET /items?name=" + b"x" * 9000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414),
        (b"GET /items HTTP/1.1\r\nHost: a\r\nX-Big: " + b"x" * 9000 + b"\r\n\r\n", 400),
        (b"GET /items with spaces HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"NOT HTTP AT ALL\r\n\r\n", 400),
    ],
    ids=["body-too-large", "url-too-long", "header-too-large", "bad-request-line", "not-http"],
)
def test_nginx_refuses_what_it_cannot_pass_on_with_a_problem_document(stack, request_bytes, status):
    answer, content_type, body, headers = raw_request(stack.public, request_bytes)
    assert (answer, content_type) == (status, "application/problem+json")
    assert body["status"] == status
    assert body["detail"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Server"] == "nginx"  # no version


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /items?name=" + b"x" * 9000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414),
        (b"GET /items HTTP/1.1\r\nHost: a\r\nX-Big: " + b"x" * 9000 + b"\r\n\r\n", 431),
        (b"NOT HTTP AT ALL\r\n\r\n", 400),
    ],
    ids=["url-too-long", "header-too-large", "not-http"],
)
def test_gunicorn_refuses_what_it_cannot_parse_with_a_problem_document(stack, request_bytes, status):
    """Without nginx in front (make run), gunicorn's own refusals look like the API's."""
    answer, content_type, body, _ = raw_request(stack.api, request_bytes)
    assert (answer, content_type) == (status, "application/problem+json")
    assert body["status"] == status
    assert body["detail"]


# --- what the public port serves -------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/prometheus/api/v1/query?query=up",
        "/prometheus/api/v1/status/config",
        "/prometheus/graph",
        "/grafana/login",
        "/grafana/api/health",
        "/metrics",
    ],
)
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_the_public_port_serves_no_monitoring(stack, scheme, path):
    base = stack.public if scheme == "http" else stack.public_tls
    status, headers, body = call("GET", f"{base}{path}", context=tls_context(stack))

    assert status == 404
    assert headers.get_content_type() == "application/problem+json"
    assert "prometheus" not in json.dumps(body).lower()


def tls_context(stack) -> ssl.SSLContext:
    """A client that trusts the stack's self-signed certificate and nothing else."""
    context = ssl.create_default_context(cafile=str(stack.nginx_conf.parent / "certificate.pem"))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def test_https_answers_with_a_verified_handshake_and_hsts(stack):
    host, port = urllib.parse.urlsplit(stack.public_tls).netloc.split(":")
    with (
        socket.create_connection((host, int(port)), timeout=10) as raw,
        tls_context(stack).wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        version, cipher = tls.version(), tls.cipher()[0]
        names = [value for kind, value in tls.getpeercert()["subjectAltName"] if kind == "DNS"]

    status, headers, _ = call("GET", f"{stack.public_tls}/roles", context=tls_context(stack))
    _, plain_headers, _ = call("GET", f"{stack.public}/roles")

    print(f"[e2e] TLS: {version}, {cipher}, certificate for {names}")
    assert version in {"TLSv1.2", "TLSv1.3"}
    assert "localhost" in names
    assert status == 200
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert "Strict-Transport-Security" not in plain_headers  # meaningless over plain HTTP


def test_nginx_limits_password_checks_per_client_address(stack):
    """One client sending logins as fast as it can: nginx lets at most AUTH_BURST (10) through
    at once and AUTH_RATE (5) a second after that, and answers the rest 429 itself."""
    body = {"username": "nobody", "password": "wrong password"}
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=30) as pool:
        answers = list(pool.map(lambda _: call("POST", f"{stack.public}/auth/token", body), range(30)))
    elapsed = time.monotonic() - started
    refused = [(headers, problem) for status, headers, problem in answers if status == 429]
    time.sleep(3)  # the bucket drains at 5 a second: later tests log in unhindered

    checked = len(answers) - len(refused)
    print(
        f"[e2e] 30 logins at once from one address in {elapsed:.1f} s: "
        f"{checked} checked, {len(refused)} refused"
    )
    assert 1 <= checked <= 1 + 10 + 5 * elapsed
    for headers, problem in refused:
        assert headers["Retry-After"] == "1"
        assert problem["status"] == 429
        assert "Too many authentication requests" in problem["detail"]
    # What got through was checked (401), or shed by the app's queue budget (503) while three
    # workers spent a quarter of a second each on bcrypt.
    assert {401, 429} <= {status for status, _, _ in answers} <= {401, 429, 503}


@pytest.mark.parametrize(
    "request_id",
    ['x", "status": 200, "detail": "all good', "x\\", "x" * 129, "\u00e9t\u00e9"],
    ids=["json-injection", "backslash", "too-long", "non-ascii"],
)
def test_a_forged_request_id_cannot_forge_nginx_problem_documents(stack, request_id):
    raw = b"POST /items HTTP/1.1\r\nHost: a\r\nContent-Length: 2000000\r\nX-Request-ID: "
    raw += request_id.encode() + b"\r\n\r\n"

    status, content_type, body, _ = raw_request(stack.public, raw)

    assert (status, content_type) == (413, "application/problem+json")
    assert body["status"] == 413
    assert re.fullmatch(r"[0-9a-f]{32}", body["instance"])  # nginx's own id instead


# --- metrics ---------------------------------------------------------------------------


def test_metrics_are_served_on_their_own_port_and_not_through_nginx(stack):
    assert call("GET", f"{stack.public}/metrics")[0] == 404
    assert call("GET", f"{stack.api}/metrics")[0] == 404
    status, _, text = call("GET", f"{stack.metrics}/metrics")
    assert status == 200
    assert "flask_http_request_total" in text
    # Labelled by route rule, never by raw path.
    assert 'url_rule="/items/<id:item_id>"' in text
    assert not re.search(r'url_rule="/items/\d', text)


def test_prometheus_scrapes_the_app_and_counts_every_request(stack):
    def target_up():
        _, _, body = call("GET", f"{stack.prometheus}/api/v1/targets")
        targets = body["data"]["activeTargets"]
        return targets and all(t["health"] == "up" for t in targets)

    wait_until(target_up, 40, "Prometheus to report the target up")
    total = "sum(flask_http_request_total)"
    # Start from a value Prometheus has scraped after the last request of earlier tests.
    served_before = metric_total(stack.metrics, "flask_http_request_total")
    wait_until(lambda: prometheus_value(stack, total) == served_before, 40, "a scrape of the current total")

    sent = 25
    for index in range(sent):
        path = ["/roles", "/versions", "/users", "/healthz", "/items"][index % 5]
        call("GET", f"{stack.public}{path}")

    expected = served_before + sent
    wait_until(lambda: prometheus_value(stack, total) == expected, 40, f"Prometheus to count {expected}")
    assert metric_total(stack.metrics, "flask_http_request_total") == expected
    print(f"[e2e] Prometheus counted {expected - served_before:.0f} of {sent} requests sent")


# --- the purge job ---------------------------------------------------------------------


def test_purge_runs_once_per_interval_across_all_workers(stack):
    window = 12
    runs_before = metric_total(stack.metrics, "webapp_purge_runs_total")
    started = time.time()
    time.sleep(window)
    finished = time.time()
    runs = metric_total(stack.metrics, "webapp_purge_runs_total") - runs_before

    connection = mariadb_root(stack.database)
    with connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT slot FROM job_runs WHERE job = 'purge_expired_sessions' AND slot BETWEEN %s AND %s",
            (int(started // PURGE_INTERVAL) + 1, int(finished // PURGE_INTERVAL) - 1),
        )
        slots = [row[0] for row in cursor.fetchall()]
    expected = window / PURGE_INTERVAL
    print(f"[e2e] purge: {runs:.0f} runs in {window} s with {WORKERS} workers (expected ~{expected:.0f})")
    # Every full slot inside the window ran exactly once (the primary key forbids twice).
    assert slots == list(range(int(started // PURGE_INTERVAL) + 1, int(finished // PURGE_INTERVAL)))
    assert expected - 1 <= runs <= expected + 1
    assert runs < WORKERS * expected / 2


# --- logs ------------------------------------------------------------------------------


def test_every_log_line_is_json_and_no_secret_reaches_the_log(stack):
    tokens = login(stack)
    call("GET", f"{stack.public}/auth/me", headers=bearer(tokens["access_token"]))
    call("POST", f"{stack.public}/auth/token", {"username": "admin", "password": "wrong password here"})
    time.sleep(0.5)
    text = stack.logs["gunicorn"].read_text()
    gunicorn_lines = [line for line in text.splitlines() if line.startswith("{")]
    for line in gunicorn_lines:
        json.loads(line)
    assert any('"gunicorn.error"' in line for line in gunicorn_lines)
    for secret in (
        tokens["access_token"],
        tokens["refresh_token"],
        stack.admin_password,
        "wrong password here",
    ):
        assert secret not in text
    assert "Authorization" not in text
    assert "Bearer " not in text


# --- the docs in a real browser --------------------------------------------------------


def test_docs_render_in_headless_chromium_without_internet(stack):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,1000",
        # No network beyond loopback: every other host name fails to resolve.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    try:
        credentials = base64.b64encode(f"admin:{stack.admin_password}".encode()).decode()
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd(
            "Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Basic {credentials}"}}
        )
        driver.get(f"{stack.public}/docs")
        WebDriverWait(driver, 30).until(
            lambda d: "Create an item" in d.find_element(By.TAG_NAME, "body").text
        )
        body = driver.find_element(By.TAG_NAME, "body").text
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        screenshot = ARTIFACTS / "docs.png"
        driver.save_screenshot(str(screenshot))
        print(f"[e2e] ReDoc screenshot: {screenshot}")
        events = [json.loads(entry["message"])["message"] for entry in driver.get_log("performance")]
    finally:
        driver.quit()

    for operation in ("Login", "Refresh the tokens", "List items", "Create a user", "List roles"):
        assert operation in body
    requested = {
        event["params"]["requestId"]: event["params"]["request"]["url"]
        for event in events
        if event["method"] == "Network.requestWillBeSent"
    }
    # ReDoc's bundle asks for a logo on cdn.redoc.ly; the docs' CSP stops it in the browser.
    blocked_by_csp = {
        event["params"]["requestId"]
        for event in events
        if event["method"] == "Network.loadingFailed" and event["params"].get("blockedReason") == "csp"
    }
    assert f"{stack.public}/vendor/redoc/redoc.standalone.js" in requested.values()
    outside = {
        url
        for request_id, url in requested.items()
        if not url.startswith((stack.public, "data:", "blob:")) and request_id not in blocked_by_csp
    }
    assert not outside, f"the docs page reached beyond the app: {outside}"
    print(f"[e2e] docs page: {len(requested)} requests, {len(blocked_by_csp)} stopped by its CSP")
