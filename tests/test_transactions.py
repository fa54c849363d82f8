"""Transactions that lose a conflict are retried whole: a real InnoDB deadlock and real lock
wait timeouts between a request and a second MariaDB connection (MariaDB only)."""

from __future__ import annotations

import os
import threading
import time

import pymysql
import pytest
from flask import jsonify
from prometheus_client import REGISTRY
from sqlalchemy import func, select, text, update
from sqlalchemy.engine import make_url

from tests.factories import make_item, make_user
from webapp.database import db
from webapp.models import Item

pytestmark = pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL", "").startswith("mysql"),
    reason="needs MariaDB (TEST_DATABASE_URL): SQLite has no row locks to deadlock on",
)


def retries(outcome: str) -> float:
    return REGISTRY.get_sample_value("webapp_db_retries_total", {"outcome": outcome}) or 0.0


def other_connection(database_url: str) -> pymysql.Connection:
    """A second client of the test database, outside the app (its own transaction)."""
    url = make_url(database_url)
    return pymysql.connect(
        host=url.host,
        port=url.port or 3306,
        user=url.username,
        password=url.password or "",
        database=url.database,
    )


@pytest.fixture
def app_config():
    return {"DATABASE_CONFLICT_ATTEMPTS": 3}


@pytest.fixture
def rows(fresh_app):
    """Items A and B that the request and the other connection lock in opposite orders,
    and ten more the other connection changes so InnoDB picks the request as the victim
    (it rolls back the transaction that changed fewer rows)."""
    owner = make_user("owner")
    return [make_item(owner, f"row {n}").id for n in range(12)]


def test_a_deadlocked_request_is_retried_whole_and_answers_once(fresh_app, rows, migrated_database):
    a, b, *heavy = rows
    attempts: list[int] = []
    request_holds_a, other_holds_b = threading.Event(), threading.Event()

    def transfer():
        attempts.append(1)
        db.session.execute(update(Item).where(Item.id == a).values(description="request"))
        if len(attempts) == 1:
            request_holds_a.set()
            assert other_holds_b.wait(10)
        # Blocks on B, which the other connection holds; it then asks for A: a deadlock.
        db.session.execute(update(Item).where(Item.id == b).values(description="request"))
        db.session.commit()
        return jsonify(attempts=len(attempts))

    fresh_app.add_url_rule("/test-only/transfer", view_func=transfer, methods=["POST"])

    def other():
        connection = other_connection(migrated_database)
        with connection, connection.cursor() as cursor:
            assert request_holds_a.wait(10)
            for item_id in (b, *heavy):
                cursor.execute("UPDATE items SET description = 'other' WHERE id = %s", (item_id,))
            other_holds_b.set()
            time.sleep(0.3)  # the request is now waiting for B
            cursor.execute("UPDATE items SET description = 'other' WHERE id = %s", (a,))
            time.sleep(0.2)  # hold the locks a little, so the retry waits for them too
            connection.commit()

    before = retries("retried"), retries("exhausted")
    thread = threading.Thread(target=other)
    thread.start()
    response = fresh_app.test_client().post("/test-only/transfer")
    thread.join(10)

    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"attempts": 2}
    assert (retries("retried"), retries("exhausted")) == (before[0] + 1, before[1])
    # The other transaction won the deadlock and committed; the retry committed after it.
    descriptions = dict(db.session.execute(select(Item.id, Item.description)).all())
    assert descriptions[a] == descriptions[b] == "request"
    assert {descriptions[i] for i in heavy} == {"other"}


@pytest.fixture
def locked_item(fresh_app, rows, migrated_database):
    """Item A with its row locked by another connection for the whole test."""
    connection = other_connection(migrated_database)
    with connection, connection.cursor() as cursor:
        cursor.execute("SELECT id FROM items WHERE id = %s FOR UPDATE", (rows[0],))
        yield rows[0]
        connection.rollback()


def add_lock_waiting_view(app, *, commit_first: bool) -> list[int]:
    """A view that waits 1 s at most for a locked row (each attempt ends in error 1205),
    after creating and committing an item if ``commit_first``."""
    attempts: list[int] = []

    def touch(item_id):
        attempts.append(1)
        db.session.execute(text("SET SESSION innodb_lock_wait_timeout = 1"))
        if commit_first:
            db.session.add(
                Item(name=f"committed {len(attempts)}", user_id=db.session.get(Item, item_id).user_id)
            )
            db.session.commit()
        db.session.execute(update(Item).where(Item.id == item_id).values(description="never"))
        db.session.commit()
        return jsonify(done=True)

    app.add_url_rule("/test-only/touch/<int:item_id>", view_func=touch, methods=["POST"])
    return attempts


def test_a_request_that_keeps_losing_is_503_with_retry_after(fresh_app, locked_item):
    attempts = add_lock_waiting_view(fresh_app, commit_first=False)
    before = retries("retried"), retries("exhausted")

    response = fresh_app.test_client().post(f"/test-only/touch/{locked_item}")

    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.headers["Retry-After"] == "1"
    assert response.get_json()["detail"] == "The request conflicted with concurrent ones; try again."
    assert len(attempts) == 3  # DATABASE_CONFLICT_ATTEMPTS
    assert (retries("retried"), retries("exhausted")) == (before[0] + 2, before[1] + 1)


def test_a_conflict_after_a_commit_is_not_retried(fresh_app, locked_item):
    attempts = add_lock_waiting_view(fresh_app, commit_first=True)
    before = retries("retried")

    response = fresh_app.test_client().post(f"/test-only/touch/{locked_item}")

    assert response.status_code == 503
    assert len(attempts) == 1
    assert retries("retried") == before
    # What was committed before the conflict happened once.
    assert db.session.scalar(select(func.count()).where(Item.name.startswith("committed"))) == 1
