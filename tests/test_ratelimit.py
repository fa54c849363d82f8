"""Brute-force limits on login, refresh and docs auth: per account, per address, shared by every worker."""

from __future__ import annotations

import http.client
import json
import math
import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from pathlib import Path

import pytest
from prometheus_client.multiprocess import MultiProcessCollector

from tests.conftest import IsolatedClient, make_app
from tests.factories import PASSWORD, basic, login, make_user
from tests.processes import GUNICORN, Stack, app_environment, free_port
from webapp.database import db

PER_ACCOUNT = 3
PER_ADDRESS = 5
UNDER_ATTACK = 6
WINDOW = 300
LIMITS = {
    "MAX_FAILURES_PER_ACCOUNT": PER_ACCOUNT,
    "MAX_FAILURES_PER_ADDRESS": PER_ADDRESS,
    "ACCOUNT_UNDER_ATTACK_FAILURES": UNDER_ATTACK,
}
HOME = "127.0.0.1"
ATTACKER = "10.0.0.66"
ELSEWHERE = "10.0.0.77"
WORKERS = 3
GUNICORN_ACCOUNT_LIMIT = 5


@pytest.fixture
def app_config() -> dict:
    return {**LIMITS, "AUTH_FAILURE_WINDOW": WINDOW}


def token(client, username: str, password: str = PASSWORD, address: str = HOME, headers=None):
    return client.post(
        "/auth/token",
        json={"username": username, "password": password},
        headers=headers or {},
        environ_overrides={"REMOTE_ADDR": address},
    )


def refresh(client, refresh_token: str, address: str = HOME):
    return client.post(
        "/auth/refresh", json={"refresh_token": refresh_token}, environ_overrides={"REMOTE_ADDR": address}
    )


def fail_logins(client, usernames, address: str = HOME) -> None:
    """One failed login per name (each answered 401)."""
    for username in usernames:
        assert token(client, username, "wrong password", address).status_code == 401


def assert_too_many(response, window: int = WINDOW) -> dict:
    """A 429 problem document with an integer Retry-After of at most two windows (this
    window's failures count through the next one); returns the body."""
    assert response.status_code == 429, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    retry_after = response.headers["Retry-After"]
    assert retry_after.isdigit()
    assert 1 <= int(retry_after) <= 2 * window
    body = response.get_json()
    assert body["status"] == 429
    assert body["title"] == HTTPStatus.TOO_MANY_REQUESTS.phrase
    assert body["detail"]
    assert "WWW-Authenticate" not in response.headers
    return body


# Per account and address


@pytest.mark.parametrize("existing", [True, False], ids=["existing-account", "unknown-username"])
def test_guessing_from_one_address_is_refused_there_even_with_the_right_password(client, existing):
    if existing:
        make_user("alice")

    statuses = [token(client, "alice", "wrong password").status_code for _ in range(PER_ACCOUNT)]

    assert statuses == [401] * PER_ACCOUNT
    assert_too_many(token(client, "alice", PASSWORD))
    assert_too_many(token(client, "alice", "another guess"))


def test_failures_from_other_addresses_never_refuse_a_correct_login_from_a_clean_address(client):
    """Anyone can send wrong passwords for an account: that must not lock its owner out."""
    make_user("alice")
    for n in range(UNDER_ATTACK * 3):
        address = f"198.51.100.{n}"
        while token(client, "alice", "wrong password", address).status_code == 401:
            pass

    assert token(client, "alice", PASSWORD, HOME).status_code == 200
    assert token(client, "alice", PASSWORD, ELSEWHERE).status_code == 200


def test_refusal_of_an_existing_and_an_unknown_account_look_alike(client):
    make_user("alice")
    fail_logins(client, ["alice"] * PER_ACCOUNT, address=HOME)
    fail_logins(client, ["ghost"] * PER_ACCOUNT, address=ELSEWHERE)

    known = token(client, "alice", PASSWORD, address=HOME)
    unknown = token(client, "ghost", PASSWORD, address=ELSEWHERE)

    known_body, unknown_body = assert_too_many(known), assert_too_many(unknown)
    # Retry-After counts down with the clock: the two may straddle a second.
    assert abs(int(known.headers["Retry-After"]) - int(unknown.headers["Retry-After"])) <= 1
    assert set(known.headers.keys()) == set(unknown.headers.keys())
    for body in (known_body, unknown_body):
        body.pop("instance")
        body["detail"] = re.sub(r"\d+", "N", body["detail"])
    assert known_body == unknown_body


# Per account, over every address (distributed guessing)


def test_under_attack_an_address_that_has_failed_gets_no_more_guesses(client):
    make_user("alice")
    fail_logins(client, ["alice"] * (PER_ACCOUNT - 1), address=ATTACKER)  # below its own limit
    for n in range(UNDER_ATTACK):
        fail_logins(client, ["alice"], address=f"198.51.100.{n}")

    assert_too_many(token(client, "alice", PASSWORD, ATTACKER))
    assert_too_many(token(client, "alice", "guess", "198.51.100.0"))
    # A clean address still gets its password checked: a wrong one is 401, the right one 200.
    assert token(client, "alice", "guess", "203.0.113.1").status_code == 401
    assert token(client, "alice", PASSWORD, "203.0.113.2").status_code == 200


def distributed_attack(client, addresses: list[str], guesses: int, *, round_robin: bool) -> dict[int, int]:
    """Each address sends ``guesses`` wrong passwords for alice (all of one address's first,
    or one from each address in turn); the statuses counted."""
    order = (
        [address for _ in range(guesses) for address in addresses]
        if round_robin
        else [address for address in addresses for _ in range(guesses)]
    )
    statuses = [token(client, "alice", f"guess {n}", address).status_code for n, address in enumerate(order)]
    return {status: statuses.count(status) for status in set(statuses)}


@pytest.mark.parametrize("round_robin", [False, True], ids=["address-after-address", "round-robin"])
def test_distributed_guessing_is_bounded_per_account_and_address(client, round_robin):
    """The documented bound (docs/security.md): within two windows, an account gets at most
    ACCOUNT_UNDER_ATTACK_FAILURES password checks before it is under attack, then one per
    address that has not failed: with N addresses, ACCOUNT_UNDER_ATTACK_FAILURES + N in all
    (a failure counts for two windows, so 6 x that per hour with 5-minute windows). Every
    other guess is a 429."""
    make_user("alice")
    addresses = [f"198.51.100.{n}" for n in range(30)]
    guesses = 10

    statuses = distributed_attack(client, addresses, guesses, round_robin=round_robin)

    checked = statuses[401]
    bound = UNDER_ATTACK + len(addresses)
    per_hour = 3600 / (2 * WINDOW) * bound
    print(
        f"[ratelimit] {len(addresses)} addresses x {guesses} guesses: {checked} password checks, "
        f"{statuses[429]} refused (bound {bound} per {2 * WINDOW} s: {per_hour:.0f} per hour)"
    )
    assert set(statuses) == {401, 429}
    assert checked <= bound
    # Without the account-wide limit every address would get MAX_FAILURES_PER_ACCOUNT guesses.
    assert checked < len(addresses) * PER_ACCOUNT
    assert token(client, "alice", PASSWORD, "203.0.113.9").status_code == 200


def test_ipv6_clients_are_counted_by_their_64_network(client):
    make_user("alice")
    for n in range(PER_ACCOUNT):
        assert token(client, "alice", "wrong password", f"2001:db8:1:2::{n + 1:x}").status_code == 401

    # Another address of the same /64: the same client.
    assert_too_many(token(client, "alice", PASSWORD, "2001:db8:1:2:ffff::1"))
    assert token(client, "alice", PASSWORD, "2001:db8:1:3::1").status_code == 200


def test_one_blocked_account_does_not_slow_another_account(client):
    make_user("alice")
    make_user("bob")
    fail_logins(client, ["bob"] * PER_ACCOUNT)

    assert_too_many(token(client, "bob", PASSWORD))
    assert token(client, "alice", PASSWORD).status_code == 200


def test_successful_login_forgives_the_accounts_earlier_failures(client):
    make_user("alice")
    fail_logins(client, ["alice"] * (PER_ACCOUNT - 1))
    assert token(client, "alice", PASSWORD).status_code == 200

    fail_logins(client, ["alice"] * (PER_ACCOUNT - 1))

    assert token(client, "alice", PASSWORD).status_code == 200


def test_login_of_one_account_does_not_forgive_another(client):
    make_user("alice")
    make_user("bob")
    fail_logins(client, ["bob"] * (PER_ACCOUNT - 1))
    assert token(client, "alice", PASSWORD).status_code == 200

    fail_logins(client, ["bob"])

    assert_too_many(token(client, "bob", PASSWORD))


@pytest.mark.parametrize("padded", ["alice ", "alice   "])
def test_padding_the_username_does_not_get_past_a_blocked_account(client, padded):
    make_user("alice")
    fail_logins(client, ["alice"] * PER_ACCOUNT)

    assert token(client, padded, PASSWORD).status_code in (401, 429)


# Per address


def test_failures_over_many_usernames_block_the_address(client):
    make_user("alice")
    make_user("carol")
    fail_logins(client, [f"guess{n}" for n in range(PER_ADDRESS)], address=ATTACKER)

    assert_too_many(token(client, "alice", PASSWORD, address=ATTACKER))
    # The same account from another address, and an untouched account from a clean one, log in.
    assert token(client, "alice", PASSWORD, address=ELSEWHERE).status_code == 200
    assert token(client, "carol", PASSWORD, address=HOME).status_code == 200


def test_address_below_its_limit_is_not_blocked(client):
    make_user("alice")
    fail_logins(client, [f"guess{n}" for n in range(PER_ADDRESS - 1)], address=ATTACKER)

    assert token(client, "alice", PASSWORD, address=ATTACKER).status_code == 200


def test_bad_refresh_tokens_block_the_address_but_not_others(client):
    make_user("alice")
    session = login(client, "alice")
    statuses = [refresh(client, f"forged-{n}", ATTACKER).status_code for n in range(PER_ADDRESS)]

    assert statuses == [401] * PER_ADDRESS
    assert_too_many(refresh(client, session["refresh_token"], ATTACKER))
    assert refresh(client, session["refresh_token"], ELSEWHERE).status_code == 200


def test_refresh_failures_count_against_the_address_for_logins(client):
    make_user("alice")
    for n in range(PER_ADDRESS):
        assert refresh(client, f"forged-{n}", ATTACKER).status_code == 401

    assert_too_many(token(client, "alice", PASSWORD, address=ATTACKER))


@pytest.mark.parametrize("path", ["/docs", "/openapi.json"])
def test_docs_basic_auth_failures_count_against_the_account(client, path):
    make_user("alice")
    for _ in range(PER_ACCOUNT - 1):
        assert client.get(path, headers=basic("alice", "wrong password")).status_code == 401
    fail_logins(client, ["alice"])

    assert_too_many(client.get(path, headers=basic("alice", PASSWORD)))
    assert_too_many(token(client, "alice", PASSWORD))


def test_docs_basic_auth_failures_count_against_the_address(client):
    make_user("alice")
    for n in range(PER_ADDRESS):
        response = client.get(
            "/docs", headers=basic(f"guess{n}", "wrong"), environ_overrides={"REMOTE_ADDR": ATTACKER}
        )
        assert response.status_code == 401

    assert_too_many(token(client, "alice", PASSWORD, address=ATTACKER))
    assert_too_many(
        client.get("/docs", headers=basic("alice", PASSWORD), environ_overrides={"REMOTE_ADDR": ATTACKER})
    )
    with client.get("/docs", headers=basic("alice", PASSWORD)) as response:
        assert response.status_code == 200


# X-Forwarded-For


def test_x_forwarded_for_is_ignored_without_a_trusted_proxy(client):
    make_user("alice")
    for n in range(PER_ADDRESS):
        response = token(
            client, f"guess{n}", "wrong", ATTACKER, headers={"X-Forwarded-For": f"198.51.100.{n}"}
        )
        assert response.status_code == 401

    assert_too_many(token(client, "alice", PASSWORD, ATTACKER, headers={"X-Forwarded-For": "198.51.100.99"}))


@pytest.mark.parametrize("app_config", [{**LIMITS, "AUTH_FAILURE_WINDOW": WINDOW, "TRUSTED_PROXIES": 1}])
def test_x_forwarded_for_is_the_address_behind_a_trusted_proxy(client):
    make_user("alice")
    proxy = "10.0.0.1"
    fail_logins(client, [f"guess{n}" for n in range(PER_ADDRESS)], address=proxy)
    # Not blocked: those failures counted for the proxy's address, not this client's.
    client_ip = {"X-Forwarded-For": "203.0.113.7"}
    for n in range(PER_ADDRESS):
        assert token(client, f"other{n}", "wrong", proxy, headers=client_ip).status_code == 401

    assert_too_many(token(client, "alice", PASSWORD, proxy, headers=client_ip))
    assert (
        token(client, "alice", PASSWORD, proxy, headers={"X-Forwarded-For": "203.0.113.8"}).status_code == 200
    )


@pytest.mark.parametrize("app_config", [{**LIMITS, "AUTH_FAILURE_WINDOW": WINDOW, "TRUSTED_PROXIES": 1}])
def test_a_forged_x_forwarded_for_entry_does_not_dodge_the_limit_behind_a_trusted_proxy(client):
    make_user("alice")
    # The proxy appends the address it saw; whatever the client sent stays in front of it.
    for n in range(PER_ADDRESS):
        forged = {"X-Forwarded-For": f"198.51.100.{n}, 203.0.113.7"}
        assert token(client, f"guess{n}", "wrong", "10.0.0.1", headers=forged).status_code == 401

    forged = {"X-Forwarded-For": "198.51.100.99, 203.0.113.7"}
    assert_too_many(token(client, "alice", PASSWORD, "10.0.0.1", headers=forged))


# The window


def start_of_a_fresh_window(window: int) -> None:
    """Sleep, if needed, so that the next half window lies within one window."""
    into = time.time() % window
    if into > window / 2:
        time.sleep(window - into + 0.01)


@pytest.mark.parametrize("app_config", [{**LIMITS, "AUTH_FAILURE_WINDOW": 1}])
def test_account_works_again_once_two_windows_have_passed(client):
    make_user("alice")
    start_of_a_fresh_window(1)
    fail_logins(client, ["alice"] * PER_ACCOUNT)
    assert_too_many(token(client, "alice", PASSWORD), window=1)
    last_failure_window = math.floor(time.time())

    time.sleep(last_failure_window + 2 - time.time() + 0.01)

    assert token(client, "alice", PASSWORD).status_code == 200


@pytest.mark.parametrize("app_config", [{**LIMITS, "AUTH_FAILURE_WINDOW": 1}])
def test_a_client_that_waits_retry_after_seconds_is_let_in(client):
    make_user("alice")
    start_of_a_fresh_window(1)
    fail_logins(client, ["alice"] * PER_ACCOUNT)
    refused = token(client, "alice", PASSWORD)
    assert_too_many(refused, window=1)

    time.sleep(int(refused.headers["Retry-After"]))

    assert token(client, "alice", PASSWORD).status_code == 200


# Shared between instances


@pytest.fixture
def second_app(migrated_database, app_config):
    """Another instance on the same database, as another gunicorn worker or host would be."""
    other = make_app(migrated_database, **app_config)
    other.test_client_class = IsolatedClient
    yield other
    with other.app_context():
        db.engine.dispose()


def test_failures_are_counted_across_app_instances(client, second_app):
    make_user("alice")
    clients = [client, second_app.test_client()]

    for attempt in range(PER_ACCOUNT):
        assert token(clients[attempt % 2], "alice", "wrong password").status_code == 401

    for each in clients:
        assert_too_many(token(each, "alice", PASSWORD))


# Under gunicorn with several workers


def post_on_a_fresh_connection(port: int, path: str, payload: dict) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(
            "POST",
            path,
            body=json.dumps(payload),
            headers={"Content-Type": "application/json", "Connection": "close"},
        )
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def answers_health(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", "/healthz")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def wait_for_workers(port: int, metrics_dir: Path, process: subprocess.Popen, log: Path) -> None:
    """Until every worker has loaded the app (each then has a metrics file) and one answers."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        if len(list(metrics_dir.glob("counter_*.db"))) == WORKERS and answers_health(port):
            return
        time.sleep(0.2)
    raise TimeoutError(f"gunicorn workers did not start; log:\n{log.read_text()}")


def per_worker(metrics_dir: Path, name: str, **labels: str) -> dict[int, float]:
    """A counter's value in each worker's own metrics file, by worker pid (zeros left out)."""
    values = {}
    for file in metrics_dir.glob("counter_*.db"):
        for metric in MultiProcessCollector.merge([str(file)], accumulate=False):
            for sample in metric.samples:
                if sample.name == name and labels.items() <= sample.labels.items() and sample.value:
                    pid = int(file.stem.split("_")[1])
                    values[pid] = values.get(pid, 0) + sample.value
    return values


@pytest.fixture
def gunicorn(app, migrated_database, tmp_path):
    """gunicorn with three workers on the test database (``app`` has just emptied it); yields
    its port and metrics folder, and stops it afterwards."""
    port = free_port()
    metrics_dir = tmp_path / "metrics"
    env = app_environment(
        APP_ENV="development",
        DATABASE_URL=migrated_database,
        BCRYPT_ROUNDS="10",
        MAX_FAILURES_PER_ACCOUNT=str(GUNICORN_ACCOUNT_LIMIT),
        WEB_CONCURRENCY=str(WORKERS),
        SCHEDULER_ENABLED="false",
        HOST="127.0.0.1",
        PORT=str(port),
        METRICS_PORT=str(free_port()),
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        GUNICORN_KEEPALIVE="0",
    )
    stack = Stack(tmp=tmp_path)
    process = stack.start("gunicorn", GUNICORN, env)
    try:
        wait_for_workers(port, metrics_dir, process, stack.logs["gunicorn"])
        yield port, metrics_dir
    finally:
        stack.stop_all()


@pytest.mark.slow
@pytest.mark.parametrize("app_config", [{"BCRYPT_ROUNDS": 10}])  # alice's own hash is slow too
def test_account_limit_holds_across_gunicorn_workers(gunicorn):
    """Waves of concurrent wrong passwords, one request per worker (bcrypt at cost 10 keeps
    each worker busy, so every wave spreads over the workers). Counted per worker, the
    limit would let WORKERS x limit failures through; counted in the database, at most
    limit + WORKERS - 1 get through (a wave's requests are checked before any is recorded)."""
    port, metrics_dir = gunicorn
    make_user("alice")
    limit = GUNICORN_ACCOUNT_LIMIT
    wrong = {"username": "alice", "password": "wrong password"}

    statuses = []
    with ThreadPoolExecutor(WORKERS) as pool:
        for _ in range(6):
            statuses += pool.map(
                lambda _: post_on_a_fresh_connection(port, "/auth/token", wrong), range(WORKERS)
            )
    last = post_on_a_fresh_connection(port, "/auth/token", {"username": "alice", "password": PASSWORD})

    assert set(statuses) == {401, 429}
    assert limit <= statuses.count(401) <= limit + WORKERS - 1
    assert statuses[-WORKERS:] == [429] * WORKERS
    assert last == 429
    posts = per_worker(metrics_dir, "flask_http_request_total", method="POST")
    assert sum(posts.values()) == len(statuses) + 1
    assert len(posts) >= 2
    assert sum(per_worker(metrics_dir, "webapp_logins_total", outcome="failed").values()) == statuses.count(
        401
    )
