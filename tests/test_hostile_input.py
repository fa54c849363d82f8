"""Hostile input on every JSON operation (tests/hostile.py): always a 4xx problem document,
never a 500, no ERROR log line, and nothing in the database changes (not even a failure
counter: none of these reaches a password check)."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from tests.factories import basic, login, make_user
from tests.helpers import assert_problem
from tests.hostile import CASES, paths, target_ids, valid_bodies
from webapp.database import db


def everything() -> dict[str, list]:
    """Every row of every table."""
    return {
        table.name: db.session.execute(select(table).order_by(*table.primary_key.columns)).all()
        for table in db.metadata.sorted_tables
    }


@pytest.fixture
def bodies(client, admin) -> dict[str, dict]:
    """A valid body for each JSON operation, to turn hostile."""
    return valid_bodies(client.get("/openapi.json", headers=basic(admin.username)).get_json())


@pytest.fixture
def targets(client, admin_headers, bodies) -> dict:
    """A row for each {id} operation (and alice, whose login must still work), and an admin's
    headers to call them."""

    def create(path: str, body: dict) -> int:
        response = client.post(path, json=body, headers=admin_headers)
        assert response.status_code == 201, (path, response.get_json())
        return response.get_json()["id"]

    alice = make_user("alice")
    return {"ids": target_ids(bodies, create), "alice": alice.id, "headers": admin_headers}


def test_every_json_operation_has_a_valid_body_to_turn_hostile(bodies):
    """Its permission rows give it one: an operation whose rows send no body has none."""
    without = [operation for operation, body in bodies.items() if not body]

    assert without == [], "give these operations' PERMISSIONS rows a body: " + ", ".join(without)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_bodies_are_refused_with_a_problem_and_change_nothing(client, bodies, targets, caplog, case):
    caplog.set_level(logging.WARNING)
    # The sessions the admin's login opened are part of the state that must not move.
    before = everything()
    answers = []

    for operation, body in bodies.items():
        method = operation.split(" ", 1)[0].upper()
        for path in paths(operation, targets["ids"]):
            response = client.open(
                path,
                method=method,
                data=case.build(body),
                content_type=case.content_type,
                headers=targets["headers"],
            )
            answers.append(f"{method} {path[:40]}: {response.status_code}")
            assert 400 <= response.status_code < 500, answers[-1]
            assert_problem(response, response.status_code)

    assert everything() == before
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR] == []
    assert login(client, "alice")["id"] == targets["alice"]
