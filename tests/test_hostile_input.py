"""Hostile input on every JSON operation (tests/hostile.py): always a 4xx problem document,
never a 500, no ERROR log line, and nothing in the database changes (not even a failure
counter: none of these reaches a password check)."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from tests.factories import basic, login, make_item, make_user
from tests.helpers import assert_problem
from tests.hostile import CASES, VALID_BODIES, paths
from tests.test_docs import operations
from webapp.database import db


def everything() -> dict[str, list]:
    """Every row of every table."""
    return {
        table.name: db.session.execute(select(table).order_by(*table.primary_key.columns)).all()
        for table in db.metadata.sorted_tables
    }


@pytest.fixture
def targets(client, admin_headers) -> dict:
    """An account and an item for the {id} operations, and an admin's headers to call them."""
    alice = make_user("alice")
    return {"ids": {"user_id": alice.id, "item_id": make_item(alice).id}, "headers": admin_headers}


def test_every_json_operation_has_a_valid_body_to_turn_hostile(client, admin):
    spec = client.get("/openapi.json", headers=basic(admin.username)).get_json()
    with_body = {
        f"{method} {path}" for path, method, operation in operations(spec) if "requestBody" in operation
    }

    assert with_body == set(VALID_BODIES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_bodies_are_refused_with_a_problem_and_change_nothing(client, targets, caplog, case):
    caplog.set_level(logging.WARNING)
    # The sessions the admin's login opened are part of the state that must not move.
    before = everything()
    answers = []

    for operation, body in VALID_BODIES.items():
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
    assert login(client, "alice")["id"] == targets["ids"]["user_id"]
