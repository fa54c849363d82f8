"""Assertions and parametrize helpers that every resource's test module shares."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from http import HTTPStatus

import pytest
from sqlalchemy import select

PROBLEM = "application/problem+json"


def assert_problem(response, *statuses: int) -> dict:
    """The response is an RFC 9457 problem document with one of ``statuses``: type, title,
    status, detail and instance (the request id), in the problem media type. Returns the body."""
    assert response.status_code in statuses, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.get_json()
    assert body["type"] == "about:blank"
    assert body["title"] == HTTPStatus(response.status_code).phrase
    assert body["status"] == response.status_code
    assert isinstance(body["detail"], str)
    assert body["detail"].strip()
    assert body["instance"] == response.headers["X-Request-ID"]
    return body


def utc_time(value: str) -> datetime:
    """Parse an ISO 8601 timestamp and insist that it is in UTC."""
    parsed = datetime.fromisoformat(value)
    assert parsed.utcoffset() == timedelta(0), value
    return parsed


def cases(table: dict, marks=()) -> list:
    """``{id: (arg, ...)}`` as pytest params, for ``parametrize`` over a table of cases."""
    return [pytest.param(*case, id=case_id, marks=marks) for case_id, case in table.items()]


# Permissions: each resource's test module lists, in PERMISSIONS, a row per route and method
# with the status each actor gets, and runs them with ``permission_test`` (tests/test_items.py
# shows how). tests/test_permissions.py fails, saying what to add, while any route of any
# blueprint is missing from its module's rows.
ANONYMOUS, USER, OWNER, ADMIN = "anonymous", "user", "owner", "admin"
ACTORS = (ANONYMOUS, USER, OWNER, ADMIN)


def expect(anonymous: int, user: int, owner: int, admin: int) -> dict[str, int]:
    """The status each actor gets: no token, another account, the owner, an admin."""
    return {ANONYMOUS: anonymous, USER: user, OWNER: owner, ADMIN: admin}


@dataclass(frozen=True)
class Permission:
    """One route and method, called by every actor. ``path`` and the strings of ``body`` may
    name ``{user}`` (the other account's id), ``{owner}`` (the owner's), ``{admin}`` (the
    calling admin's), ``{other_admin}`` (a second admin's) and any id the module's ``targets``
    fixture returns (``{item}``); a body string that is just ``{item}`` becomes that number."""

    label: str
    method: str
    path: str
    body: dict | None
    statuses: dict[str, int]


def snapshot() -> dict[str, list]:
    """Every table's rows but the brute-force counters (a refused login counts, by design)."""
    from webapp.extensions import db

    return {
        table.name: db.session.execute(select(table).order_by(*table.primary_key.columns)).all()
        for table in db.metadata.sorted_tables
        if table.name not in {"auth_failures", "job_runs"}
    }


def with_ids(value, ids: dict[str, int]):
    """A request body with the ids it names filled in: a string that is just ``{name}`` becomes
    that id (a number), any other string is formatted with them."""
    if isinstance(value, dict):
        return {key: with_ids(item, ids) for key, item in value.items()}
    if isinstance(value, list):
        return [with_ids(item, ids) for item in value]
    if isinstance(value, str):
        name = value[1:-1] if value.startswith("{") and value.endswith("}") else None
        return ids[name] if name in ids else value.format(**ids)
    return value


def permission_test(rows: list[Permission]):
    """The test of ``rows``: each actor calls each route and gets its status; a refusal is a
    problem document and changes nothing. Assign it to a module-level name starting with test_."""

    @pytest.mark.parametrize(
        ("row", "actor"),
        [pytest.param(row, actor, id=f"{row.label}-{actor}") for row in rows for actor in ACTORS],
    )
    def test_each_actor_gets_the_status_the_contract_gives(client, world, targets, row, actor):
        status = row.statuses[actor]
        before = snapshot()

        ids = {**world["ids"], **targets}
        response = client.open(
            row.path.format(**ids),
            method=row.method,
            json=with_ids(row.body, ids),
            headers=world["headers"][actor],
        )

        assert response.status_code == status, response.get_data(as_text=True)
        if status < 400:
            assert response.mimetype == "application/json"
            assert response.get_json() is not None
        else:
            assert_problem(response, status)
            assert snapshot() == before
        if status == 401:
            assert response.headers["WWW-Authenticate"] == "Bearer"

    return test_each_actor_gets_the_status_the_contract_gives


@dataclass(frozen=True)
class PagedList:
    """How a resource's list is called and grown, for the shared pagination tests
    (tests/test_pagination.py): each resource's test module has a function ``paged_list(request)``
    returning one (tests/test_items.py shows how)."""

    headers: dict[str, str]  # what a client sends to read the list
    add: Callable[[str], int]  # label -> id of a new row that the list shows
    text_filter: str  # a query argument that matches a substring of the label
