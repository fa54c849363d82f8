"""Error answers: problem+json bodies, request ids, routing errors, crashes, integrity errors,
and a database node that refuses to serve (a Galera node cut off from its cluster)."""

from __future__ import annotations

import logging
import re

import pymysql
import pytest
from flask import jsonify
from sqlalchemy import (
    Column,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    event,
    func,
    insert,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from tests.factories import make_item, make_user
from tests.helpers import assert_problem
from webapp.database import db
from webapp.dialects import is_node_not_ready
from webapp.errors import duplicated_fields
from webapp.models import Item
from webapp.permissions import login_required

SECRET = "secret-sql"
PLAIN_ID = re.compile(r"[A-Za-z0-9._:@-]{1,128}")


@pytest.fixture
def app(fresh_app):
    """A fresh app plus test-only views that fail the way a faulty view would (added before any request)."""

    def explode():
        raise RuntimeError("secret-sql SELECT password")

    def copy_item(item_id):
        # Inserts a second row with an existing name: the database, not a schema, refuses it.
        original = db.session.get(Item, item_id)
        db.session.add(Item(name=original.name, user_id=original.user_id))
        db.session.commit()
        return jsonify(created=True)

    def orphan_item():
        db.session.add(Item(name="orphan", user_id=2**31 - 1))
        db.session.commit()
        return jsonify(created=True)

    fresh_app.add_url_rule("/test-only/explode", view_func=explode)
    fresh_app.add_url_rule("/test-only/copy/<int:item_id>", view_func=copy_item, methods=["POST"])
    fresh_app.add_url_rule(
        "/test-only/signed-in/copy/<int:item_id>",
        endpoint="signed_in_copy",
        view_func=login_required(copy_item),
        methods=["POST"],
    )
    fresh_app.add_url_rule("/test-only/orphan", view_func=orphan_item, methods=["POST"])
    return fresh_app


@pytest.fixture
def foreign_item(app):
    """An item owned by someone other than ``user``."""
    return make_item(make_user("bob"), "Bob's lamp")


ERRORS = {
    "400-malformed-json": (
        400,
        lambda c, ctx: c.post(
            "/items", headers=ctx["auth"], data='{"name": ', content_type="application/json"
        ),
    ),
    "401-no-token": (401, lambda c, ctx: c.get("/items")),
    "401-bad-token": (401, lambda c, ctx: c.get("/auth/me", headers={"Authorization": "Bearer nope"})),
    "403-not-owner": (403, lambda c, ctx: c.delete(f"/items/{ctx['item'].id}", headers=ctx["auth"])),
    "404-missing-item": (404, lambda c, ctx: c.get("/items/4242", headers=ctx["auth"])),
    "404-missing-user": (404, lambda c, ctx: c.get("/users/4242")),
    "404-unknown-url": (404, lambda c, ctx: c.get("/no/such/page")),
    "405-wrong-method": (405, lambda c, ctx: c.put("/items", headers=ctx["auth"], json={})),
    "409-integrity-error": (409, lambda c, ctx: c.post(f"/test-only/copy/{ctx['item'].id}")),
    "422-body": (422, lambda c, ctx: c.post("/items", headers=ctx["auth"], json={})),
    "422-query": (422, lambda c, ctx: c.get("/users?page=0")),
    "426-old-version": (426, lambda c, ctx: c.get("/roles", headers={"X-Version": "0.9"})),
    "426-unknown-version": (426, lambda c, ctx: c.get("/roles", headers={"X-Version": "42.0"})),
    "500-unexpected": (500, lambda c, ctx: c.get("/test-only/explode")),
}


@pytest.mark.parametrize(("status", "send"), ERRORS.values(), ids=ERRORS.keys())
def test_every_error_is_a_problem_document(client, auth_headers, foreign_item, status, send):
    response = send(client, {"auth": auth_headers, "item": foreign_item})

    body = assert_problem(response, status)
    if status != 422:
        assert "errors" not in body


@pytest.mark.parametrize(
    ("send", "fields"),
    [
        (lambda c, h, i: c.post("/items", headers=h, json={"name": 1, "colour": "red"}), {"name", "colour"}),
        (
            lambda c, h, i: c.post("/items", headers=h, json={"description": "x" * 1001}),
            {"name", "description"},
        ),
        (lambda c, h, i: c.patch(f"/items/{i}", headers=h, json={"name": ""}), {"name"}),
        (lambda c, h, i: c.get("/items?page=0&limit=x", headers=h), {"page", "limit"}),
        (lambda c, h, i: c.get("/users?activated=perhaps"), {"activated"}),
        (lambda c, h, i: c.post("/auth/token", json={"username": "alice"}), {"password"}),
    ],
    ids=["wrong-type-and-unknown", "missing-and-too-long", "empty", "query", "public-query", "auth"],
)
def test_422_maps_each_bad_field_to_its_messages(client, user, auth_headers, send, fields):
    item = make_item(user, "Lamp")

    body = assert_problem(send(client, auth_headers, item.id), 422)

    assert set(body["errors"]) == fields
    for messages in body["errors"].values():
        assert isinstance(messages, list)
        assert messages
        assert all(isinstance(message, str) and message for message in messages)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("delete", "/items", {"GET", "POST"}),
        ("put", "/items/1", {"GET", "PATCH", "DELETE"}),
        ("post", "/roles", {"GET"}),
        ("post", "/auth/me", {"GET"}),
        ("get", "/auth/token", {"POST"}),
        ("get", "/auth/logout", {"POST"}),
        ("get", "/auth/refresh", {"POST"}),
    ],
)
def test_wrong_method_is_405_problem_with_an_allow_header(client, method, path, allowed):
    response = getattr(client, method)(path)

    assert_problem(response, 405)
    assert allowed <= {verb.strip() for verb in response.headers["Allow"].split(",")}


@pytest.mark.parametrize(
    "path", ["/nope", "/items/", "/items/0", "/items/abc", "/items/99999999999999999999999"]
)
def test_unknown_url_is_404_problem(client, auth_headers, path):
    assert_problem(client.get(path, headers=auth_headers), 404)


SANE_IDS = ["abc123", "req-1.2_3:4@edge", "0f8fad5b-d9cb-469f-a165-70867728950e", "a" * 128]
INSANE_IDS = {
    "too-long": "a" * 129,
    "space": "two words",
    "newline": "id\nFAKE log line",
    "carriage-return": "id\rx",
    "tab": "id\tx",
    "quote": 'id"x',
    "non-ascii": "idé",
    "empty": "",
}


def with_request_id(request_id: str) -> dict:
    # Passed through the WSGI environ, because werkzeug refuses to build headers with newlines.
    return {"environ_base": {"HTTP_X_REQUEST_ID": request_id}}


@pytest.mark.parametrize("request_id", SANE_IDS)
def test_a_sane_client_request_id_is_echoed_and_used_as_instance(client, request_id):
    ok = client.get("/roles", **with_request_id(request_id))
    failed = client.get("/items", **with_request_id(request_id))

    assert ok.status_code == 200
    assert ok.headers["X-Request-ID"] == request_id
    assert failed.headers["X-Request-ID"] == request_id
    assert assert_problem(failed, 401)["instance"] == request_id


@pytest.mark.parametrize("request_id", INSANE_IDS.values(), ids=INSANE_IDS.keys())
def test_an_insane_client_request_id_is_replaced_by_a_fresh_one(client, request_id):
    first = client.get("/items", **with_request_id(request_id))
    second = client.get("/items", **with_request_id(request_id))

    fresh = first.headers["X-Request-ID"]
    assert fresh != request_id
    assert PLAIN_ID.fullmatch(fresh)
    assert second.headers["X-Request-ID"] != fresh
    assert assert_problem(first, 401)["instance"] == fresh


def test_every_response_gets_its_own_request_id(client):
    ids = {client.get("/roles").headers["X-Request-ID"] for _ in range(3)}

    assert len(ids) == 3
    assert all(PLAIN_ID.fullmatch(request_id) for request_id in ids)


def test_unexpected_exception_is_a_bare_500_that_leaks_nothing(client, caplog):
    caplog.set_level(logging.DEBUG)

    response = client.get("/test-only/explode")

    body = assert_problem(response, 500)
    text = response.get_data(as_text=True)
    for leak in (SECRET, "SELECT", "password", "RuntimeError", "Traceback", ".py"):
        assert leak not in text
    assert set(body) == {"type", "title", "status", "detail", "instance"}
    # The fault is logged (so it can be found) without its message or a traceback.
    assert any(record.levelno >= logging.ERROR for record in caplog.records)
    for record in caplog.records:
        assert SECRET not in record.getMessage()
        assert not record.exc_info
        assert SECRET not in (record.exc_text or "")
    assert SECRET not in caplog.text


def test_integrity_error_escaping_a_view_is_409_naming_the_field(client, user, caplog):
    caplog.set_level(logging.DEBUG)
    item = make_item(user, "Lamp")

    response = client.post(f"/test-only/copy/{item.id}")

    body = assert_problem(response, 409)
    assert "name" in body["detail"]
    assert "INSERT" not in response.get_data(as_text=True)
    assert "INSERT" not in caplog.text


def test_integrity_error_without_a_unique_field_is_a_generic_409(client, caplog):
    caplog.set_level(logging.DEBUG)

    response = client.post("/test-only/orphan")

    body = assert_problem(response, 409)
    text = response.get_data(as_text=True)
    for leak in ("INSERT", "FOREIGN", "foreign key", "orphan", "2147483647"):
        assert leak not in text
    assert "INSERT" not in caplog.text
    assert body["detail"]


def test_integrity_error_in_a_signed_in_request_is_409(client, user, auth_headers):
    # The access log reads the caller after the view failed: the failed transaction must be gone.
    item = make_item(user, "Lamp")

    response = client.post(f"/test-only/signed-in/copy/{item.id}", headers=auth_headers)

    assert "name" in assert_problem(response, 409)["detail"]


@pytest.fixture
def price_tags(app):
    """A table the app does not have, with a multi-word name, two two-column unique keys (one
    scoped by a foreign key) and a one-column one."""
    metadata = MetaData()
    Table("shops", metadata, Column("id", Integer, primary_key=True))
    table = Table(
        "price_tags",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("shop_id", ForeignKey("shops.id"), nullable=False),
        Column("aisle", Integer, nullable=False),
        Column("label", String(32), nullable=False),
        Column("code", String(32), nullable=False),
        UniqueConstraint("shop_id", "label", name="uq_price_tags_shop_id_label"),
        UniqueConstraint("aisle", "label", name="uq_price_tags_aisle_label"),
        UniqueConstraint("code", name="uq_price_tags_code"),
    )
    metadata.create_all(db.engine)
    yield metadata, table
    metadata.drop_all(db.engine)


@pytest.mark.parametrize(
    ("row", "fields"),
    [
        # Unique per shop: the label is what the client chose.
        ({"shop_id": 1, "aisle": 2, "label": "sale", "code": "B"}, ("label",)),
        ({"shop_id": 2, "aisle": 2, "label": "sale", "code": "A"}, ("code",)),
        ({"shop_id": 2, "aisle": 1, "label": "sale", "code": "C"}, ("aisle", "label")),
    ],
)
def test_a_duplicate_key_names_the_fields_of_the_constraint_the_database_reported(price_tags, row, fields):
    metadata, table = price_tags
    with db.engine.begin() as connection:
        connection.execute(insert(metadata.tables["shops"]).values([{"id": 1}, {"id": 2}]))
        connection.execute(insert(table).values(shop_id=1, aisle=1, label="sale", code="A"))
    with pytest.raises(IntegrityError) as raised, db.engine.begin() as connection:
        connection.execute(insert(table).values(**row))

    assert duplicated_fields(raised.value, metadata) == fields
    # The app's own keys are not matched by another table's error.
    assert duplicated_fields(raised.value, db.metadata) is None


# What a Galera node answers, while it is cut off from the cluster's primary component, to
# every statement that touches a table, and to COMMIT and ROLLBACK too.
NOT_READY = (1047, "WSREP has not yet prepared node for application use")


class UnreadyNode:
    """The app's database answering as a Galera node that cannot serve: the driver raises
    error 1047 from the calls named in ``refused`` ("execute", "commit", "rollback"), as it
    raises the server's errors. ``dropped`` counts the connections the pool closed for good."""

    CALLS = {
        "do_execute": "execute",
        "do_execute_no_params": "execute",
        "do_commit": "commit",
        "do_rollback": "rollback",
    }

    def __init__(self, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
        self.refused: set[str] = set()
        self.dropped = 0
        dialect = engine.dialect
        error = dialect.loaded_dbapi.OperationalError
        for method, call in self.CALLS.items():
            monkeypatch.setattr(dialect, method, self._refusing(call, error, getattr(dialect, method)))
        event.listen(engine, "invalidate", self._count_drop)

    def _refusing(self, call, error, original):
        def refusing(*args, **kwargs):
            if call in self.refused:
                raise error(*NOT_READY)
            return original(*args, **kwargs)

        return refusing

    def _count_drop(self, *_args) -> None:
        self.dropped += 1


@pytest.fixture
def unready_node(app, monkeypatch) -> UnreadyNode:
    return UnreadyNode(db.engine, monkeypatch)


@pytest.mark.parametrize(
    ("error", "not_ready"),
    [
        (pymysql.err.OperationalError(*NOT_READY), True),
        (OperationalError("SELECT 1", {}, pymysql.err.OperationalError(*NOT_READY)), True),
        (OperationalError("COMMIT", {}, pymysql.err.OperationalError(1213, "Deadlock found")), False),
        (OperationalError("SELECT 1", {}, pymysql.err.OperationalError(2013, "Lost connection")), False),
        (OperationalError("SELECT 1", {}, Exception("database is locked")), False),
    ],
    ids=["raw-1047", "wrapped-1047", "deadlock", "lost-connection", "sqlite"],
)
def test_only_the_not_ready_error_says_the_node_cannot_serve(error, not_ready):
    assert is_node_not_ready(error) is not_ready


def test_a_node_that_refuses_even_the_rollback_answers_503_with_retry_after(app, client, unready_node):
    unready_node.refused = {"execute", "commit", "rollback"}

    response = client.get("/users")

    assert_problem(response, 503)
    assert response.headers["Retry-After"] == str(app.config["DATABASE_RETRY_AFTER"])
    # The connection whose transaction the node would not end is closed, not pooled ...
    assert unready_node.dropped == 1
    # ... and once the node serves again, so does the app, with nothing restarted.
    unready_node.refused = set()
    assert client.get("/users").status_code == 200


# Connections go back to the pool as they are, as on MySQL (webapp.database.engine_options):
# the pool's own rollback would otherwise end the transaction the node left open.
@pytest.mark.parametrize(
    "app_config", [{"SQLALCHEMY_ENGINE_OPTIONS": {"pool_reset_on_return": None}}], ids=["no-pool-reset"]
)
def test_a_write_whose_commit_the_node_refused_is_never_committed_later(client, auth_headers, unready_node):
    unready_node.refused = {"commit", "rollback"}

    refused = client.post("/items", headers=auth_headers, json={"name": "refused"})
    unready_node.refused = set()
    later = client.post("/items", headers=auth_headers, json={"name": "later"})

    assert_problem(refused, 503)
    assert later.status_code == 201
    # Left open on a pooled connection, the refused insert would have been committed by the
    # next request to commit on it.
    stored = db.session.scalars(select(Item.name).where(Item.name.in_(["refused", "later"]))).all()
    assert stored == ["later"]
    assert db.session.scalar(select(func.count()).select_from(Item)) == 1


def test_a_rollback_refused_after_the_answer_was_made_does_not_turn_it_into_a_500(
    client, unready_node, caplog
):
    # The node left the primary component between the view's last query and the end of the
    # request: the view's answer stands, and only the connection goes.
    unready_node.refused = {"rollback"}

    response = client.get("/users")

    assert response.status_code == 200
    assert unready_node.dropped == 1
    assert "rollback failed, connection dropped: OperationalError 1047" in caplog.text
    unready_node.refused = set()
    assert client.get("/users").status_code == 200
