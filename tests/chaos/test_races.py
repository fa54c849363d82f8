"""Races: 50 clients fire the same request at once (a barrier releases them together) at
gunicorn with 4 workers x 4 threads on MariaDB, so the requests really overlap in the
database. Unique names stay unique, a refresh token is spent once, the session cap holds,
concurrent updates of one row leave one whole value, and nothing is ever a 500.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import pytest

from tests.chaos.conftest import server_env
from tests.processes import Answer, Call, Stack, free_port, mariadb_root, race, send, start_api, tally

CLIENTS = 50
WORKERS = 4
THREADS = 4
MAX_SESSIONS = 2
ROUNDS = 3  # bursts per race whose loss needs two requests inside a short window
ADMIN = {"username": "admin", "password": "chaos-admin-password"}
PROBLEM = "application/problem+json"


@dataclass
class Server:
    port: int
    database: str
    admin_token: str = ""

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def call(self, method: str, path: str, body=None, token: str | None = None) -> Answer:
        return send(Call(self.base, method, path, body, token))

    def race(self, method: str, path: str, bodies: list, token: str | None = None) -> list[Answer]:
        """One request per body, from CLIENTS threads released together; answers in order."""
        assert len(bodies) == CLIENTS
        return race([Call(self.base, method, path, body, token) for body in bodies])

    def query(self, sql: str, *args) -> list[tuple]:
        connection = mariadb_root(self.database)
        with connection, connection.cursor() as cursor:
            cursor.execute(sql, args)
            return list(cursor.fetchall())

    def new_user(self) -> tuple[int, dict]:
        """A fresh account (role user): its id and login credentials."""
        username = f"racer-{uuid.uuid4().hex[:10]}"
        created = self.call("POST", "/users", {"username": username, "role_id": 2}, self.admin_token)
        assert created.status == 201, str(created)
        return created.json()["id"], {"username": username, "password": created.json()["password"]}


@pytest.fixture(scope="module")
def server(database, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("races")
    port = free_port()
    stack = Stack(tmp=tmp, database_url=database, api=f"http://127.0.0.1:{port}")
    env = server_env(
        database,
        tmp,
        WEB_CONCURRENCY=str(WORKERS),
        GUNICORN_THREADS=str(THREADS),
        MAX_SESSIONS_PER_USER=str(MAX_SESSIONS),
        PORT=str(port),
        METRICS_PORT=str(free_port()),
    )
    try:
        start_api(stack, env, WORKERS)
        instance = Server(port, database.rsplit("/", 1)[1])
        login = instance.call("POST", "/auth/token", ADMIN)
        assert login.status == 200, str(login)
        instance.admin_token = login.json()["access_token"]
        yield instance
        log = stack.logs["gunicorn"].read_text(errors="replace")
        for sign in ("unhandled exception", "Worker exiting", "WORKER TIMEOUT"):
            assert sign not in log, f"gunicorn log has {sign!r}"
    finally:
        stack.stop_all()


def _assert_problems(answers: list[Answer], status: int) -> None:
    for answer in answers:
        assert answer.status == status, str(answer)
        assert answer.content_type == PROBLEM, str(answer)
        assert answer.json()["status"] == status, str(answer)
        assert answer.json()["detail"], str(answer)


def test_same_item_name_created_at_once_exactly_one_wins(server):
    name = f"race-item-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    answers = server.race("POST", "/items", [{"name": name}] * CLIENTS, server.admin_token)
    elapsed = time.monotonic() - started
    print(f"[chaos] race item name: {CLIENTS} x POST /items {name!r} -> {tally(answers)} in {elapsed:.2f}s")
    created = [answer for answer in answers if answer.status == 201]
    assert len(created) == 1, tally(answers)
    _assert_problems([answer for answer in answers if answer.status != 201], 409)
    assert server.query("SELECT COUNT(*) FROM items WHERE name = %s", name) == [(1,)]
    assert server.call("GET", f"/items/{created[0].json()['id']}", token=server.admin_token).status == 200


def test_same_username_created_at_once_exactly_one_wins(server):
    username = f"race-user-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    answers = server.race(
        "POST", "/users", [{"username": username, "role_id": 2}] * CLIENTS, server.admin_token
    )
    elapsed = time.monotonic() - started
    print(
        f"[chaos] race username: {CLIENTS} x POST /users {username!r} -> {tally(answers)} in {elapsed:.2f}s"
    )
    created = [answer for answer in answers if answer.status == 201]
    assert len(created) == 1, tally(answers)
    _assert_problems([answer for answer in answers if answer.status != 201], 409)
    assert server.query("SELECT COUNT(*) FROM users WHERE username = %s", username) == [(1,)]
    # The one account created works with the password its answer carried.
    login = server.call(
        "POST", "/auth/token", {"username": username, "password": created[0].json()["password"]}
    )
    assert login.status == 200, str(login)


def test_same_refresh_token_at_once_is_spent_once(server):
    # A few rounds: on two cores a single burst does not always put two requests between
    # reading the session and swapping its tokens.
    for round_ in range(1, ROUNDS + 1):
        _, credentials = server.new_user()
        login = server.call("POST", "/auth/token", credentials)
        assert login.status == 200, str(login)
        old = login.json()
        started = time.monotonic()
        answers = server.race("POST", "/auth/refresh", [{"refresh_token": old["refresh_token"]}] * CLIENTS)
        elapsed = time.monotonic() - started
        print(
            f"[chaos] race refresh {round_}/{ROUNDS}: {CLIENTS} x POST /auth/refresh (one token) "
            f"-> {tally(answers)} in {elapsed:.2f}s"
        )
        assert all(answer.status < 500 for answer in answers), tally(answers)
        renewed = [answer for answer in answers if answer.status == 200]
        assert len(renewed) == 1, tally(answers)
        pair = renewed[0].json()
        assert pair["access_token"], str(renewed[0])
        assert pair["refresh_token"], str(renewed[0])
        assert {pair["access_token"], pair["refresh_token"]}.isdisjoint(
            {old["access_token"], old["refresh_token"]}
        )
        _assert_problems([answer for answer in answers if answer.status != 200], 401)
        # The old pair is spent whatever became of the new one (a late loser may have taken
        # the reuse for theft and ended the session: the contract allows that).
        assert server.call("GET", "/auth/me", token=old["access_token"]).status == 401


def test_logins_beyond_the_session_cap_at_once_keep_the_cap(server):
    for round_ in range(1, ROUNDS + 1):
        user_id, credentials = server.new_user()
        started = time.monotonic()
        answers = server.race("POST", "/auth/token", [credentials] * CLIENTS)
        elapsed = time.monotonic() - started
        assert all(answer.status == 200 for answer in answers), tally(answers)
        (rows,) = server.query("SELECT COUNT(*) FROM tokens WHERE user_id = %s", user_id)[0]
        working = [
            answer
            for answer in answers
            if server.call("GET", "/auth/me", token=answer.json()["access_token"]).status == 200
        ]
        print(
            f"[chaos] race session cap {round_}/{ROUNDS}: {CLIENTS} x POST /auth/token (cap {MAX_SESSIONS}) "
            f"-> {tally(answers)} in {elapsed:.2f}s; {rows} sessions stored, {len(working)} tokens work"
        )
        assert 1 <= rows <= MAX_SESSIONS
        assert len(working) == rows


def test_concurrent_patches_of_one_item_leave_one_whole_value(server):
    created = server.call(
        "POST", "/items", {"name": f"race-patch-{uuid.uuid4().hex[:8]}"}, server.admin_token
    )
    assert created.status == 201, str(created)
    item = created.json()
    # Long, distinct values: a torn or merged write would not equal any of them.
    values = [f"writer {index:02d} " * 40 for index in range(CLIENTS)]
    started = time.monotonic()
    answers = server.race(
        "PATCH", f"/items/{item['id']}", [{"description": value} for value in values], server.admin_token
    )
    elapsed = time.monotonic() - started
    assert all(answer.status == 200 for answer in answers), tally(answers)
    for answer in answers:
        assert answer.json()["description"] in values, str(answer)
    final = server.call("GET", f"/items/{item['id']}", token=server.admin_token)
    assert final.status == 200, str(final)
    assert final.json()["description"] in values
    assert (final.json()["name"], final.json()["user_id"]) == (item["name"], item["user_id"])
    stored = server.query("SELECT name, description, user_id FROM items WHERE id = %s", item["id"])
    assert stored == [(item["name"], final.json()["description"], item["user_id"])]
    winner = values.index(final.json()["description"])
    print(
        f"[chaos] race patch: {CLIENTS} x PATCH /items/{item['id']} -> {tally(answers)} "
        f"in {elapsed:.2f}s; writer {winner}'s value won"
    )
