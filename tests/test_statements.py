"""SQL statements per request, counted with SQLAlchemy events: the hot paths stay lean."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from tests.factories import PASSWORD, login, make_item, make_user
from webapp.database import db


@pytest.fixture
def statements(app):
    """The SQL statements executed since the fixture started (clear it between requests)."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        # A list query on MariaDB runs under a time limit: SET STATEMENT ... FOR SELECT ...
        if statement.startswith("SET STATEMENT "):
            statement = statement.partition(" FOR ")[2]
        seen.append(statement.split()[0].upper())

    event.listen(db.engine, "before_cursor_execute", record)
    yield seen
    event.remove(db.engine, "before_cursor_execute", record)


@pytest.fixture
def item(user):
    return make_item(user, "lamp")


def count(client, statements, method: str, path: str, **kwargs) -> tuple[int, list[str]]:
    """Statements of one request, after a first one has warmed the per-worker caches."""
    getattr(client, method)(path, **kwargs)
    statements.clear()
    response = getattr(client, method)(path, **kwargs)
    assert response.status_code < 400, response.get_json()
    return len(statements), list(statements)


@pytest.mark.parametrize("headers", [{}, {"X-Version": "1.0"}], ids=["no-version", "version-gate"])
def test_roles_and_the_version_gate_run_no_statement_once_warm(client, statements, headers):
    assert count(client, statements, "get", "/roles", headers=headers) == (0, [])


def test_authenticated_item_read_runs_two_statements(client, statements, auth_headers, item):
    total, kinds = count(
        client, statements, "get", f"/items/{item.id}", headers={**auth_headers, "X-Version": "1.0"}
    )

    assert total <= 2
    assert kinds == ["SELECT", "SELECT"]


def test_item_list_runs_two_statements_with_its_total(client, statements, auth_headers, user):
    for n in range(25):
        make_item(user, f"item {n}")

    total, kinds = count(client, statements, "get", "/items?page=1&limit=20", headers=auth_headers)

    # The session lookup, then the page with its total in the same statement.
    assert total <= 3
    assert kinds == ["SELECT", "SELECT"]


def test_an_item_name_filter_runs_three_statements_however_common_its_word(
    client, statements, auth_headers, user
):
    for n in range(25):
        make_item(user, f"Steel item {n}")

    total, kinds = count(client, statements, "get", "/items?name=steel&limit=20", headers=auth_headers)

    # The session lookup, the words holding the filter, then the page with its total, read
    # from the word's kept count.
    assert (total, kinds) == (3, ["SELECT", "SELECT", "SELECT"])


def test_item_create_runs_two_statements(client, statements, auth_headers):
    client.post("/items", json={"name": "warm-up"}, headers=auth_headers)
    statements.clear()

    response = client.post("/items", json={"name": "lamp"}, headers=auth_headers)

    assert response.status_code == 201
    # The session lookup and the insert (its trigger keeps the count, in the same transaction).
    assert statements == ["SELECT", "INSERT"]


def test_login_runs_four_statements(client, statements):
    make_user("alice")
    login(client, "alice")  # warm-up
    statements.clear()

    response = client.post("/auth/token", json={"username": "alice", "password": PASSWORD})

    assert response.status_code == 200
    # The account (locked) with the brute-force counters, the login noted on the account (it
    # orders logins across a Galera cluster), the oldest sessions beyond the cap, the new one.
    assert statements == ["SELECT", "UPDATE", "DELETE", "INSERT"]


def test_commit_reloads_nothing(client, statements, auth_headers, item):
    """Objects stay loaded after a commit: answering never re-reads what was just written."""
    client.patch(f"/items/{item.id}", json={"description": "warm-up"}, headers=auth_headers)
    statements.clear()

    response = client.patch(f"/items/{item.id}", json={"description": "on"}, headers=auth_headers)

    assert response.status_code == 200
    assert statements == ["SELECT", "SELECT", "UPDATE"]


def test_listing_my_sessions_runs_two_statements(client, statements, user):
    headers = login(client, "alice")["headers"]

    assert count(client, statements, "get", "/auth/sessions", headers=headers) == (2, ["SELECT", "SELECT"])


def test_a_conditional_item_read_answered_304_runs_the_same_two_statements(
    client, statements, auth_headers, item
):
    tag = client.get(f"/items/{item.id}", headers=auth_headers).headers["ETag"]
    statements.clear()

    response = client.get(f"/items/{item.id}", headers={**auth_headers, "If-None-Match": tag})

    assert response.status_code == 304
    assert statements == ["SELECT", "SELECT"]


def test_a_conditional_change_runs_the_same_statements_as_a_plain_one(client, statements, auth_headers, item):
    tag = client.patch(f"/items/{item.id}", json={"description": "warm-up"}, headers=auth_headers).headers[
        "ETag"
    ]
    statements.clear()

    response = client.patch(
        f"/items/{item.id}", json={"description": "on"}, headers={**auth_headers, "If-Match": tag}
    )

    assert response.status_code == 200
    # The session, the item (no lock: the UPDATE compares the version), the UPDATE.
    assert statements == ["SELECT", "SELECT", "UPDATE"]
